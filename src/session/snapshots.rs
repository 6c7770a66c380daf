//! Snapshot pruning: once at server start, then once a day. (OpenCode runs its
//! cleanup, `git gc --prune=7.days`, a minute after start and then hourly; a
//! mark over every session's parts costs more than a `gc`, and a store grows
//! by at most a day's snapshots between rounds.)
//!
//! Each round lists the snapshots the sessions still reference (the store's
//! `snapshot_refs`) and gives that list to every store:
//! - **local:** every store under `<data dir>/snapshot`, those of roots served
//!   now and those of roots no longer served, pruned on the blocking pool;
//! - **Docker and SSH:** the helper's store, through the session's
//!   `SnapshotPrune` frame, for the environments open now; with `git` in
//!   place of the helper, the snapshot git directory (keep-refs for the
//!   referenced snapshots, then `git prune --expire`, `burrow_env::near`).
//! - **object storage:** the snapshot copies under the snapshot prefix,
//!   deleted by the same rule (`burrow_env::object::snapshot`).
//!
//! The list is read before the stores are pruned, so a snapshot recorded in a
//! session after the read is not in it; it is kept all the same, because it
//! is younger than the age (see `burrow_env::snapshot::prune`). A round never
//! fails the server: each store's failure is logged and the others go on.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use crate::env::{EnvError, SharedEnv, SnapshotPruned};

use super::store::Store;

/// How often the stores are pruned after the first round at start.
pub const EVERY: Duration = Duration::from_secs(24 * 3600);

/// Prunes now and then every [`EVERY`], on its own task. `envs` gives the
/// environments open at each round (the server's and its workspaces').
pub fn spawn<F, Fut>(store: Store, age: Duration, envs: F) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Vec<SharedEnv>> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match prune(&store, age, envs().await, crate::env::snapshot::local_base().map(PathBuf::from)).await {
                Ok(done) => tracing::info!(removed = done.removed, kept = done.kept, bytes = done.bytes, "pruned the snapshot stores"),
                Err(e) => tracing::warn!("cannot prune the snapshot stores: {e}"),
            }
        }
    })
}

