//! The local environment: a folder on this machine. Files through std::fs on
//! the blocking pool, processes through tokio, PTYs through portable-pty,
//! changes through notify, and search in process.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use notify::{RecursiveMode, Watcher};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::beneath::{blocking, open_regular_beneath, Beneath};
use super::*;
use crate::search;
use crate::search::trigram::live::LiveIndex;

/// How long output pipes may stay open after the shell itself exited (a
/// background child can hold them); past that the output stream ends.
const PIPE_GRACE: Duration = Duration::from_millis(200);

pub struct LocalEnv {
    /// The canonical absolute root, and a descriptor of it that every file
    /// operation goes through (see `env::beneath`).
    fs: Arc<Beneath>,
    root_str: String,
    /// Keeps the file watcher alive for as long as the environment; the
    /// snapshot journal reaches it (weakly) to sync with its thread.
    watcher: Arc<Mutex<Option<notify::RecommendedWatcher>>>,
    /// The trigram index of the tree, once watching started (it is only as
    /// fresh as the watcher keeps it) and when the process configured one.
    text: Arc<OnceLock<Arc<LiveIndex>>>,
    /// The snapshot store in Burrow's data folder (never the project's own
    /// `.git`), or why there is none.
    snapshots: Result<crate::snapshot::Lazy, String>,
}

impl LocalEnv {
    pub fn new(root: impl AsRef<Path>) -> EnvResult<Self> {
        let root = root.as_ref();
        let root = std::fs::canonicalize(root).map_err(|e| EnvError::from_io(e, &root.display().to_string()))?;
        let snapshots = crate::snapshot::local_dir(&root);
        Self::build(root, snapshots)
    }

    /// The environment of `root` with its snapshot store in `store` (instead
    /// of the data folder's): for tests and benchmarks.
    pub fn with_snapshot_store(root: impl AsRef<Path>, store: &Path) -> EnvResult<Self> {
        let root = root.as_ref();
        let root = std::fs::canonicalize(root).map_err(|e| EnvError::from_io(e, &root.display().to_string()))?;
        Self::build(root, Ok(store.to_path_buf()))
    }

    fn build(root: PathBuf, store: Result<PathBuf, String>) -> EnvResult<Self> {
        if !root.is_dir() {
            return Err(EnvError::NotADirectory(root.display().to_string()));
        }
        let root_str = root.to_string_lossy().into_owned();
        let snapshots = store.map(|dir| crate::snapshot::Lazy::new(dir, root.clone()));
        Ok(Self { fs: Arc::new(Beneath::new(&root)?), root_str, watcher: Arc::default(), text: Default::default(), snapshots })
    }

    /// The snapshot store, opened: for tests and benchmarks that look at how it works.
    pub async fn snapshot_store(&self) -> EnvResult<Arc<crate::snapshot::Store>> {
        self.store()?.get().await
    }

    /// Has the snapshot journal sync with `watcher`: markers in a folder it
    /// also watches, then a round trip to its thread (see `snapshot::journal`).
    /// Without that, snapshots walk the whole tree.
    fn journal_watch(&self, watcher: &mut notify::RecommendedWatcher) -> Option<(Arc<crate::snapshot::Journal>, crate::snapshot::journal::Sync)> {
        let journal = self.snapshots.as_ref().ok()?.journal().clone();
        let markers = journal.markers().to_path_buf();
        let watched = std::fs::create_dir_all(&markers).map_err(notify::Error::io).and_then(|_| watcher.watch(&markers, RecursiveMode::NonRecursive));
        if let Err(e) = watched {
            tracing::warn!("cannot watch the snapshot sync folder {}, snapshots walk the whole tree: {e}", markers.display());
            return None;
        }
        let held = Arc::downgrade(&self.watcher);
        // Not a watched path: notify answers "not found" from its thread.
        let probe = markers.join("round-trip");
        let sync: crate::snapshot::journal::Sync = Box::new(move |journal| {
            journal.marker_sync(|| {
                let Some(held) = held.upgrade() else { return false };
                let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
                let Some(watcher) = held.as_mut() else { return false };
                let _ = watcher.unwatch(&probe);
                true
            })
        });
        Some((journal, sync))
    }

    /// Tells the text index about a change made through this environment
    /// before the call returns, so the next search sees it without waiting
    /// for the watcher's event.
    fn changed(&self, paths: &[&WorkspacePath]) {
        if let Some(text) = self.text.get() {
            text.changed(paths.iter().map(|p| p.as_str()).filter(|p| !p.is_empty()));
        }
    }

