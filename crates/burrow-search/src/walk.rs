//! The gitignore-aware walk that both text search and the file index use.
//! It matches `rg --files --hidden --glob=!**/.git/**`: hidden files are
//! included, ignore files are honoured as ripgrep honours them, `.git` is skipped, and symlinks are
//! neither followed nor listed (a link out of the workspace must not show up
//! as a file a client could pick).

use std::path::Path;
use std::sync::Mutex;

use ignore::overrides::OverrideBuilder;
use ignore::{ParallelVisitor, ParallelVisitorBuilder, WalkBuilder, WalkState};

use crate::env::{EntryKind, EnvError, EnvResult, IndexEntry};

/// Threads for a parallel walk: all cores, as ripgrep uses.
pub fn threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).min(12)
}

/// A walker configured like ripgrep with OpenCode's flags, optionally
/// restricted to files matching `include`.
pub fn builder(base: &Path, include: Option<&str>) -> EnvResult<WalkBuilder> {
    let mut b = WalkBuilder::new(base);
    b.hidden(false)
        .follow_links(false)
        // ripgrep's rule: `.gitignore` and `.git/info/exclude` only inside a
        // git repository, `.ignore` and `.rgignore` everywhere. A source tree
        // with a `.gitignore` of `/*` that is no repository must still be searchable.
        .require_git(true)
        .add_custom_ignore_filename(".rgignore")
        .filter_entry(not_git);
    if let Some(glob) = include.filter(|g| !g.is_empty()) {
        let mut ov = OverrideBuilder::new(base);
        ov.add(glob).map_err(|e| EnvError::InvalidInput(format!("invalid glob {glob:?}: {e}")))?;
        b.overrides(ov.build().map_err(|e| EnvError::InvalidInput(format!("invalid glob {glob:?}: {e}")))?);
    }
    Ok(b)
}

/// The walk never enters `.git`.
fn not_git(e: &ignore::DirEntry) -> bool {
    e.file_name() != ".git"
}

/// The entries of [`walk`] whose path below `base` passes `keep`, which also
/// decides which folders are entered: the same ignore rules as a whole walk
/// (every folder on the way is read, with its ignore files), for the cost of
/// the folders `keep` lets in. The snapshot store re-reads only the paths a
/// watcher reported this way. Sorted by path.
pub fn walk_only(base: &Path, keep: impl Fn(&str) -> bool + Send + Sync + 'static) -> EnvResult<Vec<IndexEntry>> {
    if !base.is_dir() {
        return Err(EnvError::NotFound(base.display().to_string()));
    }
    let root = base.to_path_buf();
    let mut b = builder(base, None)?;
    // Replaces the builder's filter, so it repeats the `.git` rule.
    b.filter_entry(move |e| not_git(e) && relative(&root, e.path()).is_none_or(|rel| keep(&rel)));
    let mut entries = Vec::new();
    for entry in b.build() {
        let Ok(entry) = entry else { continue };
        let Some(ft) = entry.file_type() else { continue };
        if ft.is_symlink() {
            continue;
        }
        if let Some(path) = relative(base, entry.path()) {
            entries.push(IndexEntry { path, kind: if ft.is_dir() { EntryKind::Directory } else { EntryKind::File } });
        }
    }
    entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

/// The path of `path` below `base`, with `/` separators.
pub fn relative(base: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(base).ok()?;
    let s = rel.to_str().map(str::to_owned).unwrap_or_else(|| rel.to_string_lossy().into_owned());
    if s.is_empty() {
        return None;
    }
    Some(if std::path::MAIN_SEPARATOR == '/' { s } else { s.replace(std::path::MAIN_SEPARATOR, "/") })
}

/// Every file and directory below `base`, sorted by path.
pub fn walk(base: &Path) -> EnvResult<Vec<IndexEntry>> {
    if !base.is_dir() {
        return Err(EnvError::NotFound(base.display().to_string()));
    }
    let all = Mutex::new(Vec::new());
    builder(base, None)?.threads(threads()).build_parallel().visit(&mut CollectorBuilder { base, all: &all });
    let mut entries = all.into_inner().unwrap_or_else(|e| e.into_inner());
    entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

struct CollectorBuilder<'a> {
    base: &'a Path,
    all: &'a Mutex<Vec<IndexEntry>>,
}

impl<'s> ParallelVisitorBuilder<'s> for CollectorBuilder<'s> {
    fn build(&mut self) -> Box<dyn ParallelVisitor + 's> {
        Box::new(Collector { base: self.base, all: self.all, local: Vec::with_capacity(4096) })
    }
}

