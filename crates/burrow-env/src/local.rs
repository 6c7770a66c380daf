//! The local environment: a folder on this machine. Files through std::fs on
//! the blocking pool, processes through tokio, PTYs through portable-pty,
//! changes through notify, and search in process.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use notify::{RecursiveMode, Watcher};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::*;
use crate::search;

/// How long output pipes may stay open after the shell itself exited (a
/// background child can hold them); past that the output stream ends.
const PIPE_GRACE: Duration = Duration::from_millis(200);

pub struct LocalEnv {
    /// Canonical absolute root.
    root: PathBuf,
    root_str: String,
    /// Keeps the file watcher alive for as long as the environment.
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
}

impl LocalEnv {
    pub fn new(root: impl AsRef<Path>) -> EnvResult<Self> {
        let root = root.as_ref();
        let root = std::fs::canonicalize(root).map_err(|e| EnvError::from_io(e, &root.display().to_string()))?;
        if !root.is_dir() {
            return Err(EnvError::NotADirectory(root.display().to_string()));
        }
        let root_str = root.to_string_lossy().into_owned();
        Ok(Self { root, root_str, watcher: Mutex::new(None) })
    }

    fn host_path(&self, path: &WorkspacePath) -> PathBuf {
        if path.is_root() {
            self.root.clone()
        } else {
            self.root.join(path.as_str())
        }
    }

    /// The host path of `path`, after checking that symlinks keep it inside.
    async fn confined(&self, path: &WorkspacePath) -> EnvResult<PathBuf> {
        let host = self.host_path(path);
        let root = self.root.clone();
        let shown = path.to_string();
        blocking(move || {
            // The nearest existing ancestor decides where a new file would land.
            let mut probe = host.as_path();
            loop {
                match std::fs::canonicalize(probe) {
                    Ok(real) if real.starts_with(&root) => return Ok(host),
                    Ok(_) => return Err(EnvError::Escape(shown)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => match probe.parent() {
                        // A dangling symlink at `probe` points somewhere we cannot see: refuse.
                        _ if probe.symlink_metadata().is_ok() => return Err(EnvError::Escape(shown)),
                        Some(parent) if parent.starts_with(&root) => probe = parent,
                        _ => return Err(EnvError::Escape(shown)),
                    },
                    Err(e) => return Err(EnvError::from_io(e, &shown)),
                }
            }
        })
        .await
    }
}

/// Runs blocking filesystem work off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> EnvResult<T> + Send + 'static) -> EnvResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| EnvError::Io(format!("blocking task failed: {e}")))?
}

