//! Snapshots with the environment's own `git`, for a container or host where
//! the helper cannot run (scripts mode): the same git trees as the helper's
//! store, made by `git add -A` and `git write-tree` into a separate git
//! directory in the user's cache folder (`~/.cache/burrow/snapshot-git/<digest
//! of the root>`), never the project's `.git`, as OpenCode does it.
//!
//! Differences from the store, said in the capabilities (`undo.method: git`):
//! git's ignore rules (`.gitignore`, not `.ignore`), no size limit, and a
//! restore that git writes file by file (not journalled).
//!
//! Pruning keeps the store's policy (`crate::snapshot::prune`): an object goes
//! only when no referenced snapshot reaches it **and** it is older than the
//! age. Snapshots here are bare trees with no refs, so `git gc` alone would
//! drop the ones sessions still need (as OpenCode's `--prune=7.days` does);
//! [`prune`] first points one ref under `refs/burrow/keep/` at each
//! referenced tree held here, then runs `git prune --expire`, which keeps
//! what refs and the index reach, every loose object younger than the age
//! and everything such a young object reaches (git's own grace for writers
//! it cannot see). Why a snapshot being taken meanwhile loses nothing:
//! - within one server, tracks and prunes of an environment take turns
//!   (`Near::git_turn`), so a prune never runs between `git add` finding an
//!   old blob stored and `write-tree` naming it;
//! - [`track`] freshens the root tree it answers (git does not rewrite a tree
//!   the index's cache already names), so a snapshot just taken is young and
//!   keeps all it reaches, however old, for the whole age (at least
//!   [`crate::snapshot::MIN_PRUNE_AGE`]) it has to be recorded in a session;
//! - another process writing there (a second server) is covered by git's
//!   grace: what it writes or freshens is young.

use std::time::Duration;

use bytes::Bytes;
use sha2::Digest;

use crate::env::{EnvError, EnvResult, SnapshotChange, SnapshotPruned};
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
    git_with(host, root, script, None).await
}

/// [`git`] with `stdin` for the script.
async fn git_with(host: &dyn HelperHost, root: &str, script: &str, stdin: Option<Bytes>) -> EnvResult<Vec<u8>> {
    let out = finish(run(host, format!("{} {script}", prelude(root)), stdin).await?)
        .map_err(|e| EnvError::Io(format!("git snapshot in the environment failed: {e}")))?;
    Ok(out.stdout)
}

/// `git add -A` and `write-tree`, then the root tree's loose object is
/// freshened (its modification time set to now) so that a prune keeps the
/// snapshot and all it reaches for the whole age; see the module's notes.
pub async fn track(host: &dyn HelperHost, root: &str) -> EnvResult<String> {
    let script = "$G add -A . >/dev/null && T=$($G write-tree) && R=${T#??} && O=\"$D/objects/${T%\"$R\"}/$R\" && \
                  if [ -f \"$O\" ]; then touch -c \"$O\"; fi && echo \"$T\"";
    let out = git(host, root, script).await?;
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

/// Removes the loose objects that no snapshot in `keep` reaches and that are
/// older than `age` (raised to [`crate::snapshot::MIN_PRUNE_AGE`]): a keep-ref per
/// referenced tree held here (the refs of snapshots no longer referenced are
/// removed first), then `git prune --expire`. The ids go on standard input,
/// so a long list never meets a command line's limit. Counts are git's
/// loose objects before and after (`count-objects -v`, sizes in KiB).
pub async fn prune(host: &dyn HelperHost, root: &str, keep: &[String], age: Duration) -> EnvResult<SnapshotPruned> {
    let secs = age.max(crate::snapshot::MIN_PRUNE_AGE).as_secs();
    let ids: String = keep.iter().filter(|k| crate::snapshot::object_key(k).is_ok()).map(|k| format!("{}\n", k.to_ascii_lowercase())).collect();
    let script = format!(
        "B=$($G count-objects -v); \
         $G for-each-ref --format='delete %(refname)' refs/burrow/keep/ | $G update-ref --stdin; \
         $G cat-file --batch-check='%(objectname) %(objecttype)' | \
           while read -r id kind; do if [ \"$kind\" = tree ]; then echo \"update refs/burrow/keep/$id $id\"; fi; done | $G update-ref --stdin; \
         $G prune --expire={secs}.seconds.ago; \
         A=$($G count-objects -v); printf '%s\\n--\\n%s\\n' \"$B\" \"$A\""
    );
    let out = git_with(host, root, &script, Some(Bytes::from(ids))).await?;
    let out = String::from_utf8_lossy(&out);
    let (before, after) = out.split_once("--\n").ok_or_else(|| EnvError::Io(format!("git count-objects answered {out:?}")))?;
    let field = |text: &str, name: &str| -> EnvResult<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": ")?.trim().parse().ok())
            .ok_or_else(|| EnvError::Io(format!("git count-objects answered no {name:?}: {text:?}")))
    };
    let (count, size) = (field(before, "count")?, field(before, "size")?);
    let (kept, kept_size) = (field(after, "count")?, field(after, "size")?);
    Ok(SnapshotPruned { kept, removed: count.saturating_sub(kept), bytes: size.saturating_sub(kept_size) * 1024 })
}
