//! `helper serve` and its client [`RemoteEnv`], end to end over an in-memory
//! pipe, against a temporary folder: what only the helper session does (its
//! greeting, a lost connection, what may be replayed, swapped links). Files,
//! search and processes through it are the Env contract's (tests/env_contract,
//! environment `helper`).

use std::time::Duration;

use super::remote::RemoteEnv;
use super::serve::serve;
use crate::env::*;

/// The build id the in-process helper greets with.
const BUILD: &str = "0123abcd";

fn p(s: &str) -> WorkspacePath {
    WorkspacePath::from_relative(s).unwrap()
}

/// A helper serving `dir` in this process, and its client. The helper's
/// answers pass through a relay task: aborting it cuts the connection.
async fn session(dir: &std::path::Path) -> (RemoteEnv, tokio::task::JoinHandle<()>) {
    let (client_out, helper_in) = tokio::io::duplex(1 << 16);
    let (helper_out, mut relay_in) = tokio::io::duplex(1 << 16);
    let (mut relay_out, client_in) = tokio::io::duplex(1 << 16);
    let root = dir.to_string_lossy().into_owned();
    tokio::spawn(async move { serve(&root, BUILD, helper_in, helper_out).await });
    let relay = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut relay_in, &mut relay_out).await;
    });
    let remote = RemoteEnv::connect(client_in, client_out, &super::protocol::version_line(BUILD)).await.expect("greeting");
    (remote, relay)
}

/// A helper of another build (another commit, or another file at the install
/// path) greets with another version line: the session is refused, so the
/// client installs its own build instead of talking to this one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helper_of_another_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (client_out, helper_in) = tokio::io::duplex(1 << 16);
    let (helper_out, client_in) = tokio::io::duplex(1 << 16);
    let root = dir.path().to_string_lossy().into_owned();
    tokio::spawn(async move { serve(&root, "ffff0000", helper_in, helper_out).await });
    match RemoteEnv::connect(client_in, client_out, &super::protocol::version_line(BUILD)).await {
        Err(EnvError::Unavailable(msg)) => assert!(msg.contains("another build") && msg.contains("ffff0000"), "{msg}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a helper of another build was accepted"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_watched_and_a_lost_session_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old.txt"), "x").unwrap();
    let (env, relay) = session(dir.path()).await;
    let mut events = env.watch().await.unwrap().expect("a watcher");
    // Reading (a walk, a search) changes nothing and must not look like a change.
    assert_eq!(std::fs::read(dir.path().join("old.txt")).unwrap(), b"x");
    env.walk(&WorkspacePath::root()).await.unwrap();
    std::fs::write(dir.path().join("new.txt"), "x").unwrap();
    let event = tokio::time::timeout(Duration::from_secs(30), events.recv()).await.unwrap().unwrap();
    assert_eq!(event, WatchEvent::Changed(vec![p("new.txt")]), "the first event is the write");
    relay.abort();
    let _ = relay.await;
    // The helper's end of the pipe is gone: everything fails clearly, nothing hangs.
    let err = env.list(&WorkspacePath::root()).await.unwrap_err();
    assert!(matches!(err, EnvError::Unavailable(_)), "{err:?}");
    assert!(!env.is_alive());
}

/// A call that must happen at most once never falls back to the slower path
/// once it was sent: the helper may have done it. A safe one does, and a call
/// on a session that was already lost (never sent) always does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_session_replays_only_what_is_safe_to_replay() {
    use super::slot::{Replay, SessionSlot};
    use std::sync::Arc;

    for (replay, falls_back) in [(Replay::Safe, true), (Replay::NeverSent, false)] {
        let dir = tempfile::tempdir().unwrap();
        let (env, relay) = session(dir.path()).await;
        let env = Arc::new(env);
        let outcome = SessionSlot::call(Some(env.clone()), replay, |r| async move {
            // The first effect reaches the helper; then the connection is cut
            // before the call has its answer.
            r.mkdir_all(&p("done")).await?;
            relay.abort();
            let _ = relay.await;
            r.list(&WorkspacePath::root()).await
        })
        .await;
        assert!(dir.path().join("done").is_dir(), "the helper did the first part");
        match outcome {
            None => assert!(falls_back, "{replay:?} fell back after the request was sent"),
            Some(Err(EnvError::Unavailable(_))) => assert!(!falls_back, "{replay:?} did not fall back"),
            Some(other) => panic!("{replay:?}: unexpected {other:?}"),
        }
        let never_sent = SessionSlot::call(Some(env), Replay::NeverSent, |r| async move { r.list(&WorkspacePath::root()).await }).await;
        assert!(never_sent.is_none(), "a call on a lost session was never sent, so the slower path takes it");
    }
}

