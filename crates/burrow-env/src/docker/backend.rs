//! [`Env`] for [`DockerEnv`]: each operation is one `docker exec` of a script
//! (files), the helper or `rg` (search), or a wrapped command (processes).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::{container, exec, scripts, DockerEnv, Target};
use crate::env::*;
use crate::helper::client::HelperHost;
use crate::helper::protocol;
use crate::helper::slot::Replay;
use crate::near::{Attached, NearHost};

/// Listings and walks larger than this are refused rather than buffered.
const MAX_ANSWER: usize = 256 << 20;

/// The helper client's view of a container.
pub struct Host(pub Arc<Target>);

#[async_trait]
impl HelperHost for Host {
    async fn run(&self, command: String, stdin: Option<Bytes>) -> EnvResult<Process> {
        exec::spawn(self.0.clone(), scripts::argv(scripts::RUN, &[&command]), Vec::new(), stdin, None).await
    }

    /// Uploads straight away, and makes the folder only when that failed: the
    /// helper's folder exists by then, and an exec costs more than the upload.
    async fn put_file(&self, path: &str, data: Bytes) -> EnvResult<()> {
        let (docker, id) = (&self.0.docker, &self.0.id);
        if container::put_file(docker, id, path, data.clone(), 0o755).await.is_ok() {
            return Ok(());
        }
        let dir = path.rsplit_once('/').map(|(d, _)| d).filter(|d| !d.is_empty()).unwrap_or("/");
        exec::op(&self.0, vec!["mkdir".into(), "-p".into(), dir.into()], None, 4096).await?;
        container::put_file(docker, id, path, data, 0o755).await.map_err(|e| EnvError::Io(format!("{e:#}")))
    }
}

#[async_trait]
impl NearHost for Host {
    async fn attach(&self, command: String) -> EnvResult<Attached> {
        let (reader, writer) = exec::attach(&self.0, vec!["/bin/sh".into(), "-c".into(), command]).await?;
        Ok((Box::new(reader), Box::new(writer)))
    }

    fn describe(&self) -> String {
        self.0.name.clone()
    }
}

impl DockerEnv {
    /// Runs a file-operation script with the root and `args`.
    async fn op(&self, script: &str, args: &[&str], stdin: Option<Bytes>, max: usize) -> EnvResult<Bytes> {
        let mut all = vec![self.root.as_str()];
        all.extend_from_slice(args);
        exec::op(&self.target(), scripts::argv(script, &all), stdin, max).await
    }

    /// The absolute, resolved folder of `dir`, confined.
    async fn resolve_dir(&self, dir: &WorkspacePath) -> EnvResult<String> {
        if dir.is_root() {
            return Ok(self.root.clone());
        }
        let out = self.op(scripts::CONFINE, &[dir.as_str()], None, 64 << 10).await?;
        // The script ends its line with one newline; any other belongs to the name.
        let out = String::from_utf8_lossy(&out);
        Ok(out.strip_suffix('\n').unwrap_or(&out).to_string())
    }
}

