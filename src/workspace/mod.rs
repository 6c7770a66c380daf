//! Workspaces: many environments behind one server. Each workspace a client
//! creates (`POST /experimental/workspace`) has its own environment, opened
//! lazily on its first request, with its own instances, file index, watcher,
//! terminals and config (a [`Scope`]); the server's own `--env` is the
//! default scope. Records live in the session store's SQLite, so workspaces
//! survive a restart; a Docker workspace's container is kept and labelled with
//! the workspace's id and the data folder, so the next server finds it again
//! by those labels instead of making a second one, and removes the ones no
//! record names. Below the HTTP layer: failures are [`WsError`]s.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::env::SharedEnv;
use crate::envs::{EnvSpec, Kind, Places};
use crate::instance::Instances;
use crate::pty::PtyManager;
use crate::search::index::IndexRegistry;
use crate::session::runtime::Runtime;

/// How long the start-up sweep of leftover workspace containers may take.
const SWEEP_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an index may be reused when the environment cannot watch.
pub const UNWATCHED_INDEX_TTL: Duration = Duration::from_secs(2);

/// Everything that belongs to one environment: the runtime the runners take
/// (its `env`; sessions, bus and permissions are the server's), and the
/// caches built over that environment.
pub struct Scope {
    pub runtime: Arc<Runtime>,
    pub indexes: Arc<IndexRegistry>,
    pub instances: Instances,
    pub ptys: PtyManager,
}

impl Scope {
    /// The scope of `env`, sharing `base`'s sessions, bus, permissions,
    /// folders and terminal tickets.
    pub async fn open(env: SharedEnv, base: &Scope) -> Arc<Self> {
        let b = &base.runtime;
        let runtime = Arc::new(Runtime {
            mcp: Arc::new(crate::mcp::Mcp::new(env.clone())),
            env,
            sessions: b.sessions.clone(),
            bus: b.bus.clone(),
            permissions: b.permissions.clone(),
            questions: b.questions.clone(),
            dirs: b.dirs.clone(),
            config_env_allow: b.config_env_allow.clone(),
            auth: b.auth.clone(),
        });
        Self::with_runtime(runtime, Some(base)).await
    }

    /// The caches over `runtime`'s environment. The index watches the
    /// environment when it can, else is reused for [`UNWATCHED_INDEX_TTL`].
    /// Terminal tickets are shared with `base`, so that the one check before
    /// authentication finds a ticket whatever workspace issued it.
    pub async fn with_runtime(runtime: Arc<Runtime>, base: Option<&Scope>) -> Arc<Self> {
        let env = runtime.env.clone();
        let watching = env.capabilities().watch;
        let indexes = IndexRegistry::new(env.clone(), watching, UNWATCHED_INDEX_TTL);
        let watching = watching && indexes.start_watching().await;
        let indexes = if watching { indexes } else { IndexRegistry::new(env.clone(), false, UNWATCHED_INDEX_TTL) };
        let mut ptys = PtyManager::new(env, runtime.bus.clone());
        if let Some(base) = base {
            ptys.tickets = base.ptys.tickets.clone();
        }
        Arc::new(Self { runtime, indexes, instances: Instances::default(), ptys })
    }
}

/// A workspace as OpenCode's `Workspace` schema shows it; also the stored record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Info {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub directory: Option<String>,
    #[serde(default)]
    pub extra: Option<Value>,
    #[serde(rename = "projectID")]
    pub project_id: String,
    #[serde(rename = "timeUsed")]
    pub time_used: u64,
}

/// One `experimental.workspace.adapter.list` row.
#[derive(Clone, Debug, Serialize)]
pub struct Adapter {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub description: String,
}

/// Whether a client can use a workspace, as `experimental.workspace.status`
/// names it. OpenCode's TUI offers only `connected` workspaces and refuses to
/// prompt a session whose workspace is anything else ("Workspace
/// Unavailable"); a Burrow workspace whose environment is not open (never
/// used yet, being opened, or stopped for being idle) serves its next request
/// once it is open, so it is `connected` all along. OpenCode's `connecting`
/// and `disconnected` (a remote workspace server on its way or lost) have no
/// counterpart: whether the environment is open now is [`StatusRow::running`].
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Connected,
    /// Its environment could not be opened last time; the next request tries again.
    Error,
}

