//! The trigram index of a bucket's text, kept in the server and built from
//! the content cache.
//!
//! Object storage has no compute next to the data, so a text search reads
//! every kept file from the content cache (or downloads it). The index lets a
//! search read only the files whose trigrams can satisfy the pattern:
//! - **Built after the first text search** (which has just filled the cache),
//!   in a thread at low priority, over the walk of the listing index: each
//!   file's bytes come from the content cache, and only objects missing there
//!   or whose ETag changed are downloaded. A bucket nobody searches for text
//!   is never read in full.
//! - **Exact:** each file of the index records a stamp, a hash of the
//!   validator (ETag, else time and size) its bytes were read under. A search
//!   walks the listing as the scan does, and skips only the files whose stamp
//!   equals the listing's current validator and whose trigrams cannot match;
//!   new, changed, validator-less and unindexed files are read as the scan
//!   reads them. The listing follows writes through the environment at once
//!   and writes by others at its next refresh, so the answer is the scan's.
//! - **Kept fresh:** rebuilt when more than [`REBUILD_SHARE`] of its files
//!   changed, and by `POST /burrow/refresh`.
//! - **Kept on disk** beside the local indexes (`text-index/`): a restarted
//!   server loads it without downloading anything.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::stream::StreamExt;

use super::env::Store;
use super::listing::ListingIndex;
use super::tree::CachedTree;
use crate::env::{EntryKind, EnvError, GrepRequest, TextIndexStatus, WorkspacePath};
use crate::search::stream::{self, StreamLimits, Tree};
use crate::search::trigram::live::Settings;
use crate::search::trigram::query::{plan, Query};
use crate::search::trigram::{lower_priority, BuildOptions, Builder, TrigramIndex};

/// A rebuild starts once a search finds more than one file in this many of
/// the index's files changed (and at least [`REBUILD_MIN`]): those are read
/// by every search until then.
pub const REBUILD_SHARE: usize = 16;
pub const REBUILD_MIN: usize = 64;

/// The stamp of a validator: FNV-1a, stable across runs and versions (the
/// index is kept on disk); never 0, which means "unknown, always read".
pub fn stamp(validator: Option<&str>) -> u64 {
    let Some(v) = validator else { return 0 };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in v.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.max(1)
}

pub(super) struct ObjectText {
    file: PathBuf,
    max_file_bytes: u64,
    limits: StreamLimits,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    current: Option<Arc<TrigramIndex>>,
    /// The index an earlier run left is being read.
    loading: bool,
    building: bool,
    /// Another build is wanted once the running one ends.
    again: bool,
    error: Option<String>,
}

/// One search's view of the index: which of its files the query selects.
pub(super) struct Narrowed {
    index: Arc<TrigramIndex>,
    /// One per file of the index.
    selected: Vec<bool>,
    /// Files read because the index cannot vouch for them (new, changed).
    changed: AtomicUsize,
}

impl Narrowed {
    /// Whether the search must read `path`.
    pub fn may_match(&self, listing: &ListingIndex, path: &WorkspacePath) -> bool {
        let files = self.index.files();
        let known = files.binary_search_by(|f| f.path.as_str().cmp(path.as_str())).ok();
        let now = listing.read(|l| l.file(path).ok().map(|m| stamp(m.validator().as_deref())));
        match known {
            Some(i) if files[i].stamp != 0 && now == Some(files[i].stamp) => !files[i].indexed || self.selected[i],
            _ => {
                self.changed.fetch_add(1, Ordering::Relaxed);
                true
            }
        }
    }

    pub fn changed(&self) -> usize {
        self.changed.load(Ordering::Relaxed)
    }
}