    fn store(&self) -> EnvResult<&crate::snapshot::Lazy> {
        self.snapshots.as_ref().map_err(|why| EnvError::Unsupported(format!("keep snapshots: {why}")))
    }

    /// The host path of `path`, after checking that symlinks keep it inside
    /// (for a process's working folder and the walks, which go by name).
    async fn confined(&self, path: &WorkspacePath) -> EnvResult<PathBuf> {
        let path = path.clone();
        self.fs.with(move |fs| fs.resolve(&path)).await
    }
}

#[async_trait]
impl Env for LocalEnv {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn root(&self) -> &str {
        &self.root_str
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { exec: true, pty: true, watch: true, search: SearchBackend::InProcess }
    }

    async fn confine(&self, path: &WorkspacePath) -> EnvResult<()> {
        self.confined(path).await.map(|_| ())
    }

    fn snapshots(&self) -> Result<&'static str, String> {
        self.snapshots.as_ref().map(|_| "store").map_err(Clone::clone)
    }

    async fn snapshot_track(&self) -> EnvResult<String> {
        self.store()?.track().await
    }

    async fn snapshot_changes(&self, from: &str, to: &str) -> EnvResult<Vec<SnapshotChange>> {
        self.store()?.changes(from, to).await
    }

    async fn snapshot_blob(&self, id: &str) -> EnvResult<Bytes> {
        self.store()?.blob(id).await.map(Bytes::from)
    }

    async fn snapshot_restore(&self, hash: &str, files: Option<Vec<String>>) -> EnvResult<()> {
        self.store()?.restore(hash, files).await
    }

    async fn snapshot_prune(&self, keep: Vec<String>, max_age: std::time::Duration) -> EnvResult<crate::env::SnapshotPruned> {
        self.store()?.prune(keep, max_age).await
    }

    async fn list(&self, dir: &WorkspacePath) -> EnvResult<Vec<DirEntry>> {
        let dir = dir.clone();
        self.fs.with(move |fs| fs.list(&dir)).await
    }

    async fn stat(&self, path: &WorkspacePath) -> EnvResult<Metadata> {
        let path = path.clone();
        self.fs.with(move |fs| fs.stat(&path)).await
    }

    async fn read(&self, path: &WorkspacePath, max_bytes: u64) -> EnvResult<Bytes> {
        let path = path.clone();
        self.fs.with(move |fs| fs.read(&path, max_bytes)).await
    }

    async fn write(&self, path: &WorkspacePath, data: Bytes) -> EnvResult<()> {
        let done = {
            let path = path.clone();
            self.fs.with(move |fs| fs.write(&path, &data)).await
        };
        self.changed(&[path]);
        done
    }

    async fn mkdir_all(&self, path: &WorkspacePath) -> EnvResult<()> {
        let done = {
            let path = path.clone();
            self.fs.with(move |fs| fs.mkdir_all(&path).map(drop)).await
        };
        self.changed(&[path]);
        done
    }

    async fn remove(&self, path: &WorkspacePath) -> EnvResult<()> {
        let done = {
            let path = path.clone();
            self.fs.with(move |fs| fs.remove(&path)).await
        };
        self.changed(&[path]);
        done
    }

    async fn rename(&self, from: &WorkspacePath, to: &WorkspacePath) -> EnvResult<()> {
        let done = {
            let (from, to) = (from.clone(), to.clone());
            self.fs.with(move |fs| fs.rename(&from, &to)).await
        };
        self.changed(&[from, to]);
        done
    }

    async fn walk(&self, dir: &WorkspacePath) -> EnvResult<Vec<IndexEntry>> {
        let host = self.confined(dir).await?;
        blocking(move || search::walk::walk(&host)).await
    }

    async fn grep(&self, req: GrepRequest) -> EnvResult<GrepResult> {
        let dir = WorkspacePath::from_relative(&req.dir)?;
        let host = self.confined(&dir).await?;
        let fs = self.fs.clone();
        let text = self.text.get().cloned();
        // Each file is opened through the root's descriptor, so a folder
        // swapped for a link during the walk cannot hand the search outside data.
        blocking(move || {
            // The index answers when it can vouch for the answer; else the scan.
            if let Some(found) = text.map(|t| t.grep(&req)).transpose()?.flatten() {
                return Ok(found);
            }
            search::grep::grep_with(&host, &req, &opener(fs))
        })
        .await
    }

    async fn exec(&self, req: ExecRequest) -> EnvResult<Process> {
        let cwd = self.confined(&req.cwd).await?;
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c").arg(&req.command).current_dir(&cwd).envs(&req.env).process_group(0);
        cmd.stdin(if req.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| EnvError::from_io(e, "/bin/sh"))?;
        let pid = child.id().ok_or_else(|| EnvError::Io("process exited before it started".into()))?;
        let recorded = groups::record(pid);
        if let (Some(data), Some(mut stdin)) = (req.stdin, child.stdin.take()) {
            tokio::spawn(async move {
                let _ = stdin.write_all(&data).await;
            });
        }
        let (tx, output) = mpsc::channel(64);
        let readers = [tokio::spawn(pump(child.stdout.take(), tx.clone(), Output::Stdout)), tokio::spawn(pump(child.stderr.take(), tx, Output::Stderr))];
        let (exit_tx, exit) = oneshot::channel();
        tokio::spawn(async move {
            let status = child.wait().await;
            drop(recorded);
            let grace = tokio::time::sleep(PIPE_GRACE);
            tokio::pin!(grace);
            for mut reader in readers {
                tokio::select! {
                    _ = &mut reader => {}
                    _ = &mut grace => reader.abort(),
                }
            }
            let status = match status {
                Ok(s) => {
                    use std::os::unix::process::ExitStatusExt;
                    ExitStatus { code: s.code(), signal: s.signal() }
                }
                Err(_) => ExitStatus { code: None, signal: None },
            };
            let _ = exit_tx.send(status);
        });
        Ok(Process { output, exit, control: Arc::new(GroupKiller { pgid: pid as i32 }) })
    }

    async fn pty(&self, req: PtyRequest) -> EnvResult<Pty> {
        let cwd = self.confined(&req.cwd).await?;
        blocking(move || local_pty(req, cwd)).await
    }

    async fn refresh(&self) -> EnvResult<()> {
        if let Some(text) = self.text.get() {
            text.rebuild();
        }
        Ok(())
    }

    async fn text_index(&self) -> Option<TextIndexStatus> {
        self.text.get().map(|t| t.status())
    }

    async fn watch(&self) -> EnvResult<Option<mpsc::Receiver<WatchEvent>>> {
        let (tx, rx) = mpsc::channel(1024);
        let root = self.fs.root().to_path_buf();
        let overflowed = AtomicBool::new(false);
        let text = self.text.clone();
        let journal = self.snapshots.as_ref().ok().map(|s| s.journal().clone());
        let handler = move |res: notify::Result<notify::Event>| {
            if let Some(journal) = &journal {
                journal.observe(&res);
            }
            let event = match res {
                // inotify reports every open (notify asks for IN_OPEN), and our
                // own walks and searches open every folder and file: reading
                // changes nothing, and counting it would rebuild the index after
                // every query.
                Ok(ev) if ev.kind.is_access() => return,
                Ok(ev) if ev.need_rescan() => WatchEvent::Overflow,
                Ok(ev) => {
                    let paths: Vec<_> = ev
                        .paths
                        .iter()
                        .filter_map(|p| search::walk::relative(&root, p))
                        .filter(|p| !p.split('/').any(|c| c == ".git"))
                        .filter_map(|p| WorkspacePath::from_relative(&p).ok())
                        .collect();
                    if paths.is_empty() {
                        return;
                    }
                    WatchEvent::Changed(paths)
                }
                Err(_) => WatchEvent::Rescan,
            };
            if let Some(text) = text.get() {
                match &event {
                    WatchEvent::Changed(paths) => text.changed(paths.iter().map(|p| p.as_str())),
                    WatchEvent::Rescan | WatchEvent::Overflow => text.lost(),
                }
            }
            // Never block notify's thread; if we fell behind, say "overflow"
            // once there is room again, which covers every event we dropped.
            if overflowed.load(Ordering::Relaxed) && tx.try_send(WatchEvent::Overflow).is_ok() {
                overflowed.store(false, Ordering::Relaxed);
            }
            if tx.try_send(event).is_err() {
                overflowed.store(true, Ordering::Relaxed);
            }
        };
        // Links are not followed: a link out of the root (to /etc, to /) would
        // have the watcher watch what the workspace does not own, and where
        // the user may not read (the helper on an SSH host) fail to start at all.
        let config = notify::Config::default().with_follow_symlinks(false);
        let mut watcher = notify::RecommendedWatcher::new(handler, config).map_err(|e| EnvError::Io(format!("watcher: {e}")))?;
        watcher.watch(self.fs.root(), RecursiveMode::Recursive).map_err(|e| EnvError::Io(format!("watcher: {e}")))?;
        let journal = self.journal_watch(&mut watcher);
        *self.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(watcher);
        if let Some((journal, sync)) = journal {
            journal.started(sync);
        }
        // Watching now: an index built from here on misses no change.
        if let Some(settings) = search::trigram::live::settings() {
            let live = LiveIndex::new(self.fs.root(), settings, Arc::new(opener(self.fs.clone())));
            if self.text.set(live.clone()).is_ok() {
                live.start();
            }
        }
        Ok(Some(rx))
    }
}

