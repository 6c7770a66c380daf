//! The Docker environment: a workspace inside a container, over the Docker
//! Engine API (bollard).
//!
//! Burrow either creates a container from an image (and removes it at exit) or
//! attaches to a running one. File operations run as small sh scripts inside
//! the container ([`scripts`]), so paths are resolved and confined where the
//! data is; searches run next to the data through `burrow helper` or `rg`
//! ([`crate::helper::client`]); processes run under `docker exec` ([`exec`]).
//! A container that dies mid-session turns every request into a clear 503
//! that says how to get a new one (`POST /burrow/env/recreate`).

mod backend;
mod container;
mod engine;
mod exec;
mod options;
mod owner;
mod scripts;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::{bail, Context};
use bollard::query_parameters::InspectContainerOptions;
use bollard::Docker;
use tokio::sync::mpsc;

use crate::cli::ServeArgs;
use crate::env::{EnvError, EnvResult, ProcessControl, SharedEnv, WatchEvent, WorkspacePath};
use crate::helper::client::NearSearch;
pub use container::Spec;
pub use options::{DockerArgs, Source};
pub use owner::Owner;

/// Without a watcher inside the container, anything may change at any time:
/// file indexes are told to re-walk (lazily, on their next query) this often.
const RESCAN_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Where helpers are installed inside containers.
const HELPER_DIR: &str = "/tmp/.burrow";

/// The container requests go to. Replaced as a whole when it is recreated.
pub struct Target {
    docker: Docker,
    id: String,
    name: String,
    /// How to get a working container again, for error messages.
    hint: String,
}

impl Target {
    /// Turns a failed Docker request into an error, telling a dead container
    /// from other failures.
    async fn fail(&self, what: &str, err: bollard::errors::Error) -> EnvError {
        match engine::classify(&err) {
            engine::Failure::ContainerDown(_) => self.unavailable().await,
            _ => engine::other(what, err),
        }
    }

    /// A 503 that says what happened to the container and what to do.
    async fn unavailable(&self) -> EnvError {
        let state = container::describe_down(&self.docker, &self.id).await;
        EnvError::Unavailable(format!("the container {} {state}; {}", self.name, self.hint))
    }

    /// An unexplained failure may be a container that died under the command.
    async fn check_alive(&self, err: EnvError) -> EnvError {
        if !matches!(err, EnvError::Io(_)) {
            return err;
        }
        match self.docker.inspect_container(&self.id, None::<InspectContainerOptions>).await {
            Ok(info) if info.state.as_ref().and_then(|s| s.running) == Some(true) => err,
            _ => self.unavailable().await,
        }
    }
}

/// How this Burrow got its container.
enum Mode {
    Created(Spec),
    Attached(String),
}

pub struct DockerEnv {
    docker: Docker,
    mode: Mode,
    owner: Owner,
    /// The workdir, resolved inside the container.
    root: String,
    target: RwLock<Arc<Target>>,
    /// Search next to the data, probed once per container.
    near: RwLock<Arc<NearSearch>>,
    events: mpsc::Sender<WatchEvent>,
    events_rx: Mutex<Option<mpsc::Receiver<WatchEvent>>>,
    /// Processes still running, killed at shutdown. `None` marks one that
    /// ended before it was tracked.
    live: Arc<Mutex<HashMap<u64, Option<Arc<dyn ProcessControl>>>>>,
    next_process: AtomicU64,
}

