//! Fuzzy file search over an index snapshot, scored by nucleo.
//!
//! The snapshot converts every path to nucleo's UTF-32 form once, when it is
//! built, so a query allocates only for the candidates that match. It also
//! keeps, per path, the set of characters it contains, so a query skips most
//! paths with one AND before nucleo looks at them. Large snapshots are scored
//! on all cores, each thread with its own matcher.

use std::cmp::Ordering;

use nucleo::pattern::{Atom, CaseMatching, Normalization, Pattern};
use nucleo::{Config, Matcher, Utf32String};

use crate::env::{EntryKind, IndexEntry};

/// Below this many entries one thread is faster than starting several.
const PARALLEL_THRESHOLD: usize = 16_384;

/// An immutable, query-ready copy of a file index.
pub struct Snapshot {
    entries: Vec<IndexEntry>,
    /// Each entry's display path (directories end with `/`) in nucleo's form.
    haystacks: Vec<Utf32String>,
    /// Each entry's [`char_set`], scanned first and kept apart so the scan
    /// stays in cache.
    char_sets: Vec<u64>,
    /// Where each entry's file name starts and its stem (the name up to its
    /// first dot) ends, in bytes of its path.
    stems: Vec<(u32, u32)>,
}

/// One ranked result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit<'a> {
    pub entry: &'a IndexEntry,
    score: u32,
    /// See [`Snapshot::named`].
    named: bool,
}