impl ObjectText {
    /// The index of the workspace at `root` (a URL), under `settings.dir`.
    pub fn new(root: &str, settings: &Settings, limits: StreamLimits) -> Arc<Self> {
        let file = settings.dir.join(format!("object-{:016x}.tri", stamp(Some(root))));
        Arc::new(Self { file, max_file_bytes: settings.build.max_file_bytes.min(limits.max_file_bytes), limits, state: Mutex::default() })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the index an earlier run left, in the background: it needs no
    /// download, since each file's stamp says whether it still holds. A
    /// damaged one, or one of another format, is left for the next build to replace.
    pub fn load(self: &Arc<Self>) {
        if !self.file.exists() {
            return;
        }
        self.state().loading = true;
        let me = self.clone();
        tokio::spawn(async move {
            let file = me.file.clone();
            let opened = tokio::task::spawn_blocking(move || TrigramIndex::open(&file)).await;
            let mut st = me.state();
            st.loading = false;
            match opened {
                Ok(Ok(index)) if index.max_file_bytes() == me.max_file_bytes => st.current = Some(Arc::new(index)),
                Ok(Ok(_)) => tracing::info!("{}: built with another size cap, rebuilt after the next search", me.file.display()),
                Ok(Err(e)) => tracing::warn!("{}: {e}; rebuilt after the next search", me.file.display()),
                Err(e) => tracing::warn!("{}: cannot be read: {e}", me.file.display()),
            }
        });
    }

    /// The files `req` may match, or None when the index cannot narrow this
    /// search (none yet, or a pattern with no trigram): then every file is read.
    pub fn narrow(&self, req: &GrepRequest) -> Option<Narrowed> {
        let index = self.state().current.clone()?;
        let q = plan(&req.pattern, req.case_insensitive);
        if q == Query::All {
            return None;
        }
        let ids = match index.eval(&q) {
            Ok(Some(ids)) => ids,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!("{}: {e}; searches read every file until it is rebuilt", self.file.display());
                let mut st = self.state();
                st.current = None;
                st.error = Some(e.to_string());
                return None;
            }
        };
        let mut selected = vec![false; index.files().len()];
        for id in ids {
            selected[id as usize] = true;
        }
        Some(Narrowed { index, selected, changed: AtomicUsize::new(0) })
    }

    /// After a text search: builds the first index (the search has just
    /// filled the content cache), or a new one when `changed` files (read by
    /// the search because the index could not vouch for them) are too many.
    pub fn after_search(self: &Arc<Self>, store: &Arc<Store>, changed: Option<usize>) {
        let start = {
            let st = self.state();
            if st.loading || st.building {
                return;
            }
            match &st.current {
                // After a failed build, only a refresh tries again.
                None => st.error.is_none(),
                Some(index) => changed.is_some_and(|c| c > REBUILD_MIN.max(index.files().len() / REBUILD_SHARE)),
            }
        };
        if start {
            self.start(store);
        }
    }

    /// Builds a new index (`POST /burrow/refresh`) if there is one or a build
    /// failed; a workspace not yet searched for text keeps waiting for its first search.
    pub fn rebuild(self: &Arc<Self>, store: &Arc<Store>) {
        let wanted = {
            let st = self.state();
            st.current.is_some() || st.error.is_some() || st.building
        };
        if wanted {
            self.start(store);
        }
    }

    fn start(self: &Arc<Self>, store: &Arc<Store>) {
        {
            let mut st = self.state();
            if st.building {
                st.again = true;
                return;
            }
            st.building = true;
        }
        let (me, store) = (self.clone(), store.clone());
        tokio::spawn(async move {
            loop {
                let started = std::time::Instant::now();
                let built = me.build(&store).await;
                let mut st = me.state();
                match built {
                    Ok(index) => {
                        tracing::info!(
                            files = index.files().len(),
                            bytes = index.bytes(),
                            ms = started.elapsed().as_millis() as u64,
                            "object text index ready"
                        );
                        st.current = Some(Arc::new(index));
                        st.error = None;
                    }
                    Err(e) => {
                        tracing::warn!("object text index build failed, searches read every file: {e}");
                        st.error = Some(e);
                    }
                }
                if !std::mem::take(&mut st.again) {
                    st.building = false;
                    return;
                }
            }
        });
    }

