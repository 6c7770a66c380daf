//! Git, run through the environment's exec, so that local, Docker and SSH
//! workspaces answer the same way. Environments without exec have no VCS.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::env::{EntryKind, Env, EnvResult, ExecRequest, WorkspacePath};
use crate::protocol::file::{FileChange, FileStatus};

/// Git output larger than this is not a status anyone reads.
const MAX_GIT_OUTPUT: usize = 16 << 20;
const GIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Untracked files larger than this count as zero lines rather than being read.
const MAX_COUNTED_FILE: u64 = 4 << 20;

/// Runs `git ARGS` in `cwd`; `None` when git is missing or fails (not a repository).
pub async fn git(env: &dyn Env, cwd: &WorkspacePath, args: &[&str]) -> Option<String> {
    if !env.capabilities().exec {
        return None;
    }
    let mut command = String::from("git -c core.quotepath=off");
    for arg in args {
        command.push(' ');
        command.push_str(&shlex::try_quote(arg).ok()?);
    }
    let mut req = ExecRequest::shell(command, cwd.clone());
    req.env.insert("GIT_OPTIONAL_LOCKS".into(), "0".into());
    let out = env.exec(req).await.ok()?.collect(MAX_GIT_OUTPUT, Some(GIT_TIMEOUT)).await.ok()?;
    if out.status.is_some_and(|s| s.success()) {
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        None
    }
}

