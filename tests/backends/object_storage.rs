//! The object-storage environment against a real S3-compatible server on
//! loopback (started by tests/support/services.sh): searching an unchanged
//! bucket twice downloads nothing the second time, mistakes in the settings
//! stop the server with a clear message, a listing over S3 equals one over a
//! folder, and writes through the environment show in the index at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use burrow::env::object::{ObjectArgs, ObjectEnv};
use burrow::env::{EntryKind, Env, EnvError, ExecRequest, GrepRequest, WorkspacePath};
use serde_json::Value;

use crate::s3_support::{Burrow, CountingProxy};
use crate::support::s3::S3;

/// A small tree with ignore rules, nesting, a binary file and a few matches.
fn fixture() -> BTreeMap<&'static str, Vec<u8>> {
    let mut files: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    files.insert(".ignore", b"*.log\nbuild/\n".to_vec());
    files.insert("README.md", b"# sample\nneedle in the readme\n".to_vec());
    files.insert("src/main.rs", b"fn main() {\n    println!(\"needle\");\n}\n".to_vec());
    files.insert("src/lib/util.rs", b"pub fn util() {}\n".to_vec());
    files.insert("src/lib/deep/more.rs", b"// needle deep\n".to_vec());
    files.insert("debug.log", b"needle in a log\n".to_vec());
    files.insert("build/out.txt", b"needle built\n".to_vec());
    files.insert("assets/logo.png", b"\x89PNG\r\n\x1a\n\0\0\0".to_vec());
    files.insert(".hidden/conf.toml", b"needle = true\n".to_vec());
    for i in 0..20 {
        files.insert(Box::leak(format!("many/file{i:02}.txt").into_boxed_str()), format!("line {i}\nnothing here\n").into_bytes());
    }
    files
}

