//! Gitignore rules read through an environment (or any [`Tree`]), so every
//! backend answers the same: the `ignored` flag of directory listings, and the
//! streamed walk of `search::stream` for environments that cannot run ripgrep.

use std::path::PathBuf;
use std::sync::Arc;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;

use super::stream::Tree;
use crate::env::{DirEntry, EntryKind, EnvError, WorkspacePath};

/// Ignore files larger than this are not rules anyone wrote by hand.
const MAX_IGNORE_FILE: u64 = 1 << 20;

/// The files whose rules apply to a directory and everything below it, as
/// ripgrep reads them (`.ignore` wins over `.gitignore` in the same directory).
const IGNORE_FILES: [&str; 2] = [".gitignore", ".ignore"];

/// The rules that apply inside a directory: the ignore files of the directory
/// and of each ancestor. Cheap to clone, so a walk can hand one to each child.
#[derive(Clone, Default)]
pub struct IgnoreRules {
    /// Outermost first.
    levels: Vec<Arc<Gitignore>>,
}

impl IgnoreRules {
    /// The rules for `dir`, reading the ignore files of every level from the root down.
    pub async fn load<T: Tree + ?Sized>(tree: &T, dir: &WorkspacePath) -> Self {
        let mut rules = Self::default();
        for level in dir.ancestors().chain(std::iter::once(dir.clone())) {
            rules = rules.descend(tree, &level, |_| true).await;
        }
        rules
    }

    /// These rules plus the ignore files of `dir`, a child of the directory they
    /// were loaded for. `present` says which file names the caller knows exist,
    /// so a walk that has just listed `dir` reads only the files that are there.
    pub async fn descend<T: Tree + ?Sized>(&self, tree: &T, dir: &WorkspacePath, present: impl Fn(&str) -> bool) -> Self {
        let mut builder = GitignoreBuilder::new(fake_abs(dir));
        let mut any = false;
        for name in IGNORE_FILES.into_iter().filter(|n| present(n)) {
            match tree.read(&dir.join(name), MAX_IGNORE_FILE).await {
                Ok(bytes) => {
                    for line in String::from_utf8_lossy(&bytes).lines() {
                        any |= builder.add_line(None, line).is_ok();
                    }
                }
                Err(EnvError::NotFound(_)) => {}
                Err(e) => tracing::debug!("cannot read {name} in {dir}: {e}"),
            }
        }
        let mut out = self.clone();
        if any {
            if let Ok(gi) = builder.build() {
                out.levels.push(Arc::new(gi));
            }
        }
        out
    }

    /// Whether `path` is ignored; deeper rules override shallower ones, as in git.
    pub fn is_ignored(&self, path: &WorkspacePath, kind: EntryKind) -> bool {
        let abs = fake_abs(path);
        for gi in self.levels.iter().rev() {
            match gi.matched_path_or_any_parents(&abs, kind == EntryKind::Directory) {
                Match::Ignore(_) => return true,
                Match::Whitelist(_) => return false,
                Match::None => {}
            }
        }
        false
    }

    pub fn flags(&self, dir: &WorkspacePath, entries: &[DirEntry]) -> Vec<bool> {
        entries.iter().map(|e| self.is_ignored(&dir.join(&e.name), e.kind)).collect()
    }
}

/// Whether a listing holds an ignore file, so a walk knows to read it.
pub fn has_ignore_file(entries: &[DirEntry]) -> bool {
    entries.iter().any(|e| e.kind == EntryKind::File && IGNORE_FILES.contains(&e.name.as_str()))
}

/// Gitignore matching is lexical; anchor it at a fixed fake root so it works
/// the same for local paths, remote paths and object keys.
pub fn fake_abs(path: &WorkspacePath) -> PathBuf {
    PathBuf::from("/").join(path.as_str())
}
