//! The cached file index of one directory, kept fresh.
//!
//! Environments that can watch mark the index dirty on change (see
//! [`IndexRegistry::dispatch`]); the next query re-walks. When the watcher
//! lost events (an inotify queue overflow under heavy file activity), the
//! index is rebuilt in the background and the old snapshot keeps answering. Environments that
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
    /// The current snapshot and when it was built; read without waiting,
    /// even while a rebuild runs.
    current: std::sync::Mutex<Option<(Arc<Snapshot>, Instant)>>,
    /// Held while walking: rebuilding is single-flight, so concurrent
    /// queries that need a fresh snapshot wait for one walk.
    building: Mutex<()>,
    /// A known change: the next query re-walks before it answers.
    dirty: AtomicBool,
    /// Events were lost: rebuild in the background, serving the old snapshot.
    overflowed: AtomicBool,
    /// A background rebuild is under way.
    rescanning: AtomicBool,
    /// Re-walk after this long when nothing tells us about changes.
    ttl: Option<Duration>,
}

impl FileIndex {
    pub fn new(env: SharedEnv, dir: WorkspacePath, ttl: Option<Duration>) -> Self {
        Self {
            env,
            dir,
            current: Default::default(),
            building: Mutex::new(()),
            dirty: AtomicBool::new(false),
            overflowed: AtomicBool::new(false),
            rescanning: AtomicBool::new(false),
            ttl,
        }
    }

    pub fn dir(&self) -> &WorkspacePath {
        &self.dir
    }

    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// The watcher lost events: the next query starts a background rebuild.
    pub fn mark_overflowed(&self) {
        self.overflowed.store(true, Ordering::Release);
    }

    /// A snapshot no older than the last known change. After lost events
    /// (an overflow) that is the old snapshot while a rebuild runs in the
    /// background: nothing specific is known to have changed, and a walk of a
    /// large tree under load takes seconds.
    pub async fn snapshot(self: &Arc<Self>) -> EnvResult<Arc<Snapshot>> {
        if let Some(snap) = self.usable() {
            return Ok(snap);
        }
        let _building = self.building.lock().await;
        // Another query may have rebuilt it while this one waited.
        if let Some(snap) = self.usable() {
            return Ok(snap);
        }
        self.rebuild().await
    }

    /// The current snapshot, unless a known change or the TTL makes it stale.
    fn usable(self: &Arc<Self>) -> Option<Arc<Snapshot>> {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let (snap, built) = current.as_ref()?;
        if self.dirty.load(Ordering::Acquire) || self.ttl.is_some_and(|ttl| built.elapsed() >= ttl) {
            return None;
        }
        if self.overflowed.load(Ordering::Acquire) {
            self.rescan_in_background();
        }
        Some(snap.clone())
    }

    fn rescan_in_background(self: &Arc<Self>) {
        if self.rescanning.swap(true, Ordering::AcqRel) {
            return;
        }
        let index = self.clone();
        tokio::spawn(async move {
            let _building = index.building.lock().await;
            if index.overflowed.load(Ordering::Acquire) {
                if let Err(e) = index.rebuild().await {
                    tracing::warn!(dir = %index.dir, "background rescan failed, keeping the old index: {e}");
                }
            }
            index.rescanning.store(false, Ordering::Release);
        });
    }

