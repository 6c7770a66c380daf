//! The snapshot store behind undo and redo: the workspace's files as git
//! objects, kept apart from the project's own `.git`.
//!
//! Why git's format: OpenCode records snapshots as git tree hashes (the
//! `snapshot` of a step-start part, the `hash` of a patch part), and a store
//! that `git --git-dir=STORE` can read is easy to inspect and to trust. Why not
//! git itself: Burrow runs where there may be no `git` (a scratch container, a
//! bare SSH host), so the same Rust code runs in the server for local folders
//! and in the helper next to the data for Docker and SSH.
//!
//! - **Objects** are loose objects (`objects/xx/yyyy…`, zlib of `blob|tree
//!   <len>\0<body>`, named by SHA-1), each written to a temporary file and
//!   renamed into place, so a kill leaves an object whole or absent.
//! - **Trees** follow git's rules (modes `100644`, `100755`, `40000`; entries
//!   ordered as if a directory's name ended in `/`), so a tree hash here is the
//!   hash `git write-tree` gives for the same files.
//! - **The file list** is the search walk's (`burrow_search::walk`): ignore
//!   files honoured, `.git` skipped, symlinks neither followed nor listed, and
//!   files over [`MAX_FILE`] left out, as OpenCode leaves out large untracked files.
//! - **The stat cache** (`burrow-stat`) maps a path with its size, modification
//!   time and inode to its blob, so a snapshot of an unchanged tree costs a walk
//!   and a `stat` per file, no reads. An entry modified within [`RACY`] of the
//!   snapshot is not cached (git's "racily clean" problem: a write in the same
//!   clock tick would keep the time and size).
//! - **The journal** ([`journal`]): where a watcher runs for the root, it
//!   reports the changed paths, and the store keeps the last snapshot's
//!   folders with their tree ids (`tree.rs`), so the next snapshot re-reads
//!   only those paths (by a partial walk with the same ignore rules) and
//!   re-hashes only the folders on their way: an unchanged tree costs a sync
//!   with the watcher and no walk. Any doubt about the journal means a whole walk.
//! - **A restore is journalled** (`burrow-restore`): the target is written
//!   before any file changes and removed once all are done; opening the store
//!   finishes a restore that a kill interrupted, so the workspace ends in the
//!   new state, never a mix of old and new.

use std::collections::HashSet;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use crate::env::{EntryKind, EnvError, EnvResult, SnapshotChange};

pub mod journal;
mod tree;

pub use journal::Journal;
use journal::{Rules, Taken};
use tree::Node;

/// Where local workspaces keep their stores, once [`init`] ran.
static LOCAL_BASE: OnceLock<PathBuf> = OnceLock::new();

/// Sets the folder under which local workspaces keep their snapshot stores
/// (`<data dir>/snapshot`), once per process.
pub fn init(base: &Path) {
    let _ = LOCAL_BASE.set(base.to_path_buf());
}

/// The folder of the local stores, once [`init`] ran.
pub fn local_base() -> Option<&'static Path> {
    LOCAL_BASE.get().map(PathBuf::as_path)
}

/// The store folder of the local workspace at `root`: one per root, named by
/// a digest of its path, so two served folders never share a stat cache.
pub fn local_dir(root: &Path) -> Result<PathBuf, String> {
    let base = LOCAL_BASE.get().ok_or_else(|| "no data folder was set for snapshots".to_string())?;
    let digest = sha2::Sha256::digest(root.as_os_str().as_encoded_bytes());
    Ok(base.join(&hex::encode(digest)[..16]))
}

/// A store opened on first use, shared by every call: environments hold one,
/// so a server that never snapshots never creates the folder.
pub struct Lazy {
    dir: PathBuf,
    root: PathBuf,
    /// The watcher's record of changes, which the store trusts when it can.
    journal: Arc<Journal>,
    store: tokio::sync::OnceCell<Arc<Store>>,
}

impl Lazy {
    /// Sync markers go to `<dir>/watch`, which the root's watcher watches too.
    pub fn new(dir: PathBuf, root: PathBuf) -> Self {
        let journal = Journal::new(&root, &dir.join("watch"));
        Self { dir, root, journal, store: tokio::sync::OnceCell::new() }
    }