#[derive(Clone, Debug, Serialize)]
pub struct StatusRow {
    #[serde(rename = "workspaceID")]
    pub workspace_id: String,
    pub status: Status,
    /// Burrow's own field: whether its environment is open now (false before
    /// its first request and after an idle stop).
    pub running: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error("no workspace {0}")]
    NotFound(String),
    /// The request cannot make a workspace (a bad definition, a path outside the roots, the limit).
    #[error("{0}")]
    Create(String),
    /// The server does not let clients create workspaces.
    #[error("{0}")]
    Forbidden(String),
    /// The workspace's environment cannot be opened now. The message says how
    /// to try again: a request that names the workspace, such as the recreate
    /// route, which also replaces a Docker workspace's container that is gone.
    #[error(
        "cannot open workspace {id}: {message}; every request with ?workspace={id} tries again (POST /burrow/env/recreate?workspace={id} \
             makes a new container for a Docker workspace whose container is gone)"
    )]
    Unavailable { id: String, message: String },
    /// A Docker workspace's container could not be removed; its record is kept.
    #[error("cannot remove workspace {id}: {message}")]
    Remove { id: String, message: String },
    #[error("the workspace store failed: {0}")]
    Store(String),
}

/// What the operator allows.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Whether clients may create workspaces (a password is set, or loopback with the explicit flag).
    pub allow_create: bool,
    /// Host folders a local workspace (or a Docker copy or mount) may use.
    pub roots: Vec<PathBuf>,
    /// At most this many workspaces besides the default one.
    pub max: usize,
    /// Stop a workspace unused for this long (a Docker container is stopped, an SSH connection closed).
    pub idle: Option<Duration>,
    /// Defaults for Docker workspaces that set none.
    pub cpus: Option<f64>,
    pub memory: Option<i64>,
    /// Where definitions are looked up.
    pub places: Option<Places>,
}

/// The kinds a client may create inline.
const KINDS: [(&str, &str, &str); 4] = [
    ("local", "Local folder", "A folder on the server's host, under a root the operator allowed (extra.dir)"),
    ("docker", "Docker container", "A container from an image (extra.image), the server's limits on CPU and memory"),
    ("ssh", "SSH host", "A folder on an SSH host (extra.host, extra.dir)"),
    ("s3", "Object storage", "A bucket or prefix (extra.env = \"s3://bucket/prefix\")"),
];

struct Entry {
    info: Mutex<Info>,
    spec: EnvSpec,
    scope: tokio::sync::Mutex<Option<Arc<Scope>>>,
    status: Mutex<Status>,
    last_used: AtomicU64,
    /// Whether its environment is open: set once an opening succeeded, and
    /// cleared only once a stop has finished (the environment shut down and a
    /// Docker container stopped), so that `running: false` is a promise that
    /// nothing of it runs any more. The scope's lock cannot say it: it is held
    /// while the scope opens, serves a first request or stops alike.
    running: AtomicBool,
}

/// The properties of a `workspace.status` event.
#[derive(Serialize)]
struct StatusEvent<'a> {
    #[serde(rename = "workspaceID")]
    workspace_id: &'a str,
    status: Status,
}

/// The workspaces of one server.
pub struct Registry {
    base: Arc<Scope>,
    options: Options,
    entries: Mutex<BTreeMap<String, Arc<Entry>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The name of a Docker workspace's container: one per workspace, so that a
/// second server start attaches to it instead of creating another.
pub fn container_name(id: &str) -> String {
    format!("burrow-{}", id.to_ascii_lowercase())
}

impl Registry {
    /// Loads the stored workspaces (none is opened yet) and starts the idle reaper.
    pub async fn load(base: Arc<Scope>, options: Options) -> anyhow::Result<Arc<Self>> {
        let me = Arc::new(Self { base, options, entries: Mutex::default() });
        me.reload().await?;
        me.sweep().await;
        if let Some(idle) = me.options.idle {
            let weak = Arc::downgrade(&me);
            tokio::spawn(async move {
                let tick = (idle / 4).max(Duration::from_millis(50));
                loop {
                    tokio::time::sleep(tick).await;
                    let Some(me) = weak.upgrade() else { return };
                    me.stop_idle(idle).await;
                }
            });
        }
        Ok(me)
    }

