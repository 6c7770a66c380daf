//! A prompt: the user's message, then an agent turn whose reports become the
//! session's assistant messages, parts and events (see [`crate::agent::turn`]
//! and [`crate::agent::parts`]). One writer task applies the reports in order,
//! so the store and the event stream see them as the turn made them.

use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::events::{self, PartDelta, Scope};
use super::runs::RunGuard;
use crate::agent::input::{user_text, PromptBody};
use crate::agent::parts::{Out, PartMapper};
use crate::agent::permission::SessionGate;
use crate::agent::provider::{ChatMessage, ChatRequest, ToolCall};
use crate::agent::resolve::{self, Resolved};
use crate::agent::tools::{Registry, TodoStore, ToolContext, Truncator};
use crate::agent::turn::{Outcome, Report, Sink, Turn};
use crate::agent::{prompt, turn};
use crate::error::{ApiError, ApiResult};
use crate::id::{self, Prefix};
use crate::protocol::message::{AssistantMessage, Message, MessageError, MessagePath, MessageWithParts, ModelRef, UserMessage, UserTime};
use crate::protocol::part::Part;
use crate::protocol::session::{Session, SessionStatus};
use crate::server::instance::Instance;
use crate::server::routes::config;
use crate::server::AppState;
use crate::session::service::Sessions;

/// Runs a prompt to its end and returns the last assistant message with its parts.
pub async fn run(st: Arc<AppState>, inst: Arc<Instance>, session: Session, body: PromptBody) -> ApiResult<MessageWithParts> {
    let cfg = config::load(&st, &inst).await?;
    let paths = config::agent_paths(&st, &inst);
    let resolved = resolve::resolve(&cfg, &paths, body.agent.as_deref(), body.model.as_ref());
    let scope = Scope::of(&inst);
    let guard = st.sessions.runs.start(&scope, &session.id)?;
    let (small_provider, small_model) = match &resolved {
        Ok(r) => {
            let (p, m) = resolve::small(&cfg, r);
            (Some(p), m)
        }
        Err(_) => (None, String::new()),
    };
    let work = Prompt { st: st.clone(), inst, scope, session, guard: Arc::new(guard) };
    tokio::spawn(work.run(body, resolved, small_provider, small_model)).await.map_err(|e| ApiError::internal(format!("the prompt task failed: {e}")))?
}

struct Prompt {
    st: Arc<AppState>,
    inst: Arc<Instance>,
    scope: Scope,
    session: Session,
    guard: Arc<RunGuard>,
}

impl Prompt {
    fn sessions(&self) -> &Arc<Sessions> {
        &self.st.sessions
    }

