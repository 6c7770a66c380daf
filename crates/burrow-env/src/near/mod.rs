//! The helper-backed pattern, written once for every environment where
//! starting a process costs a round trip or more (Docker, SSH).
//!
//! Each operation takes the first of three tiers that works:
//!
//! 1. the helper session ([`SessionSlot`], `burrow-helper serve` next to the
//!    data): one message per operation, and a watcher that keeps file indexes
//!    fresh;
//! 2. search next to the data ([`NearSearch`]): one process per walk or
//!    search (the helper, else `rg`, else POSIX `find` and `grep`);
//! 3. streaming: the backend's own listing and reads, searched here
//!    ([`crate::search::stream`]).
//!
//! A request goes to a slower tier only when it never reached the session, or
//! when repeating it changes nothing ([`Replay`]). Backends differ only where
//! the environment really does, in a [`NearHost`]: how to run a command, put a
//! file in place, and start the long-lived session process.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

mod git;

use crate::env::{EnvResult, GrepRequest, GrepResult, IndexEntry, SearchBackend, TextIndexStatus, WatchEvent, WorkspacePath};
use crate::helper::client::{HelperHost, Method, NearSearch};
use crate::helper::remote::RemoteEnv;
use crate::helper::slot::{Replay, SessionSlot};
use crate::search::stream::{self, StreamLimits, Tree};

/// Without the helper's watcher, anything may change at any time: file indexes
/// are told to re-walk (lazily, on their next query) this often.
pub const RESCAN_EVERY: Duration = Duration::from_secs(2);

/// The output and the input of a process started in the environment.
pub type Attached = (Box<dyn AsyncRead + Send + Unpin>, Box<dyn AsyncWrite + Send + Unpin>);

/// What a backend must provide beyond [`HelperHost`]: a long-lived process
/// for the helper session, and a name for logs.
#[async_trait]
pub trait NearHost: HelperHost {
    /// Starts the shell command line `command` and keeps it running, its
    /// output and input attached.
    async fn attach(&self, command: String) -> EnvResult<Attached>;
    /// The environment, as log lines name it (a container, a host).
    fn describe(&self) -> String;
}

/// The helper-backed tiers of one environment.
pub struct Near {
    /// The workspace root, absolute in the environment.
    root: String,
    /// How searches run, probed once per environment (replaced with it).
    search: RwLock<Arc<NearSearch>>,
    /// The helper session, and the change events the file indexes follow.
    session: SessionSlot,
    /// Whether `git` runs there (for snapshots without the helper), probed once.
    git: tokio::sync::OnceCell<bool>,
    /// One git snapshot command at a time: git's index is one file, so two
    /// sessions snapshotting the workspace at once would find it locked
    /// (`index.lock: File exists`) and one of them would lose its step's undo.
    git_turn: tokio::sync::Mutex<()>,
}

impl Near {
    pub fn new(root: impl Into<String>) -> Self {
        Self::with_search(root, Arc::new(NearSearch::new()))
    }

    /// With `search` for the probe, which the backend may have started
    /// before it knew the root (installing the helper does not need it).
    pub fn with_search(root: impl Into<String>, search: Arc<NearSearch>) -> Self {
        Self {
            root: root.into(),
            search: RwLock::new(search),
            session: SessionSlot::new(),
            git: tokio::sync::OnceCell::new(),
            git_turn: tokio::sync::Mutex::new(()),
        }
    }