/// Opens a file of the tree by its host path through the root's descriptor.
fn opener(fs: Arc<Beneath>) -> impl Fn(&Path) -> std::io::Result<std::fs::File> + Send + Sync + 'static {
    move |p: &Path| {
        let rel = p.strip_prefix(fs.root()).ok().and_then(|r| r.to_str()).ok_or_else(|| std::io::Error::other("outside the root"))?;
        open_regular_beneath(&fs, &WorkspacePath::from_relative(rel).map_err(std::io::Error::other)?)
    }
}

/// Forwards one output pipe into the process's output channel.
async fn pump<R: AsyncRead + Unpin>(pipe: Option<R>, tx: mpsc::Sender<Output>, wrap: fn(Bytes) -> Output) {
    let Some(mut pipe) = pipe else { return };
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send(wrap(Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Kills a local process group: the shell and everything it started.
struct GroupKiller {
    pgid: i32,
}

#[async_trait]
impl ProcessControl for GroupKiller {
    async fn kill(&self) -> EnvResult<()> {
        use nix::sys::signal::{killpg, Signal};
        match killpg(nix::unistd::Pid::from_raw(self.pgid), Signal::SIGKILL) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(EnvError::Io(format!("kill process group {}: {e}", self.pgid))),
        }
    }
}

fn local_pty(req: PtyRequest, cwd: PathBuf) -> EnvResult<Pty> {
    use portable_pty::{native_pty_system, CommandBuilder, PtySize as NativeSize};
    let err = |e: anyhow::Error| EnvError::Io(format!("pty: {e}"));
    let size = |s: PtySize| NativeSize { rows: s.rows, cols: s.cols, pixel_width: 0, pixel_height: 0 };
    let pair = native_pty_system().openpty(size(req.size)).map_err(err)?;
    let mut cmd = CommandBuilder::new(&req.command);
    cmd.args(&req.args);
    cmd.cwd(&cwd);
    cmd.env("TERM", "xterm-256color");
    for (k, v) in &req.env {
        cmd.env(k, v);
    }
    let mut child = pair.slave.spawn_command(cmd).map_err(err)?;
    drop(pair.slave);
    let pid = child.process_id();
    let mut reader = pair.master.try_clone_reader().map_err(err)?;
    let mut writer = pair.master.take_writer().map_err(err)?;
    let master = pair.master;

    let (out_tx, output) = mpsc::channel::<Bytes>(256);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match std::io::Read::read(&mut reader, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if out_tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let (input, mut in_rx) = mpsc::channel::<PtyInput>(256);
    std::thread::spawn(move || {
        while let Some(msg) = in_rx.blocking_recv() {
            let ok = match msg {
                PtyInput::Data(d) => std::io::Write::write_all(&mut writer, &d).and_then(|_| std::io::Write::flush(&mut writer)).is_ok(),
                PtyInput::Resize(s) => master.resize(size(s)).is_ok(),
            };
            if !ok {
                return;
            }
        }
    });
    let killer = child.clone_killer();
    let (exit_tx, exit) = oneshot::channel();
    let recorded = pid.map(groups::record);
    std::thread::spawn(move || {
        let status = child.wait().ok();
        drop(recorded);
        let code = status.map(|s| s.exit_code() as i32);
        let _ = exit_tx.send(ExitStatus { code, signal: None });
    });
    let control: Arc<dyn ProcessControl> = match pid {
        // The PTY child leads its own session, so its pid is its process group.
        Some(pid) => Arc::new(GroupKiller { pgid: pid as i32 }),
        None => Arc::new(NativeKiller(Mutex::new(killer))),
    };
    Ok(Pty { output, input, exit, control, pid })
}

struct NativeKiller(Mutex<Box<dyn portable_pty::ChildKiller + Send + Sync>>);

#[async_trait]
impl ProcessControl for NativeKiller {
    async fn kill(&self) -> EnvResult<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).kill().map_err(|e| EnvError::Io(format!("kill: {e}")))
    }
}
