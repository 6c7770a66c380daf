//! Search without running anything where the data lives: a gitignore-aware
//! walk built from directory listings, and a text search over file bytes
//! fetched a few at a time and matched in the server.
//!
//! This is how object storage searches, and the last resort of environments
//! whose helper and `rg` are both missing. It needs only a [`Tree`]: any
//! [`Env`] is one, and a backend can pass a cached view of itself instead
//! (object storage serves listings and bytes from its index and content cache).
//! The per-file matching is the same code as the in-process search
//! (`search::grep`), so both give the same matches for the same bytes.

use std::collections::BTreeMap;
use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use ignore::overrides::{Override, OverrideBuilder};

use super::grep::{compile, search_bytes};
use super::ignore_rules::{has_ignore_file, IgnoreRules};
use crate::env::{DirEntry, EntryKind, Env, EnvError, EnvResult, GrepMatch, GrepRequest, GrepResult, IndexEntry, WorkspacePath};

/// The two operations a streamed search needs.
#[async_trait]
pub trait Tree: Send + Sync {
    /// The entries of a directory, in any order.
    async fn list(&self, dir: &WorkspacePath) -> EnvResult<Vec<DirEntry>>;
    /// A whole file, refused when larger than `max_bytes`.
    async fn read(&self, path: &WorkspacePath, max_bytes: u64) -> EnvResult<Bytes>;
}

#[async_trait]
impl<E: Env + ?Sized> Tree for E {
    async fn list(&self, dir: &WorkspacePath) -> EnvResult<Vec<DirEntry>> {
        Env::list(self, dir).await
    }
    async fn read(&self, path: &WorkspacePath, max_bytes: u64) -> EnvResult<Bytes> {
        Env::read(self, path, max_bytes).await
    }
}

/// A streamed text search starts no file more than this many `concurrency`
/// windows past the first file whose result it still waits for.
const READ_AHEAD: usize = 4;

/// How hard a streamed search may pull on the environment.
#[derive(Clone, Copy, Debug)]
pub struct StreamLimits {
    /// Directory listings or file reads in flight at once.
    pub concurrency: usize,
    /// Larger files are skipped by text search, as too big to fetch for a grep.
    pub max_file_bytes: u64,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self { concurrency: 16, max_file_bytes: 32 << 20 }
    }
}