    /// How searches run next to the data.
    pub fn search(&self) -> Arc<NearSearch> {
        self.search.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Probes how searches run, then starts the helper session when the
    /// helper is installed; answers whether a session runs.
    pub async fn start(&self, host: &dyn NearHost) -> (SearchBackend, bool) {
        let backend = self.search().method(host).await.backend();
        (backend, self.remote(host).await.is_some())
    }

    /// The search backend to report: the helper while its session runs, else
    /// what the probe found, else `unprobed` while the probe is under way.
    pub fn backend(&self, unprobed: SearchBackend) -> SearchBackend {
        if self.session.current().is_some() {
            return SearchBackend::Helper;
        }
        self.search().probed().map(Method::backend).unwrap_or(unprobed)
    }

    /// The helper session, started when the helper is installed and restarted
    /// when it was lost; `None` while there is none (the slower tiers serve).
    pub async fn remote(&self, host: &dyn NearHost) -> Option<Arc<RemoteEnv>> {
        if let Some(r) = self.session.current() {
            return Some(r);
        }
        let search = self.search();
        let Some(Method::Helper(bin)) = search.probed().cloned() else { return None };
        // The helper keeps a text index when this process keeps one (the
        // server's `--no-text-index` turns both off).
        let args: &[&str] = if crate::search::trigram::live::settings().is_some() { &["serve", &self.root] } else { &["serve", "--no-text-index", &self.root] };
        self.session
            .get(&host.describe(), || async {
                // Built only by the caller that starts the session, which may skip the checksum once.
                let command = search.session_command(&bin, args);
                let (reader, writer) = host.attach(command).await?;
                RemoteEnv::connect(reader, writer, &bin.version_line()).await
            })
            .await
    }

    /// The result of `call` through the helper session, or `None` when the
    /// caller's slower path takes over: see [`SessionSlot::call`] for when a
    /// lost session allows that.
    pub async fn call<T, F, Fut>(&self, host: &dyn NearHost, replay: Replay, call: F) -> Option<EnvResult<T>>
    where
        F: FnOnce(Arc<RemoteEnv>) -> Fut,
        Fut: Future<Output = EnvResult<T>>,
    {
        SessionSlot::call(self.remote(host).await, replay, call).await
    }

    /// How this environment keeps snapshots: in the helper's store next to
    /// the files while there is a helper, else with the environment's `git`.
    pub fn snapshots(&self) -> Result<&'static str, String> {
        if self.session.current().is_some() {
            return Ok("store");
        }
        match (self.search().probed(), self.git.get()) {
            // The session starts on the first call that needs it.
            (Some(Method::Helper(_)), _) => Ok("store"),
            (_, Some(true)) => Ok("git"),
            (_, Some(false)) => Err("neither burrow-helper nor git runs next to the files, so no snapshots are kept".to_string()),
            _ => Err("not known yet: the environment has not been probed for burrow-helper and git".to_string()),
        }
    }

    /// Whether snapshots go through `git` (no helper there, git there); probes once.
    /// The choice follows the probe and never changes, so one environment's
    /// snapshots are all in one store: a helper session that is lost for a
    /// moment fails the call rather than sending it to git's store.
    async fn use_git(&self, host: &dyn NearHost) -> EnvResult<bool> {
        if matches!(self.search().method(host).await, Method::Helper(_)) {
            return Ok(false);
        }
        if *self.git.get_or_init(|| git::available(host)).await {
            return Ok(true);
        }
        Err(crate::env::EnvError::Unsupported(format!("keep snapshots in {}: {}", host.describe(), self.snapshots().err().unwrap_or_default())))
    }

    /// A snapshot operation through the helper session, or with git where there is no helper.
    async fn snapshot<T, F, Fut, G>(&self, host: &dyn NearHost, replay: Replay, call: F, git: G) -> EnvResult<T>
    where
        F: FnOnce(Arc<RemoteEnv>) -> Fut,
        Fut: Future<Output = EnvResult<T>>,
        G: Future<Output = EnvResult<T>>,
    {
        if self.use_git(host).await? {
            let _turn = self.git_turn.lock().await;
            return git.await;
        }
        // A session another caller is starting is waited for: the store is the helper's.
        if self.session.current().is_none() && self.remote(host).await.is_none() {
            self.session.settled().await;
        }
        match self.call(host, replay, call).await {
            Some(done) => done,
            None => Err(crate::env::EnvError::Unavailable(format!("the helper session in {} is gone; snapshots wait for it", host.describe()))),
        }
    }

    pub async fn snapshot_track(&self, host: &dyn NearHost) -> EnvResult<String> {
        self.snapshot(host, Replay::Safe, |r| async move { crate::env::Env::snapshot_track(&*r).await }, git::track(host, &self.root)).await
    }

    pub async fn snapshot_changes(&self, host: &dyn NearHost, from: &str, to: &str) -> EnvResult<Vec<crate::env::SnapshotChange>> {
        let fallback = git::changes(host, &self.root, from, to);
        self.snapshot(host, Replay::Safe, |r| async move { crate::env::Env::snapshot_changes(&*r, from, to).await }, fallback).await
    }

