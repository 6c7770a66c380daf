//! Search: text search with ripgrep semantics, the gitignore-aware walk, the
//! fuzzy file index and the gitignore flags of directory listings.
//!
//! `grep` and `walk` work on a real filesystem and are shared by the local
//! environment and by `burrow-helper`, which runs this same code inside a
//! container or on a remote host. `fuzzy`, `index` and `ignore_rules` work on
//! data any environment can provide, so they run in the server for all of them.

/// Lets the moved modules keep naming themselves `crate::search::...`.
pub(crate) use crate as search;
/// The environment contract the search code works with, under the name the
/// moved modules use.
pub(crate) use burrow_protocol::env;

pub mod fuzzy;
pub mod gate;
pub mod grep;
pub mod ignore_rules;
pub mod index;
pub mod stream;
pub mod trigram;
pub mod walk;

/// Test hook, in debug builds only: while the file that
/// `BURROW_TEST_HOLD_SEARCHES` names does not exist, every text search run by
/// this process holds its worker thread. A test can then keep searches running
/// for as long as it needs, and prove that they block nothing else, without
/// racing them (tests/conformance/load.rs). Release builds have no such hook.
#[cfg(debug_assertions)]
pub(crate) fn hold_for_tests() {
    if let Some(gate) = std::env::var_os("BURROW_TEST_HOLD_SEARCHES") {
        while !std::path::Path::new(&gate).exists() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn hold_for_tests() {}
