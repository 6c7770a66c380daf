//! The v2 file routes: `GET /api/health`, `/api/fs/list` and `/api/fs/read/*`,
//! in every environment.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{for_each_env, Served};

/// A v2 list's `data` as (path, type) pairs.
fn entries(body: &Value) -> Vec<(String, String)> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("data is a list: {body}"))
        .iter()
        .map(|e| (e["path"].as_str().unwrap().into(), e["type"].as_str().unwrap().into()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect()
}

#[tokio::test]
async fn fs_list_and_read_answer_relative_to_the_location() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        assert_eq!(t.srv.get("/api/health").await, (200, json!({ "healthy": true })));

        let (status, root) = t.srv.get("/api/fs/list").await;
        assert_eq!(status, 200, "{root}");
        assert_eq!(root["location"]["directory"], t.ws.root.as_str());
        let got = entries(&root);
        // Directories first; symlinks are not listed (as `GET /file` does not list them).
        for want in [("src", "directory"), ("données", "directory"), ("README.md", "file"), ("long.txt", "file")] {
            assert!(got.contains(&(want.0.to_string(), want.1.to_string())), "{want:?} in {got:?}");
        }
        assert!(!got.iter().any(|(p, _)| p == "escape" || p == "readme_link"), "{got:?}");
        let first_file = got.iter().position(|(_, k)| k == "file").unwrap();
        assert!(got[first_file..].iter().all(|(_, k)| k == "file"), "{got:?}");

        let (status, src) = t.srv.get("/api/fs/list?path=src").await;
        assert_eq!(status, 200, "{src}");
        assert_eq!(entries(&src), pairs(&[("src/lib.rs", "file"), ("src/main.rs", "file")]));
        let here = t.abs("src");
        let (status, scoped) = t.srv.get_q("/api/fs/list", &[("location[directory]", &here)]).await;
        assert_eq!(status, 200, "{scoped}");
        assert_eq!(entries(&scoped), pairs(&[("lib.rs", "file"), ("main.rs", "file")]), "relative to the location");
        assert_eq!(scoped["location"]["directory"], here.as_str());

        for (what, path, status) in [("a file", "README.md", 404), ("a missing folder", "nope", 404), ("outside the workspace", "/etc", 403)] {
            let (got, body) = t.srv.get_q("/api/fs/list", &[("path", path)]).await;
            assert_eq!(got, status, "{what}: {body}");
            assert!(body["data"]["message"].is_string(), "{what}: a JSON error: {body}");
        }

        let read = t.srv.send(t.srv.request(Method::GET, "/api/fs/read/src/main.rs")).await;
        assert_eq!(read.status, 200, "{}", read.text);
        assert_eq!(read.header("content-type"), Some("application/octet-stream"));
        let (_, content) = t.srv.get("/file/content?path=src/main.rs").await;
        assert_eq!(read.text, content["content"].as_str().unwrap(), "the same bytes as /file/content");
        let scoped_read = crate::support::server::with_query("/api/fs/read/main.rs", &[("location[directory]", &here)]);
        let scoped_read = t.srv.send(t.srv.request(Method::GET, &scoped_read)).await;
        assert_eq!((scoped_read.status, scoped_read.text), (200, read.text), "relative to the location");
        for (what, path, status) in [
            ("a folder", "/api/fs/read/docs", 400),
            ("a missing file", "/api/fs/read/nope.txt", 404),
            ("an escape", "/api/fs/read/..%2Foutside%2Fsecret.txt", 403),
        ] {
            let (got, body) = t.srv.get(path).await;
            assert_eq!(got, status, "{what}: {body}");
            assert!(body["data"]["message"].is_string(), "{what}: a JSON error: {body}");
        }
    })
    .await;
}