    pub async fn snapshot_blob(&self, host: &dyn NearHost, id: &str) -> EnvResult<bytes::Bytes> {
        self.snapshot(host, Replay::Safe, |r| async move { crate::env::Env::snapshot_blob(&*r, id).await }, git::blob(host, &self.root, id)).await
    }

    pub async fn snapshot_restore(&self, host: &dyn NearHost, hash: &str, files: Option<Vec<String>>) -> EnvResult<()> {
        let fallback = git::restore(host, &self.root, hash, files.clone());
        self.snapshot(host, Replay::NeverSent, |r| async move { crate::env::Env::snapshot_restore(&*r, hash, files).await }, fallback).await
    }

    /// Prunes the helper's store, or with git the snapshot git directory
    /// (keep-refs for the referenced snapshots, then `git prune --expire`,
    /// see `git.rs`); a git prune holds [`Near::git_turn`] as tracks do.
    pub async fn snapshot_prune(&self, host: &dyn NearHost, keep: Vec<String>, max_age: std::time::Duration) -> EnvResult<crate::env::SnapshotPruned> {
        let fallback = git::prune(host, &self.root, &keep, max_age);
        let (keep, max_age) = (keep.clone(), max_age);
        self.snapshot(host, Replay::Safe, |r| async move { crate::env::Env::snapshot_prune(&*r, keep, max_age).await }, fallback).await
    }

    /// Walks `dir`: through the session, else next to the data in `abs` (the
    /// backend's confined absolute path of `dir`, computed only then), else by
    /// listing `tree`.
    pub async fn walk<T, A>(&self, host: &dyn NearHost, tree: &T, dir: &WorkspacePath, abs: A) -> EnvResult<Vec<IndexEntry>>
    where
        T: Tree + ?Sized,
        A: Future<Output = EnvResult<String>>,
    {
        if let Some(done) = self.call(host, Replay::Safe, |r| async move { crate::env::Env::walk(&*r, dir).await }).await {
            return done;
        }
        let abs = abs.await?;
        match self.search().walk(host, &abs).await? {
            Some(entries) => Ok(entries),
            None => stream::walk(tree, dir, StreamLimits::default()).await,
        }
    }

    /// Searches as [`Near::walk`] walks; `abs` is the confined absolute path of `req.dir`.
    pub async fn grep<T, A>(&self, host: &dyn NearHost, tree: &T, req: GrepRequest, abs: A) -> EnvResult<GrepResult>
    where
        T: Tree + ?Sized,
        A: Future<Output = EnvResult<String>>,
    {
        let copy = req.clone();
        if let Some(done) = self.call(host, Replay::Safe, |r| async move { crate::env::Env::grep(&*r, copy).await }).await {
            return done;
        }
        let abs = abs.await?;
        match self.search().grep(host, &abs, &req).await? {
            Some(found) => Ok(found),
            None => stream::grep(tree, &req, StreamLimits::default()).await,
        }
    }

    /// The helper's text index state, when a helper session runs and keeps one.
    pub async fn text_index(&self, host: &dyn NearHost) -> Option<TextIndexStatus> {
        self.call(host, Replay::Safe, |r| async move { Ok(crate::env::Env::text_index(&*r).await) }).await.and_then(Result::ok).flatten()
    }

    /// Asks the helper to rebuild its text index; nothing when no session runs.
    pub async fn refresh(&self, host: &dyn NearHost) -> EnvResult<()> {
        self.call(host, Replay::Safe, |r| async move { crate::env::Env::refresh(&*r).await }).await.unwrap_or(Ok(()))
    }

    /// Tells the file indexes that these paths changed.
    pub fn changed(&self, paths: &[&WorkspacePath]) {
        self.session.changed(paths);
    }

    /// A hook for the end of a command Burrow ran ([`SessionSlot::after_command`]).
    pub fn after_command(&self) -> impl Fn() + Send + Sync + 'static {
        self.session.after_command()
    }

    /// The change events, for [`crate::env::Env::watch`] (once).
    pub fn watch(&self) -> Option<mpsc::Receiver<WatchEvent>> {
        self.session.take_events(RESCAN_EVERY)
    }

    /// Forgets what was probed and the session: the environment was replaced.
    pub async fn reset(&self) {
        *self.search.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(NearSearch::new());
        self.session.reset().await;
    }
}
