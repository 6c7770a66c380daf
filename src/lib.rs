//! Burrow: one OpenCode-compatible HTTP API over code that lives anywhere.
//!
//! The layers, top to bottom: [`cli`]; [`server`] speaks HTTP and the OpenCode
//! protocol ([`protocol`]), with its error mapping in [`error`]; [`session`]
//! (the store and the runners, which take a [`session::runtime::Runtime`]),
//! [`agent`], [`config`], [`pty`] and [`instance`] never import those two
//! (a test in `layers.rs` checks it); [`search`], [`vcs`] and [`content`] hold
//! behaviour shared by every backend; [`env`] is the execution-environment
//! abstraction with its backends.

pub mod agent;
pub mod cli;
pub mod config;
pub mod content;
/// The environments (crate `burrow-env`), and opening the one the command line names.
pub mod env {
    pub use burrow_env::*;
    pub mod open;
}
pub mod envs;
pub mod error;
pub mod event;
pub mod instance;
#[cfg(test)]
mod layers;
pub mod mcp;
pub use burrow_env::helper;
pub use burrow_protocol as protocol;
pub use burrow_protocol::id;
pub mod pty;
pub use burrow_search as search;
pub mod server;
pub mod session;
pub mod vcs;
pub mod workspace;
pub mod worktree;

pub use burrow_protocol::{now_ms, OPENCODE_VERSION};
