//! Snapshots with the environment's own `git`, for a container or host where
//! the helper cannot run (scripts mode): the same git trees as the helper's
//! store, made by `git add -A` and `git write-tree` into a separate git
//! directory in the user's cache folder (`~/.cache/burrow/snapshot-git/<digest
//! of the root>`), never the project's `.git`, as OpenCode does it.
//!
//! Differences from the store, said in the capabilities (`undo.method: git`):
//! git's ignore rules (`.gitignore`, not `.ignore`), no size limit, and a
//! restore that git writes file by file (not journalled).

use bytes::Bytes;
use sha2::Digest;

use crate::env::{EnvError, EnvResult, SnapshotChange};
use crate::helper::client::{finish, quote, run, HelperHost};

/// git's id of "no object" in `diff-tree` output.
const ABSENT: &str = "0000000000000000000000000000000000000000";

/// The shell prelude: the snapshot git directory and the work tree of `root`, created on first use.
fn prelude(root: &str) -> String {
    let digest = hex::encode(sha2::Sha256::digest(root.as_bytes()));
    let dir = format!("${{XDG_CACHE_HOME:-$HOME/.cache}}/burrow/snapshot-git/{}", &digest[..16]);
    format!(
        "set -e; D=\"{dir}\"; \
         [ -f \"$D/HEAD\" ] || {{ mkdir -p \"$D\" && git --git-dir=\"$D\" init -q && git --git-dir=\"$D\" config core.bare false; }}; \
         export GIT_DIR=\"$D\" GIT_WORK_TREE={root}; cd {root}; \
         G='git -c core.autocrlf=false -c core.quotepath=false -c core.fsmonitor=false';",
        root = quote(root)
    )
}

/// Whether `git` runs in the environment.
pub async fn available(host: &dyn HelperHost) -> bool {
    run(host, "command -v git >/dev/null 2>&1 && git --version".into(), None).await.is_ok_and(|o| o.status.is_some_and(|s| s.success()))
}

async fn git(host: &dyn HelperHost, root: &str, script: &str) -> EnvResult<Vec<u8>> {
    let out = finish(run(host, format!("{} {script}", prelude(root)), None).await?)
        .map_err(|e| EnvError::Io(format!("git snapshot in the environment failed: {e}")))?;
    Ok(out.stdout)
}

pub async fn track(host: &dyn HelperHost, root: &str) -> EnvResult<String> {
    let out = git(host, root, "$G add -A . >/dev/null && $G write-tree").await?;
    let hash = String::from_utf8_lossy(&out).trim().to_string();
    if hash.len() != 40 {
        return Err(EnvError::Io(format!("git write-tree answered {hash:?}")));
    }
    Ok(hash)
}

pub async fn changes(host: &dyn HelperHost, root: &str, from: &str, to: &str) -> EnvResult<Vec<SnapshotChange>> {
    crate::snapshot::object_key(from)?;
    crate::snapshot::object_key(to)?;
    let out = git(host, root, &format!("$G diff-tree -r -z --no-renames {from} {to}")).await?;
    // `:<mode> <mode> <id> <id> <status>\0<path>\0`, repeated.
    let mut fields = out.split(|&b| b == 0).filter(|f| !f.is_empty());
    let mut changes = Vec::new();
    while let (Some(meta), Some(path)) = (fields.next(), fields.next()) {
        let meta = String::from_utf8_lossy(meta);
        let parts: Vec<&str> = meta.trim_start_matches(':').split(' ').collect();
        let [_, _, before, after, _] = parts[..] else { return Err(EnvError::Io(format!("git diff-tree answered {meta:?}"))) };
        let side = |id: &str| (id != ABSENT).then(|| id.to_string());
        changes.push(SnapshotChange { path: String::from_utf8_lossy(path).into_owned(), before: side(before), after: side(after) });
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(changes)
}

pub async fn blob(host: &dyn HelperHost, root: &str, id: &str) -> EnvResult<Bytes> {
    crate::snapshot::object_key(id)?;
    git(host, root, &format!("$G cat-file blob {id}")).await.map(Bytes::from)
}

/// Each file back as the snapshot holds it (`git checkout`), or removed when
/// it does not hold it; all of the snapshot's files when `files` is `None`.
pub async fn restore(host: &dyn HelperHost, root: &str, hash: &str, files: Option<Vec<String>>) -> EnvResult<()> {
    crate::snapshot::object_key(hash)?;
    let script = match files {
        None => format!("$G read-tree {hash} && $G checkout-index -a -f"),
        Some(files) => {
            let mut s = String::new();
            for f in files {
                let q = quote(&f);
                let spec = quote(&format!("{hash}:{f}"));
                s.push_str(&format!("if $G cat-file -e {spec} 2>/dev/null; then $G checkout {hash} -- {q}; else rm -f -- {q}; fi; "));
            }
            s.push_str("true");
            s
        }
    };
    git(host, root, &script).await.map(drop)
}
