//! `WorkspacePath`: the only way to name a file inside a workspace.
//!
//! A workspace path is relative to the environment's root, uses `/` separators,
//! and never contains `.` or `..` components. Building one is the lexical half of
//! confinement; the other half (symlinks that point outside the root) needs the
//! backend, which resolves the path where the data lives (see `Env::confine`).

use std::fmt;

use super::EnvError;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkspacePath(String);

impl WorkspacePath {
    /// The workspace root itself.
    pub fn root() -> Self {
        Self(String::new())
    }

    /// Parses what a client sent. `root` is the environment's absolute root; an
    /// absolute `input` must lie under it. `..` is rejected outright, even when
    /// it would stay inside, because a path that climbs is never what a client
    /// means and accepting it invites mistakes in every backend.
    pub fn parse(root: &str, input: &str) -> Result<Self, EnvError> {
        Self::refuse_control("path", input)?;
        let input = input.trim();
        let relative = if Self::is_absolute(input) {
            let root = root.trim_end_matches('/');
            if input == root || input == format!("{root}/") || root.is_empty() && input == "/" {
                ""
            } else if let Some(rest) = input.strip_prefix(root).and_then(|r| r.strip_prefix('/')) {
                rest
            } else {
                return Err(EnvError::Escape(input.to_string()));
            }
        } else {
            input
        };
        Self::from_relative(relative).map_err(|e| match e {
            EnvError::InvalidInput(_) => e,
            _ => EnvError::Escape(input.to_string()),
        })
    }

    /// Refuses control characters (NUL, newline, carriage return, escape, DEL, C1)
    /// in `input`, which the message calls `what` ("path", "directory"): no
    /// client means them in a file name, and each one is a way to make a name
    /// mean two things (a shell's `$(...)` drops a trailing newline, logs and
    /// line protocols split on one, C strings end at NUL). Public so that the
    /// server refuses a `?directory=` by the same rule before it parses one.
    pub fn refuse_control(what: &str, input: &str) -> Result<(), EnvError> {
        match input.chars().find(|c| c.is_control()) {
            Some(c) => Err(EnvError::InvalidInput(format!("{what} {input:?} contains the control character {c:?}"))),
            None => Ok(()),
        }
    }

    /// Whether a client's path names a place from the top: `/…`, or a URL for
    /// object storage, whose roots are URLs (`s3://bucket/prefix/src`).
    pub fn is_absolute(input: &str) -> bool {
        input.starts_with('/') || input.contains("://")
    }

    /// Builds a path from a relative, `/`-separated string; `.` components and
    /// empty segments are dropped, `..` and control characters are refused.
    pub fn from_relative(relative: &str) -> Result<Self, EnvError> {
        Self::refuse_control("path", relative)?;
        let mut out = String::with_capacity(relative.len());
        for part in relative.split(['/', '\\']) {
            match part {
                "" | "." => continue,
                ".." => return Err(EnvError::Escape(relative.to_string())),
                p => {
                    if !out.is_empty() {
                        out.push('/');
                    }
                    out.push_str(p);
                }
            }
        }
        Ok(Self(out))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The last component, or "" for the root.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    pub fn parent(&self) -> Option<Self> {
        if self.is_root() {
            return None;
        }
        Some(Self(self.0.rsplit_once('/').map(|(p, _)| p.to_string()).unwrap_or_default()))
    }

    /// Appends one already-validated name (as returned by a directory listing).
    pub fn join(&self, name: &str) -> Self {
        if self.is_root() {
            Self(name.to_string())
        } else {
            Self(format!("{}/{}", self.0, name))
        }
    }

    /// Joins a relative path that still needs checking.
    pub fn join_checked(&self, relative: &str) -> Result<Self, EnvError> {
        let rel = Self::from_relative(relative)?;
        Ok(if self.is_root() {
            rel
        } else if rel.is_root() {
            self.clone()
        } else {
            self.join(rel.as_str())
        })
    }

    /// The path as seen from `base` (which must be an ancestor or equal).
    pub fn strip_prefix(&self, base: &WorkspacePath) -> Option<&str> {
        if base.is_root() {
            return Some(&self.0);
        }
        let rest = self.0.strip_prefix(base.as_str())?;
        if rest.is_empty() {
            Some("")
        } else {
            rest.strip_prefix('/')
        }
    }

    /// Whether `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &WorkspacePath) -> bool {
        self.strip_prefix(other).is_some()
    }

