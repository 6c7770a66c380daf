//! The local environment's trigram index stays exact: after each change,
//! made through the environment or by another process, a search answers as
//! the scan does. Waits are on the index's reported state, never on time.

use std::time::Duration;

use burrow::env::local::LocalEnv;
use burrow::env::{Env, GrepRequest, GrepResult, TextIndexStatus, WorkspacePath};
use burrow::search::trigram::live::{configure, Settings};

fn req(pattern: &str) -> GrepRequest {
    GrepRequest { dir: String::new(), pattern: pattern.into(), include: None, limit: 1000, case_insensitive: false }
}

fn p(s: &str) -> WorkspacePath {
    WorkspacePath::from_relative(s).unwrap()
}

/// A bound on a hang, not a performance assertion.
const GUARD: Duration = Duration::from_secs(60);

async fn until(env: &LocalEnv, what: &str, ok: impl Fn(&TextIndexStatus) -> bool) -> TextIndexStatus {
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
    configure(Some(Settings { dir: dir.path().join("cache"), build: Default::default() }));
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