/// What one git command said, whether or not it succeeded.
#[derive(Clone, Debug, Default)]
pub struct GitRun {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl GitRun {
    /// What git said went wrong (stderr, else stdout), or `fallback` when it said nothing.
    pub fn error(&self, fallback: &str) -> String {
        let said = if self.stderr.trim().is_empty() { self.stdout.trim() } else { self.stderr.trim() };
        if said.is_empty() {
            fallback.to_string()
        } else {
            said.to_string()
        }
    }
}

/// Runs `git ARGS` in `cwd` with `stdin`, keeping its output whether it
/// succeeds or not: the operations that change a repository (apply, worktree)
/// report git's own message when they fail. An error only when nothing could
/// be run at all.
pub async fn git_run(env: &dyn Env, cwd: &WorkspacePath, args: &[&str], stdin: Option<Vec<u8>>) -> EnvResult<GitRun> {
    let mut command = String::from("git -c core.quotepath=off");
    for arg in args {
        command.push(' ');
        command.push_str(&shlex::try_quote(arg).map_err(|_| crate::env::EnvError::InvalidInput(format!("git argument {arg:?} cannot be quoted")))?);
    }
    let mut req = ExecRequest::shell(command, cwd.clone());
    req.stdin = stdin.map(Into::into);
    let out = env.exec(req).await?.collect(MAX_GIT_OUTPUT, Some(GIT_TIMEOUT)).await?;
    Ok(GitRun {
        ok: out.status.is_some_and(|s| s.success()),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Applies a unified patch (as `/vcs/diff/raw` writes one) to the working tree
/// at `cwd` with `git apply`: all of it or, when any hunk does not fit, none of
/// it. `Err` carries git's reason.
pub async fn apply(env: &dyn Env, cwd: &WorkspacePath, patch: &str) -> EnvResult<Result<(), String>> {
    let run = git_run(env, cwd, &["apply", "--whitespace=nowarn", "-"], Some(patch.as_bytes().to_vec())).await?;
    Ok(if run.ok { Ok(()) } else { Err(run.error("git apply failed")) })
}

/// OpenCode's project id: the repository's first root commit.
pub async fn project_id(env: &dyn Env, cwd: &WorkspacePath) -> Option<String> {
    let out = git(env, cwd, &["rev-list", "--max-parents=0", "--all"]).await?;
    let mut roots: Vec<&str> = out.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    roots.sort_unstable();
    roots.first().map(|s| s.to_string())
}

/// The absolute path of the repository's top level, as the environment names it.
pub async fn toplevel(env: &dyn Env, cwd: &WorkspacePath) -> Option<String> {
    git(env, cwd, &["rev-parse", "--show-toplevel"]).await.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

pub async fn branch(env: &dyn Env, cwd: &WorkspacePath) -> Option<String> {
    git(env, cwd, &["rev-parse", "--abbrev-ref", "HEAD"]).await.map(|s| s.trim().to_string()).filter(|s| !s.is_empty() && s != "HEAD")
}

/// The default branch: the remote HEAD when there is one, else `main` or `master` if present.
pub async fn default_branch(env: &dyn Env, cwd: &WorkspacePath) -> Option<String> {
    if let Some(head) = git(env, cwd, &["symbolic-ref", "--short", "refs/remotes/origin/HEAD"]).await {
        return head.trim().strip_prefix("origin/").map(str::to_string);
    }
    for name in ["main", "master"] {
        if git(env, cwd, &["rev-parse", "--verify", "--quiet", &format!("refs/heads/{name}")]).await.is_some() {
            return Some(name.to_string());
        }
    }
    None
}

/// Changed, added and deleted files below `cwd` against HEAD, with line counts:
/// what OpenCode's `/file/status` answered before it went to `[]`.
pub async fn status(env: &dyn Env, cwd: &WorkspacePath) -> EnvResult<Vec<FileStatus>> {
    let has_head = git(env, cwd, &["rev-parse", "--verify", "--quiet", "HEAD"]).await.is_some();
    let (numstat, deleted, untracked) = tokio::join!(
        async {
            if has_head {
                git(env, cwd, &["diff", "--numstat", "--relative", "HEAD", "--", "."]).await
            } else {
                git(env, cwd, &["diff", "--numstat", "--relative", "--cached", "--", "."]).await
            }
        },
        async {
            if has_head {
                git(env, cwd, &["diff", "--name-only", "--relative", "--diff-filter=D", "HEAD", "--", "."]).await
            } else {
                None
            }
        },
        git(env, cwd, &["ls-files", "--others", "--exclude-standard", "--", "."]),
    );
    let mut files: BTreeMap<String, FileStatus> = BTreeMap::new();
    let deleted: Vec<&str> = deleted.as_deref().map(|d| d.lines().collect()).unwrap_or_default();
    for line in numstat.as_deref().unwrap_or("").lines() {
        let mut parts = line.splitn(3, '\t');
        let (Some(a), Some(r), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let status = if deleted.contains(&path) { FileChange::Deleted } else { FileChange::Modified };
        let added = a.parse().unwrap_or(0);
        let removed = r.parse().unwrap_or(0);
        files.insert(path.to_string(), FileStatus { path: path.to_string(), added, removed, status });
    }
    for path in untracked.as_deref().unwrap_or("").lines().filter(|l| !l.is_empty()) {
        let added = count_lines(env, cwd, path).await;
        files.insert(path.to_string(), FileStatus { path: path.to_string(), added, removed: 0, status: FileChange::Added });
    }
    Ok(files.into_values().collect())
}

/// One changed file of a diff, with its patch (git's section for the file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDiff {
    pub path: String,
    pub patch: String,
    pub additions: u64,
    pub deletions: u64,
    pub status: FileChange,
}

/// What a diff compares the working tree with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffBase {
    /// The last commit: the uncommitted changes.
    Head,
    /// Where the branch left the default branch: everything the branch changed, committed or not.
    Branch,
}

/// The commit `base` names, or `None` without one (no commit yet).
async fn base_commit(env: &dyn Env, cwd: &WorkspacePath, base: DiffBase) -> Option<String> {
    let head = git(env, cwd, &["rev-parse", "--verify", "--quiet", "HEAD"]).await?.trim().to_string();
    if base == DiffBase::Branch {
        if let Some(default) = default_branch(env, cwd).await {
            if let Some(fork) = git(env, cwd, &["merge-base", "HEAD", &default]).await {
                return Some(fork.trim().to_string());
            }
        }
    }
    Some(head)
}

/// A unified patch adding the text file `path` (an untracked file), as git writes one.
async fn untracked_patch(env: &dyn Env, cwd: &WorkspacePath, path: &str) -> (String, u64) {
    let mut patch = format!("diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n");
    let text = match cwd.join_checked(path) {
        Ok(p) => match env.stat(&p).await {
            Ok(m) if m.kind == EntryKind::File && m.size <= MAX_COUNTED_FILE => env.read(&p, MAX_COUNTED_FILE).await.ok(),
            _ => None,
        },
        Err(_) => None,
    };
    let Some(bytes) = text.filter(|b| !b.contains(&0)) else {
        patch.push_str("Binary files differ\n");
        return (patch, 0);
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return (patch, 0);
    }
    patch.push_str(&format!("@@ -0,0 +1,{} @@\n", lines.len()));
    for line in &lines {
        patch.push('+');
        patch.push_str(line);
        patch.push('\n');
    }
    if !text.ends_with('\n') {
        patch.push_str("\\ No newline at end of file\n");
    }
    (patch, lines.len() as u64)
}

/// Splits `git diff` output into each file's section, keyed by its path
/// (the new one; the old one for a deleted file).
fn sections(diff: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut starts: Vec<usize> = diff.match_indices("diff --git ").map(|(i, _)| i).filter(|&i| i == 0 || diff.as_bytes()[i - 1] == b'\n').collect();
    starts.push(diff.len());
    for w in starts.windows(2) {
        let section = &diff[w[0]..w[1]];
        let path = section
            .lines()
            .find_map(|l| l.strip_prefix("+++ b/"))
            .or_else(|| section.lines().find_map(|l| l.strip_prefix("--- a/")))
            .or_else(|| section.lines().next().and_then(|l| l.rsplit_once(" b/").map(|(_, p)| p)));
        if let Some(path) = path {
            out.insert(path.to_string(), section.to_string());
        }
    }
    out
}

/// The changes below `cwd` against `base`, file by file with patches of
/// `context` lines: tracked files by `git diff`, untracked ones as added.
pub async fn diff(env: &dyn Env, cwd: &WorkspacePath, base: DiffBase, context: u32) -> Vec<FileDiff> {
    let unified = format!("-U{context}");
    let Some(commit) = base_commit(env, cwd, base).await else { return Vec::new() };
    let numstat_args = ["diff", "--numstat", "--relative", &commit, "--", "."];
    let names_args = ["diff", "--name-status", "--relative", &commit, "--", "."];
    let patch_args = ["diff", "--relative", "--no-color", &unified, &commit, "--", "."];
    let (numstat, names, patch, untracked) = tokio::join!(
        git(env, cwd, &numstat_args),
        git(env, cwd, &names_args),
        git(env, cwd, &patch_args),
        git(env, cwd, &["ls-files", "--others", "--exclude-standard", "--", "."]),
    );
    let statuses: BTreeMap<&str, FileChange> = names
        .as_deref()
        .unwrap_or("")
        .lines()
        .filter_map(|l| {
            let (code, path) = l.split_once('\t')?;
            let status = match code.chars().next()? {
                'A' => FileChange::Added,
                'D' => FileChange::Deleted,
                _ => FileChange::Modified,
            };
            Some((path, status))
        })
        .collect();
    let mut patches = sections(patch.as_deref().unwrap_or(""));
    let mut files: BTreeMap<String, FileDiff> = BTreeMap::new();
    for line in numstat.as_deref().unwrap_or("").lines() {
        let mut parts = line.splitn(3, '\t');
        let (Some(a), Some(r), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let status = statuses.get(path).copied().unwrap_or(FileChange::Modified);
        let patch = patches.remove(path).unwrap_or_default();
        files
            .insert(path.to_string(), FileDiff { path: path.to_string(), patch, additions: a.parse().unwrap_or(0), deletions: r.parse().unwrap_or(0), status });
    }
    for path in untracked.as_deref().unwrap_or("").lines().filter(|l| !l.is_empty()) {
        let (patch, additions) = untracked_patch(env, cwd, path).await;
        files.insert(path.to_string(), FileDiff { path: path.to_string(), patch, additions, deletions: 0, status: FileChange::Added });
    }
    files.into_values().collect()
}

async fn count_lines(env: &dyn Env, cwd: &WorkspacePath, path: &str) -> u64 {
    let Ok(p) = cwd.join_checked(path) else { return 0 };
    match env.stat(&p).await {
        Ok(m) if m.kind == EntryKind::File && m.size <= MAX_COUNTED_FILE => {}
        _ => return 0,
    }
    match env.read(&p, MAX_COUNTED_FILE).await {
        Ok(bytes) if !bytes.contains(&0) => {
            let n = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
            n + u64::from(!bytes.is_empty() && !bytes.ends_with(b"\n"))
        }
        _ => 0,
    }
}