    async fn run(
        self,
        body: PromptBody,
        resolved: Result<Resolved, resolve::ResolveError>,
        small: Option<Arc<dyn crate::agent::provider::Provider>>,
        small_model: String,
    ) -> ApiResult<MessageWithParts> {
        let store = &self.sessions().store;
        let (agent_name, model) = match &resolved {
            Ok(r) => (r.agent.name.clone(), ModelRef { provider_id: r.provider_id.clone(), model_id: r.model_id.clone(), variant: None }),
            Err(_) => (body.agent.clone().unwrap_or_else(|| "build".into()), self.sessions().model_for(&self.session).await?),
        };
        let first = store.messages(&self.session.id, Some(1), None).await?.messages.is_empty();
        let user = UserMessage {
            id: body.message_id.clone().unwrap_or_else(|| id::ascending(Prefix::Message)),
            session_id: self.session.id.clone(),
            time: UserTime { created: crate::now_ms() },
            format: None,
            summary: None,
            agent: agent_name.clone(),
            model: model.clone(),
            system: body.system.clone(),
            tools: None,
        };
        store.put_message(&self.scope, Message::User(user.clone())).await?;
        let input = body.input_parts();
        for raw in &input {
            let mut v = raw.clone();
            v["id"] = json!(v.get("id").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| id::ascending(Prefix::Part)));
            v["sessionID"] = json!(self.session.id);
            v["messageID"] = json!(user.id);
            let part: Part = serde_json::from_value(v).map_err(|e| ApiError::bad_request(format!("invalid part: {e}")))?;
            store.put_part(&self.scope, part).await?;
        }
        if body.no_reply {
            return Ok(store.message(&self.session.id, &user.id).await?);
        }
        let resolved = match resolved {
            Ok(r) => r,
            Err(e) => {
                let mut a = self.assistant(&user, &agent_name, &model, &id::ascending(Prefix::Message));
                a.error = serde_json::from_value(e.to_error_json()).ok();
                a.time.completed = Some(crate::now_ms());
                store.put_message(&self.scope, Message::Assistant(a.clone())).await?;
                self.publish_error(e.to_error_json());
                return Ok(store.message(&self.session.id, &a.id).await?);
            }
        };
        if first && self.session.title.starts_with("New session - ") {
            self.spawn_title(small, small_model, user_text(&input));
        }
        let mut system = prompt::system(&*self.st.env, &self.inst.dir, resolved.agent.prompt.as_deref(), self.inst.project.vcs.is_some()).await;
        system.extend(body.system.clone());
        let history = self.history().await?;
        let request = ChatRequest { model: resolved.api_model.clone(), system, messages: history, tools: Registry::builtin().specs(), ..Default::default() };
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(Writer { p: self.clone_handle(), user: user.clone(), agent: agent_name, model, mapper: PartMapper::new(&self.session.id), current: None, last: None }.run(rx));
        let turn = self.turn(&resolved, Arc::new(ChannelSink(tx)));
        let outcome = turn.run(request).await;
        // Ends the abort watcher, which holds the session's run.
        turn.abort.cancel();
        drop(turn);
        let last = writer.await.map_err(|e| ApiError::internal(format!("the prompt writer failed: {e}")))??;
        let Some(mut last) = last else { return Ok(store.message(&self.session.id, &user.id).await?) };
        let error = match outcome {
            Outcome::Finished { .. } => None,
            Outcome::Aborted => Some(json!({"name": "MessageAbortedError", "data": {"message": "The operation was aborted."}})),
            Outcome::Failed(e) => Some(json!({"name": "APIError", "data": {"message": e.to_string(), "isRetryable": e.retryable()}})),
        };
        if let Some(err) = error {
            last.error = serde_json::from_value::<MessageError>(err.clone()).ok();
            last.time.completed.get_or_insert(crate::now_ms());
            store.put_message(&self.scope, Message::Assistant(last.clone())).await?;
            self.publish_error(err);
        }
        Ok(store.message(&self.session.id, &last.id).await?)
    }

    fn clone_handle(&self) -> Prompt {
        Prompt { st: self.st.clone(), inst: self.inst.clone(), scope: self.scope.clone(), session: self.session.clone(), guard: self.guard.clone() }
    }

    fn turn(&self, r: &Resolved, sink: Arc<dyn Sink>) -> Turn {
        let abort = tokio_util::sync::CancellationToken::new();
        let guard = self.guard.clone();
        let watcher = abort.clone();
        tokio::spawn(async move {
            tokio::select! { _ = guard.cancelled() => watcher.cancel(), _ = watcher.cancelled() => {} }
        });
        let gate = SessionGate { permissions: self.st.permissions.clone(), ruleset: r.agent.permission.clone(), directory: Some(self.scope.directory.clone()) };
        let todos = Arc::new(TodoStore::default());
        let (store, scope) = (self.sessions().clone(), self.scope.clone());
        todos.on_change(Arc::new(move |session_id, list| {
            let list: Vec<crate::protocol::session::Todo> = serde_json::from_value(json!(list)).unwrap_or_default();
            let (store, scope, session_id) = (store.clone(), scope.clone(), session_id.to_string());
            tokio::spawn(async move { store.store.set_todos(&scope, &session_id, list).await });
        }));
        let tools = ToolContext {
            env: self.st.env.clone(),
            cwd: self.inst.dir.clone(),
            session_id: self.session.id.clone(),
            message_id: String::new(),
            call_id: String::new(),
            abort: abort.clone(),
            gate: Arc::new(gate),
            todos,
            truncator: Arc::new(Truncator::new(format!("{}/tool-output", self.st.dirs.state.trim_end_matches('/')))),
            metadata: None,
        };
        // BURROW_RETRY_BASE_MS shortens the backoff (tests of failing providers).
        let retry_base = std::env::var("BURROW_RETRY_BASE_MS").ok().and_then(|v| v.parse().ok()).map(std::time::Duration::from_millis).unwrap_or(turn::RETRY_BASE);
        Turn { provider: r.provider.clone(), registry: Registry::builtin(), tools, sink, abort, retry_base }
    }

    /// The conversation so far, as the model reads it.
    async fn history(&self) -> ApiResult<Vec<ChatMessage>> {
        let mut out = Vec::new();
        for m in self.sessions().store.messages(&self.session.id, None, None).await?.messages.into_iter() {
            let parts: Vec<Value> = m.parts.iter().filter_map(|p| serde_json::to_value(p).ok()).collect();
            match m.info {
                Message::User(_) => {
                    let text = user_text(&parts);
                    if !text.is_empty() {
                        out.push(ChatMessage::User { text });
                    }
                }
                Message::Assistant(_) => {
                    let text: String = parts.iter().filter(|p| p["type"] == "text").filter_map(|p| p["text"].as_str()).collect();
                    let mut calls = Vec::new();
                    let mut results = Vec::new();
                    for p in parts.iter().filter(|p| p["type"] == "tool") {
                        let (call_id, tool, state) = (p["callID"].as_str().unwrap_or(""), p["tool"].as_str().unwrap_or(""), &p["state"]);
                        let output = match state["status"].as_str() {
                            Some("completed") => state["output"].as_str().unwrap_or("").to_string(),
                            Some("error") => format!("Error: {}", state["error"].as_str().unwrap_or("")),
                            _ => "Error: the tool call was interrupted".into(),
                        };
                        calls.push(ToolCall { id: call_id.into(), name: tool.into(), input: state["input"].clone() });
                        results.push(ChatMessage::Tool { call_id: call_id.into(), name: tool.into(), output });
                    }
                    if !text.is_empty() || !calls.is_empty() {
                        out.push(ChatMessage::Assistant { text, tool_calls: calls });
                        out.extend(results);
                    }
                }
            }
        }
        Ok(out)
    }

    fn assistant(&self, user: &UserMessage, agent: &str, model: &ModelRef, id: &str) -> AssistantMessage {
        let path = MessagePath { cwd: self.inst.directory.clone(), root: self.inst.project.worktree.clone() };
        AssistantMessage::new(id.to_string(), self.session.id.clone(), user.id.clone(), agent.to_string(), model, path)
    }

    fn publish_error(&self, error: Value) {
        events::transient(&self.st.bus, &self.scope, "session.error", json!({"sessionID": self.session.id, "error": error}));
    }

    fn spawn_title(&self, small: Option<Arc<dyn crate::agent::provider::Provider>>, model: String, text: String) {
        let (Some(provider), sessions, scope, id) = (small, self.sessions().clone(), self.scope.clone(), self.session.id.clone()) else { return };
        tokio::spawn(async move {
            if let Some(title) = prompt::title(&*provider, &model, &text).await {
                let _ = sessions.store.update_session(&scope, &id, move |s| s.title = title).await;
            }
        });
    }
}

