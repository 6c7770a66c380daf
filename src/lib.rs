//! Burrow: one OpenCode-compatible HTTP API over code that lives anywhere.
//!
//! The layers, top to bottom: [`server`] speaks HTTP and the OpenCode protocol
//! ([`protocol`]); [`search`], [`vcs`] and [`content`] hold behaviour shared by
//! every backend; [`env`] is the execution-environment abstraction with its backends.

pub mod agent;
pub mod cli;
pub mod config;
pub mod content;
pub mod env;
pub mod envs;
pub mod error;
pub mod event;
pub mod helper;
pub mod id;
pub mod protocol;
pub mod pty;
pub mod search;
pub mod server;
pub mod session;
pub mod vcs;

/// The OpenCode server version whose protocol Burrow speaks.
pub const OPENCODE_VERSION: &str = "1.18.33";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
