//! Text search in process: grep-regex for matching, grep-searcher for reading
//! files line by line (with binary detection), and the ignore crate's parallel
//! walker, configured like `rg --json --hidden --glob=!**/.git/**`.
//!
//! Each walker thread owns its searcher, its matcher clone and a local buffer;
//! matches are handed over under a lock once per file, and a shared counter stops
//! every thread as soon as the limit is passed, so a common pattern returns after
//! a handful of files instead of a full scan.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use grep_matcher::Matcher;
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::{BinaryDetection, Searcher, SearcherBuilder, Sink, SinkMatch};
use ignore::{ParallelVisitor, ParallelVisitorBuilder, WalkState};

use super::walk::{builder, relative, threads};
use crate::env::{EnvError, EnvResult, GrepMatch, GrepRequest, GrepResult, Submatch};

/// OpenCode cuts a matched line at 2000 characters and appends "...".
pub const MAX_LINE_CHARS: usize = 2000;
/// OpenCode keeps at most this many submatches of one line.
pub const MAX_SUBMATCHES: usize = 100;

/// The longest pattern a search takes, in bytes.
pub const MAX_PATTERN_BYTES: usize = 4 << 10;
/// The most memory one compiled pattern may take. grep-regex allows 100 MiB, in
/// which `\p{L}{8000}` compiles for 12 s; real searches need a few KiB.
pub const REGEX_SIZE_LIMIT: usize = 10 << 20;
/// The most memory the lazy DFA of one search may grow to (grep-regex: 1000 MiB).
pub const DFA_SIZE_LIMIT: usize = 64 << 20;

/// Compiles a pattern the way ripgrep does, so that a bad one is a clear 400,
/// within limits that make a hostile one a 400 too, at once, rather than
/// seconds of CPU and hundreds of megabytes per request.
pub fn compile(req: &GrepRequest) -> EnvResult<RegexMatcher> {
    if req.pattern.len() > MAX_PATTERN_BYTES {
        return Err(EnvError::InvalidInput(format!("the pattern is {} bytes long, more than the limit of {MAX_PATTERN_BYTES}", req.pattern.len())));
    }
    RegexMatcherBuilder::new()
        .case_insensitive(req.case_insensitive)
        .line_terminator(Some(b'\n'))
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(DFA_SIZE_LIMIT)
        .build(&req.pattern)
        .map_err(|e| EnvError::InvalidInput(format!("invalid regex {:?}: {}", req.pattern, e)))
}

/// Opens a walked file for searching.
pub type Opener<'a> = dyn Fn(&Path) -> io::Result<std::fs::File> + Sync + 'a;

/// Searches the tree at `base` (the request's directory, resolved by the caller).
pub fn grep(base: &Path, req: &GrepRequest) -> EnvResult<GrepResult> {
    grep_with(base, req, &open_regular)
}

/// Opens a regular file for reading, refusing anything else without blocking
/// on it: what text search opens each walked file with.
pub fn open_regular(path: &Path) -> io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    regular(rustix::fs::open(path, flags, Mode::empty())?)
}

/// `fd` as a file to read, if it is a regular file: a FIFO, socket or device
/// would block or never end. Shared with the local environment's confined opens.
pub fn regular(fd: std::os::fd::OwnedFd) -> io::Result<std::fs::File> {
    use rustix::fs::FileType;
    if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) != FileType::RegularFile {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(std::fs::File::from(fd))
}

/// [`grep`], opening each file with `open`: the local environment opens them
/// through its root's descriptor, so that no link swapped in during the walk
/// leads outside; whatever `open` refuses is skipped, as unreadable files are.
pub fn grep_with(base: &Path, req: &GrepRequest, open: &Opener<'_>) -> EnvResult<GrepResult> {
    let matcher = compile(req)?;
    super::hold_for_tests();
    if !base.exists() {
        return Err(EnvError::NotFound(req.dir.clone()));
    }
    let shared = Shared { found: Mutex::new(Vec::new()), count: AtomicUsize::new(0), stop: AtomicBool::new(false), limit: req.limit };
    let walker = builder(base, req.include.as_deref())?.threads(threads()).build_parallel();
    walker.visit(&mut GrepBuilder { base, matcher: &matcher, shared: &shared, open });
    let mut matches = shared.found.into_inner().unwrap_or_else(|e| e.into_inner());
    // Threads finish in any order; sort so a response is stable for a given set.
    matches.sort_unstable_by(|a, b| a.path.cmp(&b.path).then(a.line_number.cmp(&b.line_number)));
    let truncated = matches.len() > req.limit;
    matches.truncate(req.limit);
    Ok(GrepResult { matches, truncated })
}

