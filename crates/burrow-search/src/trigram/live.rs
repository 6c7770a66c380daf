//! A trigram index kept beside a watched tree: loaded or built in the
//! background at low priority, told of every change, rebuilt on request.
//!
//! Searches never wait for it. Until an index is ready, or after the watcher
//! lost events, [`LiveIndex::grep`] declines and the caller scans. Once ready,
//! each change the watcher reports is recorded as a changed path ([`Dirty`]),
//! which searches read directly next to the index's candidates, so a change is
//! searchable at once and a stale match is impossible. A build records the
//! changes made while it runs, and the new index starts with them.
//!
//! An index left by an earlier run is reused after a walk that compares each
//! file's size and modification time with the index's file table: what
//! differs becomes changed paths, or a rebuild when too much does.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use super::{build, BuildOptions, Dirty, TrigramIndex, MAX_DIRTY};
use crate::env::{EntryKind, EnvResult, GrepRequest, GrepResult, TextIndexStatus};

/// Where indexes live and how they are built; unset (the default), no index is kept.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The folder of index files, one per indexed root.
    pub dir: PathBuf,
    pub build: BuildOptions,
}

static SETTINGS: OnceLock<Option<Settings>> = OnceLock::new();

/// Sets this process's index settings; only the first call counts (the server
/// and the helper call it once at start). `None` turns indexing off.
pub fn configure(settings: Option<Settings>) {
    let _ = SETTINGS.set(settings);
}

pub fn settings() -> Option<&'static Settings> {
    SETTINGS.get().and_then(Option::as_ref)
}

/// Opens a file of the tree for reading (the local environment opens through
/// its root's descriptor).
pub type SharedOpener = Arc<dyn Fn(&Path) -> std::io::Result<std::fs::File> + Send + Sync>;

#[derive(Default)]
struct State {
    current: Option<Arc<TrigramIndex>>,
    /// Changed since `current` was built.
    dirty: Dirty,
    /// Changed since the running build started walking (Some while one runs).
    since_build: Option<Dirty>,
    /// Another build is wanted once the running one ends.
    again: bool,
    /// Events were lost: `current` cannot vouch for anything.
    lost: bool,
    lost_in_build: bool,
    error: Option<String>,
}

pub struct LiveIndex {
    root: PathBuf,
    file: PathBuf,
    opts: BuildOptions,
    open: SharedOpener,
    state: Mutex<State>,
}

impl LiveIndex {
    /// The index of `root` under `settings.dir`; call [`LiveIndex::start`]
    /// once the tree is watched, so that no change slips between.
    pub fn new(root: &Path, settings: &Settings, open: SharedOpener) -> Arc<Self> {
        let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let name: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).take(40).collect();
        let file = settings.dir.join(format!("{name}-{:08x}.tri", crc32fast::hash(root.as_os_str().as_encoded_bytes())));
        Arc::new(Self { root: root.to_path_buf(), file, opts: settings.build.clone(), open, state: Mutex::new(State::default()) })
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the index an earlier run left, or builds one, in the background.
    pub fn start(self: &Arc<Self>) {
        self.spawn(true);
    }

    /// Builds a new index in the background; the current one answers meanwhile.
    pub fn rebuild(self: &Arc<Self>) {
        self.spawn(false);
    }

