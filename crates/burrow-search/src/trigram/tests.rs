use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::grep::open_regular;

fn req(dir: &str, pattern: &str, ci: bool, limit: usize) -> GrepRequest {
    GrepRequest { dir: dir.into(), pattern: pattern.into(), include: None, limit, case_insensitive: ci }
}

fn put(root: &Path, path: &str, data: &[u8]) {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

fn index_of(root: &Path, at: &Path) -> TrigramIndex {
    build(root, at, &BuildOptions { max_file_bytes: 64, threads: 2, segment_pairs: 16 }, &open_regular).unwrap();
    TrigramIndex::open(at).unwrap()
}

/// The scan's answer and the index's, which must be equal; the index may
/// decline only a pattern without trigrams.
fn check(root: &Path, index: &TrigramIndex, dirty: &Dirty, r: &GrepRequest) -> GrepResult {
    let scanned = crate::grep::grep(&root.join(&r.dir), r).unwrap();
    match grep(root, index, dirty, r, &open_regular).unwrap() {
        Some(indexed) => assert_eq!(indexed, scanned, "{r:?}"),
        None => assert_eq!(query::plan(&r.pattern, r.case_insensitive), Query::All, "the index declined {r:?}"),
    }
    scanned
}

#[test]
fn narrows_and_answers_like_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    put(&root, "src/a.rs", b"fn main() {\n    PM_RESUME; pm_resume();\n}\n");
    put(&root, "src/b.rs", b"nothing here\n");
    put(&root, "big.txt", &[b"PM_RESUME padding\n".as_slice(); 8].concat());
    put(&root, "bin.dat", b"PM_RESUME\x00\x01");
    put(&root, ".ignore", b"skipped/\n");
    put(&root, "skipped/x.rs", b"PM_RESUME\n");
    let index = index_of(&root, &dir.path().join("idx"));
    let files: Vec<_> = index.files().iter().map(|f| (f.path.as_str(), f.indexed)).collect();
    assert_eq!(files, [(".ignore", true), ("big.txt", false), ("bin.dat", false), ("src/a.rs", true), ("src/b.rs", true)]);
    let r = check(&root, &index, &Dirty::default(), &req("", "PM_RESUME", false, 100));
    assert_eq!(r.matches.iter().map(|m| m.path.as_str()).collect::<Vec<_>>(), [&["big.txt"; 8][..], &["src/a.rs"]].concat());
    let r = check(&root, &index, &Dirty::default(), &req("src", "pm_resume", true, 100));
    assert_eq!(r.matches.iter().map(|m| (m.path.as_str(), m.submatches.len())).collect::<Vec<_>>(), [("a.rs", 2)]);
    check(&root, &index, &Dirty::default(), &req("", "absent", false, 100));
    // The limit stops in path order.
    let r = check(&root, &index, &Dirty::default(), &req("", "PM_RESUME|padding", false, 3));
    assert!(r.truncated && r.matches.len() == 3);
    // What the index cannot answer exactly goes back to the scan.
    for r in
        [req("", "\\w+", false, 10), req("skipped", "PM_RESUME", false, 10), GrepRequest { include: Some("*.rs".into()), ..req("", "PM_RESUME", false, 10) }]
    {
        assert_eq!(grep(&root, &index, &Dirty::default(), &r, &open_regular).unwrap(), None, "{r:?}");
    }
    assert!(grep(&root, &index, &Dirty::default(), &req("", "a(", false, 10), &open_regular).is_err());
}

#[test]
fn changed_paths_are_searched_directly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    put(&root, "a.txt", b"needle one\n");
    put(&root, "d/b.txt", b"needle two\n");
    put(&root, "d/c.txt", b"haystack\n");
    put(&root, ".ignore", b"*.skip\n");
    let index = index_of(&root, &dir.path().join("idx"));
    let mut dirty = Dirty::default();
    // Edit, create, delete, rename a folder, create an ignored file.
    put(&root, "d/c.txt", b"needle now\n");
    put(&root, "new/deep/e.txt", b"needle new\n");
    std::fs::remove_file(root.join("a.txt")).unwrap();
    std::fs::rename(root.join("d"), root.join("moved")).unwrap();
    put(&root, "x.skip", b"needle ignored\n");
    for p in ["d/c.txt", "new", "a.txt", "d", "moved", "x.skip"] {
        dirty.paths.insert(p.into());
    }
    let r = check(&root, &index, &dirty, &req("", "needle", false, 100));
    assert_eq!(r.matches.iter().map(|m| m.path.as_str()).collect::<Vec<_>>(), ["moved/b.txt", "moved/c.txt", "new/deep/e.txt"]);
    // A changed ignore file: only the scan knows what is visited now.
    dirty.paths.insert(".ignore".into());
    assert_eq!(grep(&root, &index, &dirty, &req("", "needle", false, 100), &open_regular).unwrap(), None);
}

#[test]
fn a_damaged_index_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    put(&root, "a.txt", b"some text to index\n");
    let at = dir.path().join("idx");
    index_of(&root, &at);
    let good = std::fs::read(&at).unwrap();
    let refused = |bytes: &[u8]| {
        std::fs::write(&at, bytes).unwrap();
        let err = TrigramIndex::open(&at).err().expect("a damaged index opened");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    };
    refused(&good[..good.len() - 1]);
    refused(&good[..10]);
    refused(&[]);
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    refused(&flipped);
    let mut other_version = good.clone();
    other_version[8] = other_version[8].wrapping_add(1);
    refused(&other_version);
    std::fs::write(&at, &good).unwrap();
    assert!(TrigramIndex::open(&at).is_ok());
}