struct Shared {
    found: Mutex<Vec<GrepMatch>>,
    count: AtomicUsize,
    stop: AtomicBool,
    limit: usize,
}

struct GrepBuilder<'a> {
    base: &'a Path,
    matcher: &'a RegexMatcher,
    shared: &'a Shared,
    open: &'a Opener<'a>,
}

impl<'s> ParallelVisitorBuilder<'s> for GrepBuilder<'s> {
    fn build(&mut self) -> Box<dyn ParallelVisitor + 's> {
        Box::new(GrepVisitor { base: self.base, matcher: self.matcher.clone(), searcher: searcher(), shared: self.shared, open: self.open, local: Vec::new() })
    }
}

struct GrepVisitor<'a> {
    base: &'a Path,
    matcher: RegexMatcher,
    searcher: Searcher,
    shared: &'a Shared,
    open: &'a Opener<'a>,
    local: Vec<GrepMatch>,
}

impl ParallelVisitor for GrepVisitor<'_> {
    fn visit(&mut self, entry: Result<ignore::DirEntry, ignore::Error>) -> WalkState {
        if self.shared.stop.load(Ordering::Relaxed) {
            return WalkState::Quit;
        }
        let Ok(entry) = entry else { return WalkState::Continue };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            return WalkState::Continue;
        }
        let path = entry.path();
        // A single file given as the base has no relative name: use its own.
        let rel = relative(self.base, path).unwrap_or_else(|| path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        let shared = self.shared;
        let keep_going = |found: usize| shared.count.load(Ordering::Relaxed) + found <= shared.limit && !shared.stop.load(Ordering::Relaxed);
        let sink = LineSink { matcher: &self.matcher, rel: &rel, out: &mut self.local, keep_going };
        // Unreadable files are skipped silently, as `rg --no-messages` does;
        // so is anything that is no longer a regular file (a FIFO would block).
        if let Ok(file) = (self.open)(path) {
            let _ = self.searcher.search_file(&self.matcher, &file, sink);
        }
        if !self.local.is_empty() {
            let n = self.local.len();
            self.shared.found.lock().unwrap_or_else(|e| e.into_inner()).append(&mut self.local);
            if self.shared.count.fetch_add(n, Ordering::Relaxed) + n > self.shared.limit {
                self.shared.stop.store(true, Ordering::Relaxed);
                return WalkState::Quit;
            }
        }
        WalkState::Continue
    }
}

/// The searcher every text search uses, local or streamed: line numbers on,
/// and a file stops at its first NUL byte, as ripgrep treats binary files.
pub fn searcher() -> Searcher {
    SearcherBuilder::new().binary_detection(BinaryDetection::quit(b'\x00')).line_number(true).build()
}

/// Turns each matching line into a [`GrepMatch`] for `rel`. `keep_going` gets
/// the number of matches this sink holds and says whether to read on, so a
/// search stops inside a file once its overall limit is passed.
pub struct LineSink<'a, F: FnMut(usize) -> bool> {
    pub matcher: &'a RegexMatcher,
    pub rel: &'a str,
    pub out: &'a mut Vec<GrepMatch>,
    pub keep_going: F,
}

impl<F: FnMut(usize) -> bool> Sink for LineSink<'_, F> {
    type Error = io::Error;

    fn matched(&mut self, _searcher: &Searcher, mat: &SinkMatch<'_>) -> Result<bool, io::Error> {
        let bytes = mat.bytes();
        let content = bytes.strip_suffix(b"\n").map(|b| b.strip_suffix(b"\r").unwrap_or(b)).unwrap_or(bytes);
        let mut submatches = Vec::new();
        let _ = self.matcher.find_iter(content, |m| {
            if m.start() < m.end() {
                let text = String::from_utf8_lossy(&content[m.start()..m.end()]).into_owned();
                submatches.push(Submatch { text, start: m.start(), end: m.end() });
            }
            submatches.len() < MAX_SUBMATCHES
        });
        self.out.push(GrepMatch {
            path: self.rel.to_string(),
            line_number: mat.line_number().unwrap_or(0),
            absolute_offset: mat.absolute_byte_offset(),
            line: clip_line(bytes),
            submatches,
        });
        Ok((self.keep_going)(self.out.len()))
    }
}

