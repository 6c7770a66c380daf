//! Ignore rules read through an environment (or any [`Tree`]), so every
//! backend answers the same: the `ignored` flag of directory listings, and the
//! streamed walk of `search::stream` for environments that cannot run ripgrep.
//!
//! The semantics are ripgrep's (the `ignore` crate with `require_git`):
//! `.rgignore` and `.ignore` apply everywhere, while `.gitignore` and
//! `.git/info/exclude` apply only inside a git repository, and only from the
//! repository's root down. A source tree unpacked from a distribution package
//! often carries a `.gitignore` of `/*` without being a repository; ripgrep and
//! OpenCode search it, so Burrow must too.

use std::path::PathBuf;
use std::sync::Arc;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;

use super::stream::Tree;
use crate::env::{DirEntry, EntryKind, EnvError, WorkspacePath};

/// Ignore files larger than this are not rules anyone wrote by hand.
const MAX_IGNORE_FILE: u64 = 1 << 20;

/// ripgrep's own ignore file; it outranks every other kind.
const RGIGNORE: &str = ".rgignore";
/// The tool-neutral ignore file; it outranks git's.
const IGNORE: &str = ".ignore";
/// Git's ignore file, honoured only inside a repository.
const GITIGNORE: &str = ".gitignore";
/// The marker of a repository root: a directory, or a file in worktrees and submodules.
const GIT: &str = ".git";
/// The repository's private excludes, below a `.git` directory.
const GIT_EXCLUDE: &str = ".git/info/exclude";

/// The names whose presence in a directory changes the rules below it.
const RULE_NAMES: [&str; 4] = [RGIGNORE, IGNORE, GITIGNORE, GIT];

/// The rules that apply inside a directory: the ignore files of the directory
/// and of each ancestor, kept per kind because ripgrep ranks kinds before depth
/// (any `.ignore` match beats any `.gitignore` match). Cheap to clone, so a walk
/// can hand one to each child.
#[derive(Clone, Default)]
pub struct IgnoreRules {
    /// Whether the directory is inside a git repository: it or an ancestor holds `.git`.
    repo: bool,
    /// `.rgignore` files, outermost first.
    rg: Vec<Arc<Gitignore>>,
    /// `.ignore` files, outermost first.
    ignore: Vec<Arc<Gitignore>>,
    /// `.gitignore` files from the innermost repository root down, outermost first.
    git: Vec<Arc<Gitignore>>,
    /// `.git/info/exclude` of the innermost repository.
    exclude: Option<Arc<Gitignore>>,
}

impl IgnoreRules {
    /// The rules for `dir`, listing every level from the root down to learn
    /// which ignore files and `.git` markers each one holds.
    pub async fn load<T: Tree + ?Sized>(tree: &T, dir: &WorkspacePath) -> Self {
        let mut rules = Self::default();
        for level in dir.ancestors().chain(std::iter::once(dir.clone())) {
            match tree.list(&level).await {
                Ok(entries) => {
                    if has_ignore_file(&entries) {
                        rules = rules.descend(tree, &level, |name| entries.iter().any(|e| e.name == name)).await;
                    }
                }
                Err(e) => tracing::debug!("cannot list {level} for its ignore rules: {e}"),
            }
        }
        rules
    }

    /// These rules plus those of `dir`, a child of the directory they were
    /// loaded for. `present` says which names the caller knows `dir` holds, so
    /// a walk that has just listed `dir` reads only the files that are there.
    pub async fn descend<T: Tree + ?Sized>(&self, tree: &T, dir: &WorkspacePath, present: impl Fn(&str) -> bool) -> Self {
        let mut out = self.clone();
        if present(GIT) {
            // A repository root: git rules of the directories above it stop
            // applying, as in git and ripgrep.
            out.repo = true;
            out.git.clear();
            out.exclude = read_rules(tree, dir, GIT_EXCLUDE).await;
        }
        if present(RGIGNORE) {
            out.rg.extend(read_rules(tree, dir, RGIGNORE).await);
        }
        if present(IGNORE) {
            out.ignore.extend(read_rules(tree, dir, IGNORE).await);
        }
        if present(GITIGNORE) && out.repo {
            out.git.extend(read_rules(tree, dir, GITIGNORE).await);
        }
        out
    }

    /// Whether `path` is ignored. Kinds rank first (`.rgignore`, `.ignore`,
    /// `.gitignore`, then the repository's excludes); within a kind the
    /// deepest file that says anything decides, as in ripgrep.
    pub fn is_ignored(&self, path: &WorkspacePath, kind: EntryKind) -> bool {
        let abs = fake_abs(path);
        let is_dir = kind == EntryKind::Directory;
        let kinds = [self.rg.as_slice(), self.ignore.as_slice(), self.git.as_slice(), self.exclude.as_slice()];
        for levels in kinds {
            for gi in levels.iter().rev() {
                match gi.matched_path_or_any_parents(&abs, is_dir) {
                    Match::Ignore(_) => return true,
                    Match::Whitelist(_) => return false,
                    Match::None => {}
                }
            }
        }
        false
    }

    pub fn flags(&self, dir: &WorkspacePath, entries: &[DirEntry]) -> Vec<bool> {
        entries.iter().map(|e| self.is_ignored(&dir.join(&e.name), e.kind)).collect()
    }
}

/// The rules of the ignore file `name` below `dir`, matched relative to `dir`;
/// `None` when it is missing, unreadable or holds no rule.
async fn read_rules<T: Tree + ?Sized>(tree: &T, dir: &WorkspacePath, name: &str) -> Option<Arc<Gitignore>> {
    let path = dir.join_checked(name).map_err(|e| tracing::debug!("{name} below {dir}: {e}")).ok()?;
    let bytes = match tree.read(&path, MAX_IGNORE_FILE).await {
        Ok(bytes) => bytes,
        Err(EnvError::NotFound(_)) => return None,
        Err(e) => {
            tracing::debug!("cannot read {name} in {dir}: {e}");
            return None;
        }
    };
    let mut builder = GitignoreBuilder::new(fake_abs(dir));
    let mut any = false;
    for line in String::from_utf8_lossy(&bytes).lines() {
        any |= builder.add_line(None, line).is_ok();
    }
    if !any {
        return None;
    }
    builder.build().map_err(|e| tracing::debug!("bad rules in {name} of {dir}: {e}")).ok().map(Arc::new)
}

/// Whether a listing holds a name that changes the rules below it, so a walk
/// knows to read it.
pub fn has_ignore_file(entries: &[DirEntry]) -> bool {
    entries.iter().any(|e| RULE_NAMES.contains(&e.name.as_str()))
}

/// Gitignore matching is lexical; anchor it at a fixed fake root so it works
/// the same for local paths, remote paths and object keys.
pub fn fake_abs(path: &WorkspacePath) -> PathBuf {
    PathBuf::from("/").join(path.as_str())
}
