//! The SSH environment: a folder on a host reached over SSH (russh).
//!
//! One connection carries everything: an exec channel per command or PTY, and
//! one SFTP channel for files. Searches run next to the data through
//! `burrow-helper` (or the host's `rg` or `grep`, see [`crate::helper::client`]),
//! or, when none of them runs there, stream over SFTP ([`crate::search::stream`]).
//! Once the helper is installed, searches, commands and terminals go through
//! its long-lived session, on one exec channel ([`crate::near`], shared with
//! Docker), whose watcher keeps indexes fresh. Files stay on SFTP, which is
//! already one round trip.
//! Paths are confined on the remote side: SFTP `realpath` resolves symlinks
//! where they live, and the result must stay under the canonical root.

mod auth;
mod connect;
mod exec;
mod hostkey;
mod sftp;
pub mod target;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use russh_sftp::protocol::FileAttributes;
use tokio::sync::mpsc;

pub use connect::SshOptions;
pub use hostkey::default_files as default_known_hosts;

use super::process::hook_exit;
use super::*;
use crate::helper::client::HelperHost;
use crate::helper::slot::Replay;
use crate::near::{Attached, Near, NearHost};
use connect::{Conn, Link};

pub struct SshEnv {
    link: Arc<Link>,
    /// Canonical absolute root on the host.
    root: String,
    /// Search next to the data, the helper session, and the change events
    /// the file indexes follow.
    near: Near,
}

impl SshEnv {
    /// Connects, resolves `dir` (absolute, `~/...` or relative to the home
    /// directory) and decides how searches run. Fails with the reason when the
    /// host cannot be reached, refuses the host key or the login.
    pub async fn open(opts: SshOptions, dir: &str) -> EnvResult<Self> {
        let link = Arc::new(Link::new(opts));
        let conn = link.get().await?;
        let dir = match dir.strip_prefix('~') {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("{}{rest}", conn.home.trim_end_matches('/')),
            _ if dir.starts_with('/') => dir.to_string(),
            _ => format!("{}/{dir}", conn.home.trim_end_matches('/')),
        };
        let root = conn.guard(async {
            let root = conn.sftp.realpath(dir.as_str()).await.map_err(|e| sftp::map_err(e, &dir))?;
            root.files.into_iter().next().map(|f| f.filename).ok_or_else(|| EnvError::NotFound(dir.clone()))
        });
        let root = root.await?;
        match sftp::stat(&conn.sftp, &root).await?.kind {
            EntryKind::Directory => {}
            EntryKind::File => return Err(EnvError::NotADirectory(root)),
        }
        let env = Self { link, near: Near::new(root.clone()), root };
        let (search, session) = env.near.start(&env).await;
        let session = if session { ", helper session" } else { "" };
        tracing::info!("serving {} on {} (search: {search:?}{session})", env.root, env.link.target().display());
        Ok(env)
    }

    fn abs(&self, path: &WorkspacePath) -> String {
        path.absolute(&self.root)
    }

    /// The absolute path of `path`, after checking on the host that symlinks keep it inside.
    async fn confined(&self, conn: &Conn, path: &WorkspacePath) -> EnvResult<String> {
        let abs = self.abs(path);
        if path.is_root() {
            return Ok(abs);
        }
        let real = sftp::realpath(&conn.sftp, &abs).await.map_err(|e| match e {
            EnvError::Escape(_) => EnvError::Escape(path.to_string()),
            e => e,
        })?;
        let root = self.root.trim_end_matches('/');
        if real == self.root || real.strip_prefix(root).is_some_and(|rest| rest.starts_with('/')) {
            Ok(abs)
        } else {
            Err(EnvError::Escape(path.to_string()))
        }
    }

    /// Runs `op` with the current connection and the confined path, failing
    /// clearly if the connection drops meanwhile.
    async fn with_path<T, F, Fut>(&self, path: &WorkspacePath, op: F) -> EnvResult<T>
    where
        F: FnOnce(Arc<Conn>, String) -> Fut,
        Fut: std::future::Future<Output = EnvResult<T>>,
    {
        let conn = self.link.get().await?;
        tracing::debug!("ssh file request for {path}");
        let guarded = conn.clone();
        guarded
            .guard(async {
                let abs = self.confined(&conn, path).await?;
                op(conn.clone(), abs).await
            })
            .await
            .map_err(|e| relative_error(e, &self.root))
    }
}

