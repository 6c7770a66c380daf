//! Carrying a session's uncommitted changes from one worktree of a project to
//! another (`POST /experimental/control-plane/move-session` with
//! `moveChanges`), as OpenCode does: the source folder's changes against HEAD,
//! untracked files included, become a binary patch; the destination applies it;
//! only then are they taken out of the source, the index left as it was.
//! Git runs in the environment, so every backend with processes does the same.

use std::time::Duration;

use bytes::Bytes;

use crate::env::{Env, ExecRequest, WorkspacePath};

/// A patch larger than this is not a working tree's changes anyone moves by hand.
const MAX_PATCH: usize = 64 << 20;
const GIT_TIMEOUT: Duration = Duration::from_secs(60);

/// The changes below `dir` against HEAD, untracked files included, as a
/// binary patch with paths from the repository's top. Empty when clean.
/// A copy of the index takes the untracked files, so the real index is untouched.
pub async fn capture(env: &dyn Env, dir: &WorkspacePath) -> Result<Vec<u8>, String> {
    let script = r#"set -e
git rev-parse --verify --quiet HEAD >/dev/null || { echo "the source has no commit to compare with" >&2; exit 1; }
index=$(mktemp)
trap 'rm -f "$index"' EXIT
real=$(git rev-parse --git-path index)
if [ -f "$real" ]; then cp "$real" "$index"; else rm -f "$index"; fi
GIT_INDEX_FILE="$index" git add -A -- .
GIT_INDEX_FILE="$index" git diff --cached --binary --no-color HEAD -- ."#;
    run(env, dir, script, None).await
}

/// Applies `patch` at the top of the repository that holds `dir`.
pub async fn apply(env: &dyn Env, dir: &WorkspacePath, patch: &[u8]) -> Result<(), String> {
    run(env, dir, r#"cd "$(git rev-parse --show-toplevel)" && git apply --binary --whitespace=nowarn -"#, Some(patch)).await.map(drop)
}

/// Takes `patch` (what [`capture`] gave for `dir`) back out of the working
/// tree; the index keeps what was staged.
pub async fn discard(env: &dyn Env, dir: &WorkspacePath, patch: &[u8]) -> Result<(), String> {
    run(env, dir, r#"cd "$(git rev-parse --show-toplevel)" && git apply --binary --reverse --whitespace=nowarn -"#, Some(patch)).await.map(drop)
}

/// Whether `dir` is inside a git working tree.
pub async fn is_repository(env: &dyn Env, dir: &WorkspacePath) -> bool {
    run(env, dir, "git rev-parse --is-inside-work-tree", None).await.is_ok_and(|out| out.starts_with(b"true"))
}

async fn run(env: &dyn Env, dir: &WorkspacePath, script: &str, stdin: Option<&[u8]>) -> Result<Vec<u8>, String> {
    if !env.capabilities().exec {
        return Err("this environment runs no processes, so it has no git".to_string());
    }
    let mut req = ExecRequest::shell(script, dir.clone());
    req.env.insert("GIT_OPTIONAL_LOCKS".into(), "0".into());
    req.stdin = stdin.map(Bytes::copy_from_slice);
    let out =
        env.exec(req).await.map_err(|e| format!("cannot run git: {e}"))?.collect(MAX_PATCH, Some(GIT_TIMEOUT)).await.map_err(|e| format!("git failed: {e}"))?;
    if out.timed_out {
        return Err(format!("git did not finish within {}s", GIT_TIMEOUT.as_secs()));
    }
    if out.truncated {
        return Err(format!("the changes are larger than {} MiB", MAX_PATCH >> 20));
    }
    if !out.status.is_some_and(|s| s.success()) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("git failed: {}", stderr.trim()));
    }
    Ok(out.stdout)
}
