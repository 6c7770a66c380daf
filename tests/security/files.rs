//! Files, search and the data folder against what a workspace or a client
//! could try (issue 11): symlinks out of an `fs://` folder, a symlink swapped
//! while the server reads, FIFOs, control characters, costly regexes, and the
//! modes and size of what the server keeps.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::env::serve_folder;
use crate::support::Server;
use futures::StreamExt;
use serde_json::Value;

/// Bounds a request that could hang, turning a hang into a failure (not a timing assertion).
const HANG_GUARD: Duration = Duration::from_secs(60);
const MARKER: &str = "OUTSIDE-MARKER-5f1c";

#[track_caller]
fn assert_json_error(what: &str, got: &(u16, Value), status: u16) {
    assert_eq!(got.0, status, "{what}: {}", got.1);
    assert!(got.1["name"].is_string() && got.1["data"]["message"].is_string(), "{what}: a JSON error: {}", got.1);
}

/// A workspace folder and, beside it, a folder with a secret in it.
fn folders() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(ws.join("real")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(ws.join("inside.txt"), "inside\n").unwrap();
    std::fs::write(ws.join("real/inside-listed.txt"), "inside\n").unwrap();
    std::fs::write(outside.join("secret.txt"), format!("{MARKER}\n")).unwrap();
    std::fs::write(outside.join(format!("{MARKER}.txt")), format!("{MARKER}\n")).unwrap();
    (tmp, ws, outside)
}

#[tokio::test]
async fn fs_url_confines_symlinks_like_the_local_env() {
    let (_tmp, ws, outside) = folders();
    std::os::unix::fs::symlink("/etc", ws.join("etc")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), ws.join("leak")).unwrap();
    std::os::unix::fs::symlink(&outside, ws.join("out")).unwrap();
    std::os::unix::fs::symlink("inside.txt", ws.join("alias")).unwrap();
    let srv = Server::start(&serve_folder(&ws, true).unwrap()).await;
    let (status, caps) = srv.get("/burrow/capabilities").await;
    assert_eq!((status, caps["env"].as_str()), (200, Some("object")), "{caps}");

    for path in ["etc/passwd", "leak", "out/secret.txt"] {
        assert_json_error(path, &srv.get_q("/file/content", &[("path", path)]).await, 403);
    }
    for dir in ["etc", "out"] {
        assert_json_error(dir, &srv.get_q("/file", &[("path", dir)]).await, 403);
    }
    // A link that stays inside still works, as locally.
    let (status, body) = srv.get_q("/file/content", &[("path", "alias")]).await;
    assert_eq!((status, body["content"].as_str()), (200, Some("inside\n")), "{body}");
    // Listings, the file index and text search leave the links out.
    let (status, body) = srv.get_q("/file", &[("path", "")]).await;
    assert_eq!(status, 200, "{body}");
    let mut names: Vec<&str> = body.as_array().unwrap().iter().filter_map(|e| e["name"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["inside.txt", "real"], "{body}");
    let (status, body) = srv.get_q("/find", &[("pattern", MARKER)]).await;
    assert_eq!((status, body.as_array().map(Vec::len)), (200, Some(0)), "{body}");
    let (status, body) = srv.get_q("/find", &[("pattern", "root:")]).await;
    assert_eq!((status, body.as_array().map(Vec::len)), (200, Some(0)), "{body}");
    let (status, body) = srv.get_q("/find/file", &[("query", "passwd")]).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_string().contains("passwd"), "{body}");
}