    /// Walks the listing, reads each kept file through the content cache (in
    /// path order, `concurrency` at a time) and hands it to a builder thread
    /// at low priority, which writes the index file and opens it.
    async fn build(&self, store: &Store) -> Result<TrigramIndex, String> {
        store.index.fresh().await.map_err(|e| format!("listing the bucket: {e}"))?;
        let tree = CachedTree { env: store };
        let entries = stream::walk(&tree, &WorkspacePath::root(), self.limits).await.map_err(|e| format!("walking the bucket: {e}"))?;
        let (mut files, mut dirs) = (Vec::new(), Vec::new());
        for e in entries {
            match e.kind {
                EntryKind::File => files.push(e.path),
                _ => dirs.push(e.path),
            }
        }
        type Item = (String, u64, u64, Option<Bytes>);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Item>(64);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let aborted = Arc::new(AtomicBool::new(false));
        let (file, max, abort) = (self.file.clone(), self.max_file_bytes, aborted.clone());
        std::thread::Builder::new()
            .name("object-text-index".into())
            .spawn(move || {
                lower_priority();
                let built = (|| {
                    let mut builder = Builder::new(&file, &BuildOptions { max_file_bytes: max, ..BuildOptions::default() })?;
                    while let Some((path, size, stamp, text)) = rx.blocking_recv() {
                        builder.add(path, size, stamp, text.as_deref())?;
                    }
                    if abort.load(Ordering::Acquire) {
                        return Err(std::io::Error::other("the build was stopped"));
                    }
                    builder.finish(&dirs)?;
                    TrigramIndex::open(&file)
                })();
                let _ = done_tx.send(built.map_err(|e| format!("{}: {e}", file.display())));
            })
            .map_err(|e| format!("cannot start the index builder: {e}"))?;
        let read = |path: String| {
            let tree = &tree;
            async move {
                let at = WorkspacePath::from_relative(&path)?;
                // The validator before the bytes: if the object changes in
                // between, the stamp is the older one, and searches read it.
                let meta = store.index.read(|l| l.file(&at)).ok();
                let (size, stamp) = meta.map_or((0, 0), |m| (m.size, stamp(m.validator().as_deref())));
                let text = match tree.read(&at, max).await {
                    Ok(bytes) => Some(bytes),
                    Err(EnvError::Unavailable(m)) => return Err(EnvError::Unavailable(m)),
                    // Gone, too large or unreadable: listed unindexed, so always read.
                    Err(_) => None,
                };
                Ok((path, size, stamp, text))
            }
        };
        let mut reads = futures::stream::iter(files).map(read).buffered(self.limits.concurrency.max(1));
        let mut failed = None;
        while let Some(item) = reads.next().await {
            match item {
                Ok(item) => {
                    if tx.send(item).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    failed = Some(format!("reading the bucket: {e}"));
                    break;
                }
            }
        }
        if failed.is_some() {
            aborted.store(true, Ordering::Release);
        }
        drop(tx);
        let built = done_rx.await.map_err(|_| "the index builder died".to_string())?;
        match failed {
            Some(e) => Err(e),
            None => built,
        }
    }

    /// The index's state; `changed` counts its files whose object changed or
    /// vanished since the build (read directly by searches until a rebuild).
    pub fn status(&self, listing: &ListingIndex) -> TextIndexStatus {
        let st = self.state();
        let changed = st.current.as_ref().map_or(0, |index| {
            listing.read(|l| {
                index
                    .files()
                    .iter()
                    .filter(|f| {
                        let now = WorkspacePath::from_relative(&f.path).ok().and_then(|p| l.file(&p).ok()).map(|m| stamp(m.validator().as_deref()));
                        f.stamp == 0 || now != Some(f.stamp)
                    })
                    .count()
            })
        });
        let state = match (&st.current, &st.error) {
            (Some(_), _) => "ready",
            (None, _) if st.building || st.loading => "building",
            (None, Some(_)) => "failed",
            // No text search yet: the first one fills the content cache, then the build starts.
            (None, None) => "waiting",
        };
        TextIndexStatus {
            state: state.into(),
            rebuilding: st.building,
            entries: st.current.as_ref().map_or(0, |i| i.files().len() as u64),
            bytes: st.current.as_ref().map_or(0, |i| i.bytes()),
            changed: changed as u64,
            error: st.error.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::stamp;

    #[test]
    fn stamps_tell_validators_apart_and_unknown_is_zero() {
        assert_eq!(stamp(None), 0);
        assert_ne!(stamp(Some("etag:\"a\"")), stamp(Some("etag:\"b\"")));
        assert_eq!(stamp(Some("etag:\"a\"")), stamp(Some("etag:\"a\"")));
        assert_ne!(stamp(Some("")), 0);
    }
}
