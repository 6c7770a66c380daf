//! Snapshots, the ground of undo and redo: what a snapshot holds, what two
//! snapshots differ by, and putting a snapshot back, each checked from
//! outside Burrow. Two sessions in one workspace snapshot it at the same
//! time, so tracks that overlap must all succeed and agree.
//!
//! Pruning (`Env::snapshot_prune`) on every store: local, the helper's next
//! to the files (in process, in a container, over SSH, through the
//! `SnapshotPrune` frame), the `git` fallback's (SSH by exec channels, and a
//! container without the helper where the image has git) and a bucket's
//! snapshot copies. A prune keeps what a listed snapshot reaches and whatever
//! is younger than the age (at least an hour), so right after two snapshots
//! nothing goes; with the objects made old behind Burrow's back, the
//! unreferenced snapshot goes and the others stay whole.

use std::time::Duration;

use bytes::Bytes;

use burrow::env::EnvError;

use crate::fixture::{p, Kind, Workspace, FILES};

const EXTRA: &[u8] = b"written behind Burrow's back\n";

/// Changes through Burrow and behind its back are both in the next
/// snapshot; overlapping tracks agree; a restore puts every file back.
pub async fn snapshots_name_every_change_and_put_it_back(ws: &Workspace) {
    let env = &ws.env;
    if ws.kind == Kind::DockerScripts && ws.sh("command -v git || true").trim().is_empty() {
        // No helper and no git in the image: undo is off, and both the error
        // and the capabilities say why.
        let err = env.snapshot_track().await.expect_err("no snapshots without the helper or git");
        assert!(matches!(err, EnvError::Unsupported(_)), "{err:?}");
        let why = env.snapshots().expect_err("the capabilities say undo is off");
        assert!(why.contains("git") && err.to_string().contains(&why), "{why} / {err}");
        return;
    }
    let before = env.snapshot_track().await.unwrap_or_else(|e| panic!("{:?}: the first snapshot: {e}", ws.kind));
    assert_eq!(before.len(), 40, "a git tree id: {before}");
    assert_eq!(env.snapshot_track().await.unwrap(), before, "an unchanged tree is the same snapshot");

    env.write(&p("notes/api.txt"), Bytes::from_static(b"written through the API\n")).await.unwrap();
    if ws.kind.runs_processes() {
        // As `bash` would: the snapshot covers the workspace, not Burrow's writes.
        ws.write_behind("src/extra.rs", EXTRA).await;
    } else {
        // Nothing runs in a bucket; another client's writes show once the
        // listing is renewed, which a turn's snapshot does not wait for.
        env.write(&p("src/extra.rs"), Bytes::from_static(EXTRA)).await.unwrap();
    }
    env.remove(&p("src/lib.rs")).await.unwrap();

    // As two sessions' turns would: every track answers, with one tree.
    let tracks = futures::future::join_all((0..4).map(|_| env.snapshot_track())).await;
    let after: Vec<String> = tracks.into_iter().map(|t| t.unwrap_or_else(|e| panic!("{:?}: an overlapping track failed: {e}", ws.kind))).collect();
    assert!(after.iter().all(|t| *t == after[0]), "{after:?}");
    let after = after[0].clone();
    assert_ne!(after, before);

    let changes = env.snapshot_changes(&before, &after).await.unwrap();
    let seen: Vec<(&str, bool, bool)> = changes.iter().map(|c| (c.path.as_str(), c.before.is_some(), c.after.is_some())).collect();
    assert_eq!(seen, [("notes/api.txt", false, true), ("src/extra.rs", false, true), ("src/lib.rs", true, false)], "{changes:?}");
    let old = changes[2].before.clone().unwrap();
    let lib = FILES.iter().find(|(rel, _)| *rel == "src/lib.rs").unwrap().1;
    assert_eq!(&env.snapshot_blob(&old).await.unwrap()[..], lib.as_bytes());
    assert!(env.snapshot_changes(&after, &after).await.unwrap().is_empty());

    // Undo: the changed files back as the first snapshot holds them, and
    // the files it does not hold removed.
    let changed: Vec<String> = changes.iter().map(|c| c.path.clone()).collect();
    env.snapshot_restore(&before, Some(changed)).await.unwrap();
    assert_eq!(ws.read_behind("src/lib.rs").await.as_deref(), Some(lib.as_bytes()));
    assert_eq!(ws.read_behind("src/extra.rs").await, None);
    assert_eq!(ws.read_behind("notes/api.txt").await, None);
    assert_eq!(env.snapshot_track().await.unwrap(), before, "the restored tree is the first snapshot");

    // Redo of one file: only that file comes back.
    env.snapshot_restore(&after, Some(vec!["src/extra.rs".into()])).await.unwrap();
    assert_eq!(ws.read_behind("src/extra.rs").await.as_deref(), Some(EXTRA));
    assert_eq!(ws.read_behind("notes/api.txt").await, None);

    // A whole-snapshot restore writes back every file it holds and, as
    // OpenCode's `checkout-index -a`, leaves files it does not hold alone.
    env.remove(&p("src/lib.rs")).await.unwrap();
    env.snapshot_restore(&before, None).await.unwrap();
    assert_eq!(ws.read_behind("src/lib.rs").await.as_deref(), Some(lib.as_bytes()));
    assert_eq!(ws.read_behind("src/extra.rs").await.as_deref(), Some(EXTRA));
}