    fn spawn(self: &Arc<Self>, reuse: bool) {
        {
            let mut st = self.state();
            if st.since_build.is_some() {
                st.again = true;
                return;
            }
            st.since_build = Some(Dirty::default());
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new().name("text-index".into()).spawn(move || me.run(reuse));
        if let Err(e) = spawned {
            let mut st = self.state();
            st.since_build = None;
            st.error = Some(format!("cannot start the index build: {e}"));
        }
    }

    fn run(&self, mut reuse: bool) {
        loop {
            let started = std::time::Instant::now();
            let made = reuse.then(|| self.reuse()).and_then(Result::ok).map(Ok).unwrap_or_else(|| self.build());
            let mut st = self.state();
            let since = st.since_build.take().unwrap_or_default();
            match made {
                Ok((index, mut dirty)) => {
                    tracing::info!(root = %self.root.display(), files = index.files().len(), bytes = index.bytes(), ms = started.elapsed().as_millis() as u64, "text index ready");
                    dirty.paths.extend(since.paths);
                    st.current = Some(Arc::new(index));
                    st.dirty = dirty;
                    st.lost = std::mem::take(&mut st.lost_in_build);
                    st.error = None;
                }
                Err(e) => {
                    tracing::warn!(root = %self.root.display(), "text index build failed, searches scan: {e}");
                    st.error = Some(e);
                }
            }
            if std::mem::take(&mut st.again) || st.lost {
                st.since_build = Some(Dirty::default());
                reuse = false;
                continue;
            }
            return;
        }
    }

    fn build(&self) -> Result<(TrigramIndex, Dirty), String> {
        let context = |e: std::io::Error| format!("{}: {e}", self.file.display());
        build(&self.root, &self.file, &self.opts, &*self.open).map_err(context)?;
        Ok((TrigramIndex::open(&self.file).map_err(context)?, Dirty::default()))
    }

    /// The index left on disk, with what changed since: None when there is
    /// none, it is damaged or of another format (then it is rebuilt), or too
    /// much changed.
    fn reuse(&self) -> Result<(TrigramIndex, Dirty), String> {
        let index = TrigramIndex::open(&self.file).map_err(|e| e.to_string())?;
        if index.max_file_bytes() != self.opts.max_file_bytes {
            return Err("built with another size cap".into());
        }
        let walked = crate::walk::walk(&self.root).map_err(|e| e.to_string())?;
        let mut dirty = Dirty::default();
        let mut seen = 0usize;
        for e in &walked {
            match e.kind {
                EntryKind::File => {
                    let known = index.files().binary_search_by(|f| f.path.as_str().cmp(&e.path)).ok().map(|i| &index.files()[i]);
                    let same = known
                        .is_some_and(|f| std::fs::symlink_metadata(self.root.join(&e.path)).is_ok_and(|m| m.len() == f.size && super::mtime_ns(&m) == f.stamp));
                    seen += usize::from(known.is_some());
                    if !same {
                        dirty.paths.insert(e.path.clone());
                    }
                }
                _ if !index.is_dir(&e.path) => {
                    dirty.paths.insert(e.path.clone());
                }
                _ => {}
            }
            if dirty.paths.len() > MAX_DIRTY / 4 {
                return Err("too much changed since the index was built".into());
            }
        }
        if seen < index.files().len() {
            // Files the index lists and the walk no longer finds.
            let walked: std::collections::HashSet<&str> = walked.iter().map(|e| e.path.as_str()).collect();
            for f in index.files() {
                if !walked.contains(f.path.as_str()) {
                    dirty.paths.insert(f.path.clone());
                }
            }
        }
        if dirty.touches_ignore_rules() || dirty.paths.len() > MAX_DIRTY / 4 {
            return Err("the ignore rules or too many files changed since the index was built".into());
        }
        Ok((index, dirty))
    }

    /// Paths below the root (relative, `/`-separated) were created, changed,
    /// removed or renamed.
    pub fn changed<'a>(self: &Arc<Self>, paths: impl IntoIterator<Item = &'a str>) {
        let rebuild = {
            let mut st = self.state();
            let st = &mut *st;
            for p in paths {
                st.dirty.paths.insert(p.to_string());
                if let Some(since) = &mut st.since_build {
                    since.paths.insert(p.to_string());
                }
            }
            st.current.is_some() && (st.dirty.touches_ignore_rules() || st.dirty.paths.len() > MAX_DIRTY)
        };
        if rebuild {
            self.rebuild();
        }
    }