/// The helper serves the local environment, so it opens files the same way: a
/// link swapped between an inside and an outside target while 4,000 reads and
/// listings run never hands out the outside data, and a FIFO is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_symlink_leaks_nothing_through_the_helper() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    const MARKER: &str = "OUTSIDE-MARKER-9a7e";
    let tmp = tempfile::tempdir().unwrap();
    let (ws, outside) = (tmp.path().join("ws"), tmp.path().join("outside"));
    std::fs::create_dir_all(ws.join("real")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(ws.join("inside.txt"), "inside\n").unwrap();
    std::fs::write(outside.join("secret.txt"), MARKER).unwrap();
    std::fs::write(outside.join(MARKER), MARKER).unwrap();
    std::os::unix::fs::symlink("inside.txt", ws.join("link")).unwrap();
    std::os::unix::fs::symlink("real", ws.join("dirlink")).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(ws.join("pipe")).status().unwrap().success());
    let (env, _server) = session(&ws).await;

    let (stop, swaps) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let swap = |link: &'static str, inside: &'static str, outside: std::path::PathBuf| {
        let (ws, stop, swaps) = (ws.clone(), stop.clone(), swaps.clone());
        std::thread::spawn(move || {
            let tmp = ws.join(format!(".{link}.swap"));
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let _ = std::fs::remove_file(&tmp);
                if n.is_multiple_of(2) {
                    std::os::unix::fs::symlink(&outside, &tmp).unwrap();
                } else {
                    std::os::unix::fs::symlink(inside, &tmp).unwrap();
                }
                std::fs::rename(&tmp, ws.join(link)).unwrap();
                n += 1;
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let threads = [swap("link", "inside.txt", outside.join("secret.txt")), swap("dirlink", "real", outside.clone())];
    while swaps.load(Ordering::Relaxed) < 2 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut leaks = Vec::new();
    for i in 0..4000u32 {
        let answer = if i.is_multiple_of(2) {
            env.read(&p("link"), 1 << 20).await.map(|b| String::from_utf8_lossy(&b).into_owned())
        } else {
            env.list(&p("dirlink")).await.map(|l| format!("{l:?}"))
        };
        match answer {
            Ok(text) if text.contains(MARKER) => leaks.push(text),
            Ok(_) | Err(EnvError::Escape(_)) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    assert!(leaks.is_empty(), "{} answers held outside data: {:?}", leaks.len(), leaks.first());
    // Settled inside, the link works.
    std::fs::remove_file(ws.join("link")).unwrap();
    std::os::unix::fs::symlink("inside.txt", ws.join("link")).unwrap();
    assert_eq!(&env.read(&p("link"), 100).await.unwrap()[..], b"inside\n");
    let fifo = tokio::time::timeout(Duration::from_secs(60), env.read(&p("pipe"), 1 << 20)).await.expect("reading a FIFO hung");
    assert!(matches!(&fifo, Err(EnvError::InvalidInput(m)) if m.contains("FIFO")), "{fifo:?}");
}

/// With the helper's watcher running (as Docker and SSH sessions start it),
/// snapshots through the session take the changes from its journal and give
/// the whole walk's tree: new folders, edits, renames and removals. The
/// helper's store syncs with its watcher through markers in `<store>/watch`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_snapshots_through_the_session_give_the_whole_walks_tree() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    std::fs::write(root.join("a.txt"), "a\n").unwrap();
    let (env, _relay) = session(&root).await;
    let _events = env.watch().await.unwrap().expect("the helper's watcher");
    let walked = || {
        let store = tempfile::tempdir().unwrap();
        crate::snapshot::Store::open(store.path(), &root).unwrap().track().unwrap()
    };
    assert_eq!(env.snapshot_track().await.unwrap(), walked());
    let markers = crate::snapshot::local_dir(&root).unwrap().join("watch");
    assert!(markers.is_dir(), "the helper's watcher watches {}", markers.display());
    let steps: [&dyn Fn(); 5] = [
        &|| std::fs::write(root.join("a.txt"), "edited\n").unwrap(),
        &|| {
            std::fs::create_dir_all(root.join("new/deep")).unwrap();
            std::fs::write(root.join("new/deep/b.txt"), "b\n").unwrap();
        },
        &|| std::fs::rename(root.join("new"), root.join("moved")).unwrap(),
        &|| std::fs::write(root.join("moved/deep/c.txt"), "c\n").unwrap(),
        &|| std::fs::remove_dir_all(root.join("moved")).unwrap(),
    ];
    for (i, step) in steps.iter().enumerate() {
        step();
        assert_eq!(env.snapshot_track().await.unwrap(), walked(), "step {i}");
        assert_eq!(std::fs::read_dir(&markers).unwrap().count(), 0, "step {i}: the sync marker is removed");
    }
}

/// Snapshots through the session: the helper keeps the store, the client
/// tracks, compares, reads a blob, restores and prunes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_through_the_session() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "before\n").unwrap();
    let (env, _server) = session(dir.path()).await;
    let first = env.snapshot_track().await.unwrap();
    std::fs::write(dir.path().join("a.txt"), "after\n").unwrap();
    std::fs::write(dir.path().join("b.txt"), "new\n").unwrap();
    let second = env.snapshot_track().await.unwrap();
    let changes = env.snapshot_changes(&first, &second).await.unwrap();
    assert_eq!(changes.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), ["a.txt", "b.txt"]);
    assert_eq!(&env.snapshot_blob(changes[0].before.as_deref().unwrap()).await.unwrap()[..], b"before\n");
    env.snapshot_restore(&first, Some(vec!["a.txt".into(), "b.txt".into()])).await.unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join("a.txt")).unwrap(), "before\n");
    assert!(!dir.path().join("b.txt").exists());
    // Pruning goes through the session too (`SnapshotPrune`): every object is
    // minutes old, so all five (two trees, three blobs) stay, whatever `keep` says.
    let pruned = env.snapshot_prune(vec![first.clone()], Duration::ZERO).await.unwrap();
    assert_eq!(pruned, SnapshotPruned { kept: 5, removed: 0, bytes: 0 });
    assert_eq!(env.snapshot_changes(&first, &second).await.unwrap(), changes);
}
