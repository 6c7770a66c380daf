//! Undo and redo of a session's file changes (`POST /session/{id}/revert`,
//! `/unrevert`), as OpenCode's `SessionRevert` does them, on the
//! environment's snapshots (`Env::snapshot_*`).
//!
//! - **revert** finds the point (a message, or a part inside one), takes a
//!   snapshot of the workspace as it is now (kept in `session.revert.snapshot`
//!   for redo; a second revert keeps the first one's), then puts back every
//!   file named by a `patch` part after the point, each to the snapshot taken
//!   before the first step that changed it (a file the step created is
//!   removed). The messages stay stored: `session.revert` tells clients to
//!   hide those after the point, which is what the TUI's banner shows.
//! - **unrevert** restores the snapshot kept by revert and clears the state.
//! - **cleanup**: the next prompt drops the hidden messages (or the parts
//!   from the point on) for good, then clears the state; v2's `revert/commit`
//!   does it at once, and `revert/stage` with `files: false` only moves the
//!   point (`stage_boundary`).
//!
//! Both refuse a busy session, as OpenCode's `assertNotBusy` does (409).

use std::collections::{BTreeMap, HashSet};

use serde_json::json;

use super::error::{RunError, RunResult, StoreError};
use super::events::{self, Scope};
use super::runtime::Runtime;
use crate::agent::changes::Changes;
use crate::env::Env;
use crate::protocol::message::{Message, MessageWithParts};
use crate::protocol::part::PartBody;
use crate::protocol::session::{Revert, Session, SessionSummary, SnapshotFileDiff};

/// Reverts session `session_id` to `message_id` (or the part `part_id` in it).
pub async fn revert(rt: &Runtime, scope: &Scope, session_id: &str, message_id: &str, part_id: Option<&str>) -> RunResult<Session> {
    let sessions = &rt.sessions;
    not_busy(rt, session_id)?;
    let session = sessions.store.session(session_id).await?;
    let all = sessions.store.messages(session_id, None, None).await?.messages;
    let (point, patches) = find(&all, message_id, part_id).ok_or_else(|| match part_id {
        Some(p) => StoreError::NotFound(format!("Part not found: {p} in message {message_id}")),
        None => StoreError::message_not_found(message_id),
    })?;
    let env = &*rt.env;
    if let Err(why) = env.snapshots() {
        return Err(RunError::Env(crate::env::EnvError::Unsupported(format!("undo file changes: {why}"))));
    }
    // Redo goes back to the workspace as it was before the first revert.
    let snapshot = match session.revert.as_ref().and_then(|r| r.snapshot.clone()) {
        Some(s) => s,
        None => env.snapshot_track().await?,
    };
    restore_patches(env, &patches).await?;
    let now = env.snapshot_track().await?;
    let diff: String = Changes::between(env, &snapshot, &now).await?.into_iter().filter_map(|d| d.patch).collect();
    let range: Vec<&MessageWithParts> = all.iter().filter(|m| m.info.id() >= point.message_id.as_str()).collect();
    let diffs = range_diffs(env, &range).await;
    events::transient(&rt.bus, scope, events::SESSION_DIFF, json!({"sessionID": session_id, "diff": diffs}));
    let revert = Revert { snapshot: Some(snapshot), diff: Some(diff), ..point };
    let summary = SessionSummary {
        additions: diffs.iter().map(|d| d.additions).sum(),
        deletions: diffs.iter().map(|d| d.deletions).sum(),
        files: diffs.len() as u64,
        diffs: Some(diffs),
    };
    let updated = sessions
        .store
        .update_session(scope, session_id, move |s| {
            s.revert = Some(revert);
            s.summary = Some(summary);
            s.time.updated = crate::now_ms();
        })
        .await?;
    Ok(updated)
}

/// Moves the session's revert point to `message_id` without touching any
/// file (v2 `revert/stage` with `files: false`): the messages after it are
/// hidden, and a snapshot an earlier revert kept stays for redo.
pub async fn stage_boundary(rt: &Runtime, scope: &Scope, session_id: &str, message_id: &str) -> RunResult<Session> {
    not_busy(rt, session_id)?;
    let session = rt.sessions.store.session(session_id).await?;
    let all = rt.sessions.store.messages(session_id, None, None).await?.messages;
    let (point, _) = find(&all, message_id, None).ok_or_else(|| StoreError::message_not_found(message_id))?;
    let kept = session.revert;
    let revert = Revert { snapshot: kept.as_ref().and_then(|r| r.snapshot.clone()), diff: kept.and_then(|r| r.diff), ..point };
    Ok(rt
        .sessions
        .store
        .update_session(scope, session_id, move |s| {
            s.revert = Some(revert);
            s.time.updated = crate::now_ms();
        })
        .await?)
}

