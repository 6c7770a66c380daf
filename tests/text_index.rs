//! The trigram index stays exact: after each change, made through the
//! environment or by another process (or client of the bucket), a search
//! answers as the scan does, on a local folder and on object storage. Waits
//! are on the index's reported state, never on time.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use burrow::env::local::LocalEnv;
use burrow::env::object::{ObjectArgs, ObjectEnv};
use burrow::env::{Env, GrepRequest, GrepResult, TextIndexStatus, WorkspacePath};
use burrow::search::stream::{self, StreamLimits};
use burrow::search::trigram::live::{configure, Settings};

#[path = "support/s3.rs"]
mod s3;

/// Index settings are per process (the first call wins): every test here
/// shares one folder, which outlives them all.
fn configure_once() {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
    configure(Some(Settings { dir: dir.path().join("text-index"), build: Default::default() }));
}

fn req(pattern: &str) -> GrepRequest {
    GrepRequest { dir: String::new(), pattern: pattern.into(), include: None, limit: 1000, case_insensitive: false }
}

/// A bound on a hang, not a performance assertion.
const GUARD: Duration = Duration::from_secs(60);

async fn until(env: &dyn Env, what: &str, ok: impl Fn(&TextIndexStatus) -> bool) -> TextIndexStatus {
    tokio::time::timeout(GUARD, async {
        loop {
            if let Some(status) = env.text_index().await.filter(|s| ok(s)) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the index never got {what}"))
}

/// The environment's answer (through the index), checked against the scan.
async fn search(env: &LocalEnv, root: &std::path::Path, pattern: &str) -> Vec<String> {
    let got: GrepResult = env.grep(req(pattern)).await.unwrap();
    let scanned = burrow::search::grep::grep(root, &req(pattern)).unwrap();
    assert_eq!(got, scanned, "{pattern}");
    got.matches.into_iter().map(|m| format!("{}:{}", m.path, m.line_number)).collect()
}

#[tokio::test]
async fn every_change_is_searchable_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join("src/a.rs"), "fn needle() {}\n").unwrap();
    std::fs::write(root.join("src/b.rs"), "fn other() {}\n").unwrap();
    configure_once();
    let env = LocalEnv::new(&root).unwrap();
    let root = std::fs::canonicalize(&root).unwrap();
    let mut rx = env.watch().await.unwrap().expect("the local env watches");
    // Someone must drain the events, as the server does.
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let ready = until(&env, "ready", |s| s.state == "ready" && !s.rebuilding).await;
    assert_eq!(ready.entries, 2);
    assert!(ready.bytes > 0);
    assert_eq!(search(&env, &root, "needle").await, ["src/a.rs:1"]);

    // Through the environment: edit, create, rename, delete.
    env.write(&p("src/b.rs"), "fn other() { needle() }\n".into()).await.unwrap();
    assert_eq!(search(&env, &root, "needle").await, ["src/a.rs:1", "src/b.rs:1"]);
    env.write(&p("new/c.rs"), "// needle in c\n".into()).await.unwrap();
    assert_eq!(search(&env, &root, "needle").await, ["new/c.rs:1", "src/a.rs:1", "src/b.rs:1"]);
    env.rename(&p("src"), &p("moved")).await.unwrap();
    assert_eq!(search(&env, &root, "needle").await, ["moved/a.rs:1", "moved/b.rs:1", "new/c.rs:1"]);
    env.remove(&p("moved/a.rs")).await.unwrap();
    assert_eq!(search(&env, &root, "needle").await, ["moved/b.rs:1", "new/c.rs:1"]);
    env.write(&p("new/c.rs"), "// gone\n".into()).await.unwrap();
    assert_eq!(search(&env, &root, "needle").await, ["moved/b.rs:1"]);

    // From another process: the watcher's report makes it a changed path.
    for (script, want) in [
        ("echo 'needle outside' > ext.txt", vec!["ext.txt:1", "moved/b.rs:1"]),
        ("mkdir -p deep/er && echo needle > deep/er/x.txt", vec!["deep/er/x.txt:1", "ext.txt:1", "moved/b.rs:1"]),
        ("mv ext.txt renamed.txt", vec!["deep/er/x.txt:1", "moved/b.rs:1", "renamed.txt:1"]),
        ("rm -r deep && echo hay > moved/b.rs", vec!["renamed.txt:1"]),
    ] {
        let before = env.text_index().await.unwrap().changed;
        let status = std::process::Command::new("sh").arg("-c").arg(script).current_dir(&root).status().unwrap();
        assert!(status.success(), "{script}");
        until(&env, "the change", |s| s.changed > before).await;
        // The watcher may report the rest of the change (a rename's second
        // half) a little later: wait for the answer, then check it against the scan.
        tokio::time::timeout(GUARD, async {
            loop {
                let got = env.grep(req("needle")).await.unwrap();
                if got.matches.iter().map(|m| format!("{}:{}", m.path, m.line_number)).collect::<Vec<_>>() == want {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{script}: never {want:?}"));
        assert_eq!(search(&env, &root, "needle").await, want);
    }

    // A refresh rebuilds; the new index knows the tree as it is now.
    env.refresh().await.unwrap();
    let rebuilt = until(&env, "rebuilt", |s| s.state == "ready" && !s.rebuilding && s.changed == 0).await;
    assert_eq!(rebuilt.entries, 3);
    assert_eq!(search(&env, &root, "needle").await, ["renamed.txt:1"]);
}

/// A bucket sample: sources with a rare name in two of them, a case variant,
/// a binary file and an ignored log holding it too.
fn bucket() -> BTreeMap<&'static str, Vec<u8>> {
    let mut files: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    for i in 0..30 {
        files.insert(Box::leak(format!("src/file{i:02}.rs").into_boxed_str()), format!("fn f{i}() {{\n    let value = {i};\n}}\n").into_bytes());
    }
    files.insert(".ignore", b"*.log\n".to_vec());
    files.insert("src/power.c", b"#define PM_RESUME 1\nint resume(void);\n".to_vec());
    files.insert("docs/notes.md", b"PM_RESUME is sent on wake\nsee Pm_Resume too\n".to_vec());
    files.insert("blob.bin", b"PM_RESUME\0\x01\x02".to_vec());
    files.insert("debug.log", b"PM_RESUME in a log\n".to_vec());
    files
}

fn p(s: &str) -> WorkspacePath {
    WorkspacePath::from_relative(s).unwrap()
}

/// Reads through the search path so far (content cache hits and downloads).
fn reads(env: &ObjectEnv) -> u64 {
    let s = env.cache_stats();
    s.hits + s.fetches
}

/// The environment's answer (through its index once ready), checked against
/// a scan of the same bucket that reads every file.
async fn object_search(env: &ObjectEnv, dir: &str, pattern: &str, case_insensitive: bool) -> Vec<String> {
    let r = GrepRequest { dir: dir.into(), pattern: pattern.into(), include: None, limit: 1000, case_insensitive };
    let got = env.grep(r.clone()).await.unwrap();
    let scanned = stream::grep(env, &r, StreamLimits::default()).await.unwrap();
    assert_eq!(got, scanned, "{pattern:?} in {dir:?}");
    got.matches.into_iter().map(|m| format!("{}:{}", m.path, m.line_number)).collect()
}

#[tokio::test]
async fn object_storage_searches_through_its_index_and_follows_the_listing() {
    let Some(s3) = s3::S3::require() else { return };
    configure_once();
    let prefix = s3.unique_prefix("text-index");
    s3.upload(&prefix, &bucket()).await;
    let cache = tempfile::tempdir().unwrap();
    // Listed again for every search, so another client's writes show at once.
    let args = ObjectArgs { index_max_age: 0, object_cache_dir: Some(cache.path().to_path_buf()), ..ObjectArgs::default() };
    let vars = s3.env();
    let url = format!("s3://{}/{prefix}", s3.bucket);
    let env = ObjectEnv::open_with(&url, &args, &|n| vars.get(n).cloned()).await.unwrap();
    assert_eq!(env.text_index().await.unwrap().state, "waiting", "no index before the first text search");

    // The first search scans (and fills the content cache); the build follows it.
    assert_eq!(object_search(&env, "", "PM_RESUME", false).await, ["docs/notes.md:1", "src/power.c:1"]);
    let ready = until(&env, "ready", |s| s.state == "ready" && !s.rebuilding).await;
    assert_eq!((ready.entries, ready.changed), (34, 0), "30 sources, power.c, notes.md, blob.bin and .ignore; not the log");
    assert!(ready.bytes > 0);

    // Indexed answers equal the scan's; a rare literal reads only the files
    // holding its trigrams and the binary file (never indexed), besides the
    // walk's read of .ignore.
    let before = reads(&env);
    assert_eq!(object_search(&env, "", "PM_RESUME", false).await, ["docs/notes.md:1", "src/power.c:1"]);
    assert_eq!(reads(&env) - before, 4, "the index did not narrow the search");
    for (dir, pattern, ci) in [
        ("", "pm_resume", true),
        ("", "let value = 1[0-9]", false),
        ("src", "fn f2", false),
        ("", "PM_RESUME|resume\\(", false),
        ("", "no such text anywhere", false),
        ("", ".", false),
        ("docs", "wake", false),
    ] {
        let indexed = object_search(&env, dir, pattern, ci).await;
        assert!(pattern.contains("no such") || !indexed.is_empty(), "{pattern}");
    }

    // Another client changes, adds and deletes objects: the next search
    // follows the listing, reading the changed ones directly.
    let outside = BTreeMap::from([("src/file03.rs", b"fn f3() { PM_RESUME }\n".to_vec()), ("new/added.txt", b"PM_RESUME added\n".to_vec())]);
    s3.upload(&prefix, &outside).await;
    s3.operator(&prefix).delete("src/power.c").await.unwrap();
    assert_eq!(object_search(&env, "", "PM_RESUME", false).await, ["docs/notes.md:1", "new/added.txt:1", "src/file03.rs:1"]);
    assert_eq!(env.text_index().await.unwrap().changed, 2, "file03.rs changed, power.c vanished");

    // Writes through Burrow show at once too.
    env.write(&p("src/file04.rs"), "PM_RESUME written\n".into()).await.unwrap();
    env.rename(&p("docs/notes.md"), &p("docs/moved.md")).await.unwrap();
    env.remove(&p("new/added.txt")).await.unwrap();
    assert_eq!(object_search(&env, "", "PM_RESUME", false).await, ["docs/moved.md:1", "src/file03.rs:1", "src/file04.rs:1"]);

    // A refresh rebuilds from the content cache; the new index knows the bucket as it is.
    env.refresh().await.unwrap();
    let rebuilt = until(&env, "rebuilt", |s| s.state == "ready" && !s.rebuilding && s.changed == 0).await;
    assert_eq!(rebuilt.entries, 33);
    let before = reads(&env);
    assert_eq!(object_search(&env, "", "PM_RESUME", false).await, ["docs/moved.md:1", "src/file03.rs:1", "src/file04.rs:1"]);
    assert_eq!(reads(&env) - before, 5);

    // A restarted server loads the index and reads the candidates from the
    // disk cache: nothing is downloaded. (The scans above read through
    // `Env::read`, which files its bytes under the HEAD's validator; one more
    // indexed search files the candidates under the listing's again.)
    let rare = GrepRequest { dir: String::new(), pattern: "PM_RESUME".into(), include: None, limit: 1000, case_insensitive: false };
    let found = env.grep(rare.clone()).await.unwrap();
    drop(env);
    let again = ObjectEnv::open_with(&url, &args, &|n| vars.get(n).cloned()).await.unwrap();
    until(&again, "loaded", |s| s.state == "ready").await;
    assert_eq!(again.grep(rare).await.unwrap(), found);
    assert_eq!(again.cache_stats().fetches, 0, "the restarted server downloaded objects");
    assert_eq!(reads(&again), 5);
}