    /// What this server's Docker workspace containers are labelled with
    /// besides their id: its data folder, so that servers with different
    /// data never touch each other's containers.
    fn store(&self) -> String {
        self.base.runtime.dirs.state.clone()
    }

    /// Removes the workspace containers of this data folder that no record
    /// names (a record deleted while its removal failed, a crash between the
    /// two): a workspace's container is never left behind.
    async fn sweep(&self) {
        // The stored records, not the entries: a record this server cannot
        // use now (its root no longer allowed) keeps its container.
        let known: Vec<String> = match self.base.runtime.sessions.store.workspaces().await {
            Ok(records) => records.iter().filter_map(|r| r["id"].as_str().map(str::to_string)).collect(),
            Err(e) => {
                tracing::warn!("cannot read the workspaces to sweep their containers: {e}");
                return;
            }
        };
        // Bounded: an unreachable Docker daemon must not hold the start.
        match tokio::time::timeout(SWEEP_TIMEOUT, docker::sweep(&self.store(), &known)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!("removed {n} container(s) of workspaces that no longer exist"),
            Ok(Err(e)) => tracing::debug!("cannot look for containers of deleted workspaces: {e:#}"),
            Err(_) => tracing::warn!("the Docker daemon did not answer within {SWEEP_TIMEOUT:?}: containers of deleted workspaces were not looked for"),
        }
    }

    /// Reads the records again; entries already known keep their open environment.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let records = self.base.runtime.sessions.store.workspaces().await?;
        for record in records {
            let info: Info = match serde_json::from_value(record) {
                Ok(info) => info,
                Err(e) => {
                    tracing::warn!("skipping a stored workspace that cannot be read: {e}");
                    continue;
                }
            };
            if lock(&self.entries).contains_key(&info.id) {
                continue;
            }
            match self.spec_for(&info.id, &info.kind, info.extra.as_ref()) {
                Ok(spec) => {
                    lock(&self.entries).insert(info.id.clone(), Arc::new(entry(info, spec)));
                }
                Err(e) => tracing::warn!("skipping stored workspace {}: {e}", info.id),
            }
        }
        Ok(())
    }

    /// The environment kinds and the named definitions a workspace can be made from.
    pub fn adapters(&self) -> Vec<Adapter> {
        let mut out: Vec<Adapter> = KINDS.iter().map(|(k, n, d)| Adapter { kind: k.to_string(), name: n.to_string(), description: d.to_string() }).collect();
        if let Some(places) = &self.options.places {
            for (name, defs) in places.all().unwrap_or_default() {
                let description = defs[0].parse().map(|s| s.description.clone().unwrap_or_else(|| s.summary())).unwrap_or_else(|e| format!("invalid: {e:#}"));
                out.push(Adapter { kind: name.clone(), name, description });
            }
        }
        out
    }

    pub fn list(&self) -> Vec<Info> {
        lock(&self.entries).values().map(|e| lock(&e.info).clone()).collect()
    }

    pub fn statuses(&self) -> Vec<StatusRow> {
        let entries: Vec<(String, Arc<Entry>)> = lock(&self.entries).iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        entries.into_iter().map(|(id, e)| StatusRow { workspace_id: id, status: *lock(&e.status), running: e.running.load(Ordering::SeqCst) }).collect()
    }

    fn find(&self, id: &str) -> Result<Arc<Entry>, WsError> {
        lock(&self.entries).get(id).cloned().ok_or_else(|| WsError::NotFound(id.to_string()))
    }

    /// Whether `id` names a workspace.
    pub fn exists(&self, id: &str) -> bool {
        lock(&self.entries).contains_key(id)
    }

