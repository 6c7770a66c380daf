//! Pruning a snapshot store: every track adds objects and nothing else ever
//! removes them, so without this the store grows for as long as the workspace
//! is served. OpenCode runs `git gc --prune=7.days` on its snapshot git
//! directory (at start and then on a timer); its snapshots have no refs, so
//! that drops every snapshot older than a week, even one a session still
//! needs for undo. Here the caller names the snapshots still referenced (by
//! sessions' step and patch parts and revert states), and an object goes only
//! when it is **neither** reachable from one of them **nor** young.
//!
//! What stays (the marking roots):
//! - every tree in `keep` and all it reaches; an id that is not a tree of this
//!   store is skipped (the caller passes one list to every store);
//! - every object younger than the age (its file's modification time), and
//!   everything a young *tree* reaches;
//! - the blobs the stat cache names, and the snapshot of an interrupted restore.
//!
//! Why a snapshot being written never loses an object:
//! - **Prune and track exclude each other.** Both hold the store's lock file
//!   (`burrow-lock`, an exclusive `flock`) for their whole run, besides the
//!   in-process mutex: two `Store`s on one folder (a helper that restarted
//!   while the old one finishes, a server pruning every local store while a
//!   workspace tracks) cannot interleave either. So a prune never runs between
//!   a track's "this object exists already" and its tree naming it.
//! - **A track freshens its root tree.** The tree it returns is written now or,
//!   when the same tree was stored before, has its modification time set to
//!   now (git freshens a loose object it would have written the same way).
//!   That tree is young, and a young tree keeps everything it reaches, however
//!   old: an unchanged file's blob from months ago stays with it. The caller
//!   then has the whole age (at least [`MIN_AGE`]) to record the id in a
//!   session before the snapshot depends on being referenced.
//! - **Deletion is by name, never by content**: a file under `objects/` that is
//!   not a loose object's name is left alone, and temporary files of a write
//!   that a kill interrupted go only once they are older than the age.
//!
//! Packs (which this store never writes; only `git gc` run by hand makes them)
//! are left as they are.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{io_err, parse_tree, Restore, Store, TreeMode, JOURNAL};
use crate::env::{EnvError, EnvResult, SnapshotPruned};

/// The default age under which objects stay, as OpenCode's `--prune=7.days`.
pub const DEFAULT_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// The least age a prune honours: a snapshot that was just taken must outlive
/// the moment between its track and its id being stored in a session.
pub const MIN_AGE: Duration = Duration::from_secs(3600);

const LOCK_FILE: &str = "burrow-lock";

