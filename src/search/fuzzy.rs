//! Fuzzy file search over an index snapshot, scored by nucleo.
//!
//! The snapshot converts every path to nucleo's UTF-32 form once, when it is
//! built, so a query allocates only for the candidates that match. Large
//! snapshots are scored on all cores, each thread with its own matcher.

use std::cmp::Ordering;

use nucleo::pattern::{CaseMatching, Normalization, Pattern};
use nucleo::{Config, Matcher, Utf32String};

use crate::env::{EntryKind, IndexEntry};

/// Below this many entries one thread is faster than starting several.
const PARALLEL_THRESHOLD: usize = 16_384;

/// An immutable, query-ready copy of a file index.
pub struct Snapshot {
    entries: Vec<IndexEntry>,
    /// Each entry's display path (directories end with `/`) in nucleo's form.
    haystacks: Vec<Utf32String>,
}

/// One ranked result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit<'a> {
    pub entry: &'a IndexEntry,
    score: u32,
    stem_equal: bool,
}

impl Snapshot {
    pub fn new(entries: Vec<IndexEntry>) -> Self {
        let haystacks = entries.iter().map(|e| Utf32String::from(display_path(e).as_str())).collect();
        Self { entries, haystacks }
    }

    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The best `limit` entries for `query`, best first. An empty query lists
    /// entries shallowest first, so a client sees the top of the tree.
    pub fn search(&self, query: &str, kind: Option<EntryKind>, limit: usize) -> Vec<&IndexEntry> {
        let wanted = |e: &IndexEntry| kind.is_none_or(|k| e.kind == k);
        let query = query.trim();
        if query.is_empty() {
            let mut all: Vec<&IndexEntry> = self.entries.iter().filter(|e| wanted(e)).collect();
            all.sort_by(|a, b| depth(&a.path).cmp(&depth(&b.path)).then_with(|| a.path.cmp(&b.path)));
            all.truncate(limit);
            return all;
        }
        let pattern = Pattern::parse(query, CaseMatching::Smart, Normalization::Smart);
        let lowered = query.to_lowercase();
        let score_range = |range: std::ops::Range<usize>| -> Vec<Hit<'_>> {
            let mut matcher = Matcher::new(Config::DEFAULT.match_paths());
            let mut hits = Vec::new();
            for i in range {
                let entry = &self.entries[i];
                if !wanted(entry) {
                    continue;
                }
                if let Some(score) = pattern.score(self.haystacks[i].slice(..), &mut matcher) {
                    hits.push(Hit { entry, score, stem_equal: stem(&entry.path).eq_ignore_ascii_case(&lowered) });
                }
            }
            top(hits, limit)
        };
        let n = self.entries.len();
        let threads = crate::search::walk::threads();
        let hits = if n < PARALLEL_THRESHOLD || threads < 2 {
            score_range(0..n)
        } else {
            let chunk = n.div_ceil(threads);
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let range = t * chunk..((t + 1) * chunk).min(n);
                        let score_range = &score_range;
                        s.spawn(move || score_range(range))
                    })
                    .collect();
                handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
            })
        };
        top(hits, limit).into_iter().map(|h| h.entry).collect()
    }
}

/// How the API shows a path: directories carry a trailing slash.
pub fn display_path(entry: &IndexEntry) -> String {
    match entry.kind {
        EntryKind::Directory => format!("{}/", entry.path),
        EntryKind::File => entry.path.clone(),
    }
}

fn depth(path: &str) -> usize {
    path.bytes().filter(|&b| b == b'/').count()
}

/// The file name up to its first dot: `main` for `src/main.rs`.
fn stem(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.split('.').next().unwrap_or(name)
}

/// Best first: a file whose name is the query, then nucleo's score, then the
/// shorter path, then the alphabetically first.
fn rank(a: &Hit<'_>, b: &Hit<'_>) -> Ordering {
    b.stem_equal
        .cmp(&a.stem_equal)
        .then(b.score.cmp(&a.score))
        .then(a.entry.path.len().cmp(&b.entry.path.len()))
        .then_with(|| a.entry.path.cmp(&b.entry.path))
}

/// The best `limit` hits, sorted.
fn top(mut hits: Vec<Hit<'_>>, limit: usize) -> Vec<Hit<'_>> {
    if hits.len() > limit && limit > 0 {
        hits.select_nth_unstable_by(limit - 1, rank);
    }
    hits.truncate(limit);
    hits.sort_by(rank);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: EntryKind) -> IndexEntry {
        IndexEntry { path: path.into(), kind }
    }

    fn snapshot() -> Snapshot {
        Snapshot::new(vec![
            entry("MAINTAINERS", EntryKind::File),
            entry("docs", EntryKind::Directory),
            entry("docs/domain.md", EntryKind::File),
            entry("src", EntryKind::Directory),
            entry("src/main.rs", EntryKind::File),
            entry("src/remain.rs", EntryKind::File),
        ])
    }

    #[test]
    fn main_ranks_src_main_first() {
        let s = snapshot();
        let got: Vec<_> = s.search("main", None, 10).into_iter().map(|e| e.path.as_str()).collect();
        assert_eq!(got[0], "src/main.rs");
        assert!(got.contains(&"MAINTAINERS"));
        assert!(!got.contains(&"docs"));
    }

    #[test]
    fn kind_filter_and_limit() {
        let s = snapshot();
        let dirs: Vec<_> = s.search("s", Some(EntryKind::Directory), 10).into_iter().map(|e| e.path.as_str()).collect();
        assert!(dirs.iter().all(|p| *p == "src" || *p == "docs"), "{dirs:?}");
        assert_eq!(s.search("", None, 2).len(), 2);
        assert_eq!(s.search("", None, 100)[0].path, "MAINTAINERS");
    }

    #[test]
    fn parallel_and_serial_agree() {
        let entries: Vec<_> = (0..PARALLEL_THRESHOLD * 2).map(|i| entry(&format!("d{}/file{i}.txt", i % 97), EntryKind::File)).collect();
        let s = Snapshot::new(entries);
        let got = s.search("file1234", None, 5);
        assert_eq!(got[0].path, "d70/file1234.txt");
    }
}