    /// Makes a workspace from a kind or a definition name, with `extra` as an
    /// inline definition laid over it. Nothing is opened until it is used.
    pub async fn create(&self, id: Option<String>, kind: &str, branch: Option<String>, extra: Option<Value>) -> Result<Info, WsError> {
        if !self.options.allow_create {
            return Err(WsError::Forbidden(
                "this server does not create workspaces: set OPENCODE_SERVER_PASSWORD, or serve on loopback with --allow-workspaces".into(),
            ));
        }
        let id = id.unwrap_or_else(|| crate::id::ascending(crate::id::Prefix::Workspace));
        if !id.starts_with("wrk") || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(WsError::Create(format!("{id:?} is not a workspace id (wrk followed by letters and digits)")));
        }
        let spec = self.spec_for(&id, kind, extra.as_ref())?;
        let info = Info {
            id: id.clone(),
            kind: kind.to_string(),
            name: name_of(&spec),
            branch,
            directory: spec.dir.as_ref().map(|d| d.to_string_lossy().into_owned()).or_else(|| spec.workdir.clone()),
            extra,
            project_id: crate::instance::GLOBAL_PROJECT.to_string(),
            time_used: crate::now_ms(),
        };
        // Reserved under the lock, so that two requests can neither take the
        // same id nor pass the limit together; undone if the store fails.
        {
            let mut entries = lock(&self.entries);
            if entries.contains_key(&id) {
                return Err(WsError::Create(format!("workspace {id} exists")));
            }
            if entries.len() >= self.options.max {
                return Err(WsError::Create(format!("this server holds at most {} workspaces; delete one first", self.options.max)));
            }
            entries.insert(id.clone(), Arc::new(entry(info.clone(), spec)));
        }
        let stored = match serde_json::to_value(&info) {
            Ok(record) => self.base.runtime.sessions.store.put_workspace(&id, info.time_used, record).await.map_err(|e| WsError::Store(e.to_string())),
            Err(e) => Err(WsError::Store(e.to_string())),
        };
        if let Err(e) = stored {
            lock(&self.entries).remove(&id);
            return Err(e);
        }
        Ok(info)
    }

    /// The spec a workspace opens, checked against what the operator allows.
    fn spec_for(&self, id: &str, kind: &str, extra: Option<&Value>) -> Result<EnvSpec, WsError> {
        let bad = |m: String| WsError::Create(m);
        let inline: EnvSpec = match extra {
            None | Some(Value::Null) => EnvSpec::default(),
            Some(v @ Value::Object(_)) => serde_json::from_value(v.clone()).map_err(|e| bad(format!("extra is not an environment definition: {e}")))?,
            Some(_) => return Err(bad("extra must be an object with the fields of an envs/*.toml definition".into())),
        };
        let mut spec = match kind {
            "local" | "docker" | "ssh" => EnvSpec { env: Some(kind.to_string()), ..Default::default() },
            "s3" => {
                if !inline.env.as_deref().is_some_and(|e| e.contains("://")) {
                    return Err(bad("an s3 workspace needs extra.env, such as \"s3://bucket/prefix\"".into()));
                }
                EnvSpec::default()
            }
            name => {
                let places = self.options.places.as_ref().ok_or_else(|| bad(format!("no definition {name:?}")))?;
                let def = places.find(name).map_err(|e| bad(format!("{e:#}")))?.ok_or_else(|| bad(format!("no adapter or definition {name:?}")))?;
                let mut spec = def.parse().map_err(|e| bad(format!("{e:#}")))?;
                spec.resolve_paths(&places.project, places.home.as_deref());
                spec
            }
        };
        self.check_paths(&inline)?;
        spec.overlay(inline);
        let kind = spec.kind().map_err(|e| bad(format!("{}: {}", e.field, e.message)))?;
        match kind {
            Kind::Local => {
                let dir = spec.dir.clone().ok_or_else(|| bad("a local workspace needs extra.dir, a folder under an allowed root".into()))?;
                self.under_root("dir", &dir)?;
            }
            Kind::Docker if spec.container.is_none() => {
                spec.cpus = spec.cpus.or(self.options.cpus);
                spec.memory = spec.memory.or(self.options.memory);
                spec.name = Some(container_name(id));
                spec.keep = Some(true);
                spec.labels = docker::labels(id, &self.store());
                spec.recreate_request = Some(recreate_request(id));
            }
            _ => {}
        }
        spec.validate().map_err(|e| bad(format!("{}: {}", e.field, e.message)))?;
        Ok(spec)
    }

    /// An inline definition's host paths (a local folder, what a container
    /// copies or mounts, SSH keys and known hosts, a cache folder) must lie
    /// under an allowed root: a client must not reach the rest of the host.
    fn check_paths(&self, inline: &EnvSpec) -> Result<(), WsError> {
        let local = inline.env.as_deref().is_none_or(|e| e == "local");
        let paths = [
            ("dir", inline.dir.as_ref().filter(|_| local)),
            ("mount", inline.mount.as_ref()),
            ("copy", inline.copy.as_ref()),
            ("identity", inline.identity.as_ref()),
            ("known-hosts", inline.known_hosts.as_ref()),
            ("object-cache-dir", inline.object_cache_dir.as_ref()),
        ];
        for (field, path) in paths {
            if let Some(path) = path {
                self.under_root(field, path)?;
            }
        }
        Ok(())
    }

    fn under_root(&self, field: &str, path: &std::path::Path) -> Result<(), WsError> {
        let real = std::fs::canonicalize(path).map_err(|e| WsError::Create(format!("{field}: cannot use {}: {e}", path.display())))?;
        let allowed = self.options.roots.iter().filter_map(|r| std::fs::canonicalize(r).ok()).any(|root| real.starts_with(&root));
        if !allowed {
            return Err(WsError::Create(format!("{field}: {} is not under a root the server allows (--workspace-root)", path.display())));
        }
        Ok(())
    }

    /// The open scope of workspace `id`, opening its environment if needed
    /// (single-flight: concurrent first requests wait for one opening).
    pub async fn scope(&self, id: &str) -> Result<Arc<Scope>, WsError> {
        let entry = self.find(id)?;
        entry.last_used.store(crate::now_ms(), Ordering::Relaxed);
        let mut slot = entry.scope.lock().await;
        if let Some(scope) = slot.as_ref() {
            return Ok(scope.clone());
        }
        match open_env(id, &self.store(), &entry.spec).await {
            Ok(env) => {
                let scope = Scope::open(env, &self.base).await;
                *slot = Some(scope.clone());
                entry.running.store(true, Ordering::SeqCst);
                self.set_status(id, &entry, Status::Connected);
                lock(&entry.info).time_used = crate::now_ms();
                Ok(scope)
            }
            Err(e) => {
                self.set_status(id, &entry, Status::Error);
                Err(WsError::Unavailable { id: id.to_string(), message: format!("{e:#}") })
            }
        }
    }

    /// Records a status change and tells the clients (`workspace.status`, which
    /// OpenCode's TUI follows to know which workspaces it can use).
    fn set_status(&self, id: &str, entry: &Entry, status: Status) {
        let before = std::mem::replace(&mut *lock(&entry.status), status);
        if before != status {
            self.base.runtime.bus.publish(None, None, "workspace.status", StatusEvent { workspace_id: id, status });
        }
    }

    /// Destroys workspace `id`: its environment is shut down, a Docker
    /// container removed, its caches dropped and its record deleted.
    pub async fn remove(&self, id: &str) -> Result<Info, WsError> {
        let entry = self.find(id)?;
        let mut slot = entry.scope.lock().await;
        if let Some(scope) = slot.take() {
            scope.runtime.mcp.close_all().await;
            scope.runtime.env.shutdown().await;
        }
        entry.running.store(false, Ordering::SeqCst);
        drop(slot);
        if entry.spec.kind().ok() == Some(Kind::Docker) && entry.spec.container.is_none() {
            docker::remove(id, &self.store()).await.map_err(|e| WsError::Remove { id: id.to_string(), message: format!("{e:#}") })?;
        }
        self.base.runtime.sessions.store.delete_workspace(id).await.map_err(|e| WsError::Store(e.to_string()))?;
        lock(&self.entries).remove(id);
        let info = lock(&entry.info).clone();
        Ok(info)
    }

    /// Stops workspaces unused for `idle` that nothing is using now: the
    /// environment is shut down (a Docker container stopped, SSH closed);
    /// the next request opens it again.
    async fn stop_idle(&self, idle: Duration) {
        let now = crate::now_ms();
        let entries: Vec<(String, Arc<Entry>)> = lock(&self.entries).iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (id, entry) in entries {
            if now.saturating_sub(entry.last_used.load(Ordering::Relaxed)) < idle.as_millis() as u64 {
                continue;
            }
            let Ok(mut slot) = entry.scope.try_lock() else { continue };
            // Held elsewhere: a request or a runner is using it.
            let busy = slot.as_ref().is_some_and(|s| Arc::strong_count(s) > 1 || Arc::strong_count(&s.runtime) > 1 || !s.ptys.is_empty());
            if busy {
                continue;
            }
            let Some(scope) = slot.take() else { continue };
            tracing::info!("workspace {id} idle for {idle:?}: stopping it");
            scope.runtime.mcp.close_all().await;
            scope.runtime.env.shutdown().await;
            if entry.spec.kind().ok() == Some(Kind::Docker) && entry.spec.container.is_none() {
                if let Err(e) = docker::stop(&id, &self.store()).await {
                    tracing::warn!("cannot stop the container of workspace {id}: {e:#}");
                }
            }
            // Only now: a client that saw `running: false` may count on the
            // container having stopped. Still `connected`: the next request
            // opens it again (it waits on the slot until here).
            entry.running.store(false, Ordering::SeqCst);
        }
    }

    /// The environments of the workspaces open now (one not used since the
    /// start has none yet), for work over all of them such as snapshot pruning.
    pub async fn open_envs(&self) -> Vec<SharedEnv> {
        let entries: Vec<Arc<Entry>> = lock(&self.entries).values().cloned().collect();
        let mut out = Vec::new();
        for entry in entries {
            if let Some(scope) = entry.scope.lock().await.as_ref() {
                out.push(scope.runtime.env.clone());
            }
        }
        out
    }

    /// Shuts every open workspace down (containers are kept for the next start).
    pub async fn shutdown(&self) {
        let entries: Vec<Arc<Entry>> = lock(&self.entries).values().cloned().collect();
        for entry in entries {
            let mut slot = entry.scope.lock().await;
            if let Some(scope) = slot.take() {
                scope.runtime.mcp.close_all().await;
                scope.runtime.env.shutdown().await;
            }
            entry.running.store(false, Ordering::SeqCst);
        }
    }
}

