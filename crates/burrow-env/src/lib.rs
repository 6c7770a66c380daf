//! The execution environments behind the `Env` contract of `burrow_protocol::env`:
//! the local folder, Docker (feature `docker`), SSH (feature `ssh`) and object
//! storage (feature `object`), and the helper that runs next to the data.

pub use burrow_protocol::env::*;

/// Lets the moved modules keep naming the contract `crate::env::...`.
pub(crate) use crate as env;
pub(crate) use burrow_protocol::id;
#[cfg(feature = "docker")]
pub(crate) use burrow_protocol::now_ms;
pub(crate) use burrow_search as search;

pub mod beneath;
#[cfg(feature = "docker")]
pub mod docker;
pub mod groups;
pub mod helper;
pub mod local;
#[cfg(any(feature = "docker", feature = "ssh"))]
pub mod near;
pub mod object;
pub mod snapshot;
#[cfg(feature = "ssh")]
pub mod ssh;