impl Snapshot {
    pub fn new(entries: Vec<IndexEntry>) -> Self {
        let haystacks = entries.iter().map(|e| Utf32String::from(display_path(e).as_str())).collect();
        let char_sets = entries.iter().map(|e| char_set(&display_path(e))).collect();
        let stems = entries.iter().map(|e| stem_range(&e.path)).collect();
        Self { entries, haystacks, char_sets, stems }
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
        let required = required_chars(&pattern.atoms);
        let score = |i: usize, matcher: &mut Matcher| pattern.score(self.haystacks[i].slice(..), matcher);
        let n = self.entries.len();
        // A file named like the query ranks above every other match: when at
        // least `limit` of them match, nothing else can make the list.
        if !lowered.contains('/') {
            let mut matcher = Matcher::new(Config::DEFAULT.match_paths());
            let named: Vec<Hit<'_>> = (0..n)
                .filter(|&i| self.named(i, &lowered) && wanted(&self.entries[i]))
                .filter_map(|i| score(i, &mut matcher).map(|score| Hit { entry: &self.entries[i], score, named: true }))
                .collect();
            if named.len() >= limit {
                return top(named, limit).into_iter().map(|h| h.entry).collect();
            }
        }
        let score_range = |range: std::ops::Range<usize>| -> Vec<Hit<'_>> {
            let mut matcher = Matcher::new(Config::DEFAULT.match_paths());
            let mut hits = Vec::new();
            for i in range {
                if self.char_sets[i] & required != required {
                    continue;
                }
                let entry = &self.entries[i];
                if !wanted(entry) {
                    continue;
                }
                if let Some(score) = score(i, &mut matcher) {
                    hits.push(Hit { entry, score, named: self.named(i, &lowered) });
                }
            }
            top(hits, limit)
        };
        let threads = crate::search::walk::threads();
        let hits = if n < PARALLEL_THRESHOLD || threads < 2 {
            score_range(0..n)
        } else {
            let chunk = n.div_ceil(threads);
            std::thread::scope(|s| {
                let handles: Vec<_> = (1..threads)
                    .map(|t| {
                        let range = t * chunk..((t + 1) * chunk).min(n);
                        let score_range = &score_range;
                        s.spawn(move || score_range(range))
                    })
                    .collect();
                // This thread takes the first chunk rather than wait idle.
                let mut hits = score_range(0..chunk.min(n));
                hits.extend(handles.into_iter().flat_map(|h| h.join().unwrap_or_default()));
                hits
            })
        };
        top(hits, limit).into_iter().map(|h| h.entry).collect()
    }

    /// Whether entry `i`'s name, whole or up to its first dot, is `lowered`
    /// (ASCII case aside): `main` and `main.c` name `src/main.c`.
    fn named(&self, i: usize, lowered: &str) -> bool {
        let (start, end) = self.stems[i];
        let path = &self.entries[i].path;
        let (stem, name) = (&path[start as usize..end as usize], &path[start as usize..]);
        (stem.len() == lowered.len() && stem.eq_ignore_ascii_case(lowered)) || (name.len() == lowered.len() && name.eq_ignore_ascii_case(lowered))
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

/// Where the file name up to its first dot lies in `path`: `main` in `src/main.rs`.
fn stem_range(path: &str) -> (u32, u32) {
    let start = path.rfind('/').map_or(0, |i| i + 1);
    let end = path[start..].find('.').map_or(path.len(), |i| start + i);
    (start as u32, end as u32)
}

/// One bit per ASCII letter (either case), digit, and a few shared bits for
/// the other ASCII characters. A path with anything else gets every bit: it
/// may hold characters that normalize to a query's.
fn bit(b: u8) -> u64 {
    let b = b.to_ascii_lowercase();
    let index = match b {
        b'a'..=b'z' => b - b'a',
        b'0'..=b'9' => 26 + b - b'0',
        _ => 36 + b % 28,
    };
    1 << index
}

/// The characters `text` contains, as [`bit`]s.
fn char_set(text: &str) -> u64 {
    if !text.is_ascii() {
        return u64::MAX;
    }
    text.bytes().fold(0, |set, b| set | bit(b))
}

/// The characters every match must contain: those of each positive atom.
/// Matching folds case and normalizes only non-ASCII characters, so an ASCII
/// needle character must appear in the path as itself in either case.
fn required_chars(atoms: &[Atom]) -> u64 {
    atoms.iter().filter(|a| !a.negative).flat_map(|a| a.needle_text().chars()).filter(char::is_ascii).fold(0, |set, c| set | bit(c as u8))
}

/// Best first: a file whose name (or name without extension) is the query,
/// then nucleo's score, then the shorter path, then the alphabetically first.
fn rank(a: &Hit<'_>, b: &Hit<'_>) -> Ordering {
    b.named.cmp(&a.named).then(b.score.cmp(&a.score)).then(a.entry.path.len().cmp(&b.entry.path.len())).then_with(|| a.entry.path.cmp(&b.entry.path))
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
    fn char_sets_never_drop_a_match() {
        let paths = ["src/Main.rs", "docs/Résumé.md", "a_b-c.d/E9", "KConfig", "drivers/net/ethernet/intel/e1000/", "x y/z"];
        let queries = ["main", "Main", "resume", "é", "ab-c.d/e9", "kcfg", "!main", "^src", "rs$", "'net/eth", "e1000 intel", "x\\ y", "MAIN"];
        let mut matcher = Matcher::new(Config::DEFAULT.match_paths());
        for q in queries {
            let pattern = Pattern::parse(q, CaseMatching::Smart, Normalization::Smart);
            let required = required_chars(&pattern.atoms);
            for p in paths {
                let mut buf = Vec::new();
                if pattern.score(nucleo::Utf32Str::new(p, &mut buf), &mut matcher).is_some() {
                    assert_eq!(char_set(p) & required, required, "{q:?} matches {p:?} but the char set would skip it");
                }
            }
        }
        assert_ne!(required_chars(&Pattern::parse("main", CaseMatching::Smart, Normalization::Smart).atoms), 0);
    }

    #[test]
    fn files_named_like_the_query_come_first() {
        let mut entries = vec![entry("mm/mmap.c", EntryKind::File), entry("mm.c", EntryKind::Directory), entry("arch/x86/mm.c", EntryKind::File)];
        let snap = Snapshot::new(entries.clone());
        let got: Vec<_> = snap.search("mm.c", None, 3).into_iter().map(|e| e.path.as_str()).collect();
        assert_eq!(got, vec!["mm.c", "arch/x86/mm.c", "mm/mmap.c"]);
        // With more named files than the limit, only they are listed, best first.
        entries.extend((0..5).map(|i| entry(&format!("drivers/d{i}/mm.c"), EntryKind::File)));
        let snap = Snapshot::new(entries);
        let got: Vec<_> = snap.search("mm.c", Some(EntryKind::File), 3).into_iter().map(|e| e.path.as_str()).collect();
        assert_eq!(got, vec!["arch/x86/mm.c", "drivers/d0/mm.c", "drivers/d1/mm.c"]);
    }

    #[test]
    fn parallel_and_serial_agree() {
        let entries: Vec<_> = (0..PARALLEL_THRESHOLD * 2).map(|i| entry(&format!("d{}/file{i}.txt", i % 97), EntryKind::File)).collect();
        let s = Snapshot::new(entries);
        let got = s.search("file1234", None, 5);
        assert_eq!(got[0].path, "d70/file1234.txt");
    }
}
