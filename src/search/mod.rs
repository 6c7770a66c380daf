//! Search: text search with ripgrep semantics, the gitignore-aware walk, the
//! fuzzy file index and the gitignore flags of directory listings.
//!
//! `grep` and `walk` work on a real filesystem and are shared by the local
//! environment and by `burrow helper`, which runs this same code inside a
//! container or on a remote host. `fuzzy`, `index` and `ignore_rules` work on
//! data any environment can provide, so they run in the server for all of them.

pub mod fuzzy;
pub mod grep;
pub mod ignore_rules;
pub mod index;
pub mod stream;
pub mod walk;
