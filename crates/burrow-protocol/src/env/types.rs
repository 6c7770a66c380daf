//! Plain data that crosses the environment boundary. These types also travel
//! as JSON between the server and `burrow-helper`, so they are serde types.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::WorkspacePath;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Directory,
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    pub name: String,
    pub kind: EntryKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub kind: EntryKind,
    pub size: u64,
    /// Modification time in milliseconds since the epoch, when known.
    pub modified_ms: Option<u64>,
}

/// One entry of the file index, relative to the walked directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub path: String,
    pub kind: EntryKind,
}

/// A text search, with ripgrep semantics.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GrepRequest {
    /// Where to search; results are relative to it.
    #[serde(default)]
    pub dir: String,
    /// A Rust regex (ripgrep's default engine).
    pub pattern: String,
    /// An optional glob restricting which files are searched (`--glob`).
    #[serde(default)]
    pub include: Option<String>,
    /// Stop after this many matching lines in total.
    pub limit: usize,
    #[serde(default)]
    pub case_insensitive: bool,
}

impl GrepRequest {
    pub fn new(dir: &WorkspacePath, pattern: impl Into<String>, limit: usize) -> Self {
        Self { dir: dir.as_str().to_string(), pattern: pattern.into(), include: None, limit, case_insensitive: false }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submatch {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// One matching line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrepMatch {
    pub path: String,
    pub line_number: u64,
    pub absolute_offset: u64,
    /// The line, with its terminator, as ripgrep's `lines.text`.
    pub line: String,
    pub submatches: Vec<Submatch>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrepResult {
    pub matches: Vec<GrepMatch>,
    /// True when the limit cut the search short.
    pub truncated: bool,
}

/// How an environment runs searches, reported to clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SearchBackend {
    /// In the server process, next to local files.
    InProcess,
    /// `burrow-helper` running next to the data.
    Helper,
    /// `rg --json` in the environment.
    Ripgrep,
    /// `grep` in the environment.
    Grep,
    /// File contents streamed to the server and searched there.
    Stream,
    /// A cached listing and content cache (object storage).
    CachedIndex,
}

/// What an environment can do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Capabilities {
    pub exec: bool,
    pub pty: bool,
    pub watch: bool,
    pub search: SearchBackend,
}

/// The state of an environment's indexed text search (its trigram index).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TextIndexStatus {
    /// `building` (no index yet: searches scan), `ready`, `stale` (changes were
    /// lost: searches scan until the rebuild under way ends), `failed`, or
    /// `waiting` (object storage before its first text search, which fills the
    /// content cache the build then reads).
    pub state: String,
    /// A rebuild runs in the background (the current index, if any, keeps answering).
    pub rebuilding: bool,
    /// Files in the index.
    pub entries: u64,
    /// The index file's size.
    pub bytes: u64,
    /// Paths changed since the build: searched directly next to the index's candidates.
    pub changed: u64,
    /// Why the last build failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One file that differs between two snapshots: its blob before and after
/// (`None`: the file is absent on that side), by path below the root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotChange {
    pub path: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// What a snapshot prune did: loose objects kept and removed, and the bytes removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPruned {
    pub kept: u64,
    pub removed: u64,
    pub bytes: u64,
}

impl SnapshotPruned {
    /// Adds another store's counts.
    pub fn add(&mut self, other: &Self) {
        self.kept += other.kept;
        self.removed += other.removed;
        self.bytes += other.bytes;
    }
}

/// A change below the root, for keeping indexes fresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    /// These paths changed (created, modified or removed).
    Changed(Vec<WorkspacePath>),
    /// Something changed that could not be pinned down; assume anything did.
    Rescan,
    /// The watcher lost events (its queue overflowed, typically under heavy
    /// file activity): the index is rebuilt in the background while the old
    /// one keeps answering, rather than every lookup waiting for a full walk.
    Overflow,
}
