//! Shared by the integration tests: fixture trees, the environments a suite
//! runs against, and the real server. Include it with `mod support;`.
#![allow(dead_code)]

pub mod agent;
pub mod calls;
pub mod env;
pub mod fixture;
pub mod launch;
pub mod llm;
pub mod s3;
pub mod server;
pub mod ssh;

use std::future::Future;

use serde_json::Value;

pub use env::{TestEnv, Workspace};
pub use fixture::Fixture;
pub use server::Server;

/// Runs `check` once per selected environment, in order, naming each one on
/// stderr (shown when the test fails).
pub async fn for_each_env<F, Fut>(mut check: F)
where
    F: FnMut(TestEnv) -> Fut,
    Fut: Future<Output = ()>,
{
    for env in TestEnv::selected() {
        eprintln!("=== environment: {}", env.name());
        check(env).await;
    }
}

/// What `GET /burrow/capabilities` says about the environment being served.
#[derive(Clone, Debug)]
pub struct Caps {
    /// `local`, `docker`, `ssh` or `object`.
    pub env: String,
    pub exec: bool,
    pub watch: bool,
}

/// A fixture placed in an environment and served.
pub struct Served {
    pub env: TestEnv,
    pub caps: Caps,
    // Field order is drop order: stop the server before removing its files.
    pub srv: Server,
    pub ws: Workspace,
    pub fx: Fixture,
}

impl Served {
    /// The standard fixture, served with no credentials.
    pub async fn standard(env: TestEnv) -> Self {
        Self::new(env, Fixture::standard(), &[]).await
    }

    pub async fn new(env: TestEnv, fx: Fixture, vars: &[(&str, &str)]) -> Self {
        let ws = env.place(&fx).await.unwrap_or_else(|e| panic!("[{}] {e:#}", env.name()));
        let srv = Server::start_with(&ws, vars).await;
        let caps = capabilities(&srv, &ws).await;
        Self { env, caps, srv, ws, fx }
    }

    pub fn abs(&self, rel: &str) -> String {
        self.ws.abs(rel)
    }

    /// Git works where processes run; object storage has no VCS.
    pub fn git(&self) -> bool {
        self.caps.exec
    }

    pub fn symlinks(&self) -> bool {
        self.ws.symlinks
    }

    /// OpenCode's project id: the root commit in a git repository, else `global`.
    pub fn project_id(&self) -> String {
        match (&self.fx.root_commit, self.git()) {
            (Some(commit), true) => commit.clone(),
            _ => "global".to_string(),
        }
    }

    /// The project's worktree: the repository's top level, else `/` (OpenCode's global project).
    pub fn worktree(&self) -> String {
        if self.project_id() == "global" {
            "/".to_string()
        } else {
            self.ws.root.clone()
        }
    }
}

/// Reads the capability report, checking what every environment must agree on.
async fn capabilities(srv: &Server, ws: &Workspace) -> Caps {
    let (status, body) = srv.get("/burrow/capabilities").await;
    assert_eq!(status, 200, "GET /burrow/capabilities: {body}");
    assert_eq!(body["root"], Value::from(ws.root.as_str()), "the server's root is where the fixture was placed");
    let env = body["env"].as_str().expect("env is a string").to_string();
    let flag = |name: &str| body["capabilities"][name].as_bool().unwrap_or_else(|| panic!("capabilities.{name} is a boolean: {body}"));
    let caps = Caps { env, exec: flag("exec"), watch: flag("watch") };
    // Documented difference: only object storage lacks symlinks.
    assert_eq!(ws.symlinks, caps.env != "object", "symlinks exist in every environment but object storage");
    caps
}