    /// The journal that the root's watcher feeds.
    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    /// The store, opened now if it is not yet; a failure is retried on the
    /// next call (a full disk may have room again).
    pub async fn get(&self) -> EnvResult<Arc<Store>> {
        self.store
            .get_or_try_init(|| async {
                let (dir, root, journal) = (self.dir.clone(), self.root.clone(), self.journal.clone());
                tokio::task::spawn_blocking(move || Store::open(&dir, &root).map(|s| Arc::new(s.with_journal(journal))))
                    .await
                    .map_err(|e| EnvError::Io(format!("the snapshot task failed: {e}")))?
            })
            .await
            .cloned()
    }

    /// Runs `f` on the store on the blocking pool.
    pub async fn with<T: Send + 'static>(&self, f: impl FnOnce(&Store) -> EnvResult<T> + Send + 'static) -> EnvResult<T> {
        let store = self.get().await?;
        tokio::task::spawn_blocking(move || f(&store)).await.map_err(|e| EnvError::Io(format!("the snapshot task failed: {e}")))?
    }

    pub async fn track(&self) -> EnvResult<String> {
        self.with(|s| s.track()).await
    }

    pub async fn changes(&self, from: &str, to: &str) -> EnvResult<Vec<SnapshotChange>> {
        let (from, to) = (from.to_string(), to.to_string());
        self.with(move |s| s.changes(&from, &to)).await
    }

    pub async fn blob(&self, id: &str) -> EnvResult<Vec<u8>> {
        let id = id.to_string();
        self.with(move |s| s.blob(&id)).await
    }

    pub async fn restore(&self, hash: &str, files: Option<Vec<String>>) -> EnvResult<()> {
        let hash = hash.to_string();
        self.with(move |s| s.restore(&hash, files.as_deref())).await
    }

    /// Prunes the store (`prune.rs`); one never created is left uncreated.
    pub async fn prune(&self, keep: Vec<String>, age: Duration) -> EnvResult<crate::env::SnapshotPruned> {
        if self.store.get().is_none() && !self.dir.join("objects").is_dir() {
            return Ok(Default::default());
        }
        self.with(move |s| s.prune(&keep, age)).await
    }
}

/// Files larger than this are left out of snapshots (OpenCode's limit).
pub const MAX_FILE: u64 = 2 * 1024 * 1024;
/// A file modified this close to a snapshot is hashed again next time.
pub const RACY: Duration = Duration::from_secs(2);

const STAT_FILE: &str = "burrow-stat";
const JOURNAL: &str = "burrow-restore";
/// The hash of git's empty tree.
pub const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// One file of a flattened tree: its mode (`100644` or `100755`) and blob id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub mode: &'static str,
    pub blob: String,
}

/// What the stat cache knows of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stat {
    ino: u64,
    size: u64,
    mtime_ns: i128,
    mode: &'static str,
    blob: String,
}

/// One file read for a snapshot.
struct Snapped {
    entry: Entry,
    /// What the stat cache may keep of it (not when it changed just now).
    stat: Option<Stat>,
    /// It has more than one link.
    linked: bool,
}

/// A restore in progress, as the journal holds it.
#[derive(Debug, Serialize, Deserialize)]
struct Restore {
    hash: String,
    /// The files to restore; `None`: every file of the snapshot.
    files: Option<Vec<String>>,
}

/// A snapshot store for the workspace at `root`, kept in `dir`.
pub struct Store {
    dir: PathBuf,
    root: PathBuf,
    /// One operation at a time: a snapshot reads and rewrites the stat cache.
    lock: Mutex<()>,
    /// The watcher's record of changes, when one watches the root.
    journal: Option<Arc<Journal>>,
    /// The last snapshot's folders, while the journal can vouch for them.
    last: Mutex<Option<Last>>,
    /// How many snapshots walked the whole tree (the others re-read only what the watcher reported).
    walks: AtomicU64,
}

/// The last snapshot, kept for the next one to change only what changed since.
struct Last {
    /// The journal's epoch when it was taken: a later watcher knows nothing of before.
    epoch: u64,
    /// The ignore settings outside the root, as they were then.
    rules: Rules,
    tree: Node,
    hash: String,
    /// Files with more than one link: a write through a link outside the
    /// watched folders reports no event here, so they are read every time.
    linked: HashSet<String>,
}