/// Makes a revert final (v2 `revert/commit`): the hidden messages are
/// dropped now rather than at the next prompt. The point's message id, or
/// `None` when there was no revert.
pub async fn commit(rt: &Runtime, scope: &Scope, session_id: &str) -> RunResult<Option<String>> {
    not_busy(rt, session_id)?;
    let point = rt.sessions.store.session(session_id).await?.revert.map(|r| r.message_id);
    cleanup(rt, scope, session_id).await?;
    Ok(point)
}

/// Undoes a revert: the workspace goes back to the snapshot revert took.
pub async fn unrevert(rt: &Runtime, scope: &Scope, session_id: &str) -> RunResult<Session> {
    not_busy(rt, session_id)?;
    let session = rt.sessions.store.session(session_id).await?;
    let Some(revert) = session.revert else { return Ok(session) };
    if let Some(snapshot) = &revert.snapshot {
        rt.env.snapshot_restore(snapshot, None).await?;
    }
    Ok(rt.sessions.store.update_session(scope, session_id, |s| s.revert = None).await?)
}

/// Drops the messages a revert hid, before a new prompt: from then on they
/// are gone, as in OpenCode. Nothing to do without a revert.
pub async fn cleanup(rt: &Runtime, scope: &Scope, session_id: &str) -> RunResult<()> {
    let store = &rt.sessions.store;
    let session = store.session(session_id).await?;
    let Some(revert) = session.revert else { return Ok(()) };
    for m in store.messages(session_id, None, None).await?.messages {
        let id = m.info.id();
        if id < revert.message_id.as_str() {
            continue;
        }
        match (&revert.part_id, id == revert.message_id) {
            (Some(part_id), true) => {
                if let Some(start) = m.parts.iter().position(|p| &p.id == part_id) {
                    for part in &m.parts[start..] {
                        store.remove_part(scope, session_id, id, &part.id).await?;
                    }
                }
            }
            _ => store.remove_message(scope, session_id, id).await?,
        }
    }
    store.update_session(scope, session_id, |s| s.revert = None).await?;
    Ok(())
}

fn not_busy(rt: &Runtime, session_id: &str) -> RunResult<()> {
    if rt.sessions.runs.is_busy(session_id) {
        return Err(RunError::busy(session_id));
    }
    Ok(())
}

/// A patch part: the snapshot before its step, and the files the step changed.
type Patch = (String, Vec<String>);

/// The revert point and the patches after it, as OpenCode finds them: the
/// point is the message (or the part) asked for; reverting a whole assistant
/// message, or a part with nothing worth keeping before it in its message,
/// moves the point to the user message before it. `None`: no such message or part.
fn find(all: &[MessageWithParts], message_id: &str, part_id: Option<&str>) -> Option<(Revert, Vec<Patch>)> {
    let mut last_user: Option<&str> = None;
    let mut point: Option<Revert> = None;
    let mut patches = Vec::new();
    for m in all {
        if matches!(m.info, Message::User(_)) {
            last_user = Some(m.info.id());
        }
        let mut before = Vec::new();
        for part in &m.parts {
            if point.is_some() {
                if let PartBody::Patch(p) = &part.body {
                    patches.push((p.hash.clone(), p.files.clone()));
                }
                continue;
            }
            let hit = match part_id {
                Some(p) => part.id == p,
                None => m.info.id() == message_id,
            };
            if hit {
                let keep = part_id.filter(|_| before.iter().any(|b: &&PartBody| matches!(b, PartBody::Text(_) | PartBody::Tool(_))));
                point = Some(Revert {
                    message_id: match (keep, last_user) {
                        (None, Some(user)) => user.to_string(),
                        _ => m.info.id().to_string(),
                    },
                    part_id: keep.map(str::to_string),
                    snapshot: None,
                    diff: None,
                });
            }
            before.push(&part.body);
        }
    }
    point.map(|p| (p, patches))
}

