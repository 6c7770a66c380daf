//! The helper's line protocol, both directions.
//!
//! - `walk`: one line per entry, `f\t<path>` or `d\t<path>`, then `end`.
//!   Paths escape `\\`, `\n` and `\t` so any file name fits on one line.
//! - `grep`: one JSON [`GrepMatch`] per line, then `{"truncated":BOOL}`.
//! - `list` (the Docker backend's sh script): `d\tNAME\0` or `f\tNAME\0` per entry.
//! - `stat` (the same): `KIND SIZE MTIME_SECONDS`.
//! - errors: the exit code says the kind, stderr carries `error\t<kind>\t<payload>`.
//!
//! The trailing `end`/`truncated` line tells a complete answer from one cut
//! short by a dying connection.
//!
//! [`frames`] is the framed protocol of the long-lived `helper serve`.

pub mod frames;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::env::{DirEntry, EntryKind, EnvError, EnvResult, GrepMatch, GrepResult, IndexEntry, Metadata};

pub const END: &str = "end";

/// The version of the helper's protocols (the line protocol and the frames).
/// Part of the version line, so a helper that speaks another one is replaced.
pub const PROTOCOL: u32 = 2;

/// `burrow-helper <version> <arch> protocol <n> build <sha256>`: what `version`
/// prints and what `serve` greets with. The client compares it with the line of
/// the build it uploaded (`build` is that file's SHA-256), so a helper from
/// another commit, or any other file at the install path, is never trusted.
pub fn version_line(build: &str) -> String {
    version_line_for(std::env::consts::ARCH, build)
}

/// The version line of the helper build for `arch` (`uname -m`) whose SHA-256
/// is `build`, as this version of Burrow made it: what a server expects from
/// the build it uploaded to a machine of another architecture than its own.
pub fn version_line_for(arch: &str, build: &str) -> String {
    format!("burrow-helper {} {arch} protocol {PROTOCOL} build {build}", env!("CARGO_PKG_VERSION"))
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

/// Parses a directory listing of `d\tNAME\0` / `f\tNAME\0` records (NUL
/// ends a record, so any name fits; the Docker backend's `list` script prints it).
pub fn parse_list(data: &[u8]) -> EnvResult<Vec<DirEntry>> {
    let mut out = Vec::new();
    for rec in data.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let kind = match rec.get(..2) {
            Some(b"d\t") => EntryKind::Directory,
            Some(b"f\t") => EntryKind::File,
            _ => return Err(EnvError::Io(format!("malformed listing record: {:?}", String::from_utf8_lossy(rec)))),
        };
        out.push(DirEntry { name: String::from_utf8_lossy(&rec[2..]).into_owned(), kind });
    }
    Ok(out)
}

