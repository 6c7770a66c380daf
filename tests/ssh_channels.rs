//! The SSH environment's Env-level cases (`ssh/env.rs`) without the helper
//! session: one exec channel per command, the helper kept out with
//! `BURROW_SEARCH=rg`. `ssh.rs` runs the same cases through the session.

#[path = "support/mod.rs"]
mod support;
#[path = "ssh/remote.rs"]
#[macro_use]
#[allow(dead_code)] // the HTTP half is for ssh.rs
mod remote;

/// The Env-level cases run with one channel per command here.
const SESSION: bool = false;

#[path = "ssh/env.rs"]
mod env;
