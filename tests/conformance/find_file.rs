//! `GET /find/file` (fuzzy file search), the TUI's `GET /api/fs/find`,
//! `GET /find/symbol`, and the freshness of the file index behind them.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{for_each_env, Served};

async fn find_file(t: &Served, params: &[(&str, &str)]) -> Vec<String> {
    let (status, body) = t.srv.get_q("/find/file", params).await;
    assert_eq!(status, 200, "GET /find/file {params:?}: {body}");
    serde_json::from_value(body).expect("an array of paths")
}

/// Every entry of the fixture's file index, shallowest first: hidden files in,
/// ignored files, `.git` and symlinks out, directories with a trailing slash.
const INDEX: &[&str] = &[
    ".gitignore",
    ".hidden",
    "README.md",
    "a/",
    "bin.dat",
    "docs/",
    "données/",
    "img.png",
    "long.txt",
    "new.txt",
    "src/",
    "日本語.md",
    "a/b/",
    "docs/guide.md",
    "données/été.txt",
    "src/lib.rs",
    "src/main.rs",
    "a/b/c/",
    "a/b/c/deep.txt",
];

#[tokio::test]
async fn empty_query_lists_the_index_shallowest_first() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        assert_eq!(find_file(&t, &[("query", ""), ("limit", "200")]).await, INDEX);
        assert_eq!(find_file(&t, &[("query", "")]).await, &INDEX[..10], "ten by default");
        assert_eq!(find_file(&t, &[("query", ""), ("limit", "3")]).await, &INDEX[..3]);
        let dirs: Vec<&str> = INDEX.iter().copied().filter(|p| p.ends_with('/')).collect();
        let files: Vec<&str> = INDEX.iter().copied().filter(|p| !p.ends_with('/')).collect();
        assert_eq!(find_file(&t, &[("query", ""), ("type", "directory"), ("limit", "200")]).await, dirs);
        assert_eq!(find_file(&t, &[("query", ""), ("type", "file"), ("limit", "200")]).await, files);
        assert_eq!(find_file(&t, &[("query", ""), ("dirs", "false"), ("limit", "200")]).await, files);
        assert_eq!(find_file(&t, &[("query", ""), ("dirs", "true"), ("limit", "200")]).await, INDEX);
    })
    .await;
}

#[tokio::test]
async fn fuzzy_queries_rank_the_best_match_first() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        for (query, first) in [
            ("main", "src/main.rs"),
            ("deep", "a/b/c/deep.txt"),
            ("guide", "docs/guide.md"),
            ("README", "README.md"),
            ("été", "données/été.txt"),
            ("lib", "src/lib.rs"),
        ] {
            let got = find_file(&t, &[("query", query)]).await;
            assert_eq!(got.first().map(String::as_str), Some(first), "query {query:?}: {got:?}");
            assert!(got.iter().all(|p| INDEX.contains(&p.as_str())), "only indexed paths: {got:?}");
        }
        assert_eq!(find_file(&t, &[("query", "main"), ("dirs", "false")]).await[0], "src/main.rs");
        let dirs = find_file(&t, &[("query", "src"), ("type", "directory")]).await;
        assert_eq!(dirs.first().map(String::as_str), Some("src/"), "{dirs:?}");
        assert!(dirs.iter().all(|p| p.ends_with('/')), "directories only, with a trailing slash: {dirs:?}");
        let files = find_file(&t, &[("query", "src"), ("type", "file")]).await;
        assert!(!files.is_empty() && files.iter().all(|p| !p.ends_with('/')), "files only: {files:?}");
        assert_eq!(find_file(&t, &[("query", "e"), ("limit", "2")]).await.len(), 2);
        // Ignored files, symlinks and .git are not in the index.
        for query in ["index.js", "debug.log", "passwd", "escape", "readme_link", "COMMIT_EDITMSG", "zzzqqq"] {
            assert_eq!(find_file(&t, &[("query", query)]).await, Vec::<String>::new(), "query {query:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn api_fs_find_reports_location_and_typed_entries() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        let location = json!({"directory": t.ws.root, "project": {"id": t.project_id(), "directory": t.worktree()}});
        // The TUI sends the limit as a string, and `&&` at the end.
        let (status, body) = t.srv.get("/api/fs/find?query=mai&limit=20&&").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["location"], location);
        assert_eq!(body["data"][0], json!({"path": "src/main.rs", "type": "file"}), "{body}");
        let (status, dirs) = t.srv.get_q("/api/fs/find", &[("query", "b"), ("type", "directory")]).await;
        assert_eq!(status, 200, "{dirs}");
        let data = dirs["data"].as_array().unwrap();
        assert!(data.contains(&json!({"path": "a/b", "type": "directory"})), "no trailing slash here: {dirs}");
        assert!(data.iter().all(|e| e["type"] == "directory" && !e["path"].as_str().unwrap().ends_with('/')), "{dirs}");
        let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        keys.sort_unstable();
        assert_eq!(keys, ["data", "location"]);
    })
    .await;
}

#[tokio::test]
async fn find_symbol_answers_empty() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        // No language servers run, as in OpenCode without any configured.
        assert_eq!(t.srv.get("/find/symbol?query=main").await, (200, json!([])));
        assert_eq!(t.srv.get("/find/symbol?query=").await, (200, json!([])));
    })
    .await;
}

/// How often to ask before giving up on a change showing (a bound on a hang,
/// not a timing assertion: environments without a watcher re-walk after a TTL).
const FRESH_TRIES: usize = 200;
const FRESH_PAUSE: Duration = Duration::from_millis(100);

#[tokio::test]
async fn the_file_index_sees_files_created_behind_the_servers_back() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        let query = [("query", "brand_new_file"), ("dirs", "false")];
        assert_eq!(find_file(&t, &query).await, Vec::<String>::new(), "not there yet (and the index is built)");
        t.ws.write_behind("fresh/brand_new_file.txt", b"fresh\n").await.unwrap();
        let mut last = Value::Null;
        for _ in 0..FRESH_TRIES {
            let got = find_file(&t, &query).await;
            if got == ["fresh/brand_new_file.txt"] {
                return;
            }
            last = json!(got);
            tokio::time::sleep(FRESH_PAUSE).await;
        }
        panic!("the index never showed fresh/brand_new_file.txt; last answer {last}");
    })
    .await;
}