    /// Walks and replaces the snapshot; the caller holds `building`.
    async fn rebuild(&self) -> EnvResult<Arc<Snapshot>> {
        // Clear the flags before walking: a change during the walk sets them again.
        self.dirty.store(false, Ordering::Release);
        self.overflowed.store(false, Ordering::Release);
        let started = Instant::now();
        let entries = match self.env.walk(&self.dir).await {
            Ok(entries) => entries,
            Err(e) => {
                self.overflowed.store(true, Ordering::Release);
                return Err(e);
            }
        };
        let snap = tokio::task::spawn_blocking(move || Arc::new(Snapshot::new(entries)))
            .await
            .map_err(|e| crate::env::EnvError::Io(format!("index build failed: {e}")))?;
        tracing::debug!(dir = %self.dir, entries = snap.len(), ms = started.elapsed().as_millis() as u64, "file index built");
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some((snap.clone(), started));
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
            match event {
                WatchEvent::Rescan => index.mark_dirty(),
                WatchEvent::Overflow => index.mark_overflowed(),
                WatchEvent::Changed(paths) => {
                    if paths.iter().any(|p| p.starts_with(index.dir()) || index.dir().starts_with(p)) {
                        index.mark_dirty();
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::*;
    use async_trait::async_trait;
    use bytes::Bytes;

    /// An environment whose walks list `files` and, once `hold` is set, wait
    /// until the test releases them: a rebuild that provably has not finished.
    struct SlowTree {
        files: std::sync::Mutex<Vec<&'static str>>,
        hold: AtomicBool,
        release: tokio::sync::Semaphore,
    }

    fn no<T>() -> EnvResult<T> {
        Err(EnvError::Unsupported("this in a test tree".into()))
    }

    #[async_trait]
    impl Env for SlowTree {
        fn kind(&self) -> &'static str {
            "test"
        }
        fn root(&self) -> &str {
            "/"
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities { exec: false, pty: false, watch: true, search: SearchBackend::InProcess }
        }
        async fn confine(&self, _: &WorkspacePath) -> EnvResult<()> {
            Ok(())
        }
        async fn list(&self, _: &WorkspacePath) -> EnvResult<Vec<DirEntry>> {
            no()
        }
        async fn stat(&self, _: &WorkspacePath) -> EnvResult<Metadata> {
            no()
        }
        async fn read(&self, _: &WorkspacePath, _: u64) -> EnvResult<Bytes> {
            no()
        }
        async fn write(&self, _: &WorkspacePath, _: Bytes) -> EnvResult<()> {
            no()
        }
        async fn mkdir_all(&self, _: &WorkspacePath) -> EnvResult<()> {
            no()
        }
        async fn remove(&self, _: &WorkspacePath) -> EnvResult<()> {
            no()
        }
        async fn rename(&self, _: &WorkspacePath, _: &WorkspacePath) -> EnvResult<()> {
            no()
        }
        async fn walk(&self, _: &WorkspacePath) -> EnvResult<Vec<IndexEntry>> {
            let files = self.files.lock().unwrap().clone();
            if self.hold.load(Ordering::Acquire) {
                let _ = self.release.acquire().await;
            }
            Ok(files.into_iter().map(|f| IndexEntry { path: f.into(), kind: EntryKind::File }).collect())
        }
        async fn grep(&self, _: GrepRequest) -> EnvResult<GrepResult> {
            no()
        }
        async fn exec(&self, _: ExecRequest) -> EnvResult<Process> {
            no()
        }
        async fn pty(&self, _: PtyRequest) -> EnvResult<Pty> {
            no()
        }
        async fn watch(&self) -> EnvResult<Option<tokio::sync::mpsc::Receiver<WatchEvent>>> {
            Ok(None)
        }
    }

    fn paths(snap: &Snapshot) -> Vec<&str> {
        snap.entries().iter().map(|e| e.path.as_str()).collect()
    }

    /// A bound on a hang, not a performance assertion.
    const GUARD: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn after_an_overflow_the_old_index_answers_while_a_rescan_runs() {
        let tree = Arc::new(SlowTree { files: std::sync::Mutex::new(vec!["a.rs"]), hold: AtomicBool::new(false), release: tokio::sync::Semaphore::new(0) });
        let registry = IndexRegistry::new(tree.clone(), true, Duration::from_secs(3600));
        let index = registry.get(&WorkspacePath::root());
        assert_eq!(paths(&index.snapshot().await.unwrap()), ["a.rs"]);

        // Events were lost and the rescan's walk cannot finish yet.
        tree.files.lock().unwrap().push("b.rs");
        tree.hold.store(true, Ordering::Release);
        registry.dispatch(&WatchEvent::Overflow);
        for _ in 0..3 {
            let snap = tokio::time::timeout(GUARD, index.snapshot()).await.expect("a lookup waited for the rescan");
            assert_eq!(paths(&snap.unwrap()), ["a.rs"], "the old index answers");
        }
        assert!(index.rescanning.load(Ordering::Acquire), "a rescan runs in the background");

        // Once it finishes, lookups see the new tree.
        tree.hold.store(false, Ordering::Release);
        tree.release.add_permits(1);
        tokio::time::timeout(GUARD, async {
            while index.rescanning.load(Ordering::Acquire) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the rescan finishes");
        assert_eq!(paths(&index.snapshot().await.unwrap()), ["a.rs", "b.rs"]);
    }

    #[tokio::test]
    async fn a_known_change_is_seen_by_the_next_lookup() {
        let tree = Arc::new(SlowTree { files: std::sync::Mutex::new(vec!["a.rs"]), hold: AtomicBool::new(false), release: tokio::sync::Semaphore::new(0) });
        let registry = IndexRegistry::new(tree.clone(), true, Duration::from_secs(3600));
        let index = registry.get(&WorkspacePath::root());
        assert_eq!(paths(&index.snapshot().await.unwrap()), ["a.rs"]);
        tree.files.lock().unwrap().push("b.rs");
        registry.dispatch(&WatchEvent::Changed(vec![WorkspacePath::from_relative("b.rs").unwrap()]));
        assert_eq!(paths(&index.snapshot().await.unwrap()), ["a.rs", "b.rs"]);
    }
}