fn entry(info: Info, spec: EnvSpec) -> Entry {
    let used = info.time_used;
    Entry {
        info: Mutex::new(info),
        spec,
        scope: tokio::sync::Mutex::new(None),
        status: Mutex::new(Status::Connected),
        last_used: AtomicU64::new(used),
        running: AtomicBool::new(false),
    }
}

/// A workspace's name, which clients show (OpenCode's TUI lists and picks
/// workspaces by it): a local one by its folder, since every local workspace
/// would otherwise be called just `local`.
fn name_of(spec: &EnvSpec) -> String {
    match (spec.kind(), &spec.dir) {
        (Ok(Kind::Local), Some(dir)) => format!("local ({})", dir.display()),
        _ => spec.summary(),
    }
}

/// The request that replaces workspace `id`'s dead container, as its errors name it.
pub fn recreate_request(id: &str) -> String {
    format!("POST /burrow/env/recreate?workspace={id}")
}

/// Opens a workspace's environment. A Docker workspace whose container is
/// still there (a restart, an idle stop) is started if needed and attached
/// to, so no second container is ever made for it.
async fn open_env(id: &str, store: &str, spec: &EnvSpec) -> anyhow::Result<SharedEnv> {
    if spec.kind().ok() == Some(Kind::Docker) && spec.container.is_none() {
        if let Some(name) = docker::start_existing(id, store).await? {
            let attach = EnvSpec {
                env: spec.env.clone(),
                container: Some(name),
                workdir: spec.workdir.clone(),
                recreate_request: spec.recreate_request.clone(),
                ..Default::default()
            };
            return crate::env::open::open(&attach).await;
        }
    }
    crate::env::open::open(spec).await
}

