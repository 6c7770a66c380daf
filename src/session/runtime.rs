//! The runtime the runners work in: the environment, the session store and
//! its runs, the event bus, the permission queue, the server's folders and
//! the config policy. `server/` builds it once from its own state; the
//! runners take it instead of the HTTP layer's state, so `session/` never
//! imports `server/` (the layer rule in DESIGN.md).

use std::path::PathBuf;
use std::sync::Arc;

use crate::agent::permission::Permissions;
use crate::agent::question::Questions;
use crate::config::agent::{relative_path, AgentPaths};
use crate::config::auth::AuthStore;
use crate::config::{self, Config, ConfigError, Sources};
use crate::env::{SharedEnv, WorkspacePath};
use crate::event::Bus;
use crate::instance::Instance;
use crate::mcp::{Mcp, Servers};
use crate::session::service::Sessions;

/// Where the server keeps and finds things, as `GET /path` reports them.
#[derive(Clone, Debug)]
pub struct Dirs {
    pub home: String,
    pub state: String,
    pub config: String,
}

/// Everything a runner (a prompt, a command, a compaction, a shell command)
/// needs beyond the session and the directory it runs in.
pub struct Runtime {
    pub env: SharedEnv,
    pub sessions: Arc<Sessions>,
    pub bus: Bus,
    pub permissions: Arc<Permissions>,
    /// The `question` tool's pending questions.
    pub questions: Arc<Questions>,
    pub dirs: Dirs,
    /// Which environment variables config files may read with `{env:NAME}`.
    pub config_env_allow: Vec<String>,
    /// The provider credentials stored in the data folder (server-wide, as
    /// OpenCode's `auth.json` is).
    pub auth: Arc<AuthStore>,
    /// The MCP servers started for this environment's directories; they run
    /// in it (local ones) and end with it.
    pub mcp: Arc<Mcp>,
}

impl Runtime {
    /// The merged config of `inst`'s directory: the global folder, the home
    /// folder, then the project's files from its worktree down.
    pub async fn config(&self, inst: &Instance) -> Result<Config, ConfigError> {
        let top = WorkspacePath::parse(self.env.root(), &inst.project.worktree).ok().filter(|t| inst.dir.starts_with(t)).unwrap_or_else(WorkspacePath::root);
        let sources = Sources {
            env: &*self.env,
            global_dir: PathBuf::from(&self.dirs.config),
            home: PathBuf::from(&self.dirs.home),
            dir: inst.dir.clone(),
            top,
            vars: std::env::vars().collect(),
            env_allow: self.config_env_allow.clone(),
        };
        let mut config = config::load(sources).await?;
        // An unreadable credentials file leaves providers to their config and
        // environment keys rather than failing every request that reads config.
        config.stored_keys = self.auth.keys().await.unwrap_or_else(|e| {
            tracing::warn!("stored provider credentials skipped: {e}");
            Default::default()
        });
        Ok(config)
    }

    /// The MCP servers of `inst`'s directory, connected from its config
    /// (`cfg`) the first time.
    pub async fn mcp(&self, inst: &Instance, cfg: &Config) -> Arc<Servers> {
        self.mcp.servers(&inst.dir, cfg.object("mcp")).await
    }

    /// The folders the built-in agents' rules mention.
    pub fn agent_paths(&self, inst: &Instance) -> AgentPaths {
        let plans = format!("{}/plans", self.state_dir());
        AgentPaths {
            tool_output: self.tool_output_dir(),
            scratch: std::env::temp_dir().join("burrow").to_string_lossy().into_owned(),
            plans_relative: relative_path(&inst.project.worktree, &plans),
            plans,
            home: self.dirs.home.clone(),
        }
    }

    /// Where tools keep output too long to hand to the model whole.
    pub fn tool_output_dir(&self) -> String {
        format!("{}/tool-output", self.state_dir())
    }

    fn state_dir(&self) -> &str {
        self.dirs.state.trim_end_matches('/')
    }
}
