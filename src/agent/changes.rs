//! What a turn changed. Where the environment keeps snapshots, the turn's
//! first and last snapshots say it, as OpenCode's do: every file, whoever
//! changed it (`bash`, a subagent). Elsewhere, without git: the tools that
//! change files record each file's content before its first change, and the
//! turn's diffs compare that with the file as the [`Env`] shows it now.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::tools::diff;
use super::tools::MAX_EDIT_BYTES;
use crate::env::{Env, EnvError, WorkspacePath};
use crate::protocol::session::{DiffStatus, SnapshotFileDiff};

/// What a step's summary covers, taken as the step starts: the files
/// recorded and the turn's first and latest snapshots then. The summary is
/// written later, when the turn may have gone on (a fast snapshot lets it
/// run ahead of the writer); it must say what was true at the step's start.
#[derive(Debug, Default, Clone)]
pub struct Mark {
    files: Vec<WorkspacePath>,
    span: Option<(String, String)>,
}

/// The files a turn changed, with their content before the turn (`None`: the
/// file did not exist).
#[derive(Debug, Default)]
pub struct Changes {
    before: Mutex<BTreeMap<WorkspacePath, Option<String>>>,
    /// The turn's first and latest workspace snapshots.
    span: Mutex<Option<(String, String)>>,
}

impl Changes {
    /// Notes `path`'s content before a change; only the first note of a file counts.
    pub fn record(&self, path: &WorkspacePath, before: Option<&str>) {
        let mut map = self.before.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(path.clone()).or_insert_with(|| before.map(str::to_string));
    }

    /// Notes a snapshot the turn took; the first one is the turn's start.
    pub fn note_snapshot(&self, hash: &str) {
        let mut span = self.span.lock().unwrap_or_else(|e| e.into_inner());
        match span.as_mut() {
            Some((_, last)) => *last = hash.to_string(),
            None => *span = Some((hash.to_string(), hash.to_string())),
        }
    }

    /// The diffs between two snapshots, each file's text from the store.
    pub async fn between(env: &dyn Env, from: &str, to: &str) -> Result<Vec<SnapshotFileDiff>, EnvError> {
        let mut out = Vec::new();
        for change in env.snapshot_changes(from, to).await? {
            let text = |id: Option<String>| async move {
                match id {
                    Some(id) => env.snapshot_blob(&id).await.map(|b| Some(String::from_utf8_lossy(&b).into_owned())),
                    None => Ok(None),
                }
            };
            let (old, new) = (text(change.before).await?, text(change.after).await?);
            out.extend(file_diff(&change.path, old.as_deref(), new.as_deref()));
        }
        Ok(out)
    }

    /// The files recorded so far, in path order.
    pub fn files(&self) -> Vec<WorkspacePath> {
        self.before.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
    }

    /// The files recorded and the snapshots taken so far, for a summary made
    /// later (see [`Mark`]).
    pub fn mark(&self) -> Mark {
        Mark { files: self.files(), span: self.span.lock().unwrap_or_else(|e| e.into_inner()).clone() }
    }

    /// The changed files' diffs (paths relative to the workspace root, in
    /// path order); files now back as they were are left out.
    pub async fn diffs(&self, env: &dyn Env) -> Vec<SnapshotFileDiff> {
        self.diffs_at(env, &self.mark()).await
    }

    /// The diffs as they were at `mark`, as [`Changes::diffs`].
    pub async fn diffs_at(&self, env: &dyn Env, mark: &Mark) -> Vec<SnapshotFileDiff> {
        let files = &mark.files;
        if let Some((from, to)) = &mark.span {
            match Self::between(env, from, to).await {
                Ok(diffs) => return diffs,
                Err(e) => tracing::warn!("cannot diff the snapshots {from} and {to}, falling back to the recorded files: {e}"),
            }
        }
        let before: Vec<(WorkspacePath, Option<String>)> = {
            let map = self.before.lock().unwrap_or_else(|e| e.into_inner());
            files.iter().filter_map(|p| map.get(p).map(|b| (p.clone(), b.clone()))).collect()
        };
        let mut out = Vec::new();
        for (path, old) in before {
            let now = match env.read(&path, MAX_EDIT_BYTES).await {
                Ok(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                Err(EnvError::NotFound(_)) => None,
                // Unreadable now (too large, a directory): nothing to show.
                Err(_) => continue,
            };
            out.extend(file_diff(path.as_str(), old.as_deref(), now.as_deref()));
        }
        out
    }
}

/// One file's diff from `old` to `new` (`None`: absent), or `None` when unchanged.
pub fn file_diff(name: &str, old: Option<&str>, new: Option<&str>) -> Option<SnapshotFileDiff> {
    let status = match (old, new) {
        (None, None) => return None,
        (Some(a), Some(b)) if a == b => return None,
        (None, Some(_)) => DiffStatus::Added,
        (Some(_), None) => DiffStatus::Deleted,
        (Some(_), Some(_)) => DiffStatus::Modified,
    };
    let (old, new) = (old.unwrap_or(""), new.unwrap_or(""));
    let (additions, deletions) = diff::counts(old, new);
    Some(SnapshotFileDiff {
        file: Some(name.to_string()),
        patch: Some(diff::patch(name, old, new)),
        additions: additions as u64,
        deletions: deletions as u64,
        status: Some(status),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_presence() {
        let added = file_diff("a.txt", None, Some("x\n")).unwrap();
        assert_eq!((added.status, added.additions, added.deletions), (Some(DiffStatus::Added), 1, 0));
        let deleted = file_diff("a.txt", Some("x\ny\n"), None).unwrap();
        assert_eq!((deleted.status, deleted.additions, deleted.deletions), (Some(DiffStatus::Deleted), 0, 2));
        let modified = file_diff("a.txt", Some("x\n"), Some("y\n")).unwrap();
        assert_eq!((modified.status, modified.additions, modified.deletions), (Some(DiffStatus::Modified), 1, 1));
        assert!(file_diff("a.txt", Some("x\n"), Some("x\n")).is_none());
    }

    #[tokio::test]
    async fn the_first_record_of_a_file_is_its_before() {
        let dir = tempfile::tempdir().unwrap();
        let env = crate::env::local::LocalEnv::new(dir.path()).unwrap();
        let path = WorkspacePath::parse(env.root(), &format!("{}/f.txt", env.root())).unwrap();
        let changes = Changes::default();
        changes.record(&path, None);
        changes.record(&path, Some("between\n"));
        std::fs::write(dir.path().join("f.txt"), "now\n").unwrap();
        let diffs = changes.diffs(&env).await;
        assert_eq!(diffs.len(), 1);
        assert_eq!(diffs[0].file.as_deref(), Some("f.txt"));
        assert_eq!(diffs[0].status, Some(DiffStatus::Added));
        assert!(diffs[0].patch.as_deref().unwrap().ends_with("@@ -0,0 +1,1 @@\n+now\n"));
    }
}
