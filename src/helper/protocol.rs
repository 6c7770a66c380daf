//! The helper's line protocol, both directions.
//!
//! - `walk`: one line per entry, `f\t<path>` or `d\t<path>`, then `end`.
//!   Paths escape `\\`, `\n` and `\t` so any file name fits on one line.
//! - `grep`: one JSON [`GrepMatch`] per line, then `{"truncated":BOOL}`.
//! - errors: the exit code says the kind, stderr carries `error\t<kind>\t<message>`.
//!
//! The trailing `end`/`truncated` line tells a complete answer from one cut
//! short by a dying connection.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::env::{EntryKind, EnvError, EnvResult, GrepMatch, GrepResult, IndexEntry};

pub const END: &str = "end";

/// `burrow-helper <version> <arch>`: what `version` prints, and what the
/// client checks before trusting an installed helper.
pub fn version_line() -> String {
    format!("burrow-helper {} {}", env!("CARGO_PKG_VERSION"), std::env::consts::ARCH)
}

fn escape(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.contains(['\\', '\n', '\t']) {
        return path.into();
    }
    path.replace('\\', "\\\\").replace('\n', "\\n").replace('\t', "\\t").into()
}

fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

pub fn write_entry(out: &mut impl Write, e: &IndexEntry) -> std::io::Result<()> {
    let tag = if e.kind == EntryKind::Directory { 'd' } else { 'f' };
    writeln!(out, "{tag}\t{}", escape(&e.path))
}

/// Parses a complete walk answer; an answer without its `end` line was cut short.
pub fn parse_walk(text: &str) -> EnvResult<Vec<IndexEntry>> {
    let mut entries = Vec::new();
    for line in text.lines() {
        if line == END {
            return Ok(entries);
        }
        let (kind, path) = match line.split_once('\t') {
            Some(("f", p)) => (EntryKind::File, p),
            Some(("d", p)) => (EntryKind::Directory, p),
            _ => return Err(EnvError::Io(format!("helper sent a malformed walk line: {line:?}"))),
        };
        entries.push(IndexEntry { path: unescape(path), kind });
    }
    Err(EnvError::Unavailable("the helper's walk output ended early".into()))
}

#[derive(Serialize, Deserialize)]
struct Trailer {
    truncated: bool,
}

pub fn write_grep(out: &mut impl Write, result: &GrepResult) -> std::io::Result<()> {
    for m in &result.matches {
        serde_json::to_writer(&mut *out, m)?;
        out.write_all(b"\n")?;
    }
    serde_json::to_writer(&mut *out, &Trailer { truncated: result.truncated })?;
    out.write_all(b"\n")
}

pub fn parse_grep(text: &str) -> EnvResult<GrepResult> {
    let mut matches = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Ok(t) = serde_json::from_str::<Trailer>(line) {
            return Ok(GrepResult { matches, truncated: t.truncated });
        }
        let m: GrepMatch = serde_json::from_str(line).map_err(|e| EnvError::Io(format!("helper sent a malformed match: {e}")))?;
        matches.push(m);
    }
    Err(EnvError::Unavailable("the helper's search output ended early".into()))
}

/// The canonical path: the nearest existing ancestor resolved through
/// symlinks, with the components that do not exist yet appended.
pub fn realpath(path: &Path) -> EnvResult<String> {
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    let mut probe = path;
    loop {
        if let Ok(real) = std::fs::canonicalize(probe) {
            let mut full: PathBuf = real;
            full.extend(rest.iter().rev());
            return Ok(full.to_string_lossy().into_owned());
        }
        // A dangling symlink: it points somewhere we cannot resolve; report the link itself.
        if probe.symlink_metadata().is_ok() {
            return Err(EnvError::Escape(path.display().to_string()));
        }
        match (probe.parent(), probe.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                probe = parent;
            }
            _ => return Err(EnvError::NotFound(path.display().to_string())),
        }
    }
}

const KINDS: [(&str, i32); 5] = [("NotFound", 3), ("InvalidInput", 4), ("Escape", 5), ("NotADirectory", 6), ("Io", 1)];

pub fn encode_error(e: &EnvError) -> String {
    let kind = match e {
        EnvError::NotFound(_) => "NotFound",
        EnvError::InvalidInput(_) => "InvalidInput",
        EnvError::Escape(_) => "Escape",
        EnvError::NotADirectory(_) => "NotADirectory",
        _ => "Io",
    };
    format!("error\t{kind}\t{}", e.to_string().replace('\n', " "))
}

pub fn exit_code(e: &EnvError) -> i32 {
    let kind = encode_error(e);
    KINDS.iter().find(|(k, _)| kind.split('\t').nth(1) == Some(*k)).map(|(_, c)| *c).unwrap_or(1)
}

/// Turns a failed helper run back into the error it reported.
pub fn decode_error(exit_code: Option<i32>, stderr: &str) -> EnvError {
    let line = stderr.lines().rev().find(|l| l.starts_with("error\t"));
    if let Some(line) = line {
        let mut parts = line.splitn(3, '\t').skip(1);
        let (kind, msg) = (parts.next().unwrap_or("Io"), parts.next().unwrap_or("").to_string());
        // The helper prints the Display form; keep the message, restore the kind.
        let msg = msg.strip_prefix("not found: ").map(str::to_owned).unwrap_or(msg);
        return match kind {
            "NotFound" => EnvError::NotFound(msg),
            "InvalidInput" => EnvError::InvalidInput(msg),
            "Escape" => EnvError::Escape(msg),
            "NotADirectory" => EnvError::NotADirectory(msg),
            _ => EnvError::Io(msg),
        };
    }
    EnvError::Io(format!("helper failed (exit {exit_code:?}): {}", stderr.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_round_trip_with_odd_names() {
        let entries = vec![
            IndexEntry { path: "a\tb\nc\\d".into(), kind: EntryKind::File },
            IndexEntry { path: "dir".into(), kind: EntryKind::Directory },
        ];
        let mut buf = Vec::new();
        for e in &entries {
            write_entry(&mut buf, e).unwrap();
        }
        buf.extend_from_slice(b"end\n");
        assert_eq!(parse_walk(std::str::from_utf8(&buf).unwrap()).unwrap(), entries);
        assert!(matches!(parse_walk("f\tx\n"), Err(EnvError::Unavailable(_))));
    }

    #[test]
    fn grep_round_trip_and_errors() {
        let result = GrepResult {
            matches: vec![GrepMatch { path: "p".into(), line_number: 3, absolute_offset: 9, line: "x\n".into(), submatches: vec![] }],
            truncated: true,
        };
        let mut buf = Vec::new();
        write_grep(&mut buf, &result).unwrap();
        assert_eq!(parse_grep(std::str::from_utf8(&buf).unwrap()).unwrap(), result);
        let e = EnvError::InvalidInput("invalid regex".into());
        assert_eq!(exit_code(&e), 4);
        assert_eq!(decode_error(Some(4), &encode_error(&e)), e);
        assert_eq!(decode_error(Some(3), &encode_error(&EnvError::NotFound("x".into()))), EnvError::NotFound("x".into()));
    }

    #[test]
    fn realpath_resolves_existing_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        let got = realpath(&dir.path().join("new/file.txt")).unwrap();
        assert_eq!(got, real.join("new/file.txt").to_string_lossy());
    }
}