    /// The absolute path under an environment root.
    pub fn absolute(&self, root: &str) -> String {
        let root = root.trim_end_matches('/');
        if self.is_root() {
            if root.is_empty() {
                "/".to_string()
            } else {
                root.to_string()
            }
        } else {
            format!("{root}/{}", self.0)
        }
    }

    /// Each ancestor from the root down to the parent of `self`.
    pub fn ancestors(&self) -> impl Iterator<Item = WorkspacePath> + '_ {
        let root = (!self.is_root()).then(WorkspacePath::root);
        let inner = self.0.match_indices('/').map(move |(i, _)| WorkspacePath(self.0[..i].to_string()));
        root.into_iter().chain(inner)
    }
}

impl fmt::Display for WorkspacePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str(".")
        } else {
            f.write_str(&self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_relative_and_absolute() {
        let p = WorkspacePath::parse("/w/root", "src/./main.rs").unwrap();
        assert_eq!(p.as_str(), "src/main.rs");
        assert_eq!(WorkspacePath::parse("/w/root", "/w/root/src").unwrap().as_str(), "src");
        assert!(WorkspacePath::parse("/w/root", "/w/root").unwrap().is_root());
        assert!(WorkspacePath::parse("/w/root", ".").unwrap().is_root());
        assert!(WorkspacePath::parse("/w/root", "").unwrap().is_root());
    }

    #[test]
    fn rejects_escapes() {
        for bad in ["..", "../x", "a/../../x", "a/..", "/etc/passwd", "/w/rootx/a", "/w"] {
            assert!(matches!(WorkspacePath::parse("/w/root", bad), Err(EnvError::Escape(_))), "{bad}");
        }
        assert_eq!(WorkspacePath::parse("s3://b/p", "s3://b/p/src/a.rs").unwrap().as_str(), "src/a.rs");
        assert!(WorkspacePath::parse("s3://b/p", "s3://b/p").unwrap().is_root());
        for bad in ["s3://b/px/a", "s3://other/p", "/b/p"] {
            assert!(matches!(WorkspacePath::parse("s3://b/p", bad), Err(EnvError::Escape(_))), "{bad}");
        }
    }

    #[test]
    fn control_characters_are_invalid_input() {
        for bad in ["a\n", "a\rb", "a\0b", "\tx", "src/\u{1b}[31m", "x\u{7f}", "x\u{85}"] {
            assert!(matches!(WorkspacePath::from_relative(bad), Err(EnvError::InvalidInput(_))), "{bad:?}");
            assert!(matches!(WorkspacePath::parse("/w/root", bad), Err(EnvError::InvalidInput(_))), "{bad:?}");
            assert!(matches!(WorkspacePath::parse("/w/root", &format!("/w/root/{bad}")), Err(EnvError::InvalidInput(_))), "{bad:?}");
        }
        assert_eq!(WorkspacePath::parse("/w/root", " a b.txt ").unwrap().as_str(), "a b.txt");
    }

    #[test]
    fn ancestors_walk_down_from_root() {
        let p = WorkspacePath::from_relative("a/b/c.txt").unwrap();
        let got: Vec<String> = p.ancestors().map(|a| a.as_str().to_string()).collect();
        assert_eq!(got, vec!["", "a", "a/b"]);
        assert_eq!(WorkspacePath::from_relative("x").unwrap().ancestors().count(), 1);
        assert_eq!(WorkspacePath::root().ancestors().count(), 0);
    }

    #[test]
    fn strip_and_parent() {
        let p = WorkspacePath::from_relative("a/b/c").unwrap();
        let a = WorkspacePath::from_relative("a").unwrap();
        assert_eq!(p.strip_prefix(&a), Some("b/c"));
        assert_eq!(WorkspacePath::from_relative("ab").unwrap().strip_prefix(&a), None);
        assert_eq!(p.parent().unwrap().as_str(), "a/b");
        assert_eq!(p.file_name(), "c");
        assert_eq!(p.absolute("/r/"), "/r/a/b/c");
    }
}