/// Swaps `link` between `inside` and `outside` until told to stop, the way a
/// process in the workspace could (a new link renamed over the old one).
fn swapper(dir: &Path, link: &str, inside: &Path, outside: &Path, stop: Arc<AtomicBool>, swaps: Arc<AtomicU64>) -> std::thread::JoinHandle<()> {
    let (dir, link, inside, outside) = (dir.to_path_buf(), link.to_string(), inside.to_path_buf(), outside.to_path_buf());
    std::thread::spawn(move || {
        let tmp = dir.join(format!(".{link}.swap"));
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let target = if n.is_multiple_of(2) { &outside } else { &inside };
            let _ = std::fs::remove_file(&tmp);
            std::os::unix::fs::symlink(target, &tmp).unwrap();
            std::fs::rename(&tmp, dir.join(&link)).unwrap();
            n += 1;
            swaps.store(n, Ordering::Relaxed);
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_swapped_during_requests_leaks_nothing() {
    let (_tmp, ws, outside) = folders();
    std::os::unix::fs::symlink("inside.txt", ws.join("link")).unwrap();
    std::os::unix::fs::symlink("real", ws.join("dirlink")).unwrap();
    let srv = Server::start(&serve_folder(&ws, false).unwrap()).await;
    let (stop, swaps) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let threads = [
        swapper(&ws, "link", Path::new("inside.txt"), &outside.join("secret.txt"), stop.clone(), swaps.clone()),
        swapper(&ws, "dirlink", Path::new("real"), &outside, stop.clone(), swaps.clone()),
    ];
    while swaps.load(Ordering::Relaxed) < 2 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let srv = &srv;
    let replies: Vec<(String, u16, String)> = futures::stream::iter(0..4000u32)
        .map(|i| async move {
            let (what, path) = if i.is_multiple_of(2) { ("/file/content", "link") } else { ("/file", "dirlink") };
            let url = crate::support::server::with_query(what, &[("path", path)]);
            let reply = tokio::time::timeout(HANG_GUARD, srv.send(srv.request(reqwest::Method::GET, &url))).await.expect("a request hung");
            (url, reply.status, reply.text)
        })
        .buffer_unordered(8)
        .collect()
        .await;
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let leaked: Vec<_> = replies.iter().filter(|(_, _, text)| text.contains(MARKER)).collect();
    assert!(leaked.is_empty(), "{} of {} answers held outside data, e.g. {:?}", leaked.len(), replies.len(), leaked.first());
    for (url, status, text) in &replies {
        assert!(matches!(status, 200 | 403), "{url}: {status} {text}");
    }
    // Settled inside, the links work.
    std::fs::remove_file(ws.join("link")).unwrap();
    std::os::unix::fs::symlink("inside.txt", ws.join("link")).unwrap();
    let (status, body) = srv.get_q("/file/content", &[("path", "link")]).await;
    assert_eq!((status, body["content"].as_str()), (200, Some("inside\n")), "{body}");
}

#[tokio::test]
async fn a_fifo_answers_4xx_and_search_passes_it_by() {
    let (_tmp, ws, _outside) = folders();
    let made = std::process::Command::new("mkfifo").arg(ws.join("pipe")).status().unwrap();
    assert!(made.success());
    let srv = Server::start(&serve_folder(&ws, false).unwrap()).await;
    let got = tokio::time::timeout(HANG_GUARD, srv.get_q("/file/content", &[("path", "pipe")])).await.expect("reading a FIFO hung");
    assert_json_error("a FIFO", &got, 400);
    assert!(got.1["data"]["message"].as_str().unwrap().contains("FIFO"), "{}", got.1);
    let got = tokio::time::timeout(HANG_GUARD, srv.get_q("/find", &[("pattern", "inside")])).await.expect("a search hung on a FIFO");
    assert_eq!(got.0, 200, "{}", got.1);
    assert_eq!(got.1.as_array().map(Vec::len), Some(2), "{}", got.1);
}

#[tokio::test]
async fn costly_regexes_and_control_characters_answer_400() {
    let (_tmp, ws, _outside) = folders();
    let srv = Server::start(&serve_folder(&ws, false).unwrap()).await;
    let got = tokio::time::timeout(HANG_GUARD, srv.get_q("/find", &[("pattern", "\\p{L}{8000}")])).await.expect("a costly regex hung");
    assert_json_error("\\p{L}{8000}", &got, 400);
    assert_json_error("a 5 KiB pattern", &srv.get_q("/find", &[("pattern", &"a".repeat(5000))]).await, 400);
    std::fs::write(ws.join("a"), "a\n").unwrap();
    for bad in ["a\n", "a\r", "a\0", "real/\u{1b}[2J", "a\u{7f}"] {
        assert_json_error(&format!("/file/content {bad:?}"), &srv.get_q("/file/content", &[("path", bad)]).await, 400);
        assert_json_error(&format!("/file {bad:?}"), &srv.get_q("/file", &[("path", bad)]).await, 400);
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o7777
}

#[tokio::test]
async fn the_data_folder_is_private_and_tool_output_is_pruned() {
    let (tmp, ws, _outside) = folders();
    let data = tmp.path().join("data");
    let spool = data.join("tool-output");
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Left by an earlier run: one too old, then more than the size allows.
    let old = spool.join("tool_old");
    std::fs::write(&old, "x").unwrap();
    std::fs::File::options().write(true).open(&old).unwrap().set_modified(std::time::SystemTime::now() - Duration::from_secs(9 * 24 * 3600)).unwrap();
    for i in 0..4 {
        let f = spool.join(format!("tool_{i}"));
        std::fs::write(&f, vec![b'x'; 1024]).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let age = Duration::from_secs(3600 * (10 - i));
        std::fs::File::options().write(true).open(&f).unwrap().set_modified(std::time::SystemTime::now() - age).unwrap();
    }
    let vars = [("BURROW_DATA_DIR", data.to_str().unwrap()), ("BURROW_TOOL_OUTPUT_MAX_SIZE", "2K"), ("BURROW_TOOL_OUTPUT_MAX_AGE", "7")];
    let srv = Server::start_with(&serve_folder(&ws, false).unwrap(), &vars).await;
    let created = srv.send(srv.request(reqwest::Method::POST, "/session").json(&serde_json::json!({}))).await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&spool), 0o700);
    for f in ["burrow.db", "burrow.db-wal", "burrow.db-shm"] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    // Pruning runs beside the start: wait for it (the guard only bounds a hang).
    let left = |spool: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(spool).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    };
    let pruned = tokio::time::timeout(HANG_GUARD, async {
        while left(&spool).len() > 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(pruned.is_ok(), "tool-output was not pruned: {:?}", left(&spool));
    assert_eq!(left(&spool), ["tool_2", "tool_3"], "the old one and the oldest over 2 KiB went");
    for name in left(&spool) {
        assert_eq!(mode(&spool.join(&name)), 0o600, "{name}");
    }
}