/// Small words, so that random patterns often match and often share trigrams.
const WORDS: [&str; 10] = ["foo", "Bar", "baz", "QUUX", "fooBar", "ab", "x", "héllo", "straße", "K"];

fn content() -> impl Strategy<Value = Vec<u8>> {
    (prop::collection::vec((0..WORDS.len(), prop::sample::select(vec![" ", "\n", "_", "", "\r\n"])), 0..12), prop::bool::weighted(0.1)).prop_map(|(ws, nul)| {
        let mut s: Vec<u8> = ws.into_iter().flat_map(|(w, sep)| [WORDS[w].as_bytes(), sep.as_bytes()].concat()).collect();
        if nul {
            s.insert(s.len() / 2, 0);
        }
        s
    })
}

fn tree() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let name = prop::sample::select(vec!["a", "b", "c.rs", "d.txt", ".e", "f.skip"]);
    let path = prop::collection::vec(name, 1..4).prop_map(|parts| parts.join("/"));
    prop::collection::vec((path, content()), 1..10)
}

fn pattern() -> impl Strategy<Value = String> {
    let word = || prop::sample::select(WORDS.to_vec()).prop_map(str::to_string);
    prop_oneof![
        word(),
        (word(), word()).prop_map(|(a, b)| format!("{a}|{b}")),
        (word(), word()).prop_map(|(a, b)| format!("{a}.*{b}")),
        (word(), word()).prop_map(|(a, b)| format!("{a}\\s?{b}")),
        word().prop_map(|a| format!("[fb]{a}")),
        word().prop_map(|a| format!("({a})+_?")),
        word().prop_map(|a| format!("\\b{a}\\b")),
        word().prop_map(|a| format!("{a}\\w*[rz]")),
        (word(), word()).prop_map(|(a, b)| format!("(?i:{a})(x|{b})")),
    ]
}

/// Writes `files` under `root`, skipping a path that a folder already took
/// (or that would need a file as a folder).
fn write_tree(root: &Path, files: &[(String, Vec<u8>)]) {
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(root.join(".ignore"), "*.skip\n").unwrap();
    for (path, data) in files {
        let p = root.join(path);
        if p.parent().is_some_and(|d| std::fs::create_dir_all(d).is_ok()) && !p.is_dir() {
            std::fs::write(&p, data).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// On random trees, patterns and later changes, the index gives the scan's answer.
    #[test]
    fn indexed_equals_scanned(before in tree(), after in tree(), patterns in prop::collection::vec((pattern(), any::<bool>()), 1..6)) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        write_tree(&root, &before);
        let index = index_of(&root, &dir.path().join("idx"));
        let mut dirty = Dirty::default();
        for (pattern, ci) in &patterns {
            check(&root, &index, &dirty, &req("", pattern, *ci, 100_000));
            if index.is_dir("a") {
                check(&root, &index, &dirty, &req("a", pattern, *ci, 100_000));
            }
        }
        // Changes since the build: files rewritten, added, and removed.
        for (path, _) in before.iter().step_by(2) {
            if std::fs::remove_file(root.join(path)).is_ok() {
                dirty.paths.insert(path.clone());
            }
        }
        for (path, data) in &after {
            let p = root.join(path);
            if p.parent().is_some_and(|d| std::fs::create_dir_all(d).is_ok()) && !p.is_dir() && std::fs::write(&p, data).is_ok() {
                // The watcher reports a created folder and each file written.
                let mut at = path.as_str();
                dirty.paths.insert(at.to_string());
                while let Some(i) = at.rfind('/') {
                    at = &at[..i];
                    if !index.is_dir(at) {
                        dirty.paths.insert(at.to_string());
                    }
                }
            }
        }
        for (pattern, ci) in &patterns {
            check(&root, &index, &dirty, &req("", pattern, *ci, 100_000));
        }
    }
}

/// The rolling key of the build yields exactly the distinct indexable
/// trigrams that queries ask for.
#[test]
fn the_build_takes_every_indexable_trigram_once() {
    let mut seen = Seen::new();
    // Twice over: the set must be left empty for the next file.
    let texts = [&b"ab"[..], b"abc", b"abcabc\nxy\nxyz\n\n\x00\xffq", b"a\nbc", b"line one\nline two\r\nline one\n", "é€ñ und ß, a\u{7f}\u{80}b".as_bytes()];
    for text in texts.iter().chain(texts.iter()).copied() {
        let mut pairs = Vec::new();
        seen.pairs(text, 7, &mut pairs);
        let mut got: Vec<u32> = pairs.iter().map(|p| (p >> 32) as u32).collect();
        got.sort_unstable();
        let mut want: Vec<u32> = text.windows(3).filter(|t| query::indexable(t)).map(query::key).collect();
        want.sort_unstable();
        want.dedup();
        assert_eq!(got, want, "{text:?}");
        assert!(pairs.iter().all(|p| *p as u32 == 7));
    }
}

/// The line-end test of the build agrees with the queries' on every key.
#[test]
fn line_ends_are_told_in_every_key() {
    for k in 0..1u32 << 24 {
        let t = [(k >> 16) as u8, (k >> 8) as u8, k as u8];
        assert_eq!(super::spans_line_end(k), !query::indexable(&t), "{k:#08x}");
    }
}
