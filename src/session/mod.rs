//! Sessions: the store (SQLite), the runs that hold a session while they
//! work, and the runners (the user's shell commands now, agent turns later).

pub mod datadir;
pub mod db;
pub mod error;
pub mod events;
pub mod moving;
pub mod output;
pub mod prompt;
pub mod revert;
pub mod runs;
pub mod runtime;
pub mod service;
pub mod shell;
pub mod slug;
pub mod snapshots;
pub mod store;
