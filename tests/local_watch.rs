//! The local watcher reports changes, not reads. Every walk and search opens
//! the folders and files it reads; if those opens counted as changes, the file
//! index would be rebuilt after every query (a full walk per `/find/file`).

use std::time::Duration;

use burrow::env::local::LocalEnv;
use burrow::env::{Env, WatchEvent, WorkspacePath};

#[tokio::test]
async fn reading_the_tree_is_not_a_change() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/read.txt"), "hello\n").unwrap();
    let env = LocalEnv::new(dir.path()).unwrap();
    let mut rx = env.watch().await.unwrap().expect("the local env watches");

    // What a search does: list folders, open and read files.
    let entries = env.walk(&WorkspacePath::root()).await.unwrap();
    assert!(entries.iter().any(|e| e.path == "sub/read.txt"));
    std::fs::read(dir.path().join("sub/read.txt")).unwrap();
    // Then one real change. inotify keeps its events in order, so had the
    // reads been reported, they would come first.
    std::fs::write(dir.path().join("sub/written.txt"), "new\n").unwrap();

    let first = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("no event for a write").expect("watcher closed");
    match first {
        WatchEvent::Changed(paths) => {
            let paths: Vec<&str> = paths.iter().map(WorkspacePath::as_str).collect();
            assert_eq!(paths, vec!["sub/written.txt"], "the first event must be the write, not a read");
        }
        WatchEvent::Rescan | WatchEvent::Overflow => panic!("a single write should not need a rescan"),
    }
}
