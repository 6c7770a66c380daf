//! One agent turn: ask the model, run the tools it calls in the environment,
//! feed the results back, repeat until it stops. Each round trip is a step.
//!
//! The runner knows providers and tools, not the session store: it reports
//! what happens through a [`Sink`] (a part started, a text delta, a tool's
//! state, a step's end), which the session layer turns into stored messages,
//! parts and events. The order of reports follows OpenCode's (see the
//! reference capture `sse_llm_turn.txt`): tools start as soon as their call
//! is complete and run while the stream goes on; open text and reasoning parts
//! end when the stream does; the step ends when every tool has finished.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::provider::{ChatMessage, ChatRequest, FinishReason, Provider, ProviderError, StreamEvent, ToolCall, Usage};
use super::tools::{Registry, ToolContext, ToolError, ToolOutput};
use crate::id::{self, Prefix};

/// A tool call the step started: its call id, the call, and the task running it
/// (which yields the call id, start and end times, and the result).
type ToolTask = (String, ToolCall, tokio::task::JoinHandle<(String, u64, u64, Result<ToolOutput, ToolError>)>);

/// How many steps a turn may take before it stops asking the model.
pub const MAX_STEPS: usize = 50;
/// Attempts at starting a step's stream when the provider fails in a retryable way.
pub const MAX_ATTEMPTS: u32 = 4;
/// The first retry delay; each next one doubles (OpenCode's backoff).
pub const RETRY_BASE: Duration = Duration::from_secs(2);

/// Which kind of streamed part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Streamed {
    Text,
    Reasoning,
}

/// What the runner reports, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Report {
    /// A step begins, with the id of its assistant message (every step has
    /// its own) and of its step-start part (made now, so it sorts first).
    StepStart {
        step: usize,
        message_id: String,
        part: String,
        /// The workspace snapshot taken before the step's tools ran.
        snapshot: Option<String>,
    },
    /// A text or reasoning part opens, empty.
    Open {
        part: String,
        kind: Streamed,
        start: u64,
    },
    Delta {
        part: String,
        kind: Streamed,
        delta: String,
    },
    /// The part's whole text, once its stream is over.
    Close {
        part: String,
        kind: Streamed,
        text: String,
        start: u64,
        end: u64,
    },
    ToolPending {
        part: String,
        call_id: String,
        tool: String,
    },
    ToolRunning {
        part: String,
        call_id: String,
        tool: String,
        input: Value,
        start: u64,
        title: Option<String>,
        metadata: Option<Value>,
    },
    ToolDone {
        part: String,
        call_id: String,
        tool: String,
        input: Value,
        start: u64,
        end: u64,
        result: Result<ToolOutput, String>,
    },
    StepFinish {
        step: usize,
        reason: String,
        usage: Usage,
        /// The workspace snapshot after the step.
        snapshot: Option<String>,
        /// The step's start snapshot and the files that changed since (paths
        /// as the environment names them), when the step changed any.
        patch: Option<(String, Vec<String>)>,
    },
    /// The workspace could not be snapshotted: the turn goes on without undo.
    SnapshotFailed {
        message: String,
    },
    /// The step's stream could not start; another attempt follows at `next` (ms since the epoch).
    Retry {
        attempt: u32,
        message: String,
        next: u64,
    },
}

/// Receives the reports in order. It must not block: the session layer
/// queues them for one writer task.
pub trait Sink: Send + Sync {
    fn report(&self, report: Report);
}

/// How a turn ended.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The model stopped (`stop`, `length`, ...).
    Finished {
        reason: String,
    },
    Aborted,
    Failed(ProviderError),
}

/// What a turn needs besides the conversation.
pub struct Turn {
    pub provider: Arc<dyn Provider>,
    pub registry: Registry,
    /// A context for tool calls; the runner fills in the message and call ids.
    pub tools: ToolContext,
    pub sink: Arc<dyn Sink>,
    pub abort: CancellationToken,
    pub retry_base: Duration,
}

