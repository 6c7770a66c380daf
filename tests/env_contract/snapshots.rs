//! Snapshot pruning (`Env::snapshot_prune`), where the store is Burrow's own:
//! locally, and in the helper's store next to the files (in process, in a
//! container, over SSH, through the `SnapshotPrune` frame). A prune keeps
//! what a listed snapshot reaches and whatever is younger than the age (at
//! least an hour), so right after two snapshots nothing goes and both stay
//! readable. Object storage and the `git` fallback are not pruned: there the
//! answer is the documented "unsupported".

use std::time::Duration;

use burrow::env::EnvError;
use bytes::Bytes;

use crate::fixture::{p, Kind, Workspace};

pub async fn a_prune_keeps_young_and_referenced_snapshots(ws: &Workspace) {
    let env = &ws.env;
    // Locally only where the data folder was set (`snapshot::init`), as in a server.
    let own_store = ws.kind.through_helper() || (ws.kind == Kind::Local && env.snapshots().is_ok());
    if !own_store {
        let answer = env.snapshot_prune(Vec::new(), Duration::ZERO).await;
        assert!(matches!(answer, Err(EnvError::Unsupported(_))), "{:?}: {answer:?}", ws.kind);
        return;
    }
    let before = env.snapshot_track().await.unwrap();
    env.write(&p("pruned.txt"), Bytes::from_static(b"kept after the prune\n")).await.unwrap();
    let after = env.snapshot_track().await.unwrap();
    let pruned = env.snapshot_prune(vec![before.clone()], Duration::ZERO).await.unwrap();
    assert_eq!(pruned.removed, 0, "every object is younger than the least age: {pruned:?}");
    assert!(pruned.kept >= 4, "two trees and the blobs of the fixture's files: {pruned:?}");
    let changes = env.snapshot_changes(&before, &after).await.unwrap();
    assert_eq!(changes.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), ["pruned.txt"]);
    let blob = env.snapshot_blob(changes[0].after.as_deref().unwrap()).await.unwrap();
    assert_eq!(&blob[..], b"kept after the prune\n");
}