/// Puts each file named by `patches` back as the earliest patch's snapshot
/// holds it (that is the file before the first change after the point).
/// Patches written without snapshots (`hash` empty) have nothing to go back to.
async fn restore_patches(env: &dyn Env, patches: &[Patch]) -> RunResult<()> {
    let root = format!("{}/", env.root().trim_end_matches('/'));
    let mut seen = HashSet::new();
    let mut by_hash: BTreeMap<usize, (String, Vec<String>)> = BTreeMap::new();
    for (i, (hash, files)) in patches.iter().enumerate() {
        if hash.is_empty() {
            continue;
        }
        for file in files {
            let rel = file.strip_prefix(&root).unwrap_or(file).to_string();
            if seen.insert(rel.clone()) {
                by_hash.entry(i).or_insert_with(|| (hash.clone(), Vec::new())).1.push(rel);
            }
        }
    }
    for (hash, files) in by_hash.into_values() {
        env.snapshot_restore(&hash, Some(files)).await?;
    }
    Ok(())
}

/// What the messages of `range` changed: from the first step's snapshot to
/// the last step's (OpenCode's `SessionSummary.computeDiff`).
async fn range_diffs(env: &dyn Env, range: &[&MessageWithParts]) -> Vec<SnapshotFileDiff> {
    let mut from: Option<&str> = None;
    let mut to: Option<&str> = None;
    for m in range {
        for part in &m.parts {
            match &part.body {
                PartBody::StepStart(s) if from.is_none() => from = s.snapshot.as_deref(),
                PartBody::StepFinish(s) if s.snapshot.is_some() => to = s.snapshot.as_deref(),
                _ => {}
            }
        }
    }
    let (Some(from), Some(to)) = (from, to) else { return Vec::new() };
    Changes::between(env, from, to).await.unwrap_or_else(|e| {
        tracing::warn!("cannot diff the snapshots {from} and {to}: {e}");
        Vec::new()
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    use crate::session::prompt::history_tests::with_parts as message;

    fn user(id: &str) -> MessageWithParts {
        let info =
            json!({"role": "user", "id": id, "sessionID": "ses_1", "time": {"created": 1}, "agent": "build", "model": {"providerID": "p", "modelID": "m"}});
        message(info, id, json!([{"type": "text", "text": "do it"}]))
    }

    fn assistant(id: &str, parent: &str, parts: Value) -> MessageWithParts {
        let info = json!({
            "role": "assistant", "id": id, "sessionID": "ses_1", "time": {"created": 2, "completed": 3}, "parentID": parent,
            "modelID": "m", "providerID": "p", "mode": "build", "agent": "build", "path": {"cwd": "/w", "root": "/w"},
            "cost": 0, "tokens": {"input": 0, "output": 0, "reasoning": 0, "cache": {"read": 0, "write": 0}}, "finish": "stop",
        });
        message(info, id, parts)
    }

    fn step(patch: &str) -> Value {
        json!([
            {"type": "step-start", "snapshot": format!("{patch}0")},
            {"type": "text", "text": "working"},
            {"type": "patch", "hash": format!("{patch}0"), "files": [format!("/w/{patch}.txt")]},
        ])
    }

    fn conversation() -> Vec<MessageWithParts> {
        vec![user("msg_1"), assistant("msg_2", "msg_1", step("a")), user("msg_3"), assistant("msg_4", "msg_3", step("b"))]
    }

    /// Reverting an assistant message goes back to the user message before
    /// it, and takes the patches from there on.
    #[test]
    fn a_whole_assistant_message_reverts_to_its_user_message() {
        let (point, patches) = find(&conversation(), "msg_4", None).unwrap();
        assert_eq!((point.message_id.as_str(), point.part_id), ("msg_3", None));
        assert_eq!(patches, [("b0".to_string(), vec!["/w/b.txt".to_string()])]);
        let (point, patches) = find(&conversation(), "msg_1", None).unwrap();
        assert_eq!(point.message_id, "msg_1");
        assert_eq!(patches.len(), 2);
    }

    /// A part with text or a tool before it in its message is kept as the
    /// point; the first part of a message is the same as the whole message.
    #[test]
    fn a_part_is_the_point_when_something_worth_keeping_comes_before_it() {
        let (point, patches) = find(&conversation(), "msg_4", Some("prt_msg_4_2")).unwrap();
        assert_eq!((point.message_id.as_str(), point.part_id.as_deref()), ("msg_4", Some("prt_msg_4_2")));
        assert!(patches.is_empty(), "the point's own patch stays: {patches:?}");
        let (point, _) = find(&conversation(), "msg_4", Some("prt_msg_4_0")).unwrap();
        assert_eq!((point.message_id.as_str(), point.part_id), ("msg_3", None));
    }

    #[test]
    fn an_unknown_message_or_part_is_none() {
        assert!(find(&conversation(), "msg_9", None).is_none());
        assert!(find(&conversation(), "msg_4", Some("prt_nope")).is_none());
    }
}