impl Store {
    /// Opens (creating) the store in `dir` for the files below `root`, and
    /// finishes a restore that was interrupted.
    pub fn open(dir: &Path, root: &Path) -> EnvResult<Self> {
        let store =
            Self { dir: dir.to_path_buf(), root: root.to_path_buf(), lock: Mutex::new(()), journal: None, last: Mutex::new(None), walks: AtomicU64::new(0) };
        store.init().map_err(|e| io_err(e, "cannot create the snapshot store", dir))?;
        let journal = dir.join(JOURNAL);
        match fs::read(&journal) {
            Ok(bytes) => {
                let r: Restore = serde_json::from_slice(&bytes)
                    .map_err(|e| EnvError::Io(format!("the snapshot restore journal {} is unreadable: {e}", journal.display())))?;
                tracing::warn!(hash = %r.hash, "finishing an interrupted snapshot restore");
                store.restore(&r.hash, r.files.as_deref())?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e, "cannot read the snapshot restore journal", &journal)),
        }
        Ok(store)
    }

    /// Trusts `journal` (fed by a watcher of the root) to say what changed
    /// between snapshots; see [`journal`] for when it is not trusted.
    pub fn with_journal(mut self, journal: Arc<Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// How many snapshots so far walked the whole tree.
    pub fn walks(&self) -> u64 {
        self.walks.load(Ordering::Relaxed)
    }

    /// Lays out enough of a git directory for `git --git-dir` to accept it.
    fn init(&self) -> io::Result<()> {
        fs::create_dir_all(self.dir.join("objects"))?;
        fs::create_dir_all(self.dir.join("refs/heads"))?;
        let head = self.dir.join("HEAD");
        if !head.exists() {
            atomic_write(&head, b"ref: refs/heads/main\n")?;
        }
        let config = self.dir.join("config");
        if !config.exists() {
            atomic_write(&config, b"[core]\n\trepositoryformatversion = 0\n\tbare = true\n")?;
        }
        Ok(())
    }

    /// The folder the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records the workspace as it is now; returns its tree hash.
    pub fn track(&self) -> EnvResult<String> {
        let _held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        // Against a prune in another process or store handle (`prune.rs`).
        let _file = prune::FileLock::for_writer(&self.dir)?;
        self.track_locked()
    }

    fn track_locked(&self) -> EnvResult<String> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let taken = match &self.journal {
            Some(journal) => journal.take(last.as_ref().map(|l| l.epoch)),
            None => Taken::Walk { epoch: 0 },
        };
        let epoch = match taken {
            Taken::Changes { epoch, mut dirty } => {
                // Taken only when `last` is there, for this epoch.
                let mut known = last.take().ok_or_else(|| EnvError::Io("the last snapshot is missing".into()))?;
                // A prune keeps every stored root tree a session names or
                // that is young, with all it reaches; a root it removed
                // (the server idle longer than the age) means a walk.
                let kept = self.object_path(&known.hash)?.exists();
                if kept && known.rules == Rules::now(&self.root) {
                    dirty.extend(known.linked.iter().cloned());
                    if dirty.is_empty() {
                        prune::freshen(&self.object_path(&known.hash)?)?;
                    } else {
                        self.reread(&mut known, &dirty)?;
                        known.hash = self.write_tree(&mut known.tree)?;
                    }
                    let hash = known.hash.clone();
                    *last = Some(known);
                    return Ok(hash);
                }
                epoch
            }
            Taken::Walk { epoch } => epoch,
        };
        *last = None;
        // Before the walk: a change to them during it is seen next time.
        let rules = Rules::now(&self.root);
        let (files, linked) = self.walk_all()?;
        let mut tree = Node::from_files(&files);
        let hash = self.write_tree(&mut tree)?;
        self.walks.fetch_add(1, Ordering::Relaxed);
        if epoch != 0 {
            *last = Some(Last { epoch, rules, tree, hash: hash.clone(), linked });
        }
        Ok(hash)
    }

    /// Every file of the tree now, by a whole walk (with the stat cache), and
    /// those with more than one link.
    fn walk_all(&self) -> EnvResult<(BTreeMap<String, Entry>, HashSet<String>)> {
        let started = SystemTime::now();
        let cache = self.load_stat();
        let mut next = HashMap::with_capacity(cache.len());
        let mut files: BTreeMap<String, Entry> = BTreeMap::new();
        let mut linked = HashSet::new();
        for entry in burrow_search::walk::walk(&self.root)? {
            if entry.kind != EntryKind::File {
                continue;
            }
            let Some(snapped) = self.snap_file(&entry.path, Some(&cache), started)? else { continue };
            if let Some(stat) = snapped.stat {
                next.insert(entry.path.clone(), stat);
            }
            if snapped.linked {
                linked.insert(entry.path.clone());
            }
            files.insert(entry.path, snapped.entry);
        }
        if next != cache {
            self.save_stat(&next)?;
        }
        Ok((files, linked))
    }

    /// One listed file as a snapshot holds it (its blob stored), and what the
    /// stat cache may keep of it; `None` when it is not part of a snapshot
    /// (gone since the walk, not a regular file, too large).
    fn snap_file(&self, rel: &str, cache: Option<&HashMap<String, Stat>>, started: SystemTime) -> EnvResult<Option<Snapped>> {
        let full = self.root.join(rel);
        // Gone since the walk, or unreadable: not part of this snapshot.
        let Ok(meta) = fs::symlink_metadata(&full) else { return Ok(None) };
        if !meta.is_file() || meta.len() > MAX_FILE {
            return Ok(None);
        }
        let mode = if meta.mode() & 0o111 != 0 { "100755" } else { "100644" };
        let mtime_ns = meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128;
        let known = cache.and_then(|c| c.get(rel)).filter(|s| s.ino == meta.ino() && s.size == meta.len() && s.mtime_ns == mtime_ns);
        let blob = match known {
            Some(s) => s.blob.clone(),
            None => {
                let data = match fs::read(&full) {
                    Ok(d) => d,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(io_err(e, "cannot read a file to snapshot", &full)),
                };
                self.write_object("blob", &data)?
            }
        };
        let stat = (!racy(&meta, started) && !rel.contains('\n')).then(|| Stat { ino: meta.ino(), size: meta.len(), mtime_ns, mode, blob: blob.clone() });
        Ok(Some(Snapped { entry: Entry { mode, blob }, stat, linked: meta.nlink() > 1 }))
    }

    /// Brings `tree` up to date for the `dirty` paths (files or folders, as the
    /// watcher reported them): each is dropped, then what a whole walk would
    /// list at or below it now is read again. A partial walk lists them, so
    /// the ignore rules are the whole walk's.
    fn reread(&self, last: &mut Last, dirty: &HashSet<String>) -> EnvResult<()> {
        let mut on_way = HashSet::new();
        for path in dirty {
            let mut p = path.as_str();
            while let Some((parent, _)) = p.rsplit_once('/') {
                if !on_way.insert(parent.to_string()) {
                    break;
                }
                p = parent;
            }
        }
        let wanted = Arc::new(dirty.clone());
        let keep = wanted.clone();
        let listed = burrow_search::walk::walk_only(&self.root, move |rel| on_way.contains(rel) || at_or_below(rel, &keep))?;
        for path in dirty {
            last.tree.remove(path);
        }
        last.linked.retain(|path| !at_or_below(path, &wanted));
        let started = SystemTime::now();
        for entry in listed {
            if entry.kind == EntryKind::File && at_or_below(&entry.path, &wanted) {
                if let Some(snapped) = self.snap_file(&entry.path, None, started)? {
                    if snapped.linked {
                        last.linked.insert(entry.path.clone());
                    }
                    last.tree.insert(&entry.path, snapped.entry);
                }
            }
        }
        Ok(())
    }

    /// The files that differ between the snapshots `from` and `to`, each with
    /// its blob before and after (`None`: absent), in path order.
    pub fn changes(&self, from: &str, to: &str) -> EnvResult<Vec<SnapshotChange>> {
        Ok(compare(&self.files(from)?, &self.files(to)?))
    }

    /// Every file of the snapshot `hash`, by path.
    pub fn files(&self, hash: &str) -> EnvResult<BTreeMap<String, Entry>> {
        let mut out = BTreeMap::new();
        self.flatten(hash, "", &mut out)?;
        Ok(out)
    }

    fn flatten(&self, tree: &str, prefix: &str, out: &mut BTreeMap<String, Entry>) -> EnvResult<()> {
        let body = self.read_object(tree, "tree")?;
        for (mode, name, id) in parse_tree(tree, &body)? {
            let path = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            match mode {
                TreeMode::Dir => self.flatten(&id, &path, out)?,
                TreeMode::File(mode) => drop(out.insert(path, Entry { mode, blob: id })),
            }
        }
        Ok(())
    }

    /// The content of a blob.
    pub fn blob(&self, id: &str) -> EnvResult<Vec<u8>> {
        self.read_object(id, "blob")
    }

    /// Puts the workspace's `files` (all files of the snapshot when `None`)
    /// back as the snapshot `hash` holds them: each one in it is written back,
    /// each one absent from it is removed. With `None`, files that are not in
    /// the snapshot are left alone (as OpenCode's `restore`: a checkout of the
    /// snapshot's files). Journalled, see the module's notes.
    pub fn restore(&self, hash: &str, files: Option<&[String]>) -> EnvResult<()> {
        let _held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let _file = prune::FileLock::for_writer(&self.dir)?;
        let snapshot = self.files(hash)?;
        let journal = self.dir.join(JOURNAL);
        let record = serde_json::to_vec(&Restore { hash: hash.to_string(), files: files.map(<[String]>::to_vec) }).map_err(|e| EnvError::Io(e.to_string()))?;
        atomic_write(&journal, &record).map_err(|e| io_err(e, "cannot write the snapshot restore journal", &journal))?;
        let targets: Vec<String> = match files {
            Some(f) => f.to_vec(),
            None => snapshot.keys().cloned().collect(),
        };
        for rel in &targets {
            let full = self.confined(rel)?;
            match snapshot.get(rel) {
                Some(entry) => {
                    let data = self.blob(&entry.blob)?;
                    let same = fs::read(&full).is_ok_and(|now| now == data);
                    if !same {
                        if let Some(parent) = full.parent() {
                            fs::create_dir_all(parent).map_err(|e| io_err(e, "cannot create a folder to restore into", parent))?;
                        }
                        atomic_write(&full, &data).map_err(|e| io_err(e, "cannot restore a file", &full))?;
                    }
                    let perm = if entry.mode == "100755" { 0o755 } else { 0o644 };
                    let now = fs::metadata(&full).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
                    if now != perm {
                        fs::set_permissions(&full, fs::Permissions::from_mode(perm)).map_err(|e| io_err(e, "cannot set a restored file's mode", &full))?;
                    }
                }
                None => match fs::remove_file(&full) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(e, "cannot remove a file the snapshot does not hold", &full)),
                },
            }
        }
        fs::remove_file(&journal).map_err(|e| io_err(e, "cannot remove the snapshot restore journal", &journal))?;
        Ok(())
    }

    /// `rel` below the root, refused when it names `..`, or when a folder on
    /// its way is a symlink: a restore must not write through a link that was
    /// put in place since the snapshot.
    fn confined(&self, rel: &str) -> EnvResult<PathBuf> {
        let mut path = self.root.clone();
        let parts: Vec<&str> = rel.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            if part.is_empty() || *part == "." || *part == ".." {
                return Err(EnvError::Escape(rel.to_string()));
            }
            path.push(part);
            if i + 1 < parts.len() && fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(EnvError::Escape(rel.to_string()));
            }
        }
        if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(EnvError::Escape(rel.to_string()));
        }
        Ok(path)
    }

    /// Stores the trees of `tree` that changed; returns the root tree's hash.
    /// The root tree is freshened whether it was written now or before: a
    /// young tree keeps all it reaches from being pruned (`prune.rs`).
    fn write_tree(&self, tree: &mut Node) -> EnvResult<String> {
        let mut trees = Vec::new();
        let root = tree.hash(&mut trees)?;
        for (id, body) in trees {
            if !self.object_path(&id)?.exists() {
                let (_, packed) = encode_object("tree", &body)?;
                self.put_object(&id, &packed)?;
            }
        }
        prune::freshen(&self.object_path(&root)?)?;
        Ok(root)
    }

    fn object_path(&self, id: &str) -> EnvResult<PathBuf> {
        Ok(self.dir.join("objects").join(object_key(id)?))
    }

    /// Stores an object unless it is there already; returns its id.
    fn write_object(&self, kind: &str, body: &[u8]) -> EnvResult<String> {
        let id = object_id(kind, body);
        if self.object_path(&id)?.exists() {
            return Ok(id);
        }
        let (_, packed) = encode_object(kind, body)?;
        self.put_object(&id, &packed)?;
        Ok(id)
    }

    /// Writes an encoded object unless it is there already.
    fn put_object(&self, id: &str, packed: &[u8]) -> EnvResult<()> {
        let path = self.object_path(id)?;
        if path.exists() {
            return Ok(());
        }
        let parent = path.parent().unwrap_or(&self.dir);
        fs::create_dir_all(parent).map_err(|e| io_err(e, "cannot create a snapshot object folder", parent))?;
        atomic_write(&path, packed).map_err(|e| io_err(e, "cannot write a snapshot object", &path))
    }

    fn read_object(&self, id: &str, kind: &str) -> EnvResult<Vec<u8>> {
        let path = self.object_path(id)?;
        let packed = match fs::read(&path) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(EnvError::NotFound(format!("snapshot object {id}"))),
            Err(e) => return Err(io_err(e, "cannot read a snapshot object", &path)),
        };
        decode_object(id, kind, &packed)
    }

    /// The stat cache; an unreadable one is empty (everything is hashed again).
    fn load_stat(&self) -> HashMap<String, Stat> {
        let Ok(text) = fs::read_to_string(self.dir.join(STAT_FILE)) else { return HashMap::new() };
        let mut out = HashMap::new();
        for line in text.lines() {
            let mut f = line.splitn(6, ' ');
            let (Some(ino), Some(size), Some(mtime), Some(mode), Some(blob), Some(path)) = (f.next(), f.next(), f.next(), f.next(), f.next(), f.next()) else {
                continue;
            };
            let (Ok(ino), Ok(size), Ok(mtime_ns)) = (ino.parse(), size.parse(), mtime.parse()) else { continue };
            let mode = if mode == "100755" { "100755" } else { "100644" };
            out.insert(path.to_string(), Stat { ino, size, mtime_ns, mode, blob: blob.to_string() });
        }
        out
    }

    fn save_stat(&self, stat: &HashMap<String, Stat>) -> EnvResult<()> {
        let mut text = String::with_capacity(stat.len() * 96);
        for (path, s) in stat {
            text.push_str(&format!("{} {} {} {} {} {path}\n", s.ino, s.size, s.mtime_ns, s.mode, s.blob));
        }
        let path = self.dir.join(STAT_FILE);
        atomic_write(&path, text.as_bytes()).map_err(|e| io_err(e, "cannot write the snapshot stat cache", &path))
    }
}

