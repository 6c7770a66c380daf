//! The listing index: the whole tree under the workspace prefix, from one
//! recursive listing, kept in memory so a walk or a search asks the service
//! nothing until the index is older than its maximum age.
//!
//! Services list differently (S3 knows only keys, and a folder exists while a
//! key lies below it or an `a/` marker holds it; a file system lists folders
//! too). The index normalises both into files and folders, so a tree looks the
//! same on every service. Writes through the environment update the index at
//! once; changes made by others show after the next refresh.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use opendal::{EntryMode, Operator};

use super::errors::env_error;
use crate::env::{DirEntry, EntryKind, EnvError, EnvResult, WorkspacePath};

/// What the index knows about one object: enough to tell whether cached
/// content is still current.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    pub etag: Option<String>,
    pub modified_ms: Option<i64>,
}

impl ObjectMeta {
    pub fn from_opendal(m: &opendal::Metadata) -> Self {
        Self { size: m.content_length(), etag: m.etag().map(str::to_string), modified_ms: m.last_modified().map(|t| t.timestamp_millis()) }
    }

    /// A string that changes whenever the content does: the ETag, else the
    /// modification time with the size. `None` when the service gives neither,
    /// and then the content is never served from a cache.
    pub fn validator(&self) -> Option<String> {
        match (&self.etag, self.modified_ms) {
            (Some(etag), _) => Some(format!("etag:{etag}")),
            (None, Some(ms)) => Some(format!("mtime:{ms}:{}", self.size)),
            (None, None) => None,
        }
    }
}

/// A change made through the environment.
#[derive(Clone, Debug)]
pub enum Change {
    Put(WorkspacePath, ObjectMeta),
    Mkdir(WorkspacePath),
    Remove(WorkspacePath),
}

/// Files and folders by path (relative to the workspace root).
#[derive(Default)]
pub struct Listing {
    files: HashMap<String, ObjectMeta>,
    /// Each folder's children; the root is "".
    dirs: HashMap<String, BTreeMap<String, EntryKind>>,
}

impl Listing {
    /// Builds the tree from a recursive listing of the root.
    pub fn from_entries(entries: &[opendal::Entry]) -> Self {
        let mut listing = Self::default();
        listing.dirs.insert(String::new(), BTreeMap::new());
        for e in entries {
            let Ok(path) = WorkspacePath::from_relative(e.path()) else { continue };
            if path.is_root() {
                continue;
            }
            if e.path().ends_with('/') || e.metadata().mode() == EntryMode::DIR {
                listing.apply(Change::Mkdir(path));
            } else if e.metadata().mode() == EntryMode::Unknown {
                // Only a file system lists these: a symlink, FIFO, socket or
                // device. None is a file to search, and a link may lead out.
                continue;
            } else {
                listing.apply(Change::Put(path, ObjectMeta::from_opendal(e.metadata())));
            }
        }
        listing
    }

    pub fn apply(&mut self, change: Change) {
        match change {
            Change::Put(path, meta) => {
                // A key that is also a prefix shows as a folder, as on a file system.
                if self.dirs.contains_key(path.as_str()) {
                    return;
                }
                self.link(&path, EntryKind::File);
                self.files.insert(path.as_str().to_string(), meta);
            }
            Change::Mkdir(path) => {
                self.files.remove(path.as_str());
                self.link(&path, EntryKind::Directory);
                self.dirs.entry(path.as_str().to_string()).or_default();
            }
            Change::Remove(path) => {
                let below = format!("{}/", path.as_str());
                self.files.retain(|k, _| k != path.as_str() && !k.starts_with(&below));
                self.dirs.retain(|k, _| k != path.as_str() && !k.starts_with(&below));
                if let Some(parent) = path.parent() {
                    if let Some(children) = self.dirs.get_mut(parent.as_str()) {
                        children.remove(path.file_name());
                    }
                }
            }
        }
    }

    /// Records `path` in its parent, creating the folders above it.
    fn link(&mut self, path: &WorkspacePath, kind: EntryKind) {
        let mut child = (path.clone(), kind);
        while let Some(parent) = child.0.parent() {
            let children = self.dirs.entry(parent.as_str().to_string()).or_default();
            let name = child.0.file_name().to_string();
            let known = children.insert(name, child.1) == Some(child.1);
            self.files.remove(parent.as_str());
            if known && child.1 == EntryKind::Directory {
                break;
            }
            child = (parent, EntryKind::Directory);
        }
    }

    pub fn children(&self, dir: &WorkspacePath) -> EnvResult<Vec<DirEntry>> {
        match self.dirs.get(dir.as_str()) {
            Some(children) => Ok(children.iter().map(|(name, kind)| DirEntry { name: name.clone(), kind: *kind }).collect()),
            None if self.files.contains_key(dir.as_str()) => Err(EnvError::NotADirectory(dir.to_string())),
            None => Err(EnvError::NotFound(dir.to_string())),
        }
    }

    /// Every file, by workspace-relative path.
    pub fn files(&self) -> impl Iterator<Item = (&String, &ObjectMeta)> {
        self.files.iter()
    }

