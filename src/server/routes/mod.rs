//! One module per API group. Handlers stay thin: parse, call the environment
//! or a shared service, shape the answer.

pub mod environment;
pub mod event;
pub mod file;
pub mod find;
pub mod meta;

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
    /// Accepted for compatibility; Burrow has one workspace per server.
    pub workspace: Option<String>,
}