/// Opens `burrow serve --env docker`.
pub async fn open(args: &ServeArgs) -> anyhow::Result<SharedEnv> {
    let mut opts = args.docker.clone();
    if opts.workdir.is_none() {
        opts.workdir = args.dir.as_ref().map(|d| d.to_string_lossy().into_owned());
    }
    opts.validate()?;
    let docker = engine::connect().await?;
    let owner = Owner::current();
    let reaped = container::reap_orphans(&docker, &owner).await;
    if reaped > 0 {
        eprintln!("removed {reaped} container(s) left behind by a Burrow that did not exit cleanly");
    }
    let (mode, id, name, workdir) = match opts.source()? {
        Source::Image(image) => {
            let spec = Spec {
                image,
                name: opts.container_name.clone(),
                workdir: opts.workdir.clone().unwrap_or_else(|| "/workspace".into()),
                mount: opts.mount.clone(),
                copy: opts.copy.clone(),
                network: opts.network.clone(),
                cpus: opts.cpus,
                memory: opts.memory,
                keep: opts.keep,
            };
            let (id, name) = container::create(&docker, &spec, &owner).await?;
            let workdir = spec.workdir.clone();
            (Mode::Created(spec), id, name, workdir)
        }
        Source::Container(name) => {
            let (id, workdir) = attach(&docker, &name, opts.workdir.as_deref()).await?;
            (Mode::Attached(name.clone()), id, name, workdir)
        }
    };
    let env = DockerEnv::new(docker, mode, owner, id, name);
    match env.prepare(&workdir, opts.copy.as_deref()).await {
        Ok(root) => Ok(Arc::new(DockerEnv { root, ..env })),
        Err(e) => {
            env.shutdown_container().await;
            Err(e)
        }
    }
}

/// Finds a running container and its workdir.
async fn attach(docker: &Docker, name: &str, workdir: Option<&str>) -> anyhow::Result<(String, String)> {
    let info = docker.inspect_container(name, None::<InspectContainerOptions>).await.with_context(|| format!("no container {name}"))?;
    if info.state.as_ref().and_then(|s| s.running) != Some(true) {
        bail!("the container {name} is not running (start it with `docker start {name}`)");
    }
    let id = info.id.context("the daemon did not say the container's id")?;
    let configured = info.config.and_then(|c| c.working_dir).filter(|w| !w.is_empty() && w != "/");
    let workdir = match (workdir, configured) {
        (Some(w), _) => w.to_string(),
        (None, Some(w)) => w,
        (None, None) => bail!("the container {name} has no working directory: say which folder to serve with --workdir"),
    };
    Ok((id, workdir))
}

impl DockerEnv {
    fn new(docker: Docker, mode: Mode, owner: Owner, id: String, name: String) -> Self {
        let hint = match &mode {
            Mode::Created(spec) => format!(
                "POST /burrow/env/recreate replaces it with a new container from {} ({}), or restart burrow",
                spec.image,
                match (&spec.mount, &spec.copy) {
                    (Some(_), _) => "the --mount folder is mounted again",
                    (_, Some(_)) => "the --copy folder is uploaded again; changes made inside are lost",
                    _ => "files written inside are lost",
                }
            ),
            Mode::Attached(n) => format!("POST /burrow/env/recreate starts it again (like `docker start {n}`)"),
        };
        let target = Target { docker: docker.clone(), id, name, hint };
        let (events, events_rx) = mpsc::channel(1024);
        Self {
            docker,
            mode,
            owner,
            root: String::new(),
            target: RwLock::new(Arc::new(target)),
            near: RwLock::new(Arc::new(NearSearch::new())),
            events,
            events_rx: Mutex::new(Some(events_rx)),
            live: Arc::default(),
            next_process: AtomicU64::new(0),
        }
    }