/// Searches one file's bytes (fetched from wherever it lives), appending its
/// matching lines to `out` until `keep_going` says stop.
pub fn search_bytes(matcher: &RegexMatcher, rel: &str, bytes: &[u8], out: &mut Vec<GrepMatch>, keep_going: impl FnMut(usize) -> bool) {
    let sink = LineSink { matcher, rel, out, keep_going };
    // A slice cannot fail to read; a sink error is impossible too.
    let _ = searcher().search_slice(matcher, bytes, sink);
}

/// The line as text, cut like OpenCode cuts it.
pub fn clip_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(MAX_LINE_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A git repository (its `.gitignore` applies only inside one).
    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join(".git")).unwrap();
        std::fs::create_dir_all(p.join("src")).unwrap();
        std::fs::create_dir_all(p.join("ignored")).unwrap();
        std::fs::write(p.join(".gitignore"), "ignored/\n").unwrap();
        std::fs::write(p.join("src/a.rs"), "fn main() {\n    hello(); hello();\n}\n").unwrap();
        std::fs::write(p.join("ignored/b.rs"), "hello\n").unwrap();
        std::fs::write(p.join(".hidden"), "hello hidden\n").unwrap();
        std::fs::write(p.join("bin.dat"), b"hello\x00\x01\x02").unwrap();
        dir
    }

    #[test]
    fn finds_like_ripgrep() {
        let dir = tree();
        let r = grep(dir.path(), &GrepRequest { dir: String::new(), pattern: "hello".into(), include: None, limit: 10, case_insensitive: false }).unwrap();
        let paths: Vec<_> = r.matches.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(paths, vec![".hidden", "src/a.rs"]);
        let m = &r.matches[1];
        assert_eq!(m.line_number, 2);
        assert_eq!(m.absolute_offset, 12);
        assert_eq!(m.line, "    hello(); hello();\n");
        assert_eq!(m.submatches, vec![Submatch { text: "hello".into(), start: 4, end: 9 }, Submatch { text: "hello".into(), start: 13, end: 18 }]);
        assert!(!r.truncated);
    }

    #[test]
    fn limit_truncates_and_bad_regex_is_invalid_input() {
        let dir = tree();
        let r = grep(dir.path(), &GrepRequest { dir: String::new(), pattern: "hello".into(), include: None, limit: 1, case_insensitive: false }).unwrap();
        assert_eq!(r.matches.len(), 1);
        assert!(r.truncated);
        let err = grep(dir.path(), &GrepRequest { dir: String::new(), pattern: "foo(".into(), include: None, limit: 1, case_insensitive: false });
        assert!(matches!(err, Err(EnvError::InvalidInput(_))));
    }

    #[test]
    fn costly_patterns_are_invalid_input() {
        let req = |pattern: String| GrepRequest { dir: String::new(), pattern, include: None, limit: 1, case_insensitive: false };
        // Over the compiled-size limit (grep-regex's default of 100 MiB takes it, in seconds).
        let err = compile(&req("\\p{L}{8000}".into())).err();
        assert!(matches!(&err, Some(EnvError::InvalidInput(m)) if m.contains("size limit")), "{err:?}");
        // Over the length cap, however cheap.
        let err = compile(&req("a".repeat(MAX_PATTERN_BYTES + 1))).err();
        assert!(matches!(&err, Some(EnvError::InvalidInput(m)) if m.contains("limit")), "{err:?}");
        assert!(compile(&req("a".repeat(MAX_PATTERN_BYTES))).is_ok());
        assert!(compile(&req("\\p{L}{20}".into())).is_ok());
    }

    #[test]
    fn include_glob_filters() {
        let dir = tree();
        let r =
            grep(dir.path(), &GrepRequest { dir: String::new(), pattern: "hello".into(), include: Some("*.rs".into()), limit: 10, case_insensitive: false })
                .unwrap();
        assert_eq!(r.matches.iter().map(|m| m.path.as_str()).collect::<Vec<_>>(), vec!["src/a.rs"]);
    }

    #[test]
    fn long_lines_are_clipped() {
        let long = "x".repeat(MAX_LINE_CHARS + 5);
        let clipped = clip_line(long.as_bytes());
        assert_eq!(clipped.len(), MAX_LINE_CHARS + 3);
        assert!(clipped.ends_with("..."));
    }
}
