//! The Docker environment: a workspace inside a container, over the Docker
//! Engine API (bollard).
//!
//! Burrow either creates a container from an image (and removes it at exit) or
//! attaches to a running one. File operations run as small sh scripts inside
//! the container ([`scripts`]), so paths are resolved and confined where the
//! data is; searches run next to the data through `burrow-helper` or `rg`
//! ([`crate::helper::client`]); processes run under `docker exec` ([`exec`]).
//! Once the helper is installed, every operation goes through its session in
//! the container instead ([`crate::near`], shared with SSH), and the scripts
//! serve only while there is none.
//! A container that dies mid-session turns every request into a clear 503
//! that says how to get a new one (`POST /burrow/env/recreate`).

mod backend;
mod container;
mod engine;
mod exec;
mod lifecycle;
mod options;
mod owner;
mod scripts;
mod session;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use bollard::query_parameters::InspectContainerOptions;
use bollard::Docker;

use crate::env::{EnvError, EnvResult, ProcessControl, WorkspacePath};
use crate::helper::client::NearSearch;
use crate::near::Near;
pub use container::Spec;
pub use lifecycle::open;
pub use options::{parse_memory, DockerArgs, Source};
pub use owner::Owner;

/// Processes by id; `None` marks one that ended before it was tracked.
type LiveProcesses = Arc<Mutex<HashMap<u64, Option<Arc<dyn ProcessControl>>>>>;

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

    async fn is_running(&self) -> bool {
        let info = self.docker.inspect_container(&self.id, None::<InspectContainerOptions>).await;
        info.ok().and_then(|i| i.state).and_then(|s| s.running) == Some(true)
    }

    /// An unexplained failure may be a container that died under the command.
    async fn check_alive(&self, err: EnvError) -> EnvError {
        match err {
            EnvError::Io(_) | EnvError::Unsupported(_) if !self.is_running().await => self.unavailable().await,
            err => err,
        }
    }
}

/// How this Burrow got its container.
enum Mode {
    Created(Spec),
    Attached(String),
}

pub struct DockerEnv {
    /// This environment, for background tasks it starts.
    me: Weak<DockerEnv>,
    docker: Docker,
    mode: Mode,
    owner: Owner,
    /// The workdir, resolved inside the container.
    root: String,
    target: RwLock<Arc<Target>>,
    /// Search next to the data, probed once per container, and
    /// `burrow-helper serve` in the container once the helper is installed:
    /// then every operation is a message instead of a `docker exec`. Also
    /// the change events the file indexes follow.
    near: Near,
    /// Processes still running, killed at shutdown. `None` marks one that
    /// ended before it was tracked.
    live: LiveProcesses,
    next_process: AtomicU64,
}

impl DockerEnv {
    /// `search` may be probing already (see [`open`]).
    fn new(me: &Weak<DockerEnv>, docker: Docker, mode: Mode, owner: Owner, target: Arc<Target>, root: String, search: Arc<NearSearch>) -> Self {
        Self {
            me: me.clone(),
            docker,
            mode,
            owner,
            near: Near::with_search(root.clone(), search),
            root,
            target: RwLock::new(target),
            live: Arc::default(),
            next_process: AtomicU64::new(0),
        }
    }

    fn target(&self) -> Arc<Target> {
        self.target.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The helper client's view of the current container.
    fn host(&self) -> backend::Host {
        backend::Host(self.target())
    }

    /// Tells the file indexes that something changed.
    fn changed(&self, paths: &[&WorkspacePath]) {
        self.near.changed(paths);
    }

    /// A new process id and what to do when that process ends: forget it, and,
    /// unless the helper's watcher reports changes, mark the file indexes
    /// dirty, since a command may have changed any file.
    fn exit_hook(&self) -> (u64, exec::OnExit) {
        let id = self.next_process.fetch_add(1, Ordering::Relaxed);
        let (live, changed) = (self.live.clone(), self.near.after_command());
        let hook: exec::OnExit = Arc::new(move || {
            let mut live = live.lock().unwrap_or_else(|e| e.into_inner());
            if live.remove(&id).is_none() {
                live.insert(id, None);
            }
            changed();
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
}