#[tokio::test]
async fn a_second_search_of_an_unchanged_bucket_downloads_nothing() {
    let Some(s3) = S3::require() else { return };
    let prefix = s3.unique_prefix("cache");
    s3.upload(&prefix, &fixture()).await;
    let proxy = CountingProxy::start(&s3.endpoint).await;
    // A listing age of zero lists again for every search: only the validators
    // (ETag or modification time) can keep the content from being fetched again.
    let burrow = Burrow::start(&format!("s3://{}/{prefix}", s3.bucket), &s3.env_with_endpoint(&proxy.url), &["--index-max-age", "0"]).await;

    let pattern = "no such text anywhere";
    let search = format!("/find?pattern={}", urlencode(pattern));
    // Three first searches at once: each object is downloaded once all the same.
    let (a, b, c) = tokio::join!(burrow.get(&search), burrow.get(&search), burrow.get(&search));
    assert!([a, b, c].iter().all(|r| r == &Value::Array(vec![])));
    let first = proxy.object_gets(&prefix);
    assert_eq!(first, proxy.distinct_object_gets(&prefix), "an object was downloaded twice");
    // Every file that ignore rules keep was fetched: 20 in many/, 5 more (README, 3 sources, the PNG, the TOML, .ignore).
    assert!(first >= 25, "the first search fetched {first} objects");
    assert!(proxy.listings(&prefix) >= 1);

    // The first text search filled the content cache; the text index is built
    // from it, downloading nothing more, and capabilities say when it is ready.
    let index = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            let index = burrow.get("/burrow/capabilities").await["text_index"].clone();
            if index["state"] == "ready" && index["rebuilding"] == false {
                return index;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the text index never got ready");
    assert_eq!(index["entries"], 27, "{index}");
    assert_eq!(proxy.object_gets(&prefix), first, "the index build downloaded objects the search had cached");

    let listings_before = proxy.listings(&prefix);
    assert_eq!(burrow.get(&format!("/find?pattern={}", urlencode(pattern))).await, Value::Array(vec![]));
    assert_eq!(proxy.object_gets(&prefix), first, "the second search downloaded objects again");
    assert!(proxy.listings(&prefix) > listings_before, "the listing was not refreshed, so the test proved nothing");

    // A search with matches, served from the cache, gives ripgrep's answer.
    let found = burrow.get("/find?pattern=needle&limit=50").await;
    let paths: Vec<&str> = found.as_array().unwrap().iter().map(|m| m["path"]["text"].as_str().unwrap()).collect();
    assert_eq!(paths, vec![".hidden/conf.toml", "README.md", "src/lib/deep/more.rs", "src/main.rs"]);
    assert_eq!(proxy.object_gets(&prefix), first);

    // A changed object (same size, so only its ETag or time tells) is fetched again, and only it.
    s3.upload(&prefix, &BTreeMap::from([("src/lib/util.rs", b"pub fn needl() {}\n".to_vec())])).await;
    let found = burrow.get("/find?pattern=needl%5Cb").await;
    assert_eq!(found[0]["path"]["text"], "src/lib/util.rs", "{found}");
    assert_eq!(proxy.object_gets(&prefix), first + 1);
    assert_eq!(burrow.get("/burrow/capabilities").await["text_index"]["changed"], 1);

    // Turned off, there is no index to report.
    let off = Burrow::start(&format!("s3://{}/{prefix}", s3.bucket), &s3.env(), &["--no-text-index"]).await;
    assert_eq!(off.get("/burrow/capabilities").await.get("text_index"), None);
}

#[tokio::test]
async fn a_disk_cache_serves_a_restarted_server() {
    let Some(s3) = S3::require() else { return };
    let prefix = s3.unique_prefix("disk");
    s3.upload(&prefix, &fixture()).await;
    let proxy = CountingProxy::start(&s3.endpoint).await;
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap();
    let url = format!("s3://{}/{prefix}", s3.bucket);
    let search = "/find?pattern=needle&limit=50";
    let first = Burrow::start(&url, &s3.env_with_endpoint(&proxy.url), &["--object-cache-dir", cache_dir]).await;
    let found = first.get(search).await;
    let fetched = proxy.object_gets(&prefix);
    assert!(fetched >= 25, "{fetched}");
    drop(first);
    let second = Burrow::start(&url, &s3.env_with_endpoint(&proxy.url), &["--object-cache-dir", cache_dir]).await;
    assert_eq!(second.get(search).await, found);
    assert_eq!(proxy.object_gets(&prefix), fetched, "the restarted server downloaded objects again");
}

#[tokio::test]
async fn the_file_index_is_cached_until_it_is_old_or_refreshed() {
    let Some(s3) = S3::require() else { return };
    let prefix = s3.unique_prefix("index");
    s3.upload(&prefix, &fixture()).await;
    let proxy = CountingProxy::start(&s3.endpoint).await;
    let burrow = Burrow::start(&format!("s3://{}/{prefix}", s3.bucket), &s3.env_with_endpoint(&proxy.url), &["--index-max-age", "3600"]).await;
    let found = burrow.get("/find/file?query=util").await;
    assert_eq!(found, serde_json::json!(["src/lib/util.rs"]));
    let listings = proxy.listings(&prefix);
    s3.upload(&prefix, &BTreeMap::from([("src/lib/utility.rs", b"x\n".to_vec())])).await;
    // Past the server's own two-second reuse, the listing index still answers.
    assert_eq!(burrow.get("/find/file?query=utility").await, serde_json::json!([]));
    assert_eq!(proxy.listings(&prefix), listings, "a young listing index was listed again");
    assert_eq!(burrow.post("/burrow/refresh").await, Value::Bool(true));
    assert_eq!(burrow.get("/find/file?query=utility").await, serde_json::json!(["src/lib/utility.rs"]));
    // The walk reads ignore files and nothing else.
    assert_eq!(proxy.object_gets(&prefix), proxy.object_gets_of(&prefix, ".ignore"), "finding files downloaded objects");
}

#[tokio::test]
async fn bad_credentials_stop_the_server_with_a_clear_error() {
    let Some(s3) = S3::require() else { return };
    let mut env = s3.env();
    env.insert("AWS_SECRET_ACCESS_KEY".into(), "not-the-secret".into());
    let err = Burrow::fail_to_start(&format!("s3://{}/x", s3.bucket), &env).await;
    assert!(err.contains("access denied") && err.contains("AWS_ACCESS_KEY_ID"), "{err}");
}

#[tokio::test]
async fn a_missing_bucket_stops_the_server_with_a_clear_error() {
    let Some(s3) = S3::require() else { return };
    let err = Burrow::fail_to_start("s3://burrow-no-such-bucket/x", &s3.env()).await;
    assert!(err.contains("bucket \"burrow-no-such-bucket\" does not exist"), "{err}");
}

#[tokio::test]
async fn a_listing_over_s3_equals_one_over_a_folder() {
    let Some(s3) = S3::require() else { return };
    let prefix = s3.unique_prefix("listing");
    let files = fixture();
    s3.upload(&prefix, &files).await;
    let dir = tempfile::tempdir().unwrap();
    for (path, data) in &files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    let over_s3 = Burrow::start(&format!("s3://{}/{prefix}", s3.bucket), &s3.env(), &[]).await;
    let fs_url = format!("fs://{}", dir.path().display());
    let over_fs = Burrow::start(&fs_url, &s3.env(), &[]).await;
    let s3_root = format!("s3://{}/{prefix}", s3.bucket);
    for query in [
        "/file?path=",
        "/file?path=src",
        "/file?path=src/lib",
        "/file?path=.hidden",
        "/find/file?query=&limit=200",
        "/find/file?query=rs&dirs=false",
        "/find?pattern=needle",
        "/file/content?path=assets/logo.png",
        "/file/content?path=src/main.rs",
    ] {
        let a = over_s3.get(query).await.to_string().replace(&s3_root, "ROOT");
        let b = over_fs.get(query).await.to_string().replace(&fs_url, "ROOT");
        assert_eq!(a, b, "{query}");
    }
    let listed = over_s3.get("/file?path=").await;
    let ignored: Vec<&str> = listed.as_array().unwrap().iter().filter(|n| n["ignored"] == true).map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(ignored, vec!["build", "debug.log"]);
    let missing = over_s3.get_status("/file?path=nope").await;
    assert_eq!((missing.0, missing.1["name"].as_str()), (404, Some("NotFoundError")));
    let not_dir = over_s3.get_status("/file?path=README.md").await;
    assert_eq!(not_dir.0, 400, "{}", not_dir.1);
}

#[tokio::test]
async fn writes_deletes_and_renames_show_in_the_index_at_once() {
    let Some(s3) = S3::require() else { return };
    let prefix = s3.unique_prefix("writes");
    s3.upload(&prefix, &fixture()).await;
    let args = ObjectArgs { index_max_age: 3600, ..ObjectArgs::default() };
    let vars = s3.env();
    let env = ObjectEnv::open_with(&format!("s3://{}/{prefix}", s3.bucket), &args, &|n| vars.get(n).cloned()).await.unwrap();
    let env: Arc<dyn Env> = Arc::new(env);
    let p = |s: &str| WorkspacePath::from_relative(s).unwrap();
    let files = |env: Arc<dyn Env>| async move {
        env.walk(&WorkspacePath::root()).await.unwrap().into_iter().filter(|e| e.kind == EntryKind::File).map(|e| e.path).collect::<Vec<_>>()
    };
    let grep = |env: Arc<dyn Env>, pattern: &'static str| async move {
        env.grep(GrepRequest::new(&WorkspacePath::root(), pattern, 50)).await.unwrap().matches.into_iter().map(|m| m.path).collect::<Vec<_>>()
    };
    assert!(files(env.clone()).await.contains(&"src/main.rs".to_string()));

    env.write(&p("notes/new.md"), "fresh words\n".into()).await.unwrap();
    assert!(files(env.clone()).await.contains(&"notes/new.md".to_string()));
    assert_eq!(grep(env.clone(), "fresh words").await, vec!["notes/new.md"]);
    assert_eq!(&env.read(&p("notes/new.md"), 100).await.unwrap()[..], b"fresh words\n");

    env.write(&p("notes/new.md"), "changed words\n".into()).await.unwrap();
    assert_eq!(grep(env.clone(), "fresh words").await, Vec::<String>::new(), "a stale cached copy was searched");
    assert_eq!(grep(env.clone(), "changed words").await, vec!["notes/new.md"]);

    env.rename(&p("notes/new.md"), &p("notes/moved.md")).await.unwrap();
    let now = files(env.clone()).await;
    assert!(now.contains(&"notes/moved.md".to_string()) && !now.contains(&"notes/new.md".to_string()), "{now:?}");
    assert_eq!(grep(env.clone(), "changed words").await, vec!["notes/moved.md"]);

    env.rename(&p("src/lib"), &p("lib2")).await.unwrap();
    let now = files(env.clone()).await;
    assert!(now.contains(&"lib2/deep/more.rs".to_string()) && !now.iter().any(|f| f.starts_with("src/lib/")), "{now:?}");
    assert!(matches!(env.stat(&p("src/lib/util.rs")).await, Err(EnvError::NotFound(_))));
    assert_eq!(env.stat(&p("lib2/deep")).await.unwrap().kind, EntryKind::Directory);

    env.remove(&p("many")).await.unwrap();
    env.remove(&p("README.md")).await.unwrap();
    let now = files(env.clone()).await;
    assert!(!now.iter().any(|f| f.starts_with("many/") || f == "README.md"), "{now:?}");
    // S3 forgets a prefix with its last key; a server that stores folders
    // (s3s-fs) may keep an empty one. Either way nothing is listed.
    match env.list(&p("many")).await {
        Ok(entries) => assert!(entries.is_empty(), "{entries:?}"),
        Err(e) => assert!(matches!(e, EnvError::NotFound(_)), "{e}"),
    }
    assert!(matches!(env.remove(&p("README.md")).await, Err(EnvError::NotFound(_))));

    env.mkdir_all(&p("made/here")).await.unwrap();
    let dirs: Vec<_> = env.walk(&WorkspacePath::root()).await.unwrap().into_iter().filter(|e| e.kind == EntryKind::Directory).map(|e| e.path).collect();
    assert!(dirs.contains(&"made/here".to_string()), "{dirs:?}");
    assert!(matches!(env.write(&p("src/main.rs/child"), "x".into()).await, Err(EnvError::NotADirectory(_))));
    assert!(matches!(env.write(&p("src"), "x".into()).await, Err(EnvError::IsADirectory(_))));
}

