//! `POST /session/{id}/shell`: a command the user runs in the session.
//!
//! Like OpenCode, it records a user message (with the synthetic text "The
//! following tool was executed by the user") and an assistant message holding a
//! `bash` tool part, which goes running → running with live output →
//! completed. A non-zero exit still completes (the output says what went
//! wrong); an abort kills the process group and completes with OpenCode's
//! "User aborted the command" note. Live updates are throttled and the output
//! is bounded (see [`super::output`]).

mod script;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::events::Scope;
use super::output::BoundedOutput;
use super::runs::RunGuard;
use super::service::Sessions;
use crate::env::{EnvError, ExecRequest, ExitStatus, Output, SharedEnv};
use crate::id::{self, Prefix};
use crate::instance::Instance;
use crate::protocol::message::{AssistantMessage, Message, MessagePath, MessageWithParts, ModelRef, UserMessage, UserTime};
use crate::protocol::part::{Part, PartBody, StartTime, TextPart, ToolCompleted, ToolError, ToolPart, ToolRunning, ToolState, ToolTime};
use crate::protocol::session::Session;
use crate::session::error::{RunError, RunResult};
use crate::session::runtime::Runtime;

/// The tool name OpenCode gives a user's shell command.
pub const SHELL_TOOL: &str = "bash";
pub const SYNTHETIC_TEXT: &str = "The following tool was executed by the user";
const ABORTED: &str = "<metadata>\nUser aborted the command\n</metadata>";
/// At most one live output update per this interval (OpenCode sends one per chunk).
const FLUSH_EVERY: Duration = Duration::from_millis(100);

pub struct ShellRequest {
    pub agent: String,
    pub command: String,
    pub model: Option<ModelRef>,
    pub message_id: Option<String>,
}

/// Runs the command and returns the assistant message with its tool part.
/// The work happens in its own task: a client that hangs up does not cut it short.
pub async fn run(rt: &Runtime, inst: Arc<Instance>, session: Session, req: ShellRequest) -> RunResult<MessageWithParts> {
    let (sessions, env) = (rt.sessions.clone(), rt.env.clone());
    if !env.capabilities().exec {
        return Err(EnvError::Unsupported(format!("running commands in a {} workspace", env.kind())).into());
    }
    let script = script::for_command(&req.command).ok_or_else(|| RunError::invalid("the command contains a NUL byte"))?;
    let scope = Scope::of(&inst);
    let guard = sessions.runs.start(&scope, &session.id)?;
    let shell = Shell { sessions, env, inst, scope, guard };
    tokio::spawn(shell.run(session, script, req)).await.map_err(|e| RunError::internal(format!("the shell task failed: {e}")))?
}

struct Shell {
    sessions: Arc<Sessions>,
    env: SharedEnv,
    inst: Arc<Instance>,
    scope: Scope,
    /// Holds the session busy until the run is over.
    guard: RunGuard,
}

/// How the process ended.
struct Finished {
    output: BoundedOutput,
    status: Option<ExitStatus>,
    aborted: bool,
}

impl Shell {
    async fn run(self, session: Session, script: String, req: ShellRequest) -> RunResult<MessageWithParts> {
        let store = &self.sessions.store;
        let model = match req.model {
            Some(m) => m,
            None => self.sessions.model_for(&session).await?,
        };
        let user = UserMessage {
            id: req.message_id.unwrap_or_else(|| id::ascending(Prefix::Message)),
            session_id: session.id.clone(),
            time: UserTime { created: crate::now_ms() },
            format: None,
            summary: None,
            agent: req.agent.clone(),
            model: ModelRef { variant: None, ..model.clone() },
            system: None,
            tools: None,
        };
        store.put_message(&self.scope, Message::User(user.clone())).await?;
        let text = TextPart { text: SYNTHETIC_TEXT.into(), synthetic: Some(true), ..Default::default() };
        store.put_part(&self.scope, self.part(&user.id, PartBody::Text(text))).await?;
        let path = MessagePath { cwd: self.inst.directory.clone(), root: self.inst.project.worktree.clone() };
        let mut assistant = AssistantMessage::new(id::ascending(Prefix::Message), session.id.clone(), user.id.clone(), req.agent, &model, path);
        store.put_message(&self.scope, Message::Assistant(assistant.clone())).await?;
        let input: Map<String, Value> = [("command".to_string(), json!(req.command))].into_iter().collect();
        let start = crate::now_ms();
        let running = |metadata| ToolState::Running(ToolRunning { time: StartTime { start }, input: input.clone(), title: None, metadata });
        let mut part = self.part(&assistant.id, PartBody::Tool(ToolPart { call_id: call_id(), tool: SHELL_TOOL.into(), state: running(None), metadata: None }));
        store.put_part(&self.scope, part.clone()).await?;

        let result = self.execute(script, &req.command, &mut part, &running).await;
        let end = crate::now_ms();
        let (state, failure) = match result {
            Ok(done) => (ToolState::Completed(completed(done, input.clone(), start, end)), None),
            Err(e) => {
                let time = ToolTime { start, end, compacted: None };
                (ToolState::Error(ToolError { time, input: input.clone(), error: e.to_string(), metadata: None }), Some(e))
            }
        };
        assistant.time.completed = Some(end);
        store.put_message(&self.scope, Message::Assistant(assistant.clone())).await?;
        set_state(&mut part, state);
        store.put_part(&self.scope, part.clone()).await?;
        drop(self.guard);
        match failure {
            Some(e) => Err(e),
            None => Ok(MessageWithParts { info: Message::Assistant(assistant), parts: vec![part] }),
        }
    }

