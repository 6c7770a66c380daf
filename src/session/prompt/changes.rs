//! The turn's change summary, as OpenCode publishes it while a turn runs: at
//! each step's start and at the end, the session's summary is updated, then
//! `session.diff` and the user message with `summary.diffs` (the files the
//! turn changed so far) go out.

use serde_json::json;

use super::Prompt;
use crate::protocol::message::{Message, UserMessage, UserSummary};
use crate::protocol::session::{SessionSummary, SnapshotFileDiff};
use crate::session::error::RunResult;
use crate::session::events;

impl Prompt {
    /// Records what the turn answering `user` changed (`diffs`, from its
    /// [`Changes`](crate::agent::changes::Changes)) on the session (`summary`,
    /// `session.diff`) and on `user` (`summary.diffs`).
    pub(super) async fn summarize_changes(&self, user: &UserMessage, diffs: Vec<SnapshotFileDiff>) -> RunResult<()> {
        let store = &self.sessions().store;
        let turn = diffs.clone();
        let session = store.update_session(&self.scope, &self.session.id, move |s| s.summary = Some(merge(s.summary.take(), turn))).await?;
        let all = session.summary.and_then(|s| s.diffs).unwrap_or_default();
        events::transient(&self.rt.bus, &self.scope, events::SESSION_DIFF, json!({"sessionID": self.session.id, "diff": all}));
        let mut info = match store.message(&self.session.id, &user.id).await?.info {
            Message::User(u) => u,
            Message::Assistant(_) => user.clone(),
        };
        info.summary = Some(UserSummary { diffs, ..info.summary.unwrap_or_default() });
        store.put_message(&self.scope, Message::User(info)).await?;
        Ok(())
    }
}

/// The session's summary with a turn's diffs: each file the turn changed
/// takes the turn's diff, the others keep theirs; the counts add up the files.
fn merge(summary: Option<SessionSummary>, turn: Vec<SnapshotFileDiff>) -> SessionSummary {
    let mut diffs: Vec<SnapshotFileDiff> = summary.and_then(|s| s.diffs).unwrap_or_default();
    diffs.retain(|d| !turn.iter().any(|t| t.file == d.file));
    diffs.extend(turn);
    diffs.sort_by(|a, b| a.file.cmp(&b.file));
    SessionSummary {
        additions: diffs.iter().map(|d| d.additions).sum(),
        deletions: diffs.iter().map(|d| d.deletions).sum(),
        files: diffs.len() as u64,
        diffs: Some(diffs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(file: &str, additions: u64) -> SnapshotFileDiff {
        SnapshotFileDiff { file: Some(file.into()), additions, ..Default::default() }
    }

    #[test]
    fn a_turn_replaces_the_files_it_changed() {
        let first = merge(None, vec![d("a", 1), d("b", 2)]);
        assert_eq!((first.files, first.additions), (2, 3));
        let second = merge(Some(first), vec![d("b", 5), d("c", 1)]);
        assert_eq!((second.files, second.additions, second.deletions), (3, 7, 0));
        assert_eq!(second.diffs.unwrap().iter().map(|d| d.file.clone().unwrap()).collect::<Vec<_>>(), ["a", "b", "c"]);
    }
}