    fn target(&self) -> Arc<Target> {
        self.target.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn near(&self) -> Arc<NearSearch> {
        self.near.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Resolves the workdir, uploads `--copy`, and starts installing the helper.
    async fn prepare(&self, workdir: &str, copy: Option<&std::path::Path>) -> anyhow::Result<String> {
        let t = self.target();
        let argv = scripts::argv(scripts::ROOT, &[workdir]);
        let out = exec::op(&t, argv, None, 64 << 10).await.with_context(|| format!("cannot use {workdir} in the container {}", t.name))?;
        let root = String::from_utf8_lossy(&out).trim_end_matches('\n').to_string();
        if let Some(dir) = copy {
            eprintln!("copying {} into {}:{root} ...", dir.display(), t.name);
            container::upload_dir(&self.docker, &t.id, dir, &root).await?;
        }
        self.warm_search();
        Ok(root)
    }

    /// Installs the search helper in the background, so the first search does not wait.
    fn warm_search(&self) {
        let (near, host) = (self.near(), backend::Host(self.target()));
        tokio::spawn(async move {
            near.method(&host).await;
        });
    }

    /// Sends a `Rescan` every [`RESCAN_EVERY`] until the watcher's receiver is gone.
    fn start_ticking(&self) {
        let events = self.events.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RESCAN_EVERY);
            loop {
                tick.tick().await;
                if let Err(mpsc::error::TrySendError::Closed(_)) = events.try_send(WatchEvent::Rescan) {
                    break;
                }
            }
        });
    }

    /// Tells the file indexes that something changed.
    fn changed(&self, paths: &[&WorkspacePath]) {
        let _ = self.events.try_send(WatchEvent::Changed(paths.iter().map(|p| (*p).clone()).collect()));
    }

    /// A new process id and what to do when that process ends: forget it, and
    /// mark the file indexes dirty, since a command may have changed any file.
    fn exit_hook(&self) -> (u64, exec::OnExit) {
        let id = self.next_process.fetch_add(1, Ordering::Relaxed);
        let (live, events) = (self.live.clone(), self.events.clone());
        let hook: exec::OnExit = Arc::new(move || {
            let mut live = live.lock().unwrap_or_else(|e| e.into_inner());
            if live.remove(&id).is_none() {
                live.insert(id, None);
            }
            let _ = events.try_send(WatchEvent::Rescan);
        });
        (id, hook)
    }

    /// Remembers a running process, to kill it at shutdown.
    fn track(&self, id: u64, control: Arc<dyn ProcessControl>) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if live.remove(&id).is_none() {
            live.insert(id, Some(control));
        }
    }

    /// Removes the container Burrow created (unless --keep); in an attached
    /// container, kills what Burrow started.
    async fn shutdown_container(&self) {
        let live: Vec<_> = self.live.lock().unwrap_or_else(|e| e.into_inner()).drain().filter_map(|(_, c)| c).collect();
        let t = self.target();
        match &self.mode {
            Mode::Created(spec) if spec.keep => {
                eprintln!("left the container {} running (--keep); serve it again with --env docker --container {}", t.name, t.name);
            }
            Mode::Created(_) => container::remove(&self.docker, &t.id).await,
            Mode::Attached(_) => {
                for control in live {
                    let _ = control.kill().await;
                }
            }
        }
    }

    /// A fresh container (created mode) or the same one started again (attached mode).
    async fn replace_container(&self) -> EnvResult<String> {
        let old = self.target();
        let (id, name) = match &self.mode {
            Mode::Created(spec) => {
                container::remove(&self.docker, &old.id).await;
                let (id, name) = container::create(&self.docker, spec, &self.owner).await.map_err(|e| EnvError::Unavailable(format!("{e:#}")))?;
                if let Some(dir) = &spec.copy {
                    let uploaded = container::upload_dir(&self.docker, &id, dir, &self.root).await;
                    if let Err(e) = uploaded {
                        container::remove(&self.docker, &id).await;
                        return Err(EnvError::Unavailable(format!("{e:#}")));
                    }
                }
                (id, name)
            }
            Mode::Attached(name) => {
                let started = self.docker.start_container(name, None::<bollard::query_parameters::StartContainerOptions>).await;
                started.map_err(|e| EnvError::Unavailable(format!("cannot start the container {name}: {e}")))?;
                (old.id.clone(), name.clone())
            }
        };
        let target = Arc::new(Target { docker: self.docker.clone(), id, name: name.clone(), hint: old.hint.clone() });
        *self.target.write().unwrap_or_else(|e| e.into_inner()) = target;
        *self.near.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(NearSearch::new());
        self.live.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.warm_search();
        let _ = self.events.try_send(WatchEvent::Rescan);
        Ok(name)
    }
}