    fn part(&self, message_id: &str, body: PartBody) -> Part {
        Part { id: id::ascending(Prefix::Part), session_id: self.guard.session_id().to_string(), message_id: message_id.to_string(), body }
    }

    /// Runs the process to its end, publishing its output as it comes (at most
    /// every [`FLUSH_EVERY`]); an abort kills it.
    async fn execute(&self, script: String, command: &str, part: &mut Part, running: &impl Fn(Option<Map<String, Value>>) -> ToolState) -> RunResult<Finished> {
        let mut req = ExecRequest::shell(script, self.inst.dir.clone());
        req.env.insert("TERM".into(), "dumb".into());
        // The script reads the command from stdin (see `script`).
        req.stdin = Some(bytes::Bytes::copy_from_slice(command.as_bytes()));
        let mut process = self.env.exec(req).await?;
        let mut output = BoundedOutput::new(self.sessions.data_dir());
        let mut aborted = false;
        let mut dirty = false;
        let mut flushed: Option<Instant> = None;
        let result: RunResult<()> = async {
            loop {
                let next_flush = flushed.map(|t| t + FLUSH_EVERY).unwrap_or_else(Instant::now);
                tokio::select! {
                    chunk = process.output.recv() => match chunk {
                        Some(Output::Stdout(data) | Output::Stderr(data)) => {
                            output.push(&data).await;
                            dirty = true;
                        }
                        None => break,
                    },
                    _ = self.guard.cancelled(), if !aborted => {
                        aborted = true;
                        if let Err(e) = process.control.kill().await {
                            tracing::warn!("cannot kill an aborted shell command: {e}");
                        }
                    }
                    _ = tokio::time::sleep_until(next_flush), if dirty => {}
                }
                if dirty && flushed.is_none_or(|t| t.elapsed() >= FLUSH_EVERY) {
                    set_state(part, running(Some(output_metadata(&output.text()))));
                    self.sessions.store.put_part(&self.scope, part.clone()).await?;
                    dirty = false;
                    flushed = Some(Instant::now());
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = process.control.kill().await;
            return Err(e);
        }
        let status = process.exit.await.ok();
        output.finish().await;
        Ok(Finished { output, status, aborted })
    }
}

fn set_state(part: &mut Part, state: ToolState) {
    if let PartBody::Tool(tool) = &mut part.body {
        tool.state = state;
    }
}

fn output_metadata(text: &str) -> Map<String, Value> {
    [("output".to_string(), json!(text))].into_iter().collect()
}

/// The completed state: the output (with OpenCode's note after an abort),
/// and in the metadata what OpenCode leaves out: truncation and exit status.
fn completed(done: Finished, input: Map<String, Value>, start: u64, end: u64) -> ToolCompleted {
    let mut text = done.output.text();
    if done.aborted {
        text.push_str("\n\n");
        text.push_str(ABORTED);
    }
    let mut metadata = output_metadata(&text);
    if done.output.truncated() {
        metadata.insert("truncated".into(), json!(true));
        if let Some(path) = done.output.spool_path() {
            metadata.insert("outputPath".into(), json!(path.display().to_string()));
        }
    }
    match done.status {
        Some(s) if !done.aborted && !s.success() => {
            metadata.insert("exit".into(), json!(s.code));
            if let Some(signal) = s.signal {
                metadata.insert("signal".into(), json!(signal));
            }
        }
        _ => {}
    }
    ToolCompleted { time: ToolTime { start, end, compacted: None }, input, title: String::new(), metadata, output: text, attachments: None }
}

/// A call id like OpenCode's for user commands: a ULID (26 Crockford base32
/// characters, time first).
fn call_id() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut value: u128 = (u128::from(crate::now_ms()) << 80) | (u128::from_le_bytes(crate::id::random()) & ((1u128 << 80) - 1));
    let mut out = [0u8; 26];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value & 31) as usize];
        value >>= 5;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn call_ids_look_like_ulids_and_sort_by_time() {
        let a = super::call_id();
        assert_eq!(a.len(), 26);
        assert!(a.starts_with('0'), "{a}");
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(super::call_id()[..10] > a[..10]);
    }
}
