//! [`ObjectEnv`]: the [`Env`] implementation over an opendal operator.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::anyhow;
use async_trait::async_trait;
use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};
use opendal::{EntryMode, ErrorKind, Operator};
use tokio::sync::mpsc;

use super::cache::ContentCache;
use super::errors::{detail, env_error};
use super::listing::{Change, ListingIndex, ObjectMeta};
use super::location::{Location, Service};
use super::options::ObjectArgs;
use super::snapshot::ObjectSnapshots;
use super::text::ObjectText;
use super::tree::CachedTree;
use crate::env::beneath::Beneath;
use crate::env::*;
use crate::search::stream::{self, StreamLimits};

pub struct ObjectEnv {
    /// What searches read through, shared with the text index's background build.
    shared: Arc<Store>,
    root: String,
    limits: StreamLimits,
    /// Undo snapshots under their own prefix (`object/snapshot.rs`), or why there are none.
    snapshots: Result<ObjectSnapshots, String>,
    /// The trigram index of the bucket's text (`object/text.rs`); None when turned off.
    text: Option<Arc<ObjectText>>,
}

/// The service, its listing index and content cache: everything a search reads.
pub(super) struct Store {
    pub(super) op: Operator,
    pub(super) index: ListingIndex,
    pub(super) cache: ContentCache,
    pub(super) stats: Stats,
    /// Downloads under way, so concurrent searches fetch each object once.
    inflight: Mutex<HashMap<String, Shared<BoxFuture<'static, EnvResult<Bytes>>>>>,
    /// For `fs://`: the folder, confined like the local environment. A folder
    /// has symlinks, which opendal follows wherever they point; so reads,
    /// stats and listings go through the root's descriptor instead, and
    /// changes are checked first.
    local: Option<Arc<Beneath>>,
}

#[derive(Default)]
pub(super) struct Stats {
    pub hits: AtomicU64,
    pub fetches: AtomicU64,
}

/// How the caches did, for logs, tests and benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheStats {
    /// File contents served from the content cache.
    pub hits: u64,
    /// File contents fetched from the service for a search.
    pub fetches: u64,
    /// Full listings of the service.
    pub listings: u64,
    /// Bytes the content cache holds.
    pub cached_bytes: u64,
}

impl ObjectEnv {
    /// Opens `url` with settings from the process environment, and checks that
    /// the bucket is there and the credentials work, so a mistake stops the
    /// server at start with a message instead of failing every request.
    pub async fn open(url: &str, args: &ObjectArgs) -> anyhow::Result<Self> {
        Self::open_with(url, args, &|name| std::env::var(name).ok()).await
    }

    /// [`ObjectEnv::open`] with environment variables from `var`.
    pub async fn open_with(url: &str, args: &ObjectArgs, var: &(dyn Fn(&str) -> Option<String> + Sync)) -> anyhow::Result<Self> {
        let location = Location::parse(url)?;
        let root = location.url();
        let op = location.operator(args, var).map_err(|e| anyhow!("cannot open {root}: {e}"))?;
        check_access(&op, &location).await?;
        let cache = match &args.object_cache_dir {
            Some(dir) => ContentCache::disk(args.object_cache_size, &root, dir).map_err(|e| anyhow!("content cache: {e}"))?,
            None => ContentCache::memory(args.object_cache_size, &root),
        };
        let limits = StreamLimits { concurrency: args.object_concurrency.max(1), ..StreamLimits::default() };
        let index = ListingIndex::new(op.clone(), args.index_max_age());
        let local = match location.service {
            Service::Fs => {
                let folder = std::fs::canonicalize(format!("/{}", location.prefix)).map_err(|e| anyhow!("cannot serve {root}: {e}"))?;
                Some(Arc::new(Beneath::new(&folder).map_err(|e| anyhow!("cannot serve {root}: {e}"))?))
            }
            _ => None,
        };
        let snapshots = ObjectSnapshots::location(&location, var("BURROW_OBJECT_SNAPSHOTS"))
            .and_then(|(loc, skip)| Ok(ObjectSnapshots::new(loc.operator(args, var)?, loc.url(), skip)))
            .map_err(|e| format!("no snapshot location for {root}: {e:#}"));
        let text = crate::search::trigram::live::settings().map(|settings| ObjectText::new(&root, settings, limits));
        if let Some(text) = &text {
            text.load();
        }
        let shared = Arc::new(Store { index, op, cache, stats: Stats::default(), inflight: Mutex::default(), local });
        Ok(Self { shared, root, limits, snapshots, text })
    }