/// Collects one walker thread's entries locally and hands them over once, when
/// the thread is done, so the threads do not contend on the shared list.
struct Collector<'a> {
    base: &'a Path,
    all: &'a Mutex<Vec<IndexEntry>>,
    local: Vec<IndexEntry>,
}

impl ParallelVisitor for Collector<'_> {
    fn visit(&mut self, entry: Result<ignore::DirEntry, ignore::Error>) -> WalkState {
        let Ok(entry) = entry else { return WalkState::Continue };
        let Some(ft) = entry.file_type() else { return WalkState::Continue };
        if ft.is_symlink() {
            return WalkState::Continue;
        }
        if let Some(path) = relative(self.base, entry.path()) {
            let kind = if ft.is_dir() { EntryKind::Directory } else { EntryKind::File };
            self.local.push(IndexEntry { path, kind });
        }
        WalkState::Continue
    }
}

impl Drop for Collector<'_> {
    fn drop(&mut self) {
        let mut all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        all.append(&mut self.local);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_hidden_skips_ignored_git_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        for d in ["src", ".git", "node_modules"] {
            std::fs::create_dir_all(p.join(d)).unwrap();
        }
        for f in [".gitignore", ".hidden", "src/main.rs", ".git/HEAD", "node_modules/x.js"] {
            std::fs::write(p.join(f), if f == ".gitignore" { "node_modules/\n" } else { "x\n" }).unwrap();
        }
        std::os::unix::fs::symlink("/etc", p.join("escape")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", p.join("passwd_link")).unwrap();
        std::os::unix::fs::symlink("src/main.rs", p.join("inside_link")).unwrap();
        let got: Vec<(String, EntryKind)> = walk(p).unwrap().into_iter().map(|e| (e.path, e.kind)).collect();
        let want = [(".gitignore", EntryKind::File), (".hidden", EntryKind::File), ("src", EntryKind::Directory), ("src/main.rs", EntryKind::File)];
        assert_eq!(got, want.map(|(p, k)| (p.to_string(), k)));
    }

    /// A partial walk keeps the ignore rules of the folders on its way: the
    /// entries it lists are exactly the whole walk's entries that it keeps.
    #[test]
    fn a_partial_walk_lists_what_the_whole_walk_lists_there() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join(".git")).unwrap();
        for d in ["a/b", "a/gen", "c"] {
            std::fs::create_dir_all(p.join(d)).unwrap();
        }
        std::fs::write(p.join(".gitignore"), "*.log\n").unwrap();
        std::fs::write(p.join("a/.ignore"), "gen/\n").unwrap();
        for f in ["a/b/x.rs", "a/b/x.log", "a/gen/y.rs", "a/z.rs", "c/w.rs"] {
            std::fs::write(p.join(f), "x\n").unwrap();
        }
        let keep = |rel: &str| rel == "a" || rel.starts_with("a/");
        let whole: Vec<_> = walk(p).unwrap().into_iter().filter(|e| keep(&e.path)).map(|e| e.path).collect();
        let part: Vec<_> = walk_only(p, keep).unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(part, whole);
        assert_eq!(part, ["a", "a/.ignore", "a/b", "a/b/x.rs", "a/z.rs"]);
    }
}
