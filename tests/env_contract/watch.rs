//! Changes made behind Burrow's back (an editor, a build) reach the watch
//! channel, and Burrow's own reads are not changes: every walk and search
//! opens the folders and files it reads, and if those opens counted, the file
//! index would be rebuilt after every query.

use burrow::env::{WatchEvent, WorkspacePath};

use crate::fixture::{p, Kind, Workspace, PATIENCE};

pub async fn changes_behind_burrows_back_reach_the_watch_channel(ws: &Workspace) {
    let caps = ws.env.capabilities();
    let events = ws.env.watch().await.unwrap();
    if ws.kind == Kind::S3 {
        // Object storage has no change feed: the index expires instead.
        assert!(!caps.watch && events.is_none(), "{caps:?}");
        return;
    }
    assert!(caps.watch, "{caps:?}");
    let mut events = events.expect("the environment reports changes");
    // What a search does: list folders, open and read files.
    let walked = ws.env.walk(&WorkspacePath::root()).await.unwrap();
    assert!(walked.iter().any(|e| e.path == "src/main.rs"));
    ws.env.read(&p("src/main.rs"), 1 << 20).await.unwrap();
    ws.env.list(&p("src")).await.unwrap();
    // Then one real change.
    ws.write_behind("notes/fresh.md", b"new\n").await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut before = Vec::new();
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no event for the write; before it: {before:?}"))
            .expect("the channel stays open");
        match &event {
            WatchEvent::Changed(paths) if paths.contains(&p("notes/fresh.md")) => break,
            // Without a watcher next to the data, a periodic rescan is the signal.
            WatchEvent::Rescan if !ws.kind.names_changes() => break,
            WatchEvent::Changed(paths) => {
                let read = paths.iter().find(|p| p.as_str().starts_with("src"));
                assert!(read.is_none(), "a read was reported as a change: {paths:?}");
            }
            WatchEvent::Rescan | WatchEvent::Overflow => {}
        }
        before.push(event);
    }
    if matches!(ws.kind, Kind::Local | Kind::Helper) {
        // inotify keeps its events in order: had the reads been reported, they would come first.
        assert!(before.is_empty(), "the first event must be the write: {before:?}");
    }
}