impl Turn {
    /// Runs steps until the model stops calling tools, the turn is aborted, or the provider fails for good.
    pub async fn run(&self, mut request: ChatRequest) -> Outcome {
        let mut warned = false;
        for step in 0..MAX_STEPS {
            let message_id = id::ascending(Prefix::Message);
            let snapshot = self.track(&mut warned).await;
            self.sink.report(Report::StepStart { step, message_id: message_id.clone(), part: id::ascending(Prefix::Part), snapshot: snapshot.clone() });
            let stream = match self.start(&request).await {
                Ok(s) => s,
                Err(outcome) => return outcome,
            };
            let result = self.step(step, &message_id, stream, snapshot, &mut warned).await;
            let (reason, text, calls) = match result {
                StepResult::Done { reason, text, calls } => (reason, text, calls),
                StepResult::Aborted => return Outcome::Aborted,
                StepResult::Failed(e) => return Outcome::Failed(e),
            };
            let tool_calls: Vec<ToolCall> = calls.iter().map(|(c, _)| c.clone()).collect();
            request.messages.push(ChatMessage::Assistant { text, tool_calls });
            for (call, output) in calls {
                request.messages.push(ChatMessage::Tool { call_id: call.id, name: call.name, output });
            }
            if reason != "tool-calls" {
                return Outcome::Finished { reason };
            }
        }
        Outcome::Finished { reason: "length".into() }
    }

    /// Runs one tool call that the user asked for rather than the model (a
    /// command's subtask), as a step of its own that ends in `tool-calls`, so
    /// the model sees the call and its result in the next turn.
    pub async fn call(&self, call: ToolCall) -> Outcome {
        let message_id = id::ascending(Prefix::Message);
        let mut warned = false;
        let snapshot = self.track(&mut warned).await;
        self.sink.report(Report::StepStart { step: 0, message_id: message_id.clone(), part: id::ascending(Prefix::Part), snapshot: snapshot.clone() });
        let part = id::ascending(Prefix::Part);
        self.sink.report(Report::ToolPending { part: part.clone(), call_id: call.id.clone(), tool: call.name.clone() });
        let _ = self.spawn_tool(&message_id, part, call).await;
        if self.abort.is_cancelled() {
            return Outcome::Aborted;
        }
        let reason = "tool-calls".to_string();
        let (snapshot, patch) = self.patch(snapshot, &mut warned).await;
        self.sink.report(Report::StepFinish { step: 0, reason: reason.clone(), usage: Usage::default(), snapshot, patch });
        Outcome::Finished { reason }
    }