#[async_trait]
impl Env for DockerEnv {
    fn kind(&self) -> &'static str {
        "docker"
    }

    fn root(&self) -> &str {
        &self.root
    }

    fn capabilities(&self) -> Capabilities {
        // Until the probe answers, the helper is what the container is expected to get.
        Capabilities { exec: true, pty: true, watch: true, search: self.near.backend(SearchBackend::Helper) }
    }

    async fn confine(&self, path: &WorkspacePath) -> EnvResult<()> {
        if let Some(done) = self.via_helper(Replay::Safe, |r| async move { r.confine(path).await }).await {
            return done;
        }
        self.op(scripts::CONFINE, &[path.as_str()], None, 64 << 10).await.map(drop)
    }

    async fn list(&self, dir: &WorkspacePath) -> EnvResult<Vec<DirEntry>> {
        if let Some(done) = self.via_helper(Replay::Safe, |r| async move { r.list(dir).await }).await {
            return done;
        }
        protocol::parse_list(&self.op(scripts::LIST, &[dir.as_str()], None, MAX_ANSWER).await?)
    }

    async fn stat(&self, path: &WorkspacePath) -> EnvResult<Metadata> {
        if let Some(done) = self.via_helper(Replay::Safe, |r| async move { r.stat(path).await }).await {
            return done;
        }
        protocol::parse_stat(&String::from_utf8_lossy(&self.op(scripts::STAT, &[path.as_str()], None, 4096).await?))
    }

    async fn read(&self, path: &WorkspacePath, max_bytes: u64) -> EnvResult<Bytes> {
        if let Some(done) = self.via_helper(Replay::Safe, |r| async move { r.read(path, max_bytes).await }).await {
            return done;
        }
        let max = usize::try_from(max_bytes).unwrap_or(usize::MAX).saturating_add(1);
        self.op(scripts::READ, &[path.as_str(), &max_bytes.to_string()], None, max).await
    }

    async fn write(&self, path: &WorkspacePath, data: Bytes) -> EnvResult<()> {
        if path.is_root() {
            return Err(EnvError::IsADirectory(path.to_string()));
        }
        let copy = data.clone();
        match self.via_helper(Replay::Safe, |r| async move { r.write(path, copy).await }).await {
            Some(done) => done?,
            None => drop(self.op(scripts::WRITE, &[path.as_str()], Some(data), 4096).await?),
        }
        self.changed(&[path]);
        Ok(())
    }

    async fn mkdir_all(&self, path: &WorkspacePath) -> EnvResult<()> {
        match self.via_helper(Replay::Safe, |r| async move { r.mkdir_all(path).await }).await {
            Some(done) => done?,
            None => drop(self.op(scripts::MKDIR, &[path.as_str()], None, 4096).await?),
        }
        self.changed(&[path]);
        Ok(())
    }

    async fn remove(&self, path: &WorkspacePath) -> EnvResult<()> {
        if path.is_root() {
            return Err(EnvError::InvalidInput("refusing to remove the workspace root".into()));
        }
        match self.via_helper(Replay::NeverSent, |r| async move { r.remove(path).await }).await {
            Some(done) => done?,
            None => drop(self.op(scripts::REMOVE, &[path.as_str()], None, 4096).await?),
        }
        self.changed(&[path]);
        Ok(())
    }

    async fn rename(&self, from: &WorkspacePath, to: &WorkspacePath) -> EnvResult<()> {
        match self.via_helper(Replay::NeverSent, |r| async move { r.rename(from, to).await }).await {
            Some(done) => done?,
            None => drop(self.op(scripts::RENAME, &[from.as_str(), to.as_str()], None, 4096).await?),
        }
        self.changed(&[from, to]);
        Ok(())
    }

    async fn walk(&self, dir: &WorkspacePath) -> EnvResult<Vec<IndexEntry>> {
        self.near.walk(&self.host(), self, dir, self.resolve_dir(dir)).await
    }

    async fn grep(&self, req: GrepRequest) -> EnvResult<GrepResult> {
        let dir = req.dir.clone();
        let abs = async move { self.resolve_dir(&WorkspacePath::from_relative(&dir)?).await };
        self.near.grep(&self.host(), self, req, abs).await
    }

    fn snapshots(&self) -> Result<&'static str, String> {
        self.near.snapshots()
    }

    async fn snapshot_track(&self) -> EnvResult<String> {
        self.near.snapshot_track(&self.host()).await
    }

    async fn snapshot_changes(&self, from: &str, to: &str) -> EnvResult<Vec<SnapshotChange>> {
        self.near.snapshot_changes(&self.host(), from, to).await
    }

    async fn snapshot_blob(&self, id: &str) -> EnvResult<Bytes> {
        self.near.snapshot_blob(&self.host(), id).await
    }

    async fn snapshot_restore(&self, hash: &str, files: Option<Vec<String>>) -> EnvResult<()> {
        self.near.snapshot_restore(&self.host(), hash, files).await
    }

    async fn snapshot_prune(&self, keep: Vec<String>, max_age: std::time::Duration) -> EnvResult<crate::env::SnapshotPruned> {
        self.near.snapshot_prune(&self.host(), keep, max_age).await
    }

    async fn exec(&self, req: ExecRequest) -> EnvResult<Process> {
        let (id, hook) = self.exit_hook();
        let copy = req.clone();
        let process = match self.via_helper(Replay::NeverSent, |r| async move { r.exec(copy).await }).await {
            Some(started) => {
                let process = started?;
                Process { exit: exec::hook_exit(process.exit, hook), ..process }
            }
            None => {
                let argv = scripts::argv(scripts::SPAWN, &[&self.root, req.cwd.as_str(), &req.command]);
                let env = req.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
                exec::spawn(self.target(), argv, env, req.stdin, Some(hook)).await?
            }
        };
        self.track(id, process.control.clone());
        Ok(process)
    }

    async fn pty(&self, req: PtyRequest) -> EnvResult<Pty> {
        let mut req = req;
        req.env.entry("TERM".into()).or_insert_with(|| "xterm-256color".into());
        let (id, hook) = self.exit_hook();
        let copy = req.clone();
        let pty = match self.via_helper(Replay::NeverSent, |r| async move { r.pty(copy).await }).await {
            Some(started) => {
                let pty = started?;
                Pty { exit: exec::hook_exit(pty.exit, hook), ..pty }
            }
            None => {
                let mut args = vec![self.root.as_str(), req.cwd.as_str(), req.command.as_str()];
                args.extend(req.args.iter().map(String::as_str));
                let env = req.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
                exec::pty(self.target(), scripts::argv(scripts::SPAWN_ARGV, &args), env, req.size, Some(hook)).await?
            }
        };
        self.track(id, pty.control.clone());
        Ok(pty)
    }

    async fn watch(&self) -> EnvResult<Option<mpsc::Receiver<WatchEvent>>> {
        Ok(self.near.watch())
    }

    async fn text_index(&self) -> Option<TextIndexStatus> {
        self.near.text_index(&self.host()).await
    }

    async fn refresh(&self) -> EnvResult<()> {
        self.near.refresh(&self.host()).await
    }

    async fn recreate(&self) -> EnvResult<String> {
        self.replace_container().await
    }

    async fn shutdown(&self) {
        self.shutdown_container().await
    }
}