/// A prune right after two snapshots removes nothing (all is younger than
/// the least age); once every object is made a year old behind Burrow's
/// back, an unreferenced snapshot goes, while the referenced one stays whole
/// and so does a snapshot taken after the ageing (young, it keeps the old
/// objects it reaches).
pub async fn a_prune_keeps_young_and_referenced_snapshots(ws: &Workspace) {
    let env = &ws.env;
    let before = match env.snapshot_track().await {
        Ok(tree) => tree,
        Err(EnvError::Unsupported(why)) => {
            // No store at all (locally without a data folder; a container with
            // neither the helper nor git): nothing to prune, and prune says so.
            assert!(ws.kind == Kind::Local || ws.kind == Kind::DockerScripts, "{:?}: {why}", ws.kind);
            let answer = env.snapshot_prune(Vec::new(), Duration::ZERO).await;
            assert!(matches!(answer, Err(EnvError::Unsupported(_))), "{:?}: {answer:?}", ws.kind);
            return;
        }
        Err(e) => panic!("{:?}: the first snapshot: {e}", ws.kind),
    };
    // Content of this test alone, so the snapshot is in no other test's store
    // (the ageing below finds the stores by it; other kinds run at the same time).
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let kept = Bytes::from(format!("kept after the prune ({:?}, {nanos})\n", ws.kind));
    env.write(&p("pruned.txt"), kept.clone()).await.unwrap();
    let after = env.snapshot_track().await.unwrap();
    let pruned = env.snapshot_prune(vec![before.clone()], Duration::ZERO).await.unwrap_or_else(|e| panic!("{:?}: the prune: {e}", ws.kind));
    assert_eq!(pruned.removed, 0, "{:?}: every object is younger than the least age: {pruned:?}", ws.kind);
    assert!(pruned.kept >= 4, "{:?}: two trees and the blobs of the fixture's files: {pruned:?}", ws.kind);
    let changes = env.snapshot_changes(&before, &after).await.unwrap();
    assert_eq!(changes.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), ["pruned.txt"]);
    let kept_blob = changes[0].after.clone().unwrap();
    assert_eq!(env.snapshot_blob(&kept_blob).await.unwrap(), kept);

    // A year later: `after` is old and nothing references it; a snapshot
    // taken now (one more file) is young and reaches `pruned.txt`'s old blob.
    if ws.age_snapshot_stores(&after).await == 0 {
        assert_eq!(ws.kind, Kind::S3, "only a bucket of another service than s3s-fs cannot be aged");
        eprintln!("{:?}: the S3 service is not s3s-fs, so objects cannot be aged: the removal is not checked", ws.kind);
        return;
    }
    env.write(&p("young.txt"), Bytes::from_static(b"after the year\n")).await.unwrap();
    let young = env.snapshot_track().await.unwrap();
    let pruned = env.snapshot_prune(vec![before.clone()], Duration::ZERO).await.unwrap_or_else(|e| panic!("{:?}: the second prune: {e}", ws.kind));
    assert!(pruned.removed >= 1 && pruned.bytes > 0, "{:?}: the unreferenced old snapshot's root tree goes: {pruned:?}", ws.kind);
    let gone = env.snapshot_changes(&before, &after).await;
    assert!(gone.is_err(), "{:?}: the old unreferenced snapshot is gone: {gone:?}", ws.kind);
    // The young snapshot is whole, with the old blob it reaches.
    let changes = env.snapshot_changes(&before, &young).await.unwrap();
    assert_eq!(changes.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), ["pruned.txt", "young.txt"]);
    assert_eq!(changes[0].after.as_deref(), Some(kept_blob.as_str()));
    assert_eq!(env.snapshot_blob(&kept_blob).await.unwrap(), kept);
    // The referenced snapshot is whole: restoring all of it reads every tree and blob.
    env.remove(&p("src/lib.rs")).await.unwrap();
    env.snapshot_restore(&before, None).await.unwrap_or_else(|e| panic!("{:?}: the referenced snapshot is whole: {e}", ws.kind));
    let lib = FILES.iter().find(|(rel, _)| *rel == "src/lib.rs").unwrap().1;
    assert_eq!(ws.read_behind("src/lib.rs").await.as_deref(), Some(lib.as_bytes()));
}