/// The files that differ between two flattened snapshots, in path order.
pub fn compare(a: &BTreeMap<String, Entry>, b: &BTreeMap<String, Entry>) -> Vec<SnapshotChange> {
    let mut out = Vec::new();
    for (path, before) in a {
        match b.get(path) {
            Some(after) if after == before => {}
            after => out.push(SnapshotChange { path: path.clone(), before: Some(before.blob.clone()), after: after.map(|e| e.blob.clone()) }),
        }
    }
    for (path, after) in b {
        if !a.contains_key(path) {
            out.push(SnapshotChange { path: path.clone(), before: None, after: Some(after.blob.clone()) });
        }
    }
    out.sort_by(|x, y| x.path.cmp(&y.path));
    out
}

/// How a tree names an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeMode {
    Dir,
    /// `100644` or `100755` (git's symlinks and submodules, which this store
    /// never writes, read as plain files).
    File(&'static str),
}

/// The loose-object key of `id` (`xx/yyyy…`), checking that it is an id.
pub fn object_key(id: &str) -> EnvResult<String> {
    if id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(EnvError::InvalidInput(format!("{id:?} is not a snapshot id")));
    }
    let id = id.to_ascii_lowercase();
    Ok(format!("{}/{}", &id[..2], &id[2..]))
}

