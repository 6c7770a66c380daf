//! The `ignored` flag of directory listings, from `.gitignore` and `.ignore`
//! files read through the environment, so every backend answers the same.

use std::path::PathBuf;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;

use crate::env::{DirEntry, EntryKind, Env, EnvError, WorkspacePath};

/// Ignore files larger than this are not rules anyone wrote by hand.
const MAX_IGNORE_FILE: u64 = 1 << 20;

/// The rules that apply inside `dir`: the ignore files of `dir` and of each ancestor.
pub struct IgnoreRules {
    /// Outermost first.
    levels: Vec<Gitignore>,
}

impl IgnoreRules {
    pub async fn load(env: &dyn Env, dir: &WorkspacePath) -> Self {
        let mut levels = Vec::new();
        for level in dir.ancestors().chain(std::iter::once(dir.clone())) {
            let mut builder = GitignoreBuilder::new(fake_abs(&level));
            let mut any = false;
            for name in [".gitignore", ".ignore"] {
                match env.read(&level.join(name), MAX_IGNORE_FILE).await {
                    Ok(bytes) => {
                        for line in String::from_utf8_lossy(&bytes).lines() {
                            any |= builder.add_line(None, line).is_ok();
                        }
                    }
                    Err(EnvError::NotFound(_)) => {}
                    Err(e) => tracing::debug!("cannot read {name} in {level}: {e}"),
                }
            }
            if any {
                if let Ok(gi) = builder.build() {
                    levels.push(gi);
                }
            }
        }
        Self { levels }
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

/// Gitignore matching is lexical; anchor it at a fixed fake root so it works
/// the same for local paths, remote paths and object keys.
fn fake_abs(path: &WorkspacePath) -> PathBuf {
    PathBuf::from("/").join(path.as_str())
}