    pub fn file(&self, path: &WorkspacePath) -> EnvResult<ObjectMeta> {
        match self.files.get(path.as_str()) {
            Some(meta) => Ok(meta.clone()),
            None if self.dirs.contains_key(path.as_str()) => Err(EnvError::IsADirectory(path.to_string())),
            None => Err(EnvError::NotFound(path.to_string())),
        }
    }
}

pub struct ListingIndex {
    op: Operator,
    max_age: Duration,
    listing: RwLock<Listing>,
    /// When the listing was last taken; the async lock makes refreshes single-flight.
    refreshed: tokio::sync::Mutex<Option<Instant>>,
    /// Set by [`ListingIndex::invalidate`]: refresh on next use, whatever the age.
    stale: AtomicBool,
    /// Changes made while a refresh runs, replayed onto its result so that a
    /// listing taken before a write cannot hide it.
    journal: Mutex<Option<Vec<Change>>>,
    /// How many times the service was listed, for logs and tests.
    listings: std::sync::atomic::AtomicU64,
}

impl ListingIndex {
    pub fn new(op: Operator, max_age: Duration) -> Self {
        Self {
            op,
            max_age,
            listing: RwLock::default(),
            refreshed: tokio::sync::Mutex::new(None),
            stale: AtomicBool::new(false),
            journal: Mutex::new(None),
            listings: Default::default(),
        }
    }

    /// Lists the service again if the index is older than its maximum age (or invalidated).
    pub async fn fresh(&self) -> EnvResult<()> {
        let mut refreshed = self.refreshed.lock().await;
        let stale = self.stale.swap(false, Ordering::AcqRel);
        if refreshed.is_some_and(|at| at.elapsed() < self.max_age) && !stale {
            return Ok(());
        }
        *lock(&self.journal) = Some(Vec::new());
        let started = Instant::now();
        let result = self.op.list_with("/").recursive(true).await;
        let entries = match result {
            Ok(e) => e,
            Err(e) => {
                *lock(&self.journal) = None;
                return Err(env_error(e, "."));
            }
        };
        let mut listing = Listing::from_entries(&entries);
        {
            // Take the journal under the write lock, which `apply` also holds:
            // no change can slip between the replay and the swap.
            let mut current = self.listing.write().unwrap_or_else(|e| e.into_inner());
            for change in lock(&self.journal).take().unwrap_or_default() {
                listing.apply(change);
            }
            *current = listing;
        }
        self.listings.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(objects = entries.len(), ms = started.elapsed().as_millis() as u64, "object listing refreshed");
        *refreshed = Some(started);
        Ok(())
    }

    pub fn invalidate(&self) {
        self.stale.store(true, Ordering::Release);
    }

    /// Records a change made through the environment.
    pub fn apply(&self, change: Change) {
        let mut current = self.listing.write().unwrap_or_else(|e| e.into_inner());
        if let Some(journal) = lock(&self.journal).as_mut() {
            journal.push(change.clone());
        }
        current.apply(change);
    }

    pub fn read<T>(&self, f: impl FnOnce(&Listing) -> T) -> T {
        f(&self.listing.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn listings(&self) -> u64 {
        self.listings.load(Ordering::Relaxed)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> WorkspacePath {
        WorkspacePath::from_relative(s).unwrap()
    }

    fn names(l: &Listing, dir: &str) -> Vec<String> {
        l.children(&p(dir)).unwrap().into_iter().map(|e| format!("{}{}", e.name, if e.kind == EntryKind::Directory { "/" } else { "" })).collect()
    }

    #[test]
    fn keys_become_a_tree() {
        let mut l = Listing::default();
        l.dirs.insert(String::new(), BTreeMap::new());
        l.apply(Change::Put(p("a/b/c.txt"), ObjectMeta::default()));
        l.apply(Change::Put(p("top.txt"), ObjectMeta::default()));
        l.apply(Change::Mkdir(p("empty")));
        assert_eq!(names(&l, ""), vec!["a/", "empty/", "top.txt"]);
        assert_eq!(names(&l, "a"), vec!["b/"]);
        assert!(matches!(l.children(&p("top.txt")), Err(EnvError::NotADirectory(_))));
        assert!(matches!(l.file(&p("a/b")), Err(EnvError::IsADirectory(_))));
        // A key that is also a prefix is a folder.
        l.apply(Change::Put(p("a"), ObjectMeta::default()));
        assert_eq!(names(&l, ""), vec!["a/", "empty/", "top.txt"]);
        l.apply(Change::Remove(p("a")));
        assert_eq!(names(&l, ""), vec!["empty/", "top.txt"]);
        assert!(matches!(l.file(&p("a/b/c.txt")), Err(EnvError::NotFound(_))));
        assert!(matches!(l.children(&p("a/b")), Err(EnvError::NotFound(_))));
    }

    #[test]
    fn validators_prefer_the_etag() {
        let m = ObjectMeta { size: 3, etag: Some("\"x\"".into()), modified_ms: Some(5) };
        assert_eq!(m.validator().as_deref(), Some("etag:\"x\""));
        assert_eq!(ObjectMeta { etag: None, ..m.clone() }.validator().as_deref(), Some("mtime:5:3"));
        assert_eq!(ObjectMeta::default().validator(), None);
    }
}
