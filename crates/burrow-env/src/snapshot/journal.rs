//! What changed below a root since the last snapshot, as its file watcher
//! reported it: what lets [`super::Store::track`] re-read only those paths.
//!
//! The journal is only trusted when nothing can have been missed. Every doubt
//! makes the next snapshot a whole walk:
//! - **no watcher**, or a watcher that started since the last snapshot (an
//!   `epoch` counts the starts: events from before a start are unknown);
//! - **lost events**: an inotify queue overflow, or a watcher error (a folder
//!   that could not be watched);
//! - **changed rules**: an ignore file (`.gitignore`, `.ignore`, `.rgignore`),
//!   `.git` itself (`.gitignore` counts only inside a repository) or
//!   `.git/info/exclude` changed below the root; the same files in the root's
//!   parent folders and git's global ignore settings are compared by `stat`
//!   ([`Rules`]), since no watcher sees them;
//! - **no sync**: see below.
//!
//! **Sync.** inotify queues an event when the change happens, but the watcher
//! thread reads the queue later. Before it trusts the journal, a snapshot
//! creates a marker file in a folder that the same watcher watches and waits
//! for its event: the events come through one queue in order, so every change
//! made before the snapshot started has been recorded by then. Then it asks
//! the watcher's thread for a round trip (notify handles requests on the same
//! thread, after the batch of events in hand), because notify adds the
//! watches of a new folder only after that batch: a folder created just
//! before the snapshot is watched before its files are read.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long a snapshot waits for its marker before it walks instead (the
/// watcher is stuck or gone; the walk is right either way).
#[cfg(not(test))]
const SYNC_WAIT: Duration = Duration::from_secs(5);
/// The tests count walks, so a marker slowed by a loaded machine must not
/// turn into a walk there: they wait as long as it takes.
#[cfg(test)]
const SYNC_WAIT: Duration = Duration::from_secs(300);

/// The file names whose change can change which files a walk lists.
const RULE_FILES: [&str; 3] = [".gitignore", ".ignore", ".rgignore"];

/// Waits until the watcher has delivered every event of changes made before
/// the call; `false` when it could not tell (then the snapshot walks).
pub type Sync = Box<dyn Fn(&Journal) -> bool + Send + std::marker::Sync>;

/// The changes a watcher reported below one root.
pub struct Journal {
    root: PathBuf,
    /// The folder of sync markers (outside the root, watched by the same watcher).
    markers: PathBuf,
    state: Mutex<State>,
    /// Signalled when a marker's event arrives.
    arrived: Condvar,
    next_marker: AtomicU64,
    /// Names this journal's markers apart from those of another journal of
    /// the same store in this process (both watchers see both).
    id: u64,
    sync: Mutex<Option<Arc<Sync>>>,
}

/// The source of [`Journal::id`]s.
static JOURNALS: AtomicU64 = AtomicU64::new(0);

#[derive(Default)]
struct State {
    /// Counts watcher starts; 0: none ever ran.
    epoch: u64,
    /// Events may have been lost since the last [`Journal::take`].
    doubt: bool,
    /// Paths (relative to the root) reported changed since the last take.
    dirty: HashSet<String>,
    /// The highest marker number whose event arrived.
    marker: u64,
}

/// What [`Journal::take`] hands a snapshot.
pub enum Taken {
    /// Every change since the last take, under the same watcher.
    Changes { epoch: u64, dirty: HashSet<String> },
    /// Walk everything; the journal starts afresh now, under `epoch` (0: no watcher).
    Walk { epoch: u64 },
}

impl Journal {
    pub fn new(root: &Path, markers: &Path) -> Arc<Self> {
        Arc::new(Self {
            root: root.to_path_buf(),
            markers: markers.to_path_buf(),
            state: Mutex::default(),
            arrived: Condvar::new(),
            next_marker: AtomicU64::new(0),
            id: JOURNALS.fetch_add(1, Ordering::Relaxed),
            sync: Mutex::new(None),
        })
    }

    /// The folder a watcher must watch (not recursively) for [`Journal::marker_sync`].
    pub fn markers(&self) -> &Path {
        &self.markers
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A watcher started and feeds [`Journal::observe`]; `sync` waits for it
    /// to catch up. What happened before is unknown: the next snapshot walks.
    pub fn started(&self, sync: Sync) {
        *self.sync.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(sync));
        let mut state = self.state();
        state.epoch += 1;
        state.doubt = true;
    }

    /// Records one watcher event (call it first thing in the watcher's handler).
    pub fn observe(&self, event: &notify::Result<notify::Event>) {
        let event = match event {
            Ok(ev) if ev.need_rescan() => return self.lost(),
            Ok(ev) => ev,
            Err(_) => return self.lost(),
        };
        let mut markers = None;
        let mut dirty = Vec::new();
        let mut doubt = false;
        for path in &event.paths {
            if let Ok(name) = path.strip_prefix(&self.markers) {
                markers = markers.max(name.to_str().and_then(|n| self.marker_number(n)));
                continue;
            }
            if event.kind.is_access() {
                continue;
            }
            match path.strip_prefix(&self.root) {
                // The root itself was removed or moved.
                Ok(rel) if rel.as_os_str().is_empty() => doubt = true,
                Ok(rel) => match rel.to_str() {
                    Some(rel) => match classify(rel) {
                        Class::Files => dirty.push(rel.to_string()),
                        Class::Rules => doubt = true,
                        Class::Neither => {}
                    },
                    // The walk lists such names lossily; re-reading them by name is not exact.
                    None => doubt = true,
                },
                Err(_) => {}
            }
        }
        if markers.is_none() && dirty.is_empty() && !doubt {
            return;
        }
        let mut state = self.state();
        state.dirty.extend(dirty);
        state.doubt |= doubt;
        if let Some(n) = markers {
            state.marker = state.marker.max(n);
            self.arrived.notify_all();
        }
    }

