//! `?directory=` and the `x-opencode-directory` header: requests about a
//! folder of the workspace see paths relative to it. Folders outside the
//! workspace are refused (OpenCode serves any folder on the machine; a Burrow
//! server serves one workspace).

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use reqwest::Method;
use serde_json::json;

use crate::assert_error;
use crate::support::server::with_query;
use crate::support::{for_each_env, Served};

#[tokio::test]
async fn a_subdirectory_changes_relative_paths() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        let a = t.abs("a");
        let src = t.abs("src");
        let c = json!({"name": "c", "path": "b/c/", "absolute": t.abs("a/b/c"), "type": "directory", "ignored": false});
        assert_eq!(t.srv.get_q("/file", &[("path", "b"), ("directory", &a)]).await, (200, json!([c])));
        assert_eq!(
            t.srv.get_q("/file", &[("path", "."), ("directory", &a)]).await.1,
            json!([{
                "name": "b", "path": "b/", "absolute": t.abs("a/b"), "type": "directory", "ignored": false
            }])
        );
        let path = t.srv.get_q("/path", &[("directory", &a)]).await;
        assert_eq!(path.1["directory"], a.as_str());
        assert_eq!(path.1["worktree"], t.worktree(), "the worktree stays the repository's top level");
        // A relative directory is relative to the workspace root.
        assert_eq!(t.srv.get_q("/path", &[("directory", "a")]).await.1["directory"], a.as_str());

        let found = t.srv.get_q("/find", &[("pattern", "hello"), ("directory", &src)]).await.1;
        let paths: Vec<&str> = found.as_array().unwrap().iter().map(|m| m["path"]["text"].as_str().unwrap()).collect();
        assert_eq!(paths, ["lib.rs", "main.rs"]);
        assert_eq!(t.srv.get_q("/find/file", &[("query", "main"), ("directory", &src)]).await.1[0], "main.rs");
        let fs = t.srv.get_q("/api/fs/find", &[("query", "main"), ("directory", &src)]).await.1;
        assert_eq!(fs["location"]["directory"], src.as_str());
        assert_eq!(fs["data"][0], json!({"path": "main.rs", "type": "file"}));
        // The TUI's own spelling on /api routes: `location[directory]`.
        let fs = t.srv.get_q("/api/fs/find", &[("query", "main"), ("location[directory]", &src)]).await.1;
        assert_eq!((&fs["location"]["directory"], &fs["data"][0]["path"]), (&json!(src), &json!("main.rs")), "{fs}");

        let status = t.srv.get_q("/file/status", &[("directory", &src)]).await;
        let want = if t.git() { json!([{"path": "main.rs", "added": 1, "removed": 0, "status": "modified"}]) } else { json!([]) };
        assert_eq!(status, (200, want), "status of src/ only, relative to it");
    })
    .await;
}

#[tokio::test]
async fn the_header_works_like_the_query_and_may_be_percent_encoded() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        let with_header = |path: &str, dir: &str| t.srv.request(Method::GET, path).header("x-opencode-directory", dir.to_string());
        let reply = t.srv.send(with_header(&with_query("/file/content", &[("path", "deep.txt")]), &t.abs("a/b/c"))).await;
        assert_eq!((reply.status, reply.json()), (200, json!({"type": "text", "content": "deep\n"})));
        // Non-ASCII folder names travel percent-encoded in the header.
        let encoded = utf8_percent_encode(&t.abs("données"), NON_ALPHANUMERIC).to_string();
        let reply = t.srv.send(with_header("/file?path=.", &encoded)).await;
        let want = json!([{"name": "été.txt", "path": "été.txt", "absolute": t.abs("données/été.txt"), "type": "file", "ignored": false}]);
        assert_eq!((reply.status, reply.json()), (200, want));
        // The query wins over the header, as in OpenCode.
        let reply = t.srv.send(with_header(&with_query("/path", &[("directory", &t.abs("src"))]), &t.abs("docs"))).await;
        assert_eq!(reply.json()["directory"], t.abs("src"));
        let reply = t.srv.send(with_header("/file?path=src", &t.abs("a"))).await;
        assert_error("src below a/", (reply.status, reply.json()), 404, "NotFoundError");
    })
    .await;
}

#[tokio::test]
async fn directories_outside_the_workspace_are_refused() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        let outside = t.fx.outside().display().to_string();
        for dir in [outside.as_str(), "/etc", "/", "..", "a/../.."] {
            for path in ["/path", "/project/current", "/vcs", "/file/status"] {
                assert_error(&format!("{path}?directory={dir}"), t.srv.get_q(path, &[("directory", dir)]).await, 403, "ForbiddenError");
            }
            let reply = t.srv.send(t.srv.request(Method::GET, "/file?path=.").header("x-opencode-directory", dir)).await;
            assert_error(&format!("header {dir}"), (reply.status, reply.json()), 403, "ForbiddenError");
        }
        let got = t.srv.get_q("/path", &[("directory", &t.abs("escape"))]).await;
        if t.symlinks() {
            assert_error("a directory symlink that leaves the root", got, 403, "ForbiddenError");
        } else {
            assert_error("escape without symlinks", got, 404, "NotFoundError");
        }
        // OpenCode answers 200 for a folder that does not exist; Burrow says so.
        assert_error("missing folder", t.srv.get_q("/path", &[("directory", &t.abs("missing"))]).await, 404, "NotFoundError");
        assert_error("a file as folder", t.srv.get_q("/path", &[("directory", &t.abs("new.txt"))]).await, 400, "BadRequest");
    })
    .await;
}
