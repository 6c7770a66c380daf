//! Instances: what the server knows about each directory clients work in
//! (its project and worktree), computed once and cached. Below the HTTP layer
//! (the runners in [`crate::session`] take an [`Instance`]); failures are
//! [`EnvError`]s, which `server/` maps to HTTP answers.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::env::{EntryKind, Env, EnvError, WorkspacePath};
use crate::protocol::project::{LocationInfo, LocationProject, Project, ProjectTime};
use crate::vcs;

/// The project id OpenCode uses for a directory outside any git repository.
pub const GLOBAL_PROJECT: &str = "global";

pub struct Instance {
    /// The directory, relative to the workspace root.
    pub dir: WorkspacePath,
    /// The directory as the environment names it (absolute).
    pub directory: String,
    pub project: Project,
}

impl Instance {
    /// Resolves a client-supplied path (relative to this directory, or absolute
    /// inside the workspace) to a workspace path.
    pub fn resolve(&self, root: &str, input: &str) -> Result<WorkspacePath, EnvError> {
        if WorkspacePath::is_absolute(input) {
            WorkspacePath::parse(root, input)
        } else {
            self.dir.join_checked(input)
        }
    }

    /// Where a `/api/*` answer comes from.
    pub fn location(&self) -> LocationInfo {
        LocationInfo { directory: self.directory.clone(), project: LocationProject { id: self.project.id.clone(), directory: self.project.worktree.clone() } }
    }

    /// A workspace path as this directory sees it.
    pub fn relative<'a>(&self, path: &'a WorkspacePath) -> &'a str {
        path.strip_prefix(&self.dir).unwrap_or(path.as_str())
    }
}

/// The instances seen so far, one per directory. Each directory is resolved
/// once (single-flight: concurrent first requests wait for one resolution),
/// and no lock is held across an environment call, so a slow environment
/// (`git rev-list` over SSH) stalls only the requests for that directory.
#[derive(Default)]
pub struct Instances {
    map: std::sync::Mutex<HashMap<WorkspacePath, Arc<OnceCell<Arc<Instance>>>>>,
}

impl Instances {
    /// The instance of `directory` (the workspace root if none) in `env`;
    /// `started_ms` dates the projects it finds.
    pub async fn resolve(&self, env: &dyn Env, started_ms: u64, directory: Option<&str>) -> Result<Arc<Instance>, EnvError> {
        let dir = match directory {
            Some(d) => WorkspacePath::parse(env.root(), d)?,
            None => WorkspacePath::root(),
        };
        let cell = self.lock().entry(dir.clone()).or_default().clone();
        // A failed resolution leaves the cell empty: the next request tries again.
        cell.get_or_try_init(|| Self::load(env, started_ms, dir)).await.cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<WorkspacePath, Arc<OnceCell<Arc<Instance>>>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn load(env: &dyn Env, started_ms: u64, dir: WorkspacePath) -> Result<Arc<Instance>, EnvError> {
        env.confine(&dir).await?;
        match env.stat(&dir).await {
            Ok(m) if m.kind == EntryKind::Directory => {}
            Ok(_) => return Err(EnvError::NotADirectory(dir.to_string())),
            Err(e) => return Err(e),
        }
        let directory = dir.absolute(env.root());
        let (id, worktree) = match vcs::project_id(env, &dir).await {
            Some(id) => (id, vcs::toplevel(env, &dir).await.unwrap_or_else(|| directory.clone())),
            None => (GLOBAL_PROJECT.to_string(), "/".to_string()),
        };
        let vcs = (id != GLOBAL_PROJECT).then(|| "git".to_string());
        let project = Project {
            id,
            worktree,
            vcs,
            name: None,
            icon: None,
            commands: None,
            time: ProjectTime { created: started_ms, updated: Some(started_ms), initialized: None },
            sandboxes: Vec::new(),
        };
        Ok(Arc::new(Instance { dir, directory, project }))
    }

    /// Forgets the instance of `directory` (the root when `None`), so the next
    /// request resolves it again: a `git init` since then shows as a project.
    pub fn dispose(&self, dir: &WorkspacePath) {
        self.lock().remove(dir);
    }

    /// Forgets every instance.
    pub fn dispose_all(&self) {
        self.lock().clear();
    }

    /// Every distinct project seen so far.
    pub async fn projects(&self) -> Vec<Project> {
        let resolved: Vec<Arc<Instance>> = self.lock().values().filter_map(|cell| cell.get().cloned()).collect();
        let mut seen: HashMap<String, Project> = HashMap::new();
        for inst in resolved {
            seen.entry(inst.project.id.clone()).or_insert_with(|| inst.project.clone());
        }
        let mut out: Vec<Project> = seen.into_values().collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}