/// The Docker calls of workspaces: their containers are found by the labels
/// `burrow.workspace` (the id) and `burrow.workspace.store` (the data folder).
#[cfg(feature = "docker")]
mod docker {
    use std::collections::{BTreeMap, HashMap};

    use bollard::query_parameters::{InspectContainerOptions, ListContainersOptions, RemoveContainerOptions, StartContainerOptions, StopContainerOptions};
    use bollard::Docker;

    const ID: &str = "burrow.workspace";
    const STORE: &str = "burrow.workspace.store";

    pub fn labels(id: &str, store: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(ID.to_string(), id.to_string()), (STORE.to_string(), store.to_string())])
    }

    fn connect() -> anyhow::Result<Docker> {
        Ok(Docker::connect_with_defaults()?)
    }

    /// The containers (name, labels) of `store`, of workspace `id` when given, running or not.
    async fn find(docker: &Docker, store: &str, id: Option<&str>) -> anyhow::Result<Vec<(String, HashMap<String, String>)>> {
        let mut wanted = vec![format!("{STORE}={store}")];
        wanted.extend(id.map(|id| format!("{ID}={id}")));
        let opts = ListContainersOptions { all: true, filters: Some(HashMap::from([("label".to_string(), wanted)])), ..Default::default() };
        let found = docker.list_containers(Some(opts)).await.map_err(|e| anyhow::anyhow!("cannot list containers: {e}"))?;
        Ok(found
            .into_iter()
            .filter_map(|c| {
                let name = c.names?.first()?.trim_start_matches('/').to_string();
                Some((name, c.labels.unwrap_or_default()))
            })
            .collect())
    }

    /// Starts workspace `id`'s container if it exists and is stopped; its name.
    pub async fn start_existing(id: &str, store: &str) -> anyhow::Result<Option<String>> {
        let docker = connect()?;
        let Some((name, _)) = find(&docker, store, Some(id)).await?.into_iter().next() else { return Ok(None) };
        let state =
            docker.inspect_container(&name, None::<InspectContainerOptions>).await.map_err(|e| anyhow::anyhow!("cannot inspect the container {name}: {e}"))?;
        if !state.state.and_then(|s| s.running).unwrap_or(false) {
            docker.start_container(&name, None::<StartContainerOptions>).await.map_err(|e| anyhow::anyhow!("cannot start the container {name}: {e}"))?;
        }
        Ok(Some(name))
    }

    pub async fn stop(id: &str, store: &str) -> anyhow::Result<()> {
        let docker = connect()?;
        for (name, _) in find(&docker, store, Some(id)).await? {
            let opts = StopContainerOptions { t: Some(2), ..Default::default() };
            docker.stop_container(&name, Some(opts)).await.map_err(|e| anyhow::anyhow!("cannot stop the container {name}: {e}"))?;
        }
        Ok(())
    }

    async fn remove_named(docker: &Docker, name: &str) -> anyhow::Result<()> {
        let opts = RemoveContainerOptions { force: true, ..Default::default() };
        match docker.remove_container(name, Some(opts)).await {
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            Err(e) => Err(anyhow::anyhow!("cannot remove the container {name}: {e}")),
        }
    }

    pub async fn remove(id: &str, store: &str) -> anyhow::Result<()> {
        let docker = connect()?;
        for (name, _) in find(&docker, store, Some(id)).await? {
            remove_named(&docker, &name).await?;
        }
        Ok(())
    }

    /// Removes the containers of `store` whose workspace is not in `known`; how many.
    pub async fn sweep(store: &str, known: &[String]) -> anyhow::Result<usize> {
        let docker = connect()?;
        let mut removed = 0;
        for (name, labels) in find(&docker, store, None).await? {
            if labels.get(ID).is_some_and(|id| !known.contains(id)) {
                remove_named(&docker, &name).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(not(feature = "docker"))]
mod docker {
    pub fn labels(_: &str, _: &str) -> std::collections::BTreeMap<String, String> {
        Default::default()
    }
    pub async fn start_existing(_: &str, _: &str) -> anyhow::Result<Option<String>> {
        Ok(None)
    }
    pub async fn stop(_: &str, _: &str) -> anyhow::Result<()> {
        Ok(())
    }
    pub async fn remove(_: &str, _: &str) -> anyhow::Result<()> {
        Ok(())
    }
    pub async fn sweep(_: &str, _: &[String]) -> anyhow::Result<usize> {
        Ok(0)
    }
}
