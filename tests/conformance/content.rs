//! `GET /file/content?path=`: text as is, anything else base64 with a MIME type.

use base64::Engine;
use serde_json::json;

use crate::assert_error;
use crate::support::fixture::{self, MAIN_RS_CHANGED};
use crate::support::{for_each_env, Served};

fn text(content: &str) -> serde_json::Value {
    json!({"type": "text", "content": content})
}

#[tokio::test]
async fn text_files_come_back_exactly() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        // Burrow returns the bytes as they are; OpenCode trims surrounding whitespace
        // (it would answer "fn main() {…// changed" without the final newline).
        let long = format!("short line\n{}\n", fixture::long_line());
        let cases = [
            ("src/main.rs", MAIN_RS_CHANGED),
            ("README.md", fixture::README),
            ("new.txt", fixture::NEW_TXT),
            (".hidden", fixture::HIDDEN),
            ("données/été.txt", fixture::ETE_TXT),
            ("日本語.md", fixture::NIHONGO_MD),
            ("long.txt", long.as_str()),
            // Ignored files are readable: ignoring is about listings and searches.
            ("debug.log", "hello xyz from a log\n"),
        ];
        for (path, content) in cases {
            assert_eq!(t.srv.get_q("/file/content", &[("path", path)]).await, (200, text(content)), "GET /file/content?path={path}");
        }
        // Through a symlink that stays inside (object storage has no symlinks).
        let got = t.srv.get_q("/file/content", &[("path", "readme_link")]).await;
        if t.symlinks() {
            assert_eq!(got, (200, text(fixture::README)), "readme_link -> README.md");
        } else {
            assert_error("readme_link without symlinks", got, 404, "NotFoundError");
        }
        // Other spellings of the same file.
        for path in ["./src/main.rs", "src//main.rs", &t.abs("src/main.rs")] {
            assert_eq!(t.srv.get_q("/file/content", &[("path", path)]).await, (200, text(MAIN_RS_CHANGED)), "path={path}");
        }
    })
    .await;
}

#[tokio::test]
async fn binary_and_image_files_come_back_as_base64() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let bin = json!({"type": "binary", "content": b64(&fixture::binary_bytes()), "encoding": "base64", "mimeType": "application/octet-stream"});
        assert_eq!(t.srv.get_q("/file/content", &[("path", "bin.dat")]).await, (200, bin));
        let png = json!({"type": "binary", "content": fixture::TINY_PNG_BASE64, "encoding": "base64", "mimeType": "image/png"});
        assert_eq!(t.srv.get_q("/file/content", &[("path", "img.png")]).await, (200, png));
    })
    .await;
}

#[tokio::test]
async fn content_refuses_escapes_folders_and_missing_files() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        let outside = t.fx.outside().join("secret.txt").display().to_string();
        // OpenCode: 500 for escapes (and a 200 for `src/../README.md`, which Burrow refuses
        // like every path that climbs).
        for path in ["../../etc/passwd", "..", "/etc/passwd", outside.as_str(), "src/../README.md"] {
            assert_error(&format!("path={path}"), t.srv.get_q("/file/content", &[("path", path)]).await, 403, "ForbiddenError");
        }
        // OpenCode: an empty 200 for a missing file, a 500 for a folder.
        assert_error("missing file", t.srv.get_q("/file/content", &[("path", "missing.txt")]).await, 404, "NotFoundError");
        assert_error("deleted file", t.srv.get_q("/file/content", &[("path", "old.txt")]).await, 404, "NotFoundError");
        assert_error("a folder", t.srv.get_q("/file/content", &[("path", "src")]).await, 400, "BadRequest");
        assert_error("the root", t.srv.get_q("/file/content", &[("path", "")]).await, 400, "BadRequest");
        // The symlinks `passwd_link -> /etc/passwd` and `escape -> /etc`.
        for path in ["passwd_link", "escape/passwd", "escape/hostname"] {
            let got = t.srv.get_q("/file/content", &[("path", path)]).await;
            if t.symlinks() {
                assert_error(&format!("symlink {path}"), got, 403, "ForbiddenError");
            } else {
                assert_error(&format!("{path} without symlinks"), got, 404, "NotFoundError");
            }
        }
    })
    .await;
}