/// One round: the local stores under `local` (all of them), then each
/// non-local environment's own store. Fails only when the sessions'
/// references cannot be read (then nothing is pruned).
pub async fn prune(store: &Store, age: Duration, envs: Vec<SharedEnv>, local: Option<PathBuf>) -> Result<SnapshotPruned, String> {
    let keep = store.snapshot_refs().await.map_err(|e| format!("cannot list the snapshots sessions reference: {e}"))?;
    let mut total = SnapshotPruned::default();
    if let Some(base) = local {
        let keep = keep.clone();
        match tokio::task::spawn_blocking(move || crate::env::snapshot::prune_all(&base, &keep, age)).await {
            Ok(Ok(done)) => total.add(&done),
            Ok(Err(e)) => tracing::warn!("cannot prune the local snapshot stores: {e}"),
            Err(e) => tracing::warn!("the local snapshot prune failed: {e}"),
        }
    }
    for env in envs {
        // Local stores were all pruned above; an environment that keeps no
        // snapshots has nothing to prune.
        if env.kind() == "local" || env.snapshots().is_err() {
            continue;
        }
        let place = format!("the {} environment {}", env.kind(), env.root());
        match env.snapshot_prune(keep.clone(), age).await {
            Ok(done) => total.add(&done),
            Err(EnvError::Unsupported(why)) => tracing::debug!("no snapshot pruning in {place}: {why}"),
            Err(e) => tracing::warn!("cannot prune the snapshots in {place}: {e}"),
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use rusqlite::params;

    use super::*;
    use crate::env::snapshot::{Store as Snapshots, PRUNE_AGE};
    use crate::session::db::Db;

    /// A session store whose parts reference `patch` (a patch part) and whose
    /// session's revert state references `redo`.
    async fn sessions(dir: &std::path::Path, patch: &str, redo: &str) -> Store {
        let db = Db::open(&dir.join("db.sqlite")).unwrap();
        let (patch, redo) = (patch.to_string(), redo.to_string());
        db.write(move |conn| {
            let session = serde_json::json!({"id": "ses_1", "revert": {"messageID": "msg_1", "snapshot": redo}});
            conn.execute(
                "INSERT INTO session (id, project_id, directory, title, time_updated, data) VALUES ('ses_1', 'p', '/w', 't', 1, ?1)",
                params![session.to_string()],
            )?;
            conn.execute("INSERT INTO message (id, session_id, time_created, data) VALUES ('msg_1', 'ses_1', 1, '{}')", [])?;
            let parts = [
                serde_json::json!({"type": "patch", "hash": patch, "files": ["/w/a.txt"]}),
                serde_json::json!({"type": "step-start"}),
                serde_json::json!({"type": "text", "text": "a snapshot is not named here"}),
            ];
            for (i, part) in parts.iter().enumerate() {
                conn.execute(
                    "INSERT INTO part (id, message_id, session_id, data) VALUES (?1, 'msg_1', 'ses_1', ?2)",
                    params![format!("prt_{i}"), part.to_string()],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
        Store::new(db, crate::event::Bus::new())
    }

    /// Makes every object of the store in `dir` a month old.
    fn age_all(dir: &std::path::Path) {
        let then = SystemTime::now() - Duration::from_secs(30 * 24 * 3600);
        for fan in std::fs::read_dir(dir.join("objects")).unwrap().flatten() {
            for obj in std::fs::read_dir(fan.path()).unwrap().flatten() {
                std::fs::File::options().write(true).open(obj.path()).unwrap().set_modified(then).unwrap();
            }
        }
    }

    /// A round keeps the snapshots a patch part and a revert state name, in a
    /// local store under the data folder, and drops the old one nothing names.
    #[tokio::test]
    async fn a_round_keeps_what_sessions_reference_and_drops_the_rest() {
        let (data, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let dir = data.path().join("snapshot/0123456789abcdef");
        let store = Snapshots::open(&dir, root.path()).unwrap();
        let mut hashes = Vec::new();
        for text in ["undo to this\n", "redo to this\n", "nothing names this\n"] {
            std::fs::write(root.path().join("a.txt"), text).unwrap();
            hashes.push(store.track().unwrap());
        }
        std::fs::remove_file(dir.join("burrow-stat")).ok();
        age_all(&dir);
        let sessions = sessions(data.path(), &hashes[0], &hashes[1]).await;
        let mut refs = sessions.snapshot_refs().await.unwrap();
        refs.sort();
        let mut want = vec![hashes[0].clone(), hashes[1].clone()];
        want.sort();
        assert_eq!(refs, want, "the patch's hash and the revert's snapshot, nothing else");

        let done = prune(&sessions, PRUNE_AGE, Vec::new(), Some(data.path().join("snapshot"))).await.unwrap();
        assert_eq!((done.removed, done.kept), (2, 4), "the third tree and its blob go; two trees and two blobs stay");
        for kept in &hashes[..2] {
            assert!(store.files(kept).is_ok(), "{kept} is referenced");
        }
        assert!(store.files(&hashes[2]).is_err(), "nothing references the third snapshot");
    }

    /// A round prunes an open object-storage environment's snapshot copies
    /// (here a `fs://` folder, its copies in `<folder>.burrow-snapshots`) by
    /// the same rule: the referenced snapshots stay whole, the old one that
    /// nothing names goes.
    #[tokio::test]
    async fn a_round_prunes_object_storage_snapshot_copies() {
        use crate::env::object::{ObjectArgs, ObjectEnv};
        use crate::env::WorkspacePath;
        let (data, top) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let ws = top.path().join("ws");
        for dir in [&ws, &top.path().join("ws.burrow-snapshots")] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let env = ObjectEnv::open_with(&format!("fs://{}", ws.display()), &ObjectArgs::default(), &|_| None).await.unwrap();
        let env: SharedEnv = std::sync::Arc::new(env);
        let mut hashes = Vec::new();
        for text in ["undo to this\n", "redo to this\n", "nothing names this\n"] {
            env.write(&WorkspacePath::from_relative("a.txt").unwrap(), bytes::Bytes::from_static(text.as_bytes())).await.unwrap();
            hashes.push(env.snapshot_track().await.unwrap());
        }
        let copies = top.path().join("ws.burrow-snapshots/objects");
        let then = SystemTime::now() - Duration::from_secs(30 * 24 * 3600);
        for fan in std::fs::read_dir(&copies).unwrap().flatten() {
            for obj in std::fs::read_dir(fan.path()).unwrap().flatten() {
                std::fs::File::open(obj.path()).unwrap().set_modified(then).unwrap();
            }
        }
        let sessions = sessions(data.path(), &hashes[0], &hashes[1]).await;

        let done = prune(&sessions, PRUNE_AGE, vec![env.clone()], None).await.unwrap();
        // The third tree goes; its blob stays, as the validator map names it
        // for `a.txt` (a track reuses it without looking).
        assert_eq!((done.removed, done.kept), (1, 5), "{done:?}");
        let changes = env.snapshot_changes(&hashes[0], &hashes[1]).await.unwrap();
        assert_eq!(changes.len(), 1, "the referenced snapshots are whole: {changes:?}");
        assert_eq!(&env.snapshot_blob(changes[0].after.as_deref().unwrap()).await.unwrap()[..], b"redo to this\n");
        assert!(env.snapshot_changes(&hashes[0], &hashes[2]).await.is_err(), "nothing references the third snapshot");
    }
}