    /// Starts a stream, retrying retryable failures with exponential backoff.
    async fn start(&self, request: &ChatRequest) -> Result<super::provider::EventStream, Outcome> {
        let mut attempt = 0;
        loop {
            let res = tokio::select! {
                r = self.provider.stream(request) => r,
                _ = self.abort.cancelled() => return Err(Outcome::Aborted),
            };
            match res {
                Ok(s) => return Ok(s),
                Err(e) if e.retryable() && attempt + 1 < MAX_ATTEMPTS => {
                    attempt += 1;
                    let wait = self.retry_base * 2u32.pow(attempt - 1);
                    let next = crate::now_ms() + wait.as_millis() as u64;
                    self.sink.report(Report::Retry { attempt, message: e.to_string(), next });
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.abort.cancelled() => return Err(Outcome::Aborted),
                    }
                }
                Err(e) => return Err(Outcome::Failed(e)),
            }
        }
    }

    /// Snapshots the workspace, when the environment keeps snapshots. A
    /// failure (a full disk, a read-only store) is reported once per turn and
    /// the turn goes on without undo: an edit never fails for want of a snapshot.
    async fn track(&self, warned: &mut bool) -> Option<String> {
        match self.tools.env.snapshot_track().await {
            Ok(hash) => Some(hash),
            // An environment that keeps no snapshots says so in its capabilities.
            Err(crate::env::EnvError::Unsupported(_)) => None,
            Err(e) => {
                tracing::warn!("cannot snapshot the workspace: {e}");
                self.snapshot_failed(warned, &e);
                None
            }
        }
    }

    /// Tells the user, once per turn, that undo is off for it.
    fn snapshot_failed(&self, warned: &mut bool, e: &crate::env::EnvError) {
        if !std::mem::replace(warned, true) {
            self.sink.report(Report::SnapshotFailed { message: e.to_string() });
        }
    }

    /// The snapshot after a step that began at `start`, and the step's patch:
    /// the start snapshot with the files that differ since (OpenCode's
    /// `Snapshot.patch`), which is what covers changes made by `bash` and subagents.
    async fn patch(&self, start: Option<String>, warned: &mut bool) -> (Option<String>, Option<(String, Vec<String>)>) {
        let Some(start) = start else { return (None, None) };
        let Some(end) = self.track(warned).await else { return (None, None) };
        // One more try after a failure: a lost connection is renewed by the
        // environment, and a step's patch is what undoes it.
        let mut changes = self.tools.env.snapshot_changes(&start, &end).await;
        if let Err(e) = &changes {
            tracing::warn!("cannot compare snapshots {start} and {end}, trying once more: {e}");
            changes = self.tools.env.snapshot_changes(&start, &end).await;
        }
        let changes = match changes {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("cannot compare snapshots {start} and {end}: {e}");
                self.snapshot_failed(warned, &e);
                return (Some(end), None);
            }
        };
        if changes.is_empty() {
            return (Some(end), None);
        }
        let root = self.tools.env.root().trim_end_matches('/').to_string();
        let files = changes.into_iter().map(|c| format!("{root}/{}", c.path)).collect();
        (Some(end), Some((start, files)))
    }

    async fn step(&self, step: usize, message_id: &str, mut stream: super::provider::EventStream, snapshot: Option<String>, warned: &mut bool) -> StepResult {
        let mut open: Option<(String, Streamed, String, u64)> = None;
        let mut text = String::new();
        let mut tools: Vec<ToolTask> = Vec::new();
        let mut pending: Vec<(String, String)> = Vec::new();
        let mut finish: Option<(FinishReason, Usage)> = None;
        loop {
            let next = tokio::select! {
                n = stream.next() => n,
                _ = self.abort.cancelled() => { self.close(&mut open).await; return self.abort_tools(tools).await; }
            };
            let event = match next {
                Some(Ok(e)) => e,
                Some(Err(e)) => {
                    self.close(&mut open).await;
                    let _ = self.abort_tools(tools).await;
                    return StepResult::Failed(e);
                }
                None => break,
            };
            match event {
                StreamEvent::ReasoningDelta(d) => self.delta(&mut open, Streamed::Reasoning, d).await,
                StreamEvent::TextDelta(d) => {
                    text.push_str(&d);
                    self.delta(&mut open, Streamed::Text, d).await
                }
                StreamEvent::ToolCallStart { id: call_id, name } => {
                    let part = id::ascending(Prefix::Part);
                    self.sink.report(Report::ToolPending { part: part.clone(), call_id: call_id.clone(), tool: name });
                    pending.push((call_id, part));
                }
                StreamEvent::ToolCall(call) => {
                    let part = match pending.iter().position(|(c, _)| *c == call.id) {
                        Some(i) => pending.remove(i).1,
                        None => {
                            let part = id::ascending(Prefix::Part);
                            self.sink.report(Report::ToolPending { part: part.clone(), call_id: call.id.clone(), tool: call.name.clone() });
                            part
                        }
                    };
                    let handle = self.spawn_tool(message_id, part.clone(), call.clone());
                    tools.push((part, call, handle));
                }
                StreamEvent::Finish { reason, usage } => finish = Some((reason, usage)),
            }
        }
        self.close(&mut open).await;
        let mut calls = Vec::new();
        for (_, call, handle) in tools {
            let output = match handle.await {
                Ok((_, _, _, Ok(out))) => out.output,
                Ok((_, _, _, Err(e))) => format!("Error: {e}"),
                Err(e) => format!("Error: the tool task failed: {e}"),
            };
            calls.push((call, output));
        }
        if self.abort.is_cancelled() {
            return StepResult::Aborted;
        }
        let (reason, usage) = finish.map(|(r, u)| (r.0, u)).unwrap_or_else(|| ("unknown".into(), Usage::default()));
        let (snapshot, patch) = self.patch(snapshot, warned).await;
        self.sink.report(Report::StepFinish { step, reason: reason.clone(), usage, snapshot, patch });
        StepResult::Done { reason, text, calls }
    }

    /// Appends to the open part of `kind`, closing another kind first.
    async fn delta(&self, open: &mut Option<(String, Streamed, String, u64)>, kind: Streamed, delta: String) {
        if open.as_ref().is_some_and(|(_, k, _, _)| *k != kind) {
            self.close(open).await;
        }
        if open.is_none() {
            let (part, start) = (id::ascending(Prefix::Part), crate::now_ms());
            self.sink.report(Report::Open { part: part.clone(), kind, start });
            *open = Some((part, kind, String::new(), start));
        }
        if let Some((part, _, text, _)) = open.as_mut() {
            text.push_str(&delta);
            self.sink.report(Report::Delta { part: part.clone(), kind, delta });
        }
    }

    async fn close(&self, open: &mut Option<(String, Streamed, String, u64)>) {
        if let Some((part, kind, text, start)) = open.take() {
            self.sink.report(Report::Close { part, kind, text, start, end: crate::now_ms() });
        }
    }

    /// Reports the call running and runs it in its own task; it reports its own end.
    fn spawn_tool(&self, message_id: &str, part: String, call: ToolCall) -> tokio::task::JoinHandle<(String, u64, u64, Result<ToolOutput, ToolError>)> {
        let start = crate::now_ms();
        let input = if call.input.is_object() { call.input.clone() } else { Value::Object(Default::default()) };
        self.sink.report(Report::ToolRunning {
            part: part.clone(),
            call_id: call.id.clone(),
            tool: call.name.clone(),
            input: input.clone(),
            start,
            title: None,
            metadata: None,
        });
        let mut ctx = self.tools.clone();
        ctx.call_id = call.id.clone();
        ctx.message_id = message_id.to_string();
        ctx.abort = self.abort.clone();
        let sink = self.sink.clone();
        let (p, c, t, i) = (part.clone(), call.id.clone(), call.name.clone(), input.clone());
        let streaming = self.sink.clone();
        ctx.metadata = Some(Arc::new(move |title, metadata| {
            let report = Report::ToolRunning { part: p.clone(), call_id: c.clone(), tool: t.clone(), input: i.clone(), start, title, metadata: Some(metadata) };
            streaming.report(report);
        }));
        let registry = self.registry.clone();
        tokio::spawn(async move {
            let result = if call.input.is_string() {
                Err(ToolError::Failed(format!("The {} tool was called with invalid JSON arguments: {}", call.name, call.input)))
            } else {
                registry.run(&call.name, call.input.clone(), &ctx).await
            };
            let end = crate::now_ms();
            let shown = result.clone().map_err(|e| e.to_string());
            sink.report(Report::ToolDone { part: part.clone(), call_id: call.id, tool: call.name, input, start, end, result: shown });
            (part, start, end, result)
        })
    }

    /// Waits for the running tools, which see the abort and end with an error.
    async fn abort_tools(&self, tools: Vec<ToolTask>) -> StepResult {
        for (_, _, handle) in tools {
            let _ = handle.await;
        }
        StepResult::Aborted
    }
}

enum StepResult {
    Done { reason: String, text: String, calls: Vec<(ToolCall, String)> },
    Aborted,
    Failed(ProviderError),
}
