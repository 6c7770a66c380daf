//! Turn reports as OpenCode parts: the JSON of each `message.part.updated`
//! and `message.part.delta`, in the shapes of the reference captures
//! (`sse_llm_turn.txt`, `sse_llm_write.txt`). The session layer deserializes
//! the parts into its own types, stores them and publishes them; keeping the
//! mapping here keeps the loop's shapes in one place, testable without a store.

use serde_json::{json, Value};

use super::provider::{Pricing, Usage};
use super::turn::{Report, Streamed};
use crate::id::{self, Prefix};

/// What one report becomes.
#[derive(Clone, Debug, PartialEq)]
pub enum Out {
    /// A whole part (create or replace), for `message.part.updated`.
    Part(Value),
    /// A piece of a part's field, for `message.part.delta`.
    Delta { message_id: String, part_id: String, field: &'static str, delta: String },
    /// A step finished: the assistant message's tokens, finish reason and cost (USD).
    StepDone { message_id: String, reason: String, tokens: Value, cost: f64 },
}

/// OpenCode's token object, with the total it adds on finished steps.
pub fn tokens(u: &Usage) -> Value {
    json!({
        "total": u.input + u.output + u.reasoning + u.cache_read + u.cache_write,
        "input": u.input,
        "output": u.output,
        "reasoning": u.reasoning,
        "cache": {"write": u.cache_write, "read": u.cache_read},
    })
}

/// Maps the reports of one turn; it tracks which message each step writes to
/// and which files the step changed (for its `patch` part).
pub struct PartMapper {
    session_id: String,
    message_id: String,
    edited: Vec<String>,
    pricing: Pricing,
}

impl PartMapper {
    pub fn new(session_id: &str) -> Self {
        Self { session_id: session_id.to_string(), message_id: String::new(), edited: Vec::new(), pricing: Pricing::default() }
    }

    /// Prices each step's usage (the model's configured cost).
    pub fn priced(mut self, pricing: Pricing) -> Self {
        self.pricing = pricing;
        self
    }

    /// The assistant message of the current step.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    fn part(&self, id: &str, body: Value) -> Value {
        let mut part = json!({"id": id, "messageID": self.message_id, "sessionID": self.session_id});
        if let (Some(p), Value::Object(b)) = (part.as_object_mut(), body) {
            p.extend(b);
        }
        part
    }

    fn tool(&self, part: &str, tool: &str, call_id: &str, state: Value) -> Out {
        Out::Part(self.part(part, json!({"type": "tool", "tool": tool, "callID": call_id, "state": state})))
    }

    pub fn map(&mut self, report: &Report) -> Vec<Out> {
        let kind = |k: &Streamed| if *k == Streamed::Text { "text" } else { "reasoning" };
        match report {
            Report::StepStart { message_id, part, snapshot, .. } => {
                self.message_id = message_id.clone();
                self.edited.clear();
                let mut body = json!({"type": "step-start"});
                if let Some(s) = snapshot {
                    body["snapshot"] = json!(s);
                }
                vec![Out::Part(self.part(part, body))]
            }
            Report::Open { part, kind: k, start } => vec![Out::Part(self.part(part, json!({"type": kind(k), "text": "", "time": {"start": start}})))],
            Report::Delta { part, delta, .. } => {
                vec![Out::Delta { message_id: self.message_id.clone(), part_id: part.clone(), field: "text", delta: delta.clone() }]
            }
            Report::Close { part, kind: k, text, start, end } => {
                vec![Out::Part(self.part(part, json!({"type": kind(k), "text": text, "time": {"start": start, "end": end}})))]
            }
            Report::ToolPending { part, call_id, tool } => vec![self.tool(part, tool, call_id, json!({"status": "pending", "input": {}, "raw": ""}))],
            Report::ToolRunning { part, call_id, tool, input, start, title, metadata } => {
                let mut state = json!({"status": "running", "input": input, "time": {"start": start}});
                if let Some(t) = title {
                    state["title"] = json!(t);
                }
                if let Some(m) = metadata {
                    state["metadata"] = m.clone();
                }
                vec![self.tool(part, tool, call_id, state)]
            }
            Report::ToolDone { part, call_id, tool, input, start, end, result } => {
                let time = json!({"start": start, "end": end});
                let state = match result {
                    Ok(out) => {
                        self.edited.extend(out.edited.iter().filter(|f| !self.edited.contains(f)).cloned().collect::<Vec<_>>());
                        json!({"status": "completed", "input": input, "output": out.output, "metadata": out.metadata, "title": out.title, "time": time})
                    }
                    Err(e) => json!({"status": "error", "input": input, "error": e, "time": time}),
                };
                vec![self.tool(part, tool, call_id, state)]
            }
            Report::StepFinish { reason, usage, snapshot, patch, .. } => {
                let (tokens, cost) = (tokens(usage), self.pricing.cost(usage));
                // A JavaScript number: `0`, not `0.0`.
                let shown = crate::protocol::num::serialize(&cost, serde_json::value::Serializer).unwrap_or_default();
                let mut finish = json!({"type": "step-finish", "reason": reason, "tokens": tokens, "cost": shown});
                if let Some(s) = snapshot {
                    finish["snapshot"] = json!(s);
                }
                let mut out = vec![
                    Out::Part(self.part(&id::ascending(Prefix::Part), finish)),
                    Out::StepDone { message_id: self.message_id.clone(), reason: reason.clone(), tokens, cost },
                ];
                // With snapshots, the patch names every file the step changed
                // (bash's too); without, the files `write` and `edit` reported.
                let edited = std::mem::take(&mut self.edited);
                match patch {
                    Some((hash, files)) => out.push(Out::Part(self.part(&id::ascending(Prefix::Part), json!({"type": "patch", "hash": hash, "files": files})))),
                    None if snapshot.is_none() && !edited.is_empty() => {
                        out.push(Out::Part(self.part(&id::ascending(Prefix::Part), json!({"type": "patch", "hash": "", "files": edited}))))
                    }
                    None => {}
                }
                out
            }
            Report::Retry { .. } | Report::SnapshotFailed { .. } => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
