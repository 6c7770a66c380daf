//! The cached file index of one directory, kept fresh.
//!
//! Environments that can watch mark the index dirty on change (see
//! [`IndexRegistry::dispatch`]); the next query re-walks. Environments that
//! cannot watch re-walk when the snapshot is older than a time-to-live. Either
//! way a query never sees a snapshot older than the last change it could know of.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::fuzzy::Snapshot;
use crate::env::{EnvResult, SharedEnv, WatchEvent, WorkspacePath};

pub struct FileIndex {
    env: SharedEnv,
    dir: WorkspacePath,
    /// The current snapshot and when it was built. The async mutex makes
    /// rebuilding single-flight: concurrent queries wait for one walk.
    current: Mutex<Option<(Arc<Snapshot>, Instant)>>,
    dirty: AtomicBool,
    /// Re-walk after this long when nothing tells us about changes.
    ttl: Option<Duration>,
}

impl FileIndex {
    pub fn new(env: SharedEnv, dir: WorkspacePath, ttl: Option<Duration>) -> Self {
        Self { env, dir, current: Mutex::new(None), dirty: AtomicBool::new(false), ttl }
    }

    pub fn dir(&self) -> &WorkspacePath {
        &self.dir
    }

    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// A snapshot no older than the last known change.
    pub async fn snapshot(&self) -> EnvResult<Arc<Snapshot>> {
        let mut current = self.current.lock().await;
        if let Some((snap, built)) = current.as_ref() {
            let expired = self.ttl.is_some_and(|ttl| built.elapsed() >= ttl);
            if !expired && !self.dirty.load(Ordering::Acquire) {
                return Ok(snap.clone());
            }
        }
        // Clear the flag before walking: a change during the walk marks it again.
        self.dirty.store(false, Ordering::Release);
        let started = Instant::now();
        let entries = self.env.walk(&self.dir).await?;
        let snap = tokio::task::spawn_blocking(move || Arc::new(Snapshot::new(entries)))
            .await
            .map_err(|e| crate::env::EnvError::Io(format!("index build failed: {e}")))?;
        tracing::debug!(dir = %self.dir, entries = snap.len(), ms = started.elapsed().as_millis() as u64, "file index built");
        *current = Some((snap.clone(), started));
        Ok(snap)
    }
}

/// The file indexes of one environment, one per directory that clients ask about.
pub struct IndexRegistry {
    env: SharedEnv,
    ttl: Option<Duration>,
    indexes: std::sync::Mutex<HashMap<WorkspacePath, Arc<FileIndex>>>,
}

impl IndexRegistry {
    /// `watching` says whether change events will be dispatched; without them,
    /// indexes fall back to `ttl`.
    pub fn new(env: SharedEnv, watching: bool, ttl: Duration) -> Arc<Self> {
        Arc::new(Self { env, ttl: (!watching).then_some(ttl), indexes: Default::default() })
    }

    pub fn get(&self, dir: &WorkspacePath) -> Arc<FileIndex> {
        let mut map = self.indexes.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(dir.clone()).or_insert_with(|| Arc::new(FileIndex::new(self.env.clone(), dir.clone(), self.ttl))).clone()
    }

    /// Marks every index that could contain a changed path.
    pub fn dispatch(&self, event: &WatchEvent) {
        let map = self.indexes.lock().unwrap_or_else(|e| e.into_inner());
        for index in map.values() {
            let hit = match event {
                WatchEvent::Rescan => true,
                WatchEvent::Changed(paths) => paths.iter().any(|p| p.starts_with(index.dir()) || index.dir().starts_with(p)),
            };
            if hit {
                index.mark_dirty();
            }
        }
    }

    /// Starts the environment's watcher, if it has one, and feeds its events to
    /// the indexes. Returns whether watching works.
    pub async fn start_watching(self: &Arc<Self>) -> bool {
        match self.env.watch().await {
            Ok(Some(mut rx)) => {
                let registry = Arc::downgrade(self);
                tokio::spawn(async move {
                    while let Some(event) = rx.recv().await {
                        let Some(registry) = registry.upgrade() else { break };
                        registry.dispatch(&event);
                    }
                });
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!("file watching unavailable, indexes will re-walk: {e}");
                false
            }
        }
    }
}