    /// Every file of the workspace with its size and validator, from a fresh enough listing.
    pub(super) async fn all_files(&self) -> EnvResult<Vec<(String, u64, Option<String>)>> {
        self.shared.index.fresh().await?;
        Ok(self.shared.index.read(|l| l.files().map(|(p, m)| (p.clone(), m.size, m.validator())).collect()))
    }

    fn store(&self) -> EnvResult<&ObjectSnapshots> {
        self.snapshots.as_ref().map_err(|why| EnvError::Unsupported(format!("keep snapshots: {why}")))
    }

    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            hits: self.shared.stats.hits.load(Ordering::Relaxed),
            fetches: self.shared.stats.fetches.load(Ordering::Relaxed),
            listings: self.shared.index.listings(),
            cached_bytes: self.shared.cache.used(),
        }
    }
}

impl Store {
    /// Fetches an object's bytes from the service; a caller that asks for an
    /// object already being fetched waits for that download instead.
    pub(super) async fn fetch(&self, path: &WorkspacePath, max_bytes: u64) -> EnvResult<Bytes> {
        if let Some(fs) = &self.local {
            let path = path.clone();
            return fs.with(move |fs| fs.read(&path, max_bytes)).await;
        }
        let download = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            let (op, path) = (self.op.clone(), path.clone());
            inflight.entry(format!("{max_bytes}:{path}")).or_insert_with(|| download(op, path, max_bytes).boxed().shared()).clone()
        };
        let result = download.await;
        self.inflight.lock().unwrap_or_else(|e| e.into_inner()).remove(&format!("{max_bytes}:{path}"));
        result
    }
}

impl ObjectEnv {
    /// Whether any key lies below `path/` (or a folder or marker is there).
    async fn is_dir(&self, path: &WorkspacePath) -> EnvResult<bool> {
        if path.is_root() {
            return Ok(true);
        }
        match self.shared.op.list_with(&dir_key(path)).limit(1).await {
            Ok(entries) => Ok(!entries.is_empty()),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(false),
            Err(e) => Err(env_error(e, &path.to_string())),
        }
    }

    /// The metadata of a file, or `None` for a folder.
    async fn head(&self, path: &WorkspacePath) -> EnvResult<Option<opendal::Metadata>> {
        if path.is_root() {
            return Ok(None);
        }
        match self.shared.op.stat(path.as_str()).await {
            Ok(m) if m.mode() == EntryMode::DIR => Ok(None),
            Ok(m) => Ok(Some(m)),
            // A prefix has no object of its own; some servers answer a HEAD on
            // one with an error other than 404, so ask the listing either way.
            Err(e) => match self.is_dir(path).await {
                Ok(true) => Ok(None),
                _ => Err(env_error(e, &path.to_string())),
            },
        }
    }

    /// Moves one object, the cheapest way the service allows.
    async fn move_object(&self, from: &str, to: &str) -> EnvResult<()> {
        let cap = self.shared.op.info().full_capability();
        let shown = format!("{from} -> {to}");
        let err = |e| env_error(e, &shown);
        if cap.rename {
            return self.shared.op.rename(from, to).await.map_err(err);
        }
        if cap.copy {
            self.shared.op.copy(from, to).await.map_err(err)?;
        } else {
            let data = self.shared.op.read(from).await.map_err(err)?;
            self.shared.op.write(to, data).await.map_err(err)?;
        }
        self.shared.op.delete(from).await.map_err(err)
    }
}

async fn download(op: Operator, path: WorkspacePath, max_bytes: u64) -> EnvResult<Bytes> {
    let buf = op.read(path.as_str()).await.map_err(|e| env_error(e, &path.to_string()))?;
    if buf.len() as u64 > max_bytes {
        return Err(EnvError::TooLarge { path: path.to_string(), size: buf.len() as u64, limit: max_bytes });
    }
    Ok(buf.to_bytes())
}

/// The opendal path of a folder: `a/b/`, or `/` for the root.
fn dir_key(path: &WorkspacePath) -> String {
    if path.is_root() {
        "/".to_string()
    } else {
        format!("{}/", path.as_str())
    }
}

