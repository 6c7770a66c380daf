//! Applies a turn's reports to the session, in order: one writer task per
//! turn, so the store and the event stream see the steps as the turn made
//! them. Each step gets its own assistant message; its parts, tokens and cost
//! come from the [`PartMapper`].

use std::sync::Arc;

use serde_json::json;
use tokio::sync::mpsc;

use super::Prompt;
use crate::agent::changes::{Changes, Mark};
use crate::agent::parts::{Out, PartMapper};
use crate::agent::turn::{Report, Sink};
use crate::protocol::message::{AssistantMessage, Message, ModelRef, UserMessage};
use crate::protocol::part::Part;
use crate::protocol::session::SessionStatus;
use crate::session::error::{RunError, RunResult};
use crate::session::events::{self, PartDelta};

/// Queues reports for the writer; never blocks the turn. A step's start
/// carries the changes so far ([`Mark`]), so the step's summary says those
/// even when the writer gets to it after the step's own tools ran.
pub(super) struct ChannelSink {
    pub tx: mpsc::UnboundedSender<(Report, Mark)>,
    pub changes: Arc<Changes>,
}

impl Sink for ChannelSink {
    fn report(&self, report: Report) {
        match &report {
            Report::StepStart { snapshot: Some(hash), .. } | Report::StepFinish { snapshot: Some(hash), .. } => self.changes.note_snapshot(hash),
            _ => {}
        }
        let mark = if matches!(report, Report::StepStart { .. }) { self.changes.mark() } else { Mark::default() };
        let _ = self.tx.send((report, mark));
    }
}

pub(super) struct Writer {
    pub p: Prompt,
    /// The user message the turn answers.
    pub user: UserMessage,
    pub agent: String,
    pub model: ModelRef,
    pub mapper: PartMapper,
    /// The assistant messages are a compaction's summary.
    pub summary: bool,
    pub current: Option<AssistantMessage>,
    pub last: Option<AssistantMessage>,
    /// What the turn's tools changed, summarised as each step starts.
    changes: Arc<Changes>,
}

impl Writer {
    pub fn new(p: Prompt, user: UserMessage, agent: String, model: ModelRef, mapper: PartMapper, changes: Arc<Changes>) -> Self {
        Self { p, user, agent, model, mapper, summary: false, current: None, last: None, changes }
    }

    /// Applies reports until the turn drops its sink; answers with the last
    /// assistant message it wrote.
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<(Report, Mark)>) -> RunResult<Option<AssistantMessage>> {
        while let Some((report, mark)) = rx.recv().await {
            self.apply(report, &mark).await?;
        }
        Ok(self.current.or(self.last))
    }

    async fn apply(&mut self, report: Report, mark: &Mark) -> RunResult<()> {
        let sessions = self.p.sessions().clone();
        let store = &sessions.store;
        let scope = self.p.scope.clone();
        match &report {
            Report::StepStart { message_id, .. } => {
                if let Some(prev) = self.current.take() {
                    self.last = Some(prev);
                }
                let mut a = self.p.assistant(&self.user, &self.agent, &self.model, message_id);
                a.summary = self.summary.then_some(true);
                store.put_message(&scope, Message::Assistant(a.clone())).await?;
                self.current = Some(a);
                let diffs = self.changes.diffs_at(&*self.p.rt.env, mark).await;
                self.p.summarize_changes(&self.user, diffs).await?;
            }
            Report::Retry { attempt, message, next } => {
                self.p.guard.set_status(SessionStatus::Retry { attempt: *attempt, message: message.clone(), action: None, next: *next });
            }
            Report::SnapshotFailed { message } => {
                // The TUI shows toasts; the log has the details.
                let text = format!("Undo is off for this turn: the workspace could not be snapshotted ({message})");
                events::transient(&self.p.rt.bus, &scope, "tui.toast.show", json!({"title": "Snapshot failed", "message": text, "variant": "warning"}));
            }
            Report::ToolDone { result: Ok(out), .. } => {
                for file in &out.edited {
                    events::transient(&self.p.rt.bus, &scope, "file.edited", json!({"file": file}));
                }
            }
            _ => {}
        }
        for out in self.mapper.map(&report) {
            match out {
                Out::Part(v) => {
                    let part: Part = serde_json::from_value(v).map_err(|e| RunError::internal(format!("a part the store cannot hold: {e}")))?;
                    store.put_part(&scope, part).await?;
                }
                Out::Delta { message_id, part_id, field, delta } => {
                    let d = PartDelta { session_id: self.p.session.id.clone(), message_id, part_id, field: field.to_string(), delta };
                    store.publish_delta(&scope, &d);
                }
                Out::StepDone { reason, tokens, cost, .. } => self.step_done(reason, tokens, cost).await?,
            }
        }
        Ok(())
    }

    /// Finishes the step's message, then adds its tokens and cost to the session.
    async fn step_done(&mut self, reason: String, tokens: serde_json::Value, cost: f64) -> RunResult<()> {
        let Some(a) = self.current.as_mut() else { return Ok(()) };
        let store = &self.p.sessions().store;
        a.tokens = serde_json::from_value(tokens).unwrap_or_default();
        a.finish = Some(reason);
        a.cost += cost;
        store.put_message(&self.p.scope, Message::Assistant(a.clone())).await?;
        a.time.completed = Some(crate::now_ms());
        store.put_message(&self.p.scope, Message::Assistant(a.clone())).await?;
        let step = a.tokens;
        let _ = store
            .update_session(&self.p.scope, &self.p.session.id, move |s| {
                s.tokens.add(&step);
                s.cost += cost;
                s.time.updated = crate::now_ms();
            })
            .await;
        self.p.guard.set_status(SessionStatus::Busy);
        Ok(())
    }
}