/// Parses `KIND SIZE MTIME_SECONDS` (`d` or `f`), the Docker backend's `stat` answer.
pub fn parse_stat(line: &str) -> EnvResult<Metadata> {
    let bad = || EnvError::Io(format!("malformed stat answer: {line:?}"));
    let mut it = line.split_whitespace();
    let kind = match it.next() {
        Some("d") => EntryKind::Directory,
        Some("f") => EntryKind::File,
        _ => return Err(bad()),
    };
    let size = it.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let modified_ms = it.next().and_then(|s| s.parse::<u64>().ok()).map(|s| s * 1000);
    Ok(Metadata { kind, size, modified_ms })
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

/// Error kinds on the wire: the name in the stderr line and the exit code.
/// The `sh` scripts of the Docker backend speak the same (`env/docker/scripts.rs`).
const KINDS: [(&str, i32); 12] = [
    ("Io", 1),
    ("NotFound", 3),
    ("InvalidInput", 4),
    ("Escape", 5),
    ("NotADirectory", 6),
    ("IsADirectory", 7),
    ("AlreadyExists", 8),
    ("PermissionDenied", 9),
    ("TooLarge", 10),
    ("Unsupported", 11),
    ("Unavailable", 12),
    ("Busy", 13),
];

/// The kind and the payload of an error: the path or message it carries;
/// `TooLarge` carries `SIZE LIMIT PATH`.
fn parts(e: &EnvError) -> (&'static str, String) {
    match e {
        EnvError::NotFound(p) => ("NotFound", p.clone()),
        EnvError::Escape(p) => ("Escape", p.clone()),
        EnvError::PermissionDenied(p) => ("PermissionDenied", p.clone()),
        EnvError::InvalidInput(m) => ("InvalidInput", m.clone()),
        EnvError::NotADirectory(p) => ("NotADirectory", p.clone()),
        EnvError::IsADirectory(p) => ("IsADirectory", p.clone()),
        EnvError::AlreadyExists(p) => ("AlreadyExists", p.clone()),
        EnvError::TooLarge { path, size, limit } => ("TooLarge", format!("{size} {limit} {path}")),
        EnvError::Unsupported(m) => ("Unsupported", m.clone()),
        EnvError::Unavailable(m) => ("Unavailable", m.clone()),
        EnvError::Busy(m) => ("Busy", m.clone()),
        EnvError::Io(m) => ("Io", m.clone()),
    }
}

/// `error\t<kind>\t<payload>`, the last stderr line of a failed helper run.
pub fn encode_error(e: &EnvError) -> String {
    let (kind, payload) = parts(e);
    format!("error\t{kind}\t{}", payload.replace('\n', " "))
}

pub fn exit_code(e: &EnvError) -> i32 {
    let kind = parts(e).0;
    KINDS.iter().find(|(k, _)| *k == kind).map(|(_, c)| *c).unwrap_or(1)
}

fn from_parts(kind: &str, payload: String) -> EnvError {
    match kind {
        "NotFound" => EnvError::NotFound(payload),
        "Escape" => EnvError::Escape(payload),
        "PermissionDenied" => EnvError::PermissionDenied(payload),
        "InvalidInput" => EnvError::InvalidInput(payload),
        "NotADirectory" => EnvError::NotADirectory(payload),
        "IsADirectory" => EnvError::IsADirectory(payload),
        "AlreadyExists" => EnvError::AlreadyExists(payload),
        "TooLarge" => {
            let mut it = payload.splitn(3, ' ');
            match (it.next().and_then(|s| s.parse().ok()), it.next().and_then(|s| s.parse().ok()), it.next()) {
                (Some(size), Some(limit), Some(path)) => EnvError::TooLarge { path: path.to_string(), size, limit },
                _ => EnvError::Io(format!("malformed TooLarge error: {payload}")),
            }
        }
        "Unsupported" => EnvError::Unsupported(payload),
        "Unavailable" => EnvError::Unavailable(payload),
        "Busy" => EnvError::Busy(payload),
        _ => EnvError::Io(payload),
    }
}

/// Turns a failed helper run back into the error it reported.
pub fn decode_error(exit_code: Option<i32>, stderr: &str) -> EnvError {
    let line = stderr.lines().rev().find(|l| l.starts_with("error\t"));
    if let Some(line) = line {
        let mut parts = line.splitn(3, '\t').skip(1);
        let (kind, payload) = (parts.next().unwrap_or("Io"), parts.next().unwrap_or("").to_string());
        return from_parts(kind, payload);
    }
    EnvError::Io(format!("helper failed (exit {exit_code:?}): {}", stderr.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_round_trip_with_odd_names() {
        let entries = vec![IndexEntry { path: "a\tb\nc\\d".into(), kind: EntryKind::File }, IndexEntry { path: "dir".into(), kind: EntryKind::Directory }];
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
        for e in [
            EnvError::NotFound("x".into()),
            EnvError::Escape("../x".into()),
            EnvError::IsADirectory("d".into()),
            EnvError::AlreadyExists("a".into()),
            EnvError::PermissionDenied("p".into()),
            EnvError::TooLarge { path: "big file".into(), size: 10, limit: 5 },
            EnvError::Unavailable("gone".into()),
        ] {
            assert_eq!(decode_error(Some(exit_code(&e)), &encode_error(&e)), e);
        }
        // What the Docker backend's sh scripts print.
        assert_eq!(decode_error(Some(10), "error\tTooLarge\t9 4 a b.txt\n"), EnvError::TooLarge { path: "a b.txt".into(), size: 9, limit: 4 });
        assert_eq!(exit_code(&EnvError::Io("x".into())), 1);
    }

    #[test]
    fn listing_and_stat_answers() {
        let got = parse_list(b"d\tsrc\0f\ta\nb\tc\0").unwrap();
        assert_eq!(got, vec![DirEntry { name: "src".into(), kind: EntryKind::Directory }, DirEntry { name: "a\nb\tc".into(), kind: EntryKind::File }]);
        assert!(parse_list(b"x\tq\0").is_err());
        assert_eq!(parse_stat("f 12 1700000000\n").unwrap(), Metadata { kind: EntryKind::File, size: 12, modified_ms: Some(1_700_000_000_000) });
        assert_eq!(parse_stat("d 4096 5").unwrap().kind, EntryKind::Directory);
        assert!(parse_stat("q 1 2").is_err());
    }

    #[test]
    fn realpath_resolves_existing_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        let got = realpath(&dir.path().join("new/file.txt")).unwrap();
        assert_eq!(got, real.join("new/file.txt").to_string_lossy());
    }
}