#[tokio::test]
async fn commands_and_terminals_are_refused_with_501() {
    let Some(s3) = S3::require() else { return };
    let prefix = s3.unique_prefix("nocompute");
    s3.upload(&prefix, &BTreeMap::from([("a.txt", b"a\n".to_vec())])).await;
    let vars = s3.env();
    let env = ObjectEnv::open_with(&format!("s3://{}/{prefix}", s3.bucket), &ObjectArgs::default(), &|n| vars.get(n).cloned()).await.unwrap();
    let err = env.exec(ExecRequest::shell("ls", WorkspacePath::root())).await.err().expect("exec must fail");
    assert!(matches!(err, EnvError::Unsupported(_)), "{err}");
    let api = burrow::error::ApiError::from(err);
    assert_eq!((api.status.as_u16(), api.name), (501, "UnsupportedError"));
    assert!(api.message.contains("object storage"), "{}", api.message);
    assert!(env.watch().await.unwrap().is_none());

    let burrow = Burrow::start(&format!("s3://{}/{prefix}", s3.bucket), &s3.env(), &[]).await;
    let caps = burrow.get("/burrow/capabilities").await;
    assert_eq!(caps["env"], "object");
    assert_eq!(caps["capabilities"]["exec"], false);
    assert_eq!(caps["capabilities"]["pty"], false);
    assert_eq!(caps["capabilities"]["search"], "cached-index");
    // No git without exec: the workspace is a plain folder to clients.
    assert_eq!(burrow.get("/vcs").await, serde_json::json!({}));

    // The shell of a session and a terminal answer 501 with a named error, not a fake success.
    let unsupported = |what: &str, (status, body): (u16, Value)| {
        assert_eq!(status, 501, "{what}: {body}");
        assert_eq!(body["name"], "UnsupportedError", "{what}: {body}");
        assert!(body["data"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
    };
    unsupported("POST /pty", burrow.post_json("/pty", &serde_json::json!({})).await);
    let (status, session) = burrow.post_json("/session", &serde_json::json!({})).await;
    assert_eq!(status, 200, "{session}");
    let shell = format!("/session/{}/shell", session["id"].as_str().unwrap());
    unsupported("POST /session/:id/shell", burrow.post_json(&shell, &serde_json::json!({"agent": "build", "command": "ls"})).await);
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The other services go through the same code: a bucket in memory behaves
/// like one in S3 (no test service needed).
#[tokio::test]
async fn a_memory_bucket_works_through_the_same_environment() {
    let env = ObjectEnv::open_with("memory://", &ObjectArgs::default(), &|_| None).await.unwrap();
    let p = |s: &str| WorkspacePath::from_relative(s).unwrap();
    for (path, data) in [(".ignore", "out/\n"), ("src/a.rs", "fn a() { needle }\n"), ("src/b/c.rs", "// needle\n"), ("out/x.rs", "needle\n")] {
        env.write(&p(path), data.as_bytes().to_vec().into()).await.unwrap();
    }
    let files: Vec<String> = env.walk(&WorkspacePath::root()).await.unwrap().into_iter().map(|e| e.path).collect();
    assert_eq!(files, vec![".ignore", "src", "src/a.rs", "src/b", "src/b/c.rs"], "out/ is ignored");
    let found: Vec<String> = env.grep(GrepRequest::new(&WorkspacePath::root(), "needle", 10)).await.unwrap().matches.into_iter().map(|m| m.path).collect();
    assert_eq!(found, vec!["src/a.rs", "src/b/c.rs"]);
    let listed: Vec<(String, EntryKind)> = env.list(&p("src")).await.unwrap().into_iter().map(|e| (e.name, e.kind)).collect();
    assert_eq!(listed, vec![("a.rs".to_string(), EntryKind::File), ("b".to_string(), EntryKind::Directory)]);
    assert_eq!(env.stat(&p("src/b")).await.unwrap().kind, EntryKind::Directory);
    assert!(matches!(env.read(&p("src"), 100).await, Err(EnvError::IsADirectory(_))));
    assert!(matches!(env.list(&p("src/a.rs")).await, Err(EnvError::NotADirectory(_))));
    env.rename(&p("src/b"), &p("lib")).await.unwrap();
    assert_eq!(&env.read(&p("lib/c.rs"), 100).await.unwrap()[..], b"// needle\n");
    assert!(matches!(env.stat(&p("src/b/c.rs")).await, Err(EnvError::NotFound(_))));
    assert_eq!(env.root(), "memory://");
    assert_eq!(WorkspacePath::parse(env.root(), "memory://lib/c.rs").unwrap().as_str(), "lib/c.rs");
}