/// Lists the root once, turning the usual mistakes into messages that say what to fix.
async fn check_access(op: &Operator, location: &Location) -> anyhow::Result<()> {
    let err = match op.list_with("/").limit(1).await {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    let what = match location.service {
        Service::Azblob => "container",
        Service::Webdav { .. } => "folder",
        _ => "bucket",
    };
    let credentials = match location.service {
        Service::S3 => "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        Service::Gcs => "GOOGLE_APPLICATION_CREDENTIALS",
        Service::Azblob => "AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY",
        Service::Webdav { .. } => "BURROW_WEBDAV_USERNAME and BURROW_WEBDAV_PASSWORD",
        Service::Fs | Service::Memory => "the folder's permissions",
    };
    let detail = detail(&err);
    let hint = if detail.contains("NoSuch") || detail.contains("NotFound") || err.kind() == ErrorKind::NotFound {
        format!("the {what} {:?} does not exist", location.authority)
    } else if err.kind() == ErrorKind::PermissionDenied {
        format!("access denied; check {credentials}")
    } else if err.is_temporary() || err.is_persistent() {
        "the storage service cannot be reached".to_string()
    } else {
        "the storage service refused the request".to_string()
    };
    Err(anyhow!("cannot open {}: {hint} ({detail})", location.url()))
}

#[async_trait]
impl Env for ObjectEnv {
    fn kind(&self) -> &'static str {
        "object"
    }

    fn root(&self) -> &str {
        &self.root
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { exec: false, pty: false, watch: false, search: SearchBackend::CachedIndex }
    }

    fn snapshots(&self) -> Result<&'static str, String> {
        self.snapshots.as_ref().map(|_| "store").map_err(Clone::clone)
    }

    async fn snapshot_track(&self) -> EnvResult<String> {
        self.store()?.track(self).await
    }

    async fn snapshot_changes(&self, from: &str, to: &str) -> EnvResult<Vec<SnapshotChange>> {
        self.store()?.changes(from, to).await
    }

    async fn snapshot_blob(&self, id: &str) -> EnvResult<Bytes> {
        self.store()?.blob(id).await
    }

    async fn snapshot_restore(&self, hash: &str, files: Option<Vec<String>>) -> EnvResult<()> {
        self.store()?.restore(self, hash, files).await
    }

    async fn snapshot_prune(&self, keep: Vec<String>, max_age: std::time::Duration) -> EnvResult<crate::env::SnapshotPruned> {
        self.store()?.prune(&keep, max_age).await
    }

    /// Keys are lexical: a checked [`WorkspacePath`] cannot leave the prefix,
    /// and object storage has no symlinks. A `fs://` folder has them, and
    /// they are confined as in the local environment.
    async fn confine(&self, path: &WorkspacePath) -> EnvResult<()> {
        match &self.shared.local {
            Some(fs) => {
                let path = path.clone();
                fs.with(move |fs| fs.resolve(&path).map(drop)).await
            }
            None => Ok(()),
        }
    }

    async fn list(&self, dir: &WorkspacePath) -> EnvResult<Vec<DirEntry>> {
        if let Some(fs) = &self.shared.local {
            let dir = dir.clone();
            return fs.with(move |fs| fs.list(&dir)).await;
        }
        let key = dir_key(dir);
        let prefix = if dir.is_root() { "" } else { key.as_str() };
        let entries = self.shared.op.list(&key).await.map_err(|e| env_error(e, &dir.to_string()))?;
        // Services differ: a file system lists the folder itself, S3 does not;
        // a key may also be a prefix. One name, one entry, folders first.
        let mut found: BTreeMap<String, EntryKind> = BTreeMap::new();
        for e in &entries {
            let Some(rest) = e.path().strip_prefix(prefix) else { continue };
            let is_dir = rest.ends_with('/') || e.metadata().mode() == EntryMode::DIR;
            let name = rest.trim_end_matches('/');
            // Keys may hold anything; only names a workspace path can carry are listed.
            if matches!(name, "" | "." | "..") || name.contains(['/', '\\', '\0']) {
                continue;
            }
            let kind = if is_dir { EntryKind::Directory } else { EntryKind::File };
            let slot = found.entry(name.to_string()).or_insert(kind);
            if kind == EntryKind::Directory {
                *slot = kind;
            }
        }
        if found.is_empty() && !dir.is_root() {
            // Empty, missing, or a file: only a stat can tell. The listing
            // worked, so a stat that fails otherwise (some servers cannot HEAD
            // a leftover folder) still means there is nothing here.
            match self.stat(dir).await {
                Ok(m) if m.kind == EntryKind::File => return Err(EnvError::NotADirectory(dir.to_string())),
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!("listing {dir}: nothing below it, and stat says {e}");
                    return Err(EnvError::NotFound(dir.to_string()));
                }
            }
        }
        Ok(found.into_iter().map(|(name, kind)| DirEntry { name, kind }).collect())
    }

    async fn stat(&self, path: &WorkspacePath) -> EnvResult<Metadata> {
        if let Some(fs) = &self.shared.local {
            let path = path.clone();
            return fs.with(move |fs| fs.stat(&path)).await;
        }
        Ok(match self.head(path).await? {
            Some(m) => {
                let meta = ObjectMeta::from_opendal(&m);
                Metadata { kind: EntryKind::File, size: meta.size, modified_ms: meta.modified_ms.map(|ms| ms.max(0) as u64) }
            }
            None => Metadata { kind: EntryKind::Directory, size: 0, modified_ms: None },
        })
    }

    async fn read(&self, path: &WorkspacePath, max_bytes: u64) -> EnvResult<Bytes> {
        if self.shared.local.is_some() {
            // A local folder needs no cache in front of it.
            return self.shared.fetch(path, max_bytes).await;
        }
        let meta = self.head(path).await?.ok_or_else(|| EnvError::IsADirectory(path.to_string()))?;
        let meta = ObjectMeta::from_opendal(&meta);
        if meta.size > max_bytes {
            return Err(EnvError::TooLarge { path: path.to_string(), size: meta.size, limit: max_bytes });
        }
        if let Some(bytes) = self.shared.cache.get(path.as_str(), &meta).await {
            return Ok(bytes);
        }
        let bytes = self.shared.fetch(path, max_bytes).await?;
        self.shared.cache.put(path.as_str(), &meta, bytes.clone()).await;
        Ok(bytes)
    }

    async fn write(&self, path: &WorkspacePath, data: Bytes) -> EnvResult<()> {
        if let Some(fs) = &self.shared.local {
            let p = path.clone();
            let meta = fs.with(move |fs| fs.write(&p, &data).and_then(|()| fs.stat(&p))).await?;
            let modified_ms = meta.modified_ms.and_then(|ms| i64::try_from(ms).ok());
            self.shared.index.apply(Change::Put(path.clone(), ObjectMeta { size: meta.size, etag: None, modified_ms }));
            return Ok(());
        }
        if path.is_root() || self.is_dir(path).await? {
            return Err(EnvError::IsADirectory(path.to_string()));
        }
        // A file cannot hold children; the index knows the files above.
        if let Some(file) = path.ancestors().find(|a| !a.is_root() && self.shared.index.read(|l| l.file(a).is_ok())) {
            return Err(EnvError::NotADirectory(file.to_string()));
        }
        let size = data.len() as u64;
        let written = self.shared.op.write(path.as_str(), data).await.map_err(|e| env_error(e, &path.to_string()))?;
        self.shared.cache.remove(path.as_str()).await;
        let meta = ObjectMeta { size, etag: written.etag().map(str::to_string), modified_ms: written.last_modified().map(|t| t.timestamp_millis()) };
        self.shared.index.apply(Change::Put(path.clone(), meta));
        Ok(())
    }

    async fn mkdir_all(&self, path: &WorkspacePath) -> EnvResult<()> {
        if path.is_root() {
            return Ok(());
        }
        if let Some(fs) = &self.shared.local {
            let p = path.clone();
            fs.with(move |fs| fs.mkdir_all(&p).map(drop)).await?;
        } else {
            self.shared.op.create_dir(&dir_key(path)).await.map_err(|e| env_error(e, &path.to_string()))?;
        }
        self.shared.index.apply(Change::Mkdir(path.clone()));
        Ok(())
    }

    async fn remove(&self, path: &WorkspacePath) -> EnvResult<()> {
        if path.is_root() {
            return Err(EnvError::InvalidInput("refusing to remove the workspace root".into()));
        }
        if let Some(fs) = &self.shared.local {
            let p = path.clone();
            fs.with(move |fs| fs.remove(&p)).await?;
            self.shared.index.apply(Change::Remove(path.clone()));
            return Ok(());
        }
        let shown = path.to_string();
        match self.head(path).await? {
            Some(_) => self.shared.op.delete(path.as_str()).await.map_err(|e| env_error(e, &shown))?,
            None => self.shared.op.remove_all(&dir_key(path)).await.map_err(|e| env_error(e, &shown))?,
        }
        self.shared.cache.remove(path.as_str()).await;
        self.shared.index.apply(Change::Remove(path.clone()));
        Ok(())
    }

    /// Object stores have no rename: a file is copied and deleted, a folder
    /// one object at a time, so a folder rename is not atomic there.
    async fn rename(&self, from: &WorkspacePath, to: &WorkspacePath) -> EnvResult<()> {
        if from.is_root() || to.is_root() || to.starts_with(from) {
            return Err(EnvError::InvalidInput(format!("cannot move {from} to {to}")));
        }
        if let Some(fs) = &self.shared.local {
            let (f, t) = (from.clone(), to.clone());
            fs.with(move |fs| fs.rename(&f, &t)).await?;
            // What moved (a folder's files) is learnt from the next listing.
            self.shared.index.invalidate();
            return Ok(());
        }
        let moved: Vec<(WorkspacePath, u64)> = match self.head(from).await? {
            Some(m) => {
                self.move_object(from.as_str(), to.as_str()).await?;
                vec![(to.clone(), m.content_length())]
            }
            None => {
                let key = dir_key(from);
                let entries = self.shared.op.list_with(&key).recursive(true).await.map_err(|e| env_error(e, &from.to_string()))?;
                let mut moved = Vec::new();
                for e in entries.iter().filter(|e| !e.path().ends_with('/')) {
                    let rel = e.path().strip_prefix(&key).unwrap_or(e.path());
                    let dest = to.join_checked(rel)?;
                    self.move_object(e.path(), dest.as_str()).await?;
                    moved.push((dest, e.metadata().content_length()));
                }
                // Folders and markers left behind.
                self.shared.op.remove_all(&key).await.map_err(|e| env_error(e, &from.to_string()))?;
                self.shared.index.apply(Change::Mkdir(to.clone()));
                moved
            }
        };
        self.shared.cache.remove(from.as_str()).await;
        self.shared.index.apply(Change::Remove(from.clone()));
        for (path, size) in moved {
            self.shared.cache.remove(path.as_str()).await;
            // No validator until the next listing: the first search fetches it.
            self.shared.index.apply(Change::Put(path, ObjectMeta { size, etag: None, modified_ms: None }));
        }
        Ok(())
    }

    async fn walk(&self, dir: &WorkspacePath) -> EnvResult<Vec<IndexEntry>> {
        self.shared.index.fresh().await?;
        stream::walk(&CachedTree { env: &self.shared }, dir, self.limits).await
    }

    async fn grep(&self, req: GrepRequest) -> EnvResult<GrepResult> {
        self.shared.index.fresh().await?;
        let tree = CachedTree { env: &self.shared };
        let narrowed = self.text.as_ref().and_then(|t| t.narrow(&req));
        let result = match &narrowed {
            Some(n) => stream::grep_where(&tree, &req, self.limits, &|p| n.may_match(&self.shared.index, p)).await,
            None => stream::grep(&tree, &req, self.limits).await,
        };
        if let Some(text) = &self.text {
            // After the search, so that a first build reads what it just put in the cache.
            text.after_search(&self.shared, narrowed.as_ref().map(|n| n.changed()));
        }
        let s = self.cache_stats();
        tracing::debug!(hits = s.hits, fetches = s.fetches, listings = s.listings, cached_bytes = s.cached_bytes, "object search done (totals)");
        result
    }

    async fn exec(&self, _req: ExecRequest) -> EnvResult<Process> {
        Err(no_compute(&self.root, "run commands"))
    }

    async fn pty(&self, _req: PtyRequest) -> EnvResult<Pty> {
        Err(no_compute(&self.root, "open terminals"))
    }

    async fn watch(&self) -> EnvResult<Option<mpsc::Receiver<WatchEvent>>> {
        Ok(None)
    }

    async fn refresh(&self) -> EnvResult<()> {
        self.shared.index.invalidate();
        if let Some(text) = &self.text {
            text.rebuild(&self.shared);
        }
        Ok(())
    }

    async fn text_index(&self) -> Option<TextIndexStatus> {
        self.text.as_ref().map(|t| t.status(&self.shared.index))
    }
}

fn no_compute(root: &str, what: &str) -> EnvError {
    EnvError::Unsupported(format!("{what}: {root} is object storage, with no compute next to the data (files and search work; see GET /burrow/capabilities)"))
}
