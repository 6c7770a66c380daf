//! The contracts every layer of Burrow shares, at the bottom of the crate graph:
//! the serde types of the OpenCode protocol (with their OpenAPI schemas) and the
//! sortable ids, and the environment contract ([`env`]: the `Env` trait,
//! `WorkspacePath`, `EnvError` and the data that crosses it).

pub mod env;
pub mod file;
pub mod id;
pub mod message;
pub mod num;
pub mod order;
pub mod part;
pub mod project;
pub mod session;

/// The OpenCode server version whose protocol Burrow speaks.
pub const OPENCODE_VERSION: &str = "1.18.33";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