fn kind_of(meta: &std::fs::Metadata) -> EntryKind {
    if meta.is_dir() {
        EntryKind::Directory
    } else {
        EntryKind::File
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

    async fn list(&self, dir: &WorkspacePath) -> EnvResult<Vec<DirEntry>> {
        let host = self.confined(dir).await?;
        let shown = dir.to_string();
        blocking(move || {
            let mut out = Vec::new();
            for entry in std::fs::read_dir(&host).map_err(|e| EnvError::from_io(e, &shown))? {
                let Ok(entry) = entry else { continue };
                let Ok(ft) = entry.file_type() else { continue };
                if ft.is_symlink() {
                    continue;
                }
                let kind = if ft.is_dir() { EntryKind::Directory } else { EntryKind::File };
                out.push(DirEntry { name: entry.file_name().to_string_lossy().into_owned(), kind });
            }
            Ok(out)
        })
        .await
    }

    async fn stat(&self, path: &WorkspacePath) -> EnvResult<Metadata> {
        let host = self.confined(path).await?;
        let shown = path.to_string();
        blocking(move || {
            let m = std::fs::metadata(&host).map_err(|e| EnvError::from_io(e, &shown))?;
            let modified_ms = m.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_millis() as u64);
            Ok(Metadata { kind: kind_of(&m), size: m.len(), modified_ms })
        })
        .await
    }

    async fn read(&self, path: &WorkspacePath, max_bytes: u64) -> EnvResult<Bytes> {
        let host = self.confined(path).await?;
        let shown = path.to_string();
        blocking(move || {
            let m = std::fs::metadata(&host).map_err(|e| EnvError::from_io(e, &shown))?;
            if m.is_dir() {
                return Err(EnvError::IsADirectory(shown));
            }
            if m.len() > max_bytes {
                return Err(EnvError::TooLarge { path: shown, size: m.len(), limit: max_bytes });
            }
            std::fs::read(&host).map(Bytes::from).map_err(|e| EnvError::from_io(e, &shown))
        })
        .await
    }

    async fn write(&self, path: &WorkspacePath, data: Bytes) -> EnvResult<()> {
        if path.is_root() {
            return Err(EnvError::IsADirectory(path.to_string()));
        }
        let host = self.confined(path).await?;
        let shown = path.to_string();
        blocking(move || {
            let parent = host.parent().ok_or_else(|| EnvError::InvalidInput(shown.clone()))?;
            std::fs::create_dir_all(parent).map_err(|e| EnvError::from_io(e, &shown))?;
            if host.is_dir() {
                return Err(EnvError::IsADirectory(shown));
            }
            // A new file gets the usual 0666 less the umask, not a temp file's 0600.
            let mode = std::os::unix::fs::PermissionsExt::from_mode(0o666);
            let mut tmp = tempfile::Builder::new().prefix(".burrow-").permissions(mode).tempfile_in(parent).map_err(|e| EnvError::from_io(e, &shown))?;
            std::io::Write::write_all(&mut tmp, &data).map_err(|e| EnvError::from_io(e, &shown))?;
            // Keep the mode of the file we replace (an executable stays executable).
            if let Ok(old) = std::fs::metadata(&host) {
                let _ = std::fs::set_permissions(tmp.path(), old.permissions());
            }
            tmp.persist(&host).map_err(|e| EnvError::from_io(e.error, &shown))?;
            Ok(())
        })
        .await
    }

    async fn mkdir_all(&self, path: &WorkspacePath) -> EnvResult<()> {
        let host = self.confined(path).await?;
        let shown = path.to_string();
        blocking(move || std::fs::create_dir_all(&host).map_err(|e| EnvError::from_io(e, &shown))).await
    }

    async fn remove(&self, path: &WorkspacePath) -> EnvResult<()> {
        if path.is_root() {
            return Err(EnvError::InvalidInput("refusing to remove the workspace root".into()));
        }
        let host = self.confined(path).await?;
        let shown = path.to_string();
        blocking(move || {
            let m = std::fs::symlink_metadata(&host).map_err(|e| EnvError::from_io(e, &shown))?;
            let r = if m.is_dir() { std::fs::remove_dir_all(&host) } else { std::fs::remove_file(&host) };
            r.map_err(|e| EnvError::from_io(e, &shown))
        })
        .await
    }

    async fn rename(&self, from: &WorkspacePath, to: &WorkspacePath) -> EnvResult<()> {
        let src = self.confined(from).await?;
        let dst = self.confined(to).await?;
        let shown = format!("{from} -> {to}");
        blocking(move || {
            if let Some(parent) = dst.parent() {
                std::fs::create_dir_all(parent).map_err(|e| EnvError::from_io(e, &shown))?;
            }
            std::fs::rename(&src, &dst).map_err(|e| EnvError::from_io(e, &shown))
        })
        .await
    }

    async fn walk(&self, dir: &WorkspacePath) -> EnvResult<Vec<IndexEntry>> {
        let host = self.confined(dir).await?;
        blocking(move || search::walk::walk(&host)).await
    }

    async fn grep(&self, req: GrepRequest) -> EnvResult<GrepResult> {
        let dir = WorkspacePath::from_relative(&req.dir)?;
        let host = self.confined(&dir).await?;
        blocking(move || search::grep::grep(&host, &req)).await
    }

    async fn exec(&self, req: ExecRequest) -> EnvResult<Process> {
        let cwd = self.confined(&req.cwd).await?;
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c").arg(&req.command).current_dir(&cwd).envs(&req.env).process_group(0);
        cmd.stdin(if req.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| EnvError::from_io(e, "/bin/sh"))?;
        let pid = child.id().ok_or_else(|| EnvError::Io("process exited before it started".into()))?;
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

    async fn watch(&self) -> EnvResult<Option<mpsc::Receiver<WatchEvent>>> {
        let (tx, rx) = mpsc::channel(1024);
        let root = self.root.clone();
        let overflowed = AtomicBool::new(false);
        let handler = move |res: notify::Result<notify::Event>| {
            let event = match res {
                // inotify reports every open (notify asks for IN_OPEN), and our
                // own walks and searches open every folder and file: reading
                // changes nothing, and counting it would rebuild the index after
                // every query.
                Ok(ev) if ev.kind.is_access() => return,
                Ok(ev) if ev.need_rescan() => WatchEvent::Rescan,
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
            // Never block notify's thread; if we fell behind, say "rescan" once
            // there is room again, which covers every event we dropped.
            if overflowed.load(Ordering::Relaxed) && tx.try_send(WatchEvent::Rescan).is_ok() {
                overflowed.store(false, Ordering::Relaxed);
            }
            if tx.try_send(event).is_err() {
                overflowed.store(true, Ordering::Relaxed);
            }
        };
        let mut watcher = notify::recommended_watcher(handler).map_err(|e| EnvError::Io(format!("watcher: {e}")))?;
        watcher.watch(&self.root, RecursiveMode::Recursive).map_err(|e| EnvError::Io(format!("watcher: {e}")))?;
        *self.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(watcher);
        Ok(Some(rx))
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
    std::thread::spawn(move || {
        let status = child.wait().ok();
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
