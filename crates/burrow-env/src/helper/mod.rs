//! The helper, both sides: `burrow-helper` (the small static program of crate
//! `burrow-helper`) runs next to the data.
//!
//! Inside a container or on a remote host, Burrow uploads that program and runs
//! `burrow-helper <op>` there, so that a whole walk or search costs one exec
//! round trip and the file bytes never cross the wire. [`protocol`] defines the
//! compact line protocol and the version line; [`client`] is the server side
//! (installing, checking, calling, falling back to `rg`, then to [`posix`]
//! `find` and `grep`). `burrow-helper serve` ([`serve`]) keeps one helper
//! running and answers many requests over one stream; [`remote`] is its client,
//! an [`crate::env::Env`].

pub mod client;
mod posix;
pub mod protocol;
pub mod remote;
pub mod serve;
#[cfg(test)]
mod session_tests;
pub mod slot;