/// Queues reports for the writer; never blocks the turn.
struct ChannelSink(mpsc::UnboundedSender<Report>);

impl Sink for ChannelSink {
    fn report(&self, report: Report) {
        let _ = self.0.send(report);
    }
}

/// Applies reports to the store, in order.
struct Writer {
    p: Prompt,
    user: UserMessage,
    agent: String,
    model: ModelRef,
    mapper: PartMapper,
    current: Option<AssistantMessage>,
    last: Option<AssistantMessage>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Report>) -> ApiResult<Option<AssistantMessage>> {
        while let Some(report) = rx.recv().await {
            self.apply(report).await?;
        }
        Ok(self.current.or(self.last))
    }

    async fn apply(&mut self, report: Report) -> ApiResult<()> {
        let store = &self.p.sessions().store;
        let scope = self.p.scope.clone();
        match &report {
            Report::StepStart { message_id, .. } => {
                if let Some(prev) = self.current.take() {
                    self.last = Some(prev);
                }
                let a = self.p.assistant(&self.user, &self.agent, &self.model, message_id);
                store.put_message(&scope, Message::Assistant(a.clone())).await?;
                self.current = Some(a);
            }
            Report::Retry { attempt, message, next } => {
                self.p.guard.set_status(SessionStatus::Retry { attempt: *attempt, message: message.clone(), action: None, next: *next });
            }
            Report::ToolDone { result: Ok(out), .. } => {
                for file in &out.edited {
                    events::transient(&self.p.st.bus, &scope, "file.edited", json!({"file": file}));
                }
            }
            _ => {}
        }
        for out in self.mapper.map(&report) {
            match out {
                Out::Part(v) => {
                    let part: Part = serde_json::from_value(v).map_err(|e| ApiError::internal(format!("a part the store cannot hold: {e}")))?;
                    store.put_part(&scope, part).await?;
                }
                Out::Delta { message_id, part_id, field, delta } => {
                    let d = PartDelta { session_id: self.p.session.id.clone(), message_id, part_id, field: field.to_string(), delta };
                    store.publish_delta(&scope, &d);
                }
                Out::StepDone { reason, tokens, .. } => {
                    if let Some(a) = self.current.as_mut() {
                        a.tokens = serde_json::from_value(tokens).unwrap_or_default();
                        a.finish = Some(reason);
                        store.put_message(&scope, Message::Assistant(a.clone())).await?;
                        a.time.completed = Some(crate::now_ms());
                        store.put_message(&scope, Message::Assistant(a.clone())).await?;
                        let step = a.tokens.clone();
                        let _ = store.update_session(&scope, &self.p.session.id, move |s| {
                            s.tokens.add(&step);
                            s.time.updated = crate::now_ms();
                        }).await;
                        self.p.guard.set_status(SessionStatus::Busy);
                    }
                }
            }
        }
        Ok(())
    }
}