/// Every file and directory below `dir` that ignore rules keep, hidden ones
/// included and `.git` left out, sorted by path: what `search::walk::walk`
/// gives for a local tree. Directories are listed `concurrency` at a time.
pub async fn walk<T: Tree + ?Sized>(tree: &T, dir: &WorkspacePath, limits: StreamLimits) -> EnvResult<Vec<IndexEntry>> {
    // The first listing tells a missing or non-directory `dir` apart, with its error.
    let first = tree.list(dir).await?;
    // The rules of the ancestors; `visit` adds the directory's own.
    let rules = match dir.parent() {
        Some(parent) => IgnoreRules::load(tree, &parent).await,
        None => IgnoreRules::default(),
    };
    let mut out = Vec::new();
    let mut pending = FuturesUnordered::new();
    pending.push(visit(tree, dir.clone(), rules, Some(first)));
    let mut queued = Vec::new();
    while let Some(found) = pending.next().await {
        let (entries, subdirs) = found?;
        out.extend(entries.into_iter().filter_map(|p| Some(IndexEntry { path: p.0.strip_prefix(dir)?.to_string(), kind: p.1 })));
        queued.extend(subdirs);
        while pending.len() < limits.concurrency.max(1) {
            let Some((sub, rules)) = queued.pop() else { break };
            pending.push(visit(tree, sub, rules, None));
        }
    }
    out.retain(|e| !e.path.is_empty());
    out.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

type Visited = (Vec<(WorkspacePath, EntryKind)>, Vec<(WorkspacePath, IgnoreRules)>);

/// Lists one directory (unless the caller already did) and applies its ignore
/// files: returns the entries it keeps and the subdirectories still to visit.
async fn visit<T: Tree + ?Sized>(tree: &T, dir: WorkspacePath, parent_rules: IgnoreRules, listed: Option<Vec<DirEntry>>) -> EnvResult<Visited> {
    let entries = match listed {
        Some(e) => e,
        // A directory that vanished or cannot be read since its parent was
        // listed is skipped, as ripgrep skips it with a message.
        None => match tree.list(&dir).await {
            Ok(e) => e,
            Err(EnvError::Unavailable(m)) => return Err(EnvError::Unavailable(m)),
            Err(e) => {
                tracing::debug!("walk: skipping {dir}: {e}");
                return Ok((Vec::new(), Vec::new()));
            }
        },
    };
    let rules = if has_ignore_file(&entries) { parent_rules.descend(tree, &dir, |name| entries.iter().any(|e| e.name == name)).await } else { parent_rules };
    let mut kept = Vec::with_capacity(entries.len());
    let mut subdirs = Vec::new();
    for e in entries {
        let path = dir.join(&e.name);
        if e.name == ".git" || rules.is_ignored(&path, e.kind) {
            continue;
        }
        if e.kind == EntryKind::Directory {
            subdirs.push((path.clone(), rules.clone()));
        }
        kept.push((path, e.kind));
    }
    Ok((kept, subdirs))
}

/// Text search with the same results as `search::grep::grep` over a local copy
/// of the tree: files taken in path order, each fetched once, `concurrency` at
/// a time, and none started once the limit is reached.
pub async fn grep<T: Tree + ?Sized>(tree: &T, req: &GrepRequest, limits: StreamLimits) -> EnvResult<GrepResult> {
    grep_where(tree, req, limits, &|_| true).await
}

/// [`grep`] that reads only the walked files for which `may_match` (given the
/// workspace path) is true: a text index that knows the others cannot hold a
/// match leaves them out, and the answer stays the same.
pub async fn grep_where<T: Tree + ?Sized>(
    tree: &T,
    req: &GrepRequest,
    limits: StreamLimits,
    may_match: &(dyn Fn(&WorkspacePath) -> bool + Sync),
) -> EnvResult<GrepResult> {
    let matcher = compile(req)?;
    let dir = WorkspacePath::from_relative(&req.dir)?;
    let include = include_filter(req.include.as_deref())?;
    let files: Vec<WorkspacePath> = walk(tree, &dir, limits)
        .await?
        .into_iter()
        .filter(|e| e.kind == EntryKind::File)
        .filter(|e| include.as_ref().is_none_or(|o| !o.matched(Path::new("/").join(&e.path), false).is_ignore()))
        .filter_map(|e| dir.join_checked(&e.path).ok())
        .filter(|p| may_match(p))
        .collect();
    // Each file is fetched and matched by its own task, `concurrency` at a
    // time (so matching uses every core). Tasks finish in any order, so one
    // slow fetch does not stall the others; results are taken in path order,
    // and no task starts more than `READ_AHEAD` windows past the first file
    // still pending, so an early stop wastes little.
    let limit = req.limit;
    let search = |index: usize, path: WorkspacePath| {
        let (matcher, dir) = (matcher.clone(), &dir);
        async move {
            let bytes = match tree.read(&path, limits.max_file_bytes).await {
                Ok(b) => b,
                Err(EnvError::Unavailable(m)) => return (index, Err(EnvError::Unavailable(m))),
                // Vanished, too large or unreadable: skipped, as `rg --no-messages` does.
                Err(e) => {
                    tracing::debug!("grep: skipping {path}: {e}");
                    return (index, Ok(Vec::new()));
                }
            };
            let rel = path.strip_prefix(dir).unwrap_or(path.as_str()).to_string();
            (index, search_file(matcher, rel, bytes, limit).await)
        }
    };
    let concurrency = limits.concurrency.max(1);
    let ahead = concurrency * READ_AHEAD;
    let mut pending = files.into_iter().enumerate().peekable();
    let mut running = FuturesUnordered::new();
    let mut done: BTreeMap<usize, Vec<GrepMatch>> = BTreeMap::new();
    let mut next = 0;
    let mut matches: Vec<GrepMatch> = Vec::new();
    loop {
        while running.len() < concurrency {
            match pending.next_if(|(i, _)| *i < next + ahead) {
                Some((i, path)) => running.push(search(i, path)),
                None => break,
            }
        }
        let Some((index, found)) = running.next().await else { break };
        done.insert(index, found?);
        while let Some(mut found) = done.remove(&next) {
            matches.append(&mut found);
            next += 1;
        }
        if matches.len() > limit {
            break;
        }
    }
    let truncated = matches.len() > limit;
    matches.truncate(limit);
    Ok(GrepResult { matches, truncated })
}

/// Matches one file on the blocking pool (a large file is real CPU work),
/// keeping at most one more than `limit` lines.
async fn search_file(matcher: grep_regex::RegexMatcher, rel: String, bytes: Bytes, limit: usize) -> EnvResult<Vec<GrepMatch>> {
    tokio::task::spawn_blocking(move || {
        super::hold_for_tests();
        let mut found = Vec::new();
        search_bytes(&matcher, &rel, &bytes, &mut found, |n| n <= limit);
        found
    })
    .await
    .map_err(|e| EnvError::Io(format!("search task failed: {e}")))
}

/// The `--glob` override, matched against paths relative to the searched directory.
fn include_filter(glob: Option<&str>) -> EnvResult<Option<Override>> {
    let Some(glob) = glob.filter(|g| !g.is_empty()) else { return Ok(None) };
    let invalid = |e: ignore::Error| EnvError::InvalidInput(format!("invalid glob {glob:?}: {e}"));
    let mut b = OverrideBuilder::new("/");
    b.add(glob).map_err(invalid)?;
    Ok(Some(b.build().map_err(invalid)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burrow_env::local::LocalEnv;

    /// A tree with nested ignore files, a whitelist, hidden files, `.git`, a
    /// binary file and enough matches to hit limits.
    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let files: &[(&str, &[u8])] = &[
            (".gitignore", b"*.log\nbuild/\n!keep.log\n"),
            (".hidden", b"needle hidden\n"),
            (".git/config", b"needle in git\n"),
            ("a.log", b"needle log\n"),
            ("keep.log", b"needle kept\n"),
            ("build/out.txt", b"needle build\n"),
            ("src/.ignore", b"gen/\n"),
            ("src/gen/x.rs", b"needle gen\n"),
            ("src/lib.rs", b"fn a() { needle(); needle(); }\nneedle\n"),
            ("src/sub/deep.rs", b"// needle deep\n"),
            ("bin.dat", b"needle\x00\x01"),
            ("a.txt", b"needle a.txt\n"),
            ("a/b.txt", b"needle a/b\n"),
        ];
        for (path, data) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("empty")).unwrap();
        dir
    }

    fn req(dir: &str, pattern: &str, limit: usize, include: Option<&str>) -> GrepRequest {
        GrepRequest { dir: dir.into(), pattern: pattern.into(), include: include.map(Into::into), limit, case_insensitive: false }
    }

    #[tokio::test]
    async fn walk_equals_the_local_walk() {
        let dir = tree();
        let env = LocalEnv::new(dir.path()).unwrap();
        for sub in ["", "src"] {
            let base = WorkspacePath::from_relative(sub).unwrap();
            let streamed = walk(&env, &base, StreamLimits::default()).await.unwrap();
            let local = crate::search::walk::walk(&dir.path().join(sub)).unwrap();
            assert_eq!(streamed, local, "below {sub:?}");
        }
        let paths: Vec<_> =
            walk(&env, &WorkspacePath::root(), StreamLimits { concurrency: 1, ..Default::default() }).await.unwrap().into_iter().map(|e| e.path).collect();
        assert!(paths.contains(&"keep.log".to_string()) && paths.contains(&"empty".to_string()), "{paths:?}");
        assert!(!paths.iter().any(|p| p.starts_with(".git/") || p == "a.log" || p.starts_with("build") || p.contains("gen")), "{paths:?}");
    }

    /// A tree unpacked from a distribution package: not a git repository, with
    /// a `.gitignore` of `/*`, plus `.ignore` and `.rgignore` rules (which
    /// apply everywhere) and a nested repository whose own rules apply inside it.
    fn not_a_repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let files: &[(&str, &str)] = &[
            (".gitignore", "/*\n"),
            (".ignore", "*.o\n"),
            ("Makefile", "all:\n"),
            ("kernel/sched.c", "int x;\n"),
            ("kernel/sched.o", "obj\n"),
            ("kernel/.gitignore", "*.c\n"),
            ("tools/.rgignore", "*.tmp\n"),
            ("tools/a.tmp", "tmp\n"),
            ("tools/.ignore", "!a.tmp\n"),
            ("sub/.git/HEAD", "ref: refs/heads/main\n"),
            ("sub/.git/info/exclude", "excluded.txt\n"),
            ("sub/.gitignore", "*.gen\n"),
            ("sub/x.gen", "gen\n"),
            ("sub/excluded.txt", "ex\n"),
            ("sub/kept.txt", "kept\n"),
        ];
        for (path, data) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        dir
    }

    #[tokio::test]
    async fn gitignore_applies_only_inside_a_repository_as_in_ripgrep() {
        let dir = not_a_repo();
        let env = LocalEnv::new(dir.path()).unwrap();
        let streamed = walk(&env, &WorkspacePath::root(), StreamLimits::default()).await.unwrap();
        let local = crate::search::walk::walk(dir.path()).unwrap();
        assert_eq!(streamed, local);
        let files: Vec<&str> = local.iter().filter(|e| e.kind == EntryKind::File).map(|e| e.path.as_str()).collect();
        // `.rgignore` outranks `.ignore`, so the whitelist in tools/.ignore loses;
        // the root `.gitignore` and kernel/.gitignore are outside any repository.
        let want =
            [".gitignore", ".ignore", "Makefile", "kernel/.gitignore", "kernel/sched.c", "sub/.gitignore", "sub/kept.txt", "tools/.ignore", "tools/.rgignore"];
        assert_eq!(files, want);
        // The same as ripgrep, where it is installed.
        if let Ok(out) = std::process::Command::new("rg").args(["--no-config", "--files", "--hidden", "--glob", "!**/.git/**"]).current_dir(dir.path()).output()
        {
            let mut rg: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim_start_matches("./").to_string()).collect();
            rg.sort();
            assert_eq!(rg, want, "ripgrep lists the same files");
        }
        // The listing flags of a subfolder agree with the walk.
        let rules = IgnoreRules::load(&env, &WorkspacePath::from_relative("sub").unwrap()).await;
        let sub = WorkspacePath::from_relative("sub").unwrap();
        let flagged: Vec<bool> = ["x.gen", "excluded.txt", "kept.txt"].iter().map(|n| rules.is_ignored(&sub.join(n), EntryKind::File)).collect();
        assert_eq!(flagged, [true, true, false]);
        let kernel = IgnoreRules::load(&env, &WorkspacePath::from_relative("kernel").unwrap()).await;
        assert!(!kernel.is_ignored(&WorkspacePath::from_relative("kernel/sched.c").unwrap(), EntryKind::File));
        assert!(kernel.is_ignored(&WorkspacePath::from_relative("kernel/sched.o").unwrap(), EntryKind::File));
    }

    #[tokio::test]
    async fn grep_equals_the_local_grep() {
        let dir = tree();
        let env = LocalEnv::new(dir.path()).unwrap();
        for r in [req("", "needle", 100, None), req("src", "needle", 100, None), req("", "needle", 100, Some("*.rs")), req("", "NEEDLE|deep", 100, None)] {
            let streamed = grep(&env, &r, StreamLimits::default()).await.unwrap();
            let local = crate::search::grep::grep(&dir.path().join(&r.dir), &r).unwrap();
            assert_eq!(streamed, local, "{r:?}");
            assert!(!streamed.matches.is_empty() || r.pattern.contains("NEEDLE"));
        }
    }

    /// A tree of numbered files whose first read waits until `wait_for` other
    /// reads have started: an in-order pipeline of `concurrency` fetches
    /// would wait forever for it.
    struct SlowHead {
        files: usize,
        wait_for: usize,
        started: std::sync::atomic::AtomicUsize,
        highest: std::sync::atomic::AtomicUsize,
        others: tokio::sync::Notify,
    }

    #[async_trait]
    impl Tree for SlowHead {
        async fn list(&self, _dir: &WorkspacePath) -> EnvResult<Vec<DirEntry>> {
            let file = |i: usize| DirEntry { name: format!("f{i:03}.txt"), kind: EntryKind::File };
            Ok((0..self.files).map(file).collect())
        }
        async fn read(&self, path: &WorkspacePath, _max: u64) -> EnvResult<Bytes> {
            use std::sync::atomic::Ordering::SeqCst;
            let index: usize = path.as_str()[1..4].parse().unwrap();
            self.highest.fetch_max(index, SeqCst);
            if index == 0 {
                while self.started.load(SeqCst) < self.wait_for {
                    let notified = self.others.notified();
                    if self.started.load(SeqCst) >= self.wait_for {
                        break;
                    }
                    notified.await;
                }
            } else {
                self.started.fetch_add(1, SeqCst);
                self.others.notify_waiters();
            }
            Ok(Bytes::from(format!("line {index}\n")))
        }
    }

    #[tokio::test]
    async fn a_slow_file_does_not_hold_up_the_others_and_order_is_kept() {
        use std::sync::atomic::Ordering::SeqCst;
        let limits = StreamLimits { concurrency: 2, max_file_bytes: 1 << 20 };
        let tree = SlowHead { files: 40, wait_for: 5, started: Default::default(), highest: Default::default(), others: Default::default() };
        let found = tokio::time::timeout(std::time::Duration::from_secs(60), grep(&tree, &req("", "line", 3, None), limits))
            .await
            .expect("the search finishes although its first file is slow")
            .unwrap();
        let got: Vec<_> = found.matches.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(got, ["f000.txt", "f001.txt", "f002.txt"]);
        assert!(found.truncated);
        // Reading ahead is bounded: nothing past READ_AHEAD windows of the slow file.
        assert!(tree.highest.load(SeqCst) < limits.concurrency * READ_AHEAD, "read up to f{:03}", tree.highest.load(SeqCst));
    }

    #[tokio::test]
    async fn limit_stops_in_path_order_and_errors_are_clear() {
        let dir = tree();
        let env = LocalEnv::new(dir.path()).unwrap();
        let r = grep(&env, &req("", "needle", 2, None), StreamLimits::default()).await.unwrap();
        assert!(r.truncated);
        let got: Vec<_> = r.matches.iter().map(|m| (m.path.as_str(), m.line_number)).collect();
        assert_eq!(got, vec![(".hidden", 1), ("a.txt", 1)]);
        assert!(matches!(grep(&env, &req("", "a(", 2, None), StreamLimits::default()).await, Err(EnvError::InvalidInput(_))));
        assert!(matches!(grep(&env, &req("missing", "a", 2, None), StreamLimits::default()).await, Err(EnvError::NotFound(_))));
        assert!(matches!(grep(&env, &req("", "a", 2, Some("{")), StreamLimits::default()).await, Err(EnvError::InvalidInput(_))));
    }
}
