//! Caps what a tool hands the model: OpenCode's limits of 2000 lines and
//! 50 KB. The full text is saved on the server (not in the workspace, so a
//! read-only or remote workspace stays untouched) and the `read` tool can read
//! it back by the path the note gives.

use std::path::{Path, PathBuf};

use crate::id::{self, Prefix};
use crate::session::datadir;

pub const MAX_LINES: usize = 2000;
pub const MAX_BYTES: usize = 50 * 1024;

/// Which end of the output to keep: the head for listings, the tail for command output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    Head,
    Tail,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Truncated {
    pub content: String,
    pub truncated: bool,
    pub output_path: Option<String>,
}

pub struct Truncator {
    dir: PathBuf,
}

impl Truncator {
    /// Saves full outputs in `dir` (created when first needed).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether `path` names a saved output (so `read` serves it from the server).
    pub fn owns(&self, path: &str) -> bool {
        Path::new(path).parent() == Some(self.dir.as_path()) && Path::new(path).file_name().is_some_and(|n| n.to_string_lossy().starts_with("tool_"))
    }

    /// Keeps at most `MAX_LINES` lines and `MAX_BYTES` bytes of `text`.
    pub async fn output(&self, text: &str, keep: Keep) -> Truncated {
        let Some((kept, dropped, unit)) = cut(text, MAX_LINES, MAX_BYTES, keep) else {
            return Truncated { content: text.to_string(), truncated: false, output_path: None };
        };
        let saved = self.save(text).await;
        let note = match &saved {
            Some(p) => format!(
                "The tool call succeeded but the output was truncated. Full output saved to: {p}\nUse Grep to search the full content or Read with offset/limit to view specific sections."
            ),
            None => "The tool call succeeded but the output was truncated.".to_string(),
        };
        let content = match keep {
            Keep::Head => format!("{kept}\n\n...{dropped} {unit} truncated...\n\n{note}"),
            Keep::Tail => format!("...{dropped} {unit} truncated...\n\n{note}\n\n{kept}"),
        };
        Truncated { content, truncated: true, output_path: saved }
    }

    /// Saves a full output, readable by the server's user only (it may hold
    /// anything a command printed), then prunes the folder to its retention
    /// (`session::datadir`); `None` when the server cannot write there.
    pub async fn save(&self, text: &str) -> Option<String> {
        let path = self.dir.join(id::ascending(Prefix::Tool));
        let (dir, file, text) = (self.dir.clone(), path.clone(), text.to_string());
        let saved = tokio::task::spawn_blocking(move || {
            datadir::create_private_dir(&dir)?;
            std::io::Write::write_all(&mut datadir::create_private_file(&file)?, text.as_bytes())
        })
        .await;
        if !matches!(saved, Ok(Ok(()))) {
            return None;
        }
        datadir::prune_in_background(&self.dir, Some(&path));
        Some(path.to_string_lossy().into_owned())
    }
}

/// The kept text, how much was dropped and in what unit, or `None` when it fits.
pub fn cut(text: &str, max_lines: usize, max_bytes: usize, keep: Keep) -> Option<(String, usize, &'static str)> {
    let lines: Vec<&str> = text.split('\n').collect();
    if lines.len() <= max_lines && text.len() <= max_bytes {
        return None;
    }
    let mut kept: Vec<&str> = Vec::new();
    let mut bytes = 0;
    let mut hit_bytes = false;
    let order: Box<dyn Iterator<Item = &&str>> = match keep {
        Keep::Head => Box::new(lines.iter()),
        Keep::Tail => Box::new(lines.iter().rev()),
    };
    for line in order {
        if kept.len() >= max_lines {
            break;
        }
        let size = line.len() + usize::from(!kept.is_empty());
        if bytes + size > max_bytes {
            hit_bytes = true;
            break;
        }
        kept.push(line);
        bytes += size;
    }
    if keep == Keep::Tail {
        kept.reverse();
    }
    let (dropped, unit) = if hit_bytes { (text.len() - bytes, "bytes") } else { (lines.len() - kept.len(), "lines") };
    Some((kept.join("\n"), dropped, unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_by_lines_then_bytes() {
        let text: String = (1..=10).map(|i| format!("l{i}")).collect::<Vec<_>>().join("\n");
        assert_eq!(cut(&text, 20, 1000, Keep::Head), None);
        assert_eq!(cut(&text, 3, 1000, Keep::Head), Some(("l1\nl2\nl3".into(), 7, "lines")));
        assert_eq!(cut(&text, 3, 1000, Keep::Tail), Some(("l8\nl9\nl10".into(), 7, "lines")));
        let (kept, dropped, unit) = cut(&text, 100, 8, Keep::Head).unwrap();
        assert_eq!((kept.as_str(), unit), ("l1\nl2\nl3", "bytes"));
        assert_eq!(dropped, text.len() - 8);
    }

    #[tokio::test]
    async fn saves_the_full_output_and_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let t = Truncator::new(dir.path().join("tool-output"));
        let text = "x\n".repeat(MAX_LINES + 10);
        let out = t.output(&text, Keep::Head).await;
        assert!(out.truncated);
        let path = out.output_path.clone().unwrap();
        assert!(t.owns(&path));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        assert!(out.content.contains("...11 lines truncated..."), "{}", &out.content[out.content.len() - 300..]);
        assert!(out.content.contains(&format!("Full output saved to: {path}")));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(t.dir()).unwrap().permissions().mode() & 0o777, 0o700);
    }
}
