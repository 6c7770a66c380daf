//! The execution-environment abstraction.
//!
//! Every file, search and process request goes through an [`Env`]. The HTTP
//! layer knows the OpenCode protocol and nothing about Docker, SSH or S3; a
//! backend knows its transport and nothing about HTTP. Backends differ only
//! where the environment really differs: behaviour that can be written once on
//! top of these primitives (gitignore flags in listings, fuzzy ranking, git
//! status, output truncation, timeouts) lives outside the backends.

mod error;
mod path;
pub mod process;
mod types;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

pub use error::{EnvError, EnvResult};
pub use path::WorkspacePath;
pub use process::{ExecRequest, ExitStatus, Output, Process, ProcessControl, Pty, PtyInput, PtyRequest, PtySize};
pub use types::{
    Capabilities, DirEntry, EntryKind, GrepMatch, GrepRequest, GrepResult, IndexEntry, Metadata, SearchBackend, SnapshotChange, SnapshotPruned, Submatch,
    TextIndexStatus, WatchEvent,
};

/// A place where code lives and (usually) runs.
///
/// All paths are [`WorkspacePath`]s, relative to [`Env::root`]. Implementations
/// must confine every operation to the root, resolving symlinks where the data
/// lives, and must never block the async runtime.
#[async_trait]
pub trait Env: Send + Sync + 'static {
    /// A short name of the backend: `local`, `docker`, `ssh` or `object`.
    fn kind(&self) -> &'static str;

    /// The workspace root as the environment names it: an absolute path for
    /// local, Docker and SSH; a URL such as `s3://bucket/prefix` for object storage.
    fn root(&self) -> &str;

    /// What this environment can do, so callers can refuse early and clearly.
    fn capabilities(&self) -> Capabilities;

    /// Checks that `path`, with symlinks resolved, stays inside the root.
    /// A path that does not exist yet is checked through its nearest existing ancestor.
    async fn confine(&self, path: &WorkspacePath) -> EnvResult<()>;

    /// The entries of a directory, unsorted. Symlinks are left out, as OpenCode
    /// leaves them out (and as the file index does): a link out of the workspace
    /// must not be offered to clients. Paths through a link inside still work.
    async fn list(&self, dir: &WorkspacePath) -> EnvResult<Vec<DirEntry>>;

    async fn stat(&self, path: &WorkspacePath) -> EnvResult<Metadata>;

    /// Reads a whole file, refusing files larger than `max_bytes`.
    async fn read(&self, path: &WorkspacePath, max_bytes: u64) -> EnvResult<Bytes>;

    /// Writes a whole file atomically (temp file, then rename), creating parent directories.
    async fn write(&self, path: &WorkspacePath, data: Bytes) -> EnvResult<()>;

    async fn mkdir_all(&self, path: &WorkspacePath) -> EnvResult<()>;

    /// Removes a file, or a directory with everything in it.
    async fn remove(&self, path: &WorkspacePath) -> EnvResult<()>;

    async fn rename(&self, from: &WorkspacePath, to: &WorkspacePath) -> EnvResult<()>;

    /// Every file and directory below `dir` that gitignore rules do not exclude,
    /// hidden ones included and `.git` excluded (ripgrep's `--files --hidden`).
    async fn walk(&self, dir: &WorkspacePath) -> EnvResult<Vec<IndexEntry>>;

    /// Text search with ripgrep semantics below `req.dir`.
    async fn grep(&self, req: GrepRequest) -> EnvResult<GrepResult>;

    /// Starts a process. Its output streams; dropping the [`Process`] does not kill it,
    /// [`ProcessControl::kill`] does.
    async fn exec(&self, req: ExecRequest) -> EnvResult<Process>;

    /// Starts a process on a pseudo-terminal.
    async fn pty(&self, req: PtyRequest) -> EnvResult<Pty>;

    /// A stream of change notifications below the root, when the environment can
    /// watch; `None` means callers must re-walk to stay fresh.
    async fn watch(&self) -> EnvResult<Option<tokio::sync::mpsc::Receiver<WatchEvent>>>;

    /// Forgets cached views of the environment (an object store's listing), so
    /// the next search sees changes made by others at once.
    async fn refresh(&self) -> EnvResult<()> {
        Ok(())
    }

    /// The state of the environment's text index, when it keeps one (the
    /// local environment in process, Docker and SSH in their helper).
    async fn text_index(&self) -> Option<TextIndexStatus> {
        None
    }

    /// Replaces a broken environment with a fresh one (a new container from the
    /// same image, say), for environments that can.
    async fn recreate(&self) -> EnvResult<String> {
        Err(EnvError::Unsupported(format!("recreate a {} environment", self.kind())))
    }

    /// How this environment keeps workspace snapshots (undo and redo), or
    /// why it cannot: `Err` holds the reason, for capabilities and warnings.
    fn snapshots(&self) -> Result<&'static str, String> {
        Err(format!("a {} environment keeps no snapshots", self.kind()))
    }

    /// Records the workspace as it is now; returns the snapshot's id (a git
    /// tree hash where the store is git's format).
    async fn snapshot_track(&self) -> EnvResult<String> {
        Err(EnvError::Unsupported(format!("snapshot a {} environment", self.kind())))
    }

    /// The files that differ between two snapshots, in path order.
    async fn snapshot_changes(&self, from: &str, to: &str) -> EnvResult<Vec<SnapshotChange>> {
        let _ = (from, to);
        Err(EnvError::Unsupported(format!("compare snapshots of a {} environment", self.kind())))
    }

    /// A file's content in a snapshot, by the blob id [`Env::snapshot_changes`] gave.
    async fn snapshot_blob(&self, id: &str) -> EnvResult<Bytes> {
        let _ = id;
        Err(EnvError::Unsupported(format!("read snapshots of a {} environment", self.kind())))
    }

    /// Puts `files` (paths below the root; every file of the snapshot when
    /// `None`) back as the snapshot holds them: written back when it holds
    /// them, removed when it does not.
    async fn snapshot_restore(&self, hash: &str, files: Option<Vec<String>>) -> EnvResult<()> {
        let _ = (hash, files);
        Err(EnvError::Unsupported(format!("restore snapshots of a {} environment", self.kind())))
    }

    /// Removes the snapshot objects that no snapshot in `keep` reaches and
    /// that are older than `max_age` (the caller lists the snapshots its
    /// sessions still reference; ids from other environments are skipped).
    /// A snapshot being taken meanwhile keeps all its objects.
    async fn snapshot_prune(&self, keep: Vec<String>, max_age: std::time::Duration) -> EnvResult<SnapshotPruned> {
        let _ = (keep, max_age);
        Err(EnvError::Unsupported(format!("prune snapshots of a {} environment", self.kind())))
    }

    /// Releases what the environment holds (containers, processes) before the server exits.
    async fn shutdown(&self) {}
}

pub type SharedEnv = Arc<dyn Env>;