/// Errors name absolute remote paths; show them relative to the root, like the local env.
fn relative_error(e: EnvError, root: &str) -> EnvError {
    let prefix = format!("{}/", root.trim_end_matches('/'));
    let strip = |s: String| s.strip_prefix(&prefix).map(str::to_string).unwrap_or(s);
    match e {
        EnvError::NotFound(p) => EnvError::NotFound(strip(p)),
        EnvError::PermissionDenied(p) => EnvError::PermissionDenied(strip(p)),
        EnvError::NotADirectory(p) => EnvError::NotADirectory(strip(p)),
        EnvError::IsADirectory(p) => EnvError::IsADirectory(strip(p)),
        EnvError::TooLarge { path, size, limit } => EnvError::TooLarge { path: strip(path), size, limit },
        other => other,
    }
}

#[async_trait]
impl HelperHost for SshEnv {
    async fn run(&self, command: String, stdin: Option<Bytes>) -> EnvResult<Process> {
        exec::spawn(&self.link, exec::wrap(&command, None, &HashMap::new(), None), stdin).await
    }

    async fn put_file(&self, path: &str, data: Bytes) -> EnvResult<()> {
        let conn = self.link.get().await?;
        conn.guard(async {
            sftp::mkdir_all(&conn.sftp, sftp::parent(path)).await?;
            let mut attrs = FileAttributes::empty();
            attrs.permissions = Some(0o700);
            sftp::write_file(&conn.sftp, path, &data, attrs, false).await
        })
        .await
    }
}

#[async_trait]
impl NearHost for SshEnv {
    async fn attach(&self, command: String) -> EnvResult<Attached> {
        let (reader, writer) = exec::attach(&self.link, &command).await?;
        Ok((Box::new(reader), Box::new(writer)))
    }

    fn describe(&self) -> String {
        self.link.target().display()
    }
}