    /// Events were lost.
    pub fn lost(&self) {
        self.state().doubt = true;
    }

    /// After a sync with the watcher, the changes since the last take, if the
    /// journal can be trusted since `since` (the epoch of the last take);
    /// otherwise [`Taken::Walk`]. Either way the journal starts afresh.
    pub fn take(&self, since: Option<u64>) -> Taken {
        let sync = self.sync.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let synced = match (&sync, since) {
            (Some(sync), Some(_)) => sync(self),
            _ => false,
        };
        let mut state = self.state();
        let dirty = std::mem::take(&mut state.dirty);
        let doubt = std::mem::replace(&mut state.doubt, false);
        let epoch = if sync.is_some() { state.epoch } else { 0 };
        if synced && !doubt && epoch != 0 && since == Some(epoch) {
            Taken::Changes { epoch, dirty }
        } else {
            Taken::Walk { epoch }
        }
    }

    /// Creates a marker in [`Journal::markers`] and waits for its event, then
    /// runs `round_trip` (a request answered by the watcher's thread).
    pub fn marker_sync(&self, round_trip: impl FnOnce() -> bool) -> bool {
        let n = self.next_marker.fetch_add(1, Ordering::Relaxed) + 1;
        let marker = self.markers.join(format!("sync-{}-{}-{n}", std::process::id(), self.id));
        if let Err(e) = fs::write(&marker, b"") {
            tracing::debug!("cannot write a snapshot sync marker ({}): {e}", marker.display());
            return false;
        }
        let state = self.state();
        let (state, timeout) = self.arrived.wait_timeout_while(state, SYNC_WAIT, |s| s.marker < n).unwrap_or_else(|e| e.into_inner());
        drop(state);
        let _ = fs::remove_file(&marker);
        if timeout.timed_out() {
            tracing::warn!("the file watcher did not report a snapshot sync marker; walking the whole tree");
            return false;
        }
        round_trip()
    }
}

impl Journal {
    /// The number of one of this journal's markers.
    fn marker_number(&self, name: &str) -> Option<u64> {
        let mut parts = name.strip_prefix("sync-")?.splitn(3, '-');
        let (pid, id, n) = (parts.next()?, parts.next()?, parts.next()?);
        (pid.parse::<u32>().ok()? == std::process::id() && id.parse::<u64>().ok()? == self.id).then(|| n.parse().ok())?
    }
}

enum Class {
    /// A path whose files the walk may list.
    Files,
    /// A path that changes the walk's rules.
    Rules,
    /// Inside `.git`, which the walk never lists.
    Neither,
}

fn classify(rel: &str) -> Class {
    let parts: Vec<&str> = rel.split('/').collect();
    match parts.iter().position(|p| *p == ".git") {
        Some(i) if i + 1 == parts.len() => Class::Rules,
        Some(i) if parts[i + 1] == "info" && parts.get(i + 2).is_none_or(|p| *p == "exclude") => Class::Rules,
        Some(_) => Class::Neither,
        None if parts.last().is_some_and(|name| RULE_FILES.contains(name)) => Class::Rules,
        None => Class::Files,
    }
}

/// The ignore settings that no watcher of the root sees: the ignore files of
/// the root's parent folders, whether those are in a repository, and git's
/// global ignore settings. Compared by `stat` before a snapshot trusts the
/// journal.
#[derive(Debug, PartialEq, Eq)]
pub struct Rules(Vec<Option<(u64, u64, i64, i64)>>);

impl Rules {
    pub fn now(root: &Path) -> Self {
        let mut paths = Vec::new();
        for dir in root.ancestors().skip(1) {
            for name in RULE_FILES.iter().chain(&[".git", ".git/info/exclude"]) {
                paths.push(dir.join(name));
            }
        }
        if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
            paths.push(home.join(".gitconfig"));
            paths.push(home.join(".config/git/config"));
            paths.push(home.join(".config/git/ignore"));
        }
        if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from) {
            paths.push(xdg.join("git/config"));
            paths.push(xdg.join("git/ignore"));
        }
        Self(paths.iter().map(|p| fs::symlink_metadata(p).ok().map(|m| (m.ino(), m.len(), m.mtime(), m.mtime_nsec()))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_files_and_git_internals_are_told_apart() {
        for (rel, rules) in [
            ("src/main.rs", Some(false)),
            (".gitignore", Some(true)),
            ("a/b/.ignore", Some(true)),
            ("a/.rgignore", Some(true)),
            (".git", Some(true)),
            ("sub/.git", Some(true)),
            (".git/info/exclude", Some(true)),
            (".git/info", Some(true)),
            (".git/index", None),
            (".git/objects/ab/cdef", None),
            ("gitignore.txt", Some(false)),
        ] {
            let got = match classify(rel) {
                Class::Files => Some(false),
                Class::Rules => Some(true),
                Class::Neither => None,
            };
            assert_eq!(got, rules, "{rel}");
        }
    }

    #[test]
    fn only_this_journals_markers_count() {
        let me = std::process::id();
        let (one, two) = (Journal::new(Path::new("/r"), Path::new("/m")), Journal::new(Path::new("/r"), Path::new("/m")));
        let name = format!("sync-{me}-{}-7", one.id);
        assert_eq!(one.marker_number(&name), Some(7));
        assert_eq!(two.marker_number(&name), None, "another journal's marker");
        assert_eq!(one.marker_number(&format!("sync-{}-{}-7", me.wrapping_add(1), one.id)), None, "another process's marker");
        assert_eq!(one.marker_number("other"), None);
    }
}