    /// The watcher lost events: searches scan until a rebuild has caught up.
    pub fn lost(self: &Arc<Self>) {
        {
            let mut st = self.state();
            st.lost = true;
            if st.since_build.is_some() {
                st.lost_in_build = true;
            }
        }
        self.rebuild();
    }

    /// The search through the index, or None when it cannot answer now (the caller scans).
    pub fn grep(&self, req: &GrepRequest) -> EnvResult<Option<GrepResult>> {
        let (index, dirty) = {
            let st = self.state();
            match &st.current {
                Some(index) if !st.lost => (index.clone(), st.dirty.clone()),
                _ => return Ok(None),
            }
        };
        super::grep(&self.root, &index, &dirty, req, &*self.open)
    }

    pub fn status(&self) -> TextIndexStatus {
        let st = self.state();
        let state = match (&st.current, st.lost, &st.error) {
            (Some(_), false, _) => "ready",
            (Some(_), true, _) => "stale",
            (None, _, Some(_)) if st.since_build.is_none() => "failed",
            (None, _, _) => "building",
        };
        TextIndexStatus {
            state: state.into(),
            rebuilding: st.since_build.is_some(),
            entries: st.current.as_ref().map_or(0, |i| i.files().len() as u64),
            bytes: st.current.as_ref().map_or(0, |i| i.bytes()),
            changed: st.dirty.paths.len() as u64,
            error: st.error.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grep::open_regular;

    fn req(pattern: &str) -> GrepRequest {
        GrepRequest { dir: String::new(), pattern: pattern.into(), include: None, limit: 100, case_insensitive: false }
    }

    /// Waits for the background build, by its state (a hang is bounded by the test harness).
    fn settle(live: &LiveIndex) -> TextIndexStatus {
        loop {
            let status = live.status();
            if !status.rebuilding {
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    #[test]
    fn builds_reuses_and_rebuilds_a_damaged_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("a.txt"), "needle\n").unwrap();
        std::fs::write(root.join("b.txt"), "hay\n").unwrap();
        let settings = Settings { dir: dir.path().join("cache"), build: BuildOptions::default() };
        let open: SharedOpener = Arc::new(open_regular);
        let live = LiveIndex::new(&root, &settings, open.clone());
        assert_eq!(live.grep(&req("needle")).unwrap(), None, "no index yet: the caller scans");
        live.start();
        let status = settle(&live);
        assert_eq!((status.state.as_str(), status.entries, status.changed), ("ready", 2, 0));
        assert_eq!(live.grep(&req("needle")).unwrap().unwrap().matches.len(), 1);

        // A later run reuses the file, and sees what changed while it was away.
        std::fs::write(root.join("b.txt"), "more needle\n").unwrap();
        let again = LiveIndex::new(&root, &settings, open.clone());
        again.start();
        let status = settle(&again);
        assert_eq!((status.state.as_str(), status.changed), ("ready", 1));
        assert_eq!(again.grep(&req("needle")).unwrap().unwrap().matches.len(), 2);

        // A damaged file is not trusted: it is rebuilt.
        let mut bytes = std::fs::read(live.file()).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(live.file(), &bytes).unwrap();
        let third = LiveIndex::new(&root, &settings, open);
        third.start();
        let status = settle(&third);
        assert_eq!((status.state.as_str(), status.changed), ("ready", 0));
        assert!(TrigramIndex::open(third.file()).is_ok());
        assert_eq!(third.grep(&req("needle")).unwrap().unwrap().matches.len(), 2);

        // Changes reported while searching; lost events make it decline.
        std::fs::write(root.join("c.txt"), "needle c\n").unwrap();
        third.changed(["c.txt"]);
        assert_eq!(third.grep(&req("needle")).unwrap().unwrap().matches.len(), 3);
        third.lost();
        let status = settle(&third);
        assert_eq!((status.state.as_str(), status.changed), ("ready", 0));
        assert_eq!(third.grep(&req("needle")).unwrap().unwrap().matches.len(), 3);
    }
}
