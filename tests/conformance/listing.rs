//! `GET /file?path=`: directory listings.

use serde_json::{json, Value};

use crate::assert_error;
use crate::support::{for_each_env, Served};

const DIR: bool = true;
const FILE: bool = false;

/// A `FileNode` of `rel` (relative to the workspace root, which is also the
/// request's directory): directories' paths end with `/`.
fn node(t: &Served, rel: &str, dir: bool, ignored: bool) -> Value {
    let name = rel.rsplit('/').next().unwrap();
    let path = if dir { format!("{rel}/") } else { rel.to_string() };
    json!({"name": name, "path": path, "absolute": t.abs(rel), "type": if dir { "directory" } else { "file" }, "ignored": ignored})
}

/// The root listing: directories first, then files, each in OpenCode's order
/// (JavaScript `localeCompare` of the paths: `README.md` after `new.txt`).
/// Symlinks (`escape`, `passwd_link`, `readme_link`) are not listed, as OpenCode
/// does not list them; object storage has none anyway.
fn root_listing(t: &Served) -> Value {
    let entries = [
        (".git", DIR, false),
        ("a", DIR, false),
        ("docs", DIR, false),
        ("données", DIR, false),
        ("node_modules", DIR, true),
        ("src", DIR, false),
        (".gitignore", FILE, false),
        (".hidden", FILE, false),
        ("bin.dat", FILE, false),
        ("debug.log", FILE, true),
        ("img.png", FILE, false),
        ("long.txt", FILE, false),
        ("new.txt", FILE, false),
        ("README.md", FILE, false),
        ("日本語.md", FILE, false),
    ];
    Value::Array(entries.iter().map(|(rel, dir, ignored)| node(t, rel, *dir, *ignored)).collect())
}

#[tokio::test]
async fn root_listing_orders_and_flags_entries() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        let want = root_listing(&t);
        // `.`, the empty path and the absolute root all name the root.
        for path in [".", "", "./", t.ws.root.as_str()] {
            assert_eq!(t.srv.get_q("/file", &[("path", path)]).await, (200, want.clone()), "GET /file?path={path:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn nested_ignored_and_unicode_listings() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        let cases: Vec<(&str, Value)> = vec![
            ("src", json!([node(&t, "src/lib.rs", FILE, false), node(&t, "src/main.rs", FILE, false)])),
            ("a", json!([node(&t, "a/b", DIR, false)])),
            ("a/b/c", json!([node(&t, "a/b/c/deep.txt", FILE, false)])),
            // Everything below an ignored folder is ignored.
            ("node_modules", json!([node(&t, "node_modules/pkg", DIR, true)])),
            ("node_modules/pkg", json!([node(&t, "node_modules/pkg/index.js", FILE, true)])),
            ("données", json!([node(&t, "données/été.txt", FILE, false)])),
        ];
        for (path, want) in cases {
            assert_eq!(t.srv.get_q("/file", &[("path", path)]).await, (200, want.clone()), "GET /file?path={path}");
            // A trailing slash and an absolute path name the same folder.
            assert_eq!(t.srv.get_q("/file", &[("path", &format!("{path}/"))]).await, (200, want.clone()), "GET /file?path={path}/");
            assert_eq!(t.srv.get_q("/file", &[("path", &t.abs(path))]).await, (200, want), "GET /file?path=<root>/{path}");
        }
        // `.git` is listed, and not flagged ignored, as OpenCode does.
        let (status, git) = t.srv.get_q("/file", &[("path", ".git")]).await;
        assert_eq!(status, 200, "{git}");
        assert!(git.as_array().unwrap().contains(&node(&t, ".git/HEAD", FILE, false)), "{git}");
    })
    .await;
}

#[tokio::test]
async fn listing_refuses_escapes_files_and_missing_folders() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        // OpenCode answers 500 to all of these; Burrow says what is wrong.
        for path in ["..", "../..", "a/../..", "/", "/etc", &t.fx.outside().display().to_string()] {
            assert_error(&format!("GET /file?path={path}"), t.srv.get_q("/file", &[("path", path)]).await, 403, "ForbiddenError");
        }
        assert_error("listing a file", t.srv.get_q("/file", &[("path", "new.txt")]).await, 400, "BadRequest");
        assert_error("listing a missing folder", t.srv.get_q("/file", &[("path", "missing")]).await, 404, "NotFoundError");
        // The symlink `escape -> /etc`; object storage has no symlinks, so there it is simply missing.
        let got = t.srv.get_q("/file", &[("path", "escape")]).await;
        if t.symlinks() {
            assert_error("listing a symlink that leaves the root", got, 403, "ForbiddenError");
        } else {
            assert_error("listing escape without symlinks", got, 404, "NotFoundError");
        }
    })
    .await;
}
