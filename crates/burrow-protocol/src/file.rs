//! File, search and listing shapes (`FileNode`, `FileContent`, `File`, matches).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::env::EntryKind;

/// One entry of `GET /file`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct FileNode {
    pub name: String,
    /// Relative to the request's directory; directories end with `/`.
    pub path: String,
    pub absolute: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
    pub ignored: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContentType {
    Text,
    Binary,
}

/// `GET /file/content`: text as is, anything else base64 with its MIME type.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct FileContent {
    #[serde(rename = "type")]
    pub kind: ContentType,
    pub content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    #[serde(rename = "mimeType", skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileChange {
    Added,
    Deleted,
    Modified,
}

/// One changed file of `GET /file/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FileStatus {
    pub path: String,
    pub added: u64,
    pub removed: u64,
    pub status: FileChange,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Text {
    pub text: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct MatchSubmatch {
    #[serde(rename = "match")]
    pub matched: Text,
    pub start: usize,
    pub end: usize,
}

/// One matching line of `GET /find`, in ripgrep's `--json` shape.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TextMatch {
    pub path: Text,
    pub lines: Text,
    pub line_number: u64,
    pub absolute_offset: u64,
    pub submatches: Vec<MatchSubmatch>,
}

impl From<crate::env::GrepMatch> for TextMatch {
    fn from(m: crate::env::GrepMatch) -> Self {
        Self {
            path: Text { text: m.path },
            lines: Text { text: m.line },
            line_number: m.line_number,
            absolute_offset: m.absolute_offset,
            submatches: m.submatches.into_iter().map(|s| MatchSubmatch { matched: Text { text: s.text }, start: s.start, end: s.end }).collect(),
        }
    }
}

/// An LSP symbol (`GET /find/symbol`). Burrow runs no language servers yet.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Symbol {
    pub name: String,
    pub kind: u32,
    pub location: serde_json::Value,
}

/// One entry of `GET /api/fs/find`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct FileSystemEntry {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
}