/// The git id of an object: SHA-1 of `<kind> <len>\0<body>`.
pub fn object_id(kind: &str, body: &[u8]) -> String {
    let mut hasher = Sha1::new();
    hasher.update(format!("{kind} {}\0", body.len()).as_bytes());
    hasher.update(body);
    hex::encode(hasher.finalize())
}

/// An object's id and its loose encoding (zlib of header and body).
pub fn encode_object(kind: &str, body: &[u8]) -> EnvResult<(String, Vec<u8>)> {
    let header = format!("{kind} {}\0", body.len());
    let mut z = flate2::write::ZlibEncoder::new(Vec::with_capacity(body.len() / 2 + 64), flate2::Compression::fast());
    z.write_all(header.as_bytes()).and_then(|_| z.write_all(body)).map_err(|e| EnvError::Io(format!("cannot compress a snapshot object: {e}")))?;
    let packed = z.finish().map_err(|e| EnvError::Io(format!("cannot compress a snapshot object: {e}")))?;
    Ok((object_id(kind, body), packed))
}

/// The body of the loose object `id`, which must be a `kind`.
pub fn decode_object(id: &str, kind: &str, packed: &[u8]) -> EnvResult<Vec<u8>> {
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(packed).read_to_end(&mut raw).map_err(|e| EnvError::Io(format!("the snapshot object {id} is corrupt: {e}")))?;
    let nul = raw.iter().position(|&b| b == 0).ok_or_else(|| EnvError::Io(format!("the snapshot object {id} is corrupt")))?;
    let header = String::from_utf8_lossy(&raw[..nul]);
    if header.split(' ').next() != Some(kind) {
        return Err(EnvError::InvalidInput(format!("snapshot object {id} is a {header}, not a {kind}")));
    }
    raw.drain(..=nul);
    Ok(raw)
}