/// The store's cross-process lock: an exclusive `flock` on `burrow-lock`,
/// released when dropped (the descriptor closes).
pub(super) struct FileLock(#[allow(dead_code)] fs::File);

impl FileLock {
    /// Waits for the lock of the store in `dir`.
    pub(super) fn take(dir: &Path) -> EnvResult<Self> {
        let path = dir.join(LOCK_FILE);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_err(e, "cannot open the snapshot store's lock", &path))?;
        loop {
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive) {
                Ok(()) => return Ok(Self(file)),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(io_err(e.into(), "cannot lock the snapshot store", &path)),
            }
        }
    }

    /// The lock for a track or a restore. Where the file system has no locks
    /// (some network homes) they go on without it: [`Store::prune`] needs the
    /// lock and fails there, so nothing is ever pruned under them.
    pub(super) fn for_writer(dir: &Path) -> EnvResult<Option<Self>> {
        match Self::take(dir) {
            Ok(lock) => Ok(Some(lock)),
            Err(e) if e.to_string().contains("cannot lock") => {
                tracing::debug!("snapshot store without a lock (no pruning there): {e}");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// Sets `path`'s modification time to now, as git freshens an object it finds
/// already stored; a missing file is an error (the caller just checked it).
pub(super) fn freshen(path: &Path) -> EnvResult<()> {
    let now = rustix::fs::Timespec { tv_sec: 0, tv_nsec: rustix::fs::UTIME_NOW };
    let times = rustix::fs::Timestamps { last_access: now, last_modification: now };
    rustix::fs::utimensat(rustix::fs::CWD, path, &times, rustix::fs::AtFlags::empty()).map_err(|e| io_err(e.into(), "cannot freshen a snapshot object", path))
}

impl Store {
    /// Removes the objects that no snapshot in `keep` reaches and that are
    /// older than `age` (raised to [`MIN_AGE`]); see the module's notes for
    /// what stays and why a concurrent track is safe.
    pub fn prune(&self, keep: &[String], age: Duration) -> EnvResult<SnapshotPruned> {
        let _held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        prune_locked(self, keep, age)
    }
}

/// Prunes the store in `dir` without opening it (no restore is finished, the
/// folder is not created): for stores of workspaces that are not served now.
pub fn prune_dir(dir: &Path, keep: &[String], age: Duration) -> EnvResult<SnapshotPruned> {
    let store = Store {
        dir: dir.to_path_buf(),
        root: Default::default(),
        lock: Default::default(),
        journal: None,
        last: Default::default(),
        walks: Default::default(),
    };
    prune_locked(&store, keep, age)
}

/// Prunes every store under `base` (the local stores' folder, one store per
/// served root, see `local_dir`); a store that fails is logged and the rest go on.
pub fn prune_all(base: &Path, keep: &[String], age: Duration) -> EnvResult<SnapshotPruned> {
    let mut total = SnapshotPruned::default();
    let entries = match fs::read_dir(base) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(total),
        Err(e) => return Err(io_err(e, "cannot list the snapshot stores", base)),
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        if !dir.join("objects").is_dir() {
            continue;
        }
        match prune_dir(&dir, keep, age) {
            Ok(p) => total.add(&p),
            Err(e) => tracing::warn!(store = %dir.display(), "cannot prune a snapshot store: {e}"),
        }
    }
    Ok(total)
}

fn prune_locked(store: &Store, keep: &[String], age: Duration) -> EnvResult<SnapshotPruned> {
    let _file = FileLock::take(&store.dir)?;
    let cutoff = SystemTime::now().checked_sub(age.max(MIN_AGE)).unwrap_or(SystemTime::UNIX_EPOCH);
    let objects = store.dir.join("objects");
    // Every loose object, with whether it is young.
    let mut all: Vec<(String, bool, u64)> = Vec::new();
    let mut temps = Vec::new();
    for fan in read_dir(&objects)? {
        let name = fan.file_name().to_string_lossy().into_owned();
        if name.len() != 2 || !name.bytes().all(|b| b.is_ascii_hexdigit()) || !fan.path().is_dir() {
            continue;
        }
        for obj in read_dir(&fan.path())? {
            let rest = obj.file_name().to_string_lossy().into_owned();
            let Ok(meta) = obj.metadata() else { continue };
            let young = meta.modified().map_or(true, |m| m > cutoff);
            if rest.starts_with(".burrow-tmp-") {
                if !young {
                    temps.push(obj.path());
                }
            } else if rest.len() == 38 && rest.bytes().all(|b| b.is_ascii_hexdigit()) {
                all.push((format!("{name}{rest}").to_ascii_lowercase(), young, meta.len()));
            }
        }
    }
    let mut live: HashSet<String> = HashSet::new();
    let mut roots: Vec<String> = keep.iter().map(|k| k.to_ascii_lowercase()).collect();
    if let Ok(bytes) = fs::read(store.dir.join(JOURNAL)) {
        if let Ok(r) = serde_json::from_slice::<Restore>(&bytes) {
            roots.push(r.hash);
        }
    }
    // Young objects stay; a young tree keeps what it reaches (a fresh snapshot of old files).
    for (id, young, _) in &all {
        if *young {
            if is_tree(&store.object_path(id)?) {
                roots.push(id.clone());
            } else {
                live.insert(id.clone());
            }
        }
    }
    live.extend(store.load_stat().into_values().map(|s| s.blob));
    for root in roots {
        mark(store, &root, &mut live)?;
    }
    let mut out = SnapshotPruned::default();
    for (id, _, size) in all {
        if live.contains(&id) {
            out.kept += 1;
            continue;
        }
        let path = store.object_path(&id)?;
        match fs::remove_file(&path) {
            Ok(()) => {
                out.removed += 1;
                out.bytes += size;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e, "cannot remove a snapshot object", &path)),
        }
    }
    for tmp in temps {
        let _ = fs::remove_file(tmp);
    }
    Ok(out)
}

/// Marks `id` and, when it is a tree, everything it reaches. A missing object
/// or a blob ends the walk there: `keep` lists snapshots of every store.
fn mark(store: &Store, id: &str, live: &mut HashSet<String>) -> EnvResult<()> {
    if !live.insert(id.to_string()) {
        return Ok(());
    }
    let body = match store.read_object(id, "tree") {
        Ok(b) => b,
        Err(EnvError::NotFound(_) | EnvError::InvalidInput(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    for (mode, _, child) in parse_tree(id, &body)? {
        match mode {
            TreeMode::Dir => mark(store, &child, live)?,
            TreeMode::File(_) => drop(live.insert(child)),
        }
    }
    Ok(())
}

/// Whether the loose object at `path` is a tree: only its header is inflated.
fn is_tree(path: &Path) -> bool {
    let Ok(file) = fs::File::open(path) else { return false };
    let mut head = [0u8; 5];
    io::Read::read_exact(&mut flate2::read::ZlibDecoder::new(file), &mut head).is_ok() && &head == b"tree "
}

fn read_dir(dir: &Path) -> EnvResult<Vec<fs::DirEntry>> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries.flatten().collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err(e, "cannot list snapshot objects", dir)),
    }
}

#[cfg(test)]
#[path = "prune_tests.rs"]
mod tests;
