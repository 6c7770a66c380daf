//! What only one backend shows, through the real server and its Env: Docker
//! (container lifecycle, orphans, attach and mount), SSH (logins, host keys,
//! each search method, reconnects) and object storage (the caches, settings
//! errors, a memory bucket). What every backend must do alike is the Env
//! contract's (tests/env_contract) and the conformance suite's.
//!
//! Each needs its service from tests/support/services.sh; without it a test
//! prints why and passes, and with `CI=true` it fails.

#[path = "../support/mod.rs"]
mod support;

#[path = "../docker_support/mod.rs"]
mod docker_support;

#[path = "../s3_support/mod.rs"]
mod s3_support;

/// The SSH scratch folders and server; its `sshd!()` macro is for `ssh`.
#[macro_use]
mod remote;

mod docker;
mod object_storage;
mod ssh;
mod workspaces;
