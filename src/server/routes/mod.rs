//! One module per API group. Handlers stay thin: parse, call the environment
//! or a shared service, shape the answer.

pub mod api;
pub mod api_message;
pub mod api_permission;
pub mod api_revert;
pub mod api_session_event;
pub mod app;
pub mod config;
pub mod control;
pub mod control_plane;
pub mod credential;
pub mod environment;
pub mod event;
pub mod file;
pub mod find;
pub mod lifecycle;
pub mod mcp;
pub mod message;
pub mod meta;
pub mod not_served;
pub mod permission;
pub mod permission_saved;
pub mod project;
pub mod prompt;
pub mod pty;
pub mod pty_connect;
pub mod session;
pub mod sync;
pub mod tools;
pub mod tui;
pub mod v2;
pub mod workspace;
pub mod worktree;

use serde::Deserialize;
use utoipa::IntoParams;

/// The parameters every instance-scoped endpoint accepts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct DirectoryParams {
    /// The directory to work in (absolute, inside the workspace). The
    /// `x-opencode-directory` header works too.
    pub directory: Option<String>,
    /// The workspace to work in (`POST /experimental/workspace` makes one); none is
    /// the server's own environment. The `x-opencode-workspace` header works too.
    pub workspace: Option<String>,
}

/// Where a v2 (`/api/*`) or experimental route works, as OpenCode's v2 SDK
/// spells it (`location[directory]=`, `location[workspace]=`). Only for
/// `/doc`: the `Ctx` and `Ws` extractors read both this and the v1 spelling.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct LocationParams {
    /// The directory to work in; `directory` works too.
    #[serde(rename = "location[directory]")]
    #[param(rename = "location[directory]", pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    location_directory: Option<String>,
    /// The workspace to work in; `workspace` works too.
    #[serde(rename = "location[workspace]")]
    #[param(rename = "location[workspace]")]
    location_workspace: Option<String>,
}