/// The entries of a tree object's body: mode, name, id.
pub fn parse_tree(tree: &str, body: &[u8]) -> EnvResult<Vec<(TreeMode, String, String)>> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let bad = || EnvError::Io(format!("the snapshot tree {tree} is corrupt"));
        let space = rest.iter().position(|&b| b == b' ').ok_or_else(bad)?;
        let nul = rest.iter().position(|&b| b == 0).ok_or_else(bad)?;
        if nul < space || rest.len() < nul + 21 {
            return Err(bad());
        }
        let mode = match &rest[..space] {
            b"40000" => TreeMode::Dir,
            b"100755" => TreeMode::File("100755"),
            _ => TreeMode::File("100644"),
        };
        let name = String::from_utf8_lossy(&rest[space + 1..nul]).into_owned();
        out.push((mode, name, hex::encode(&rest[nul + 1..nul + 21])));
        rest = &rest[nul + 21..];
    }
    Ok(out)
}

/// A tree object: its id and its body (not yet encoded: most trees are stored already).
pub type TreeObject = (String, Vec<u8>);

/// The tree objects of `files` (to be stored unless they are), and the root tree's id.
pub fn tree_objects(files: &BTreeMap<String, Entry>) -> EnvResult<(String, Vec<TreeObject>)> {
    let mut out = Vec::new();
    let root = Node::from_files(files).hash(&mut out)?;
    Ok((root, out))
}

/// Whether `rel` is one of `paths` or lies below one.
fn at_or_below(rel: &str, paths: &HashSet<String>) -> bool {
    paths.contains(rel) || rel.match_indices('/').any(|(i, _)| paths.contains(&rel[..i]))
}

/// Modified within [`RACY`] of `started`, or in the future: not safe to cache.
fn racy(meta: &fs::Metadata, started: SystemTime) -> bool {
    match meta.modified() {
        Ok(m) => m + RACY >= started,
        Err(_) => true,
    }
}

/// Writes `data` to a temporary file beside `path`, then renames it over `path`.
fn atomic_write(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".burrow-tmp-").tempfile_in(dir)?;
    tmp.write_all(data)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn io_err(e: io::Error, what: &str, path: &Path) -> EnvError {
    EnvError::Io(format!("{what} ({}): {e}", path.display()))
}

mod prune;
pub use prune::{prune_all, prune_dir, DEFAULT_AGE as PRUNE_AGE, MIN_AGE as MIN_PRUNE_AGE};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod watch_tests;