#[async_trait]
impl Env for SshEnv {
    fn kind(&self) -> &'static str {
        "ssh"
    }

    fn root(&self) -> &str {
        &self.root
    }

    fn capabilities(&self) -> Capabilities {
        // The probe ran when the environment opened.
        Capabilities { exec: true, pty: true, watch: true, search: self.near.backend(SearchBackend::Stream) }
    }

    async fn confine(&self, path: &WorkspacePath) -> EnvResult<()> {
        self.with_path(path, |_, _| async { Ok(()) }).await
    }

    async fn list(&self, dir: &WorkspacePath) -> EnvResult<Vec<DirEntry>> {
        self.with_path(dir, |conn, abs| async move { sftp::list(&conn.sftp, &abs).await }).await
    }

    async fn stat(&self, path: &WorkspacePath) -> EnvResult<Metadata> {
        self.with_path(path, |conn, abs| async move { sftp::stat(&conn.sftp, &abs).await }).await
    }

    async fn read(&self, path: &WorkspacePath, max_bytes: u64) -> EnvResult<Bytes> {
        self.with_path(path, |conn, abs| async move { sftp::read(&conn.sftp, &abs, max_bytes).await }).await
    }

    async fn write(&self, path: &WorkspacePath, data: Bytes) -> EnvResult<()> {
        if path.is_root() {
            return Err(EnvError::IsADirectory(path.to_string()));
        }
        self.with_path(path, |conn, abs| async move { sftp::write_atomic(&conn, &abs, &data).await }).await?;
        self.near.changed(&[path]);
        Ok(())
    }

    async fn mkdir_all(&self, path: &WorkspacePath) -> EnvResult<()> {
        self.with_path(path, |conn, abs| async move { sftp::mkdir_all(&conn.sftp, &abs).await }).await?;
        self.near.changed(&[path]);
        Ok(())
    }

    async fn remove(&self, path: &WorkspacePath) -> EnvResult<()> {
        if path.is_root() {
            return Err(EnvError::InvalidInput("refusing to remove the workspace root".into()));
        }
        self.with_path(path, |conn, abs| async move { sftp::remove_all(&conn.sftp, &abs).await }).await?;
        self.near.changed(&[path]);
        Ok(())
    }

    async fn rename(&self, from: &WorkspacePath, to: &WorkspacePath) -> EnvResult<()> {
        let src = self.with_path(from, |_, abs| async move { Ok(abs) }).await?;
        self.with_path(to, |conn, dst| async move {
            sftp::mkdir_all(&conn.sftp, sftp::parent(&dst)).await?;
            sftp::rename_over(&conn, &src, &dst).await
        })
        .await?;
        self.near.changed(&[from, to]);
        Ok(())
    }

    async fn walk(&self, dir: &WorkspacePath) -> EnvResult<Vec<IndexEntry>> {
        let abs = self.with_path(dir, |_, abs| async move { Ok(abs) });
        self.near.walk(self, self, dir, abs).await
    }

    async fn grep(&self, req: GrepRequest) -> EnvResult<GrepResult> {
        let dir = req.dir.clone();
        let abs = async move {
            let dir = WorkspacePath::from_relative(&dir)?;
            self.with_path(&dir, |_, abs| async move { Ok(abs) }).await
        };
        self.near.grep(self, self, req, abs).await
    }

    fn snapshots(&self) -> Result<&'static str, String> {
        self.near.snapshots()
    }

    async fn snapshot_track(&self) -> EnvResult<String> {
        self.near.snapshot_track(self).await
    }

    async fn snapshot_changes(&self, from: &str, to: &str) -> EnvResult<Vec<SnapshotChange>> {
        self.near.snapshot_changes(self, from, to).await
    }

    async fn snapshot_blob(&self, id: &str) -> EnvResult<Bytes> {
        self.near.snapshot_blob(self, id).await
    }

    async fn snapshot_restore(&self, hash: &str, files: Option<Vec<String>>) -> EnvResult<()> {
        self.near.snapshot_restore(self, hash, files).await
    }

    async fn snapshot_prune(&self, keep: Vec<String>, max_age: std::time::Duration) -> EnvResult<crate::env::SnapshotPruned> {
        self.near.snapshot_prune(self, keep, max_age).await
    }

    async fn exec(&self, req: ExecRequest) -> EnvResult<Process> {
        let copy = req.clone();
        if let Some(done) = self.near.call(self, Replay::NeverSent, |r| async move { r.exec(copy).await }).await {
            return done;
        }
        let cwd = self.with_path(&req.cwd, |_, abs| async move { Ok(abs) }).await?;
        let process = exec::spawn(&self.link, exec::wrap(&req.command, Some(&cwd), &req.env, None), req.stdin).await?;
        // A command may change any file, and no watcher saw it.
        Ok(Process { exit: hook_exit(process.exit, Arc::new(self.near.after_command())), ..process })
    }

    async fn pty(&self, req: PtyRequest) -> EnvResult<Pty> {
        let copy = req.clone();
        if let Some(done) = self.near.call(self, Replay::NeverSent, |r| async move { r.pty(copy).await }).await {
            return done;
        }
        let cwd = self.with_path(&req.cwd, |_, abs| async move { Ok(abs) }).await?;
        let mut command = exec::quote_word(&req.command);
        for arg in &req.args {
            command.push(' ');
            command.push_str(&exec::quote_word(arg));
        }
        let mut env = req.env.clone();
        env.entry("TERM".into()).or_insert_with(|| "xterm-256color".into());
        let wrapped = exec::wrap(&command, Some(&cwd), &env, Some(&req.command));
        let pty = exec::spawn_pty(&self.link, wrapped, req.size).await.map_err(|e| match e {
            EnvError::NotFound(_) => EnvError::NotFound(format!("no such program on {}: {}", self.link.target().display(), req.command)),
            e => e,
        })?;
        Ok(Pty { exit: hook_exit(pty.exit, Arc::new(self.near.after_command())), ..pty })
    }

    async fn watch(&self) -> EnvResult<Option<mpsc::Receiver<WatchEvent>>> {
        Ok(self.near.watch())
    }

    async fn text_index(&self) -> Option<TextIndexStatus> {
        self.near.text_index(self).await
    }

    async fn refresh(&self) -> EnvResult<()> {
        self.near.refresh(self).await
    }
}
