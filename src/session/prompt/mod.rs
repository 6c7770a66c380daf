//! A prompt: the user's message, then an agent turn whose reports become the
//! session's assistant messages, parts and events (see [`crate::agent::turn`]
//! and [`writer`]). Commands, compactions and subtasks are prompts too: each
//! stores a user message and answers it through the same turn and writer.

mod changes;
mod command;
mod compact;
mod history;
#[cfg(test)]
pub(crate) use history::tests as history_tests;
mod subtask;
mod writer;

use std::future::Future;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::events::{self, Scope};
use super::runs::{Dropped, RunGuard, Ticket};
use crate::agent::changes::Changes;
use crate::agent::input::{user_text, ModelChoice, PromptBody};
use crate::agent::parts::PartMapper;
use crate::agent::permission::{self, Rule, SessionGate};
use crate::agent::provider::{ChatRequest, Provider, ToolSpec};
use crate::agent::question::Asker;
use crate::agent::resolve::{self, ResolveError, Resolved};
use crate::agent::tools::{Registry, TodoStore, ToolContext, Truncator};
use crate::agent::turn::{Outcome, Sink, Turn};
use crate::agent::{prompt, turn};
use crate::config::agent::{self as agents, AgentPaths};
use crate::config::Config;
use crate::id::{self, Prefix};
use crate::instance::Instance;
use crate::protocol::message::{AssistantMessage, Message, MessageError, MessagePath, MessageWithParts, ModelRef, UserMessage, UserTime};
use crate::protocol::part::Part;
use crate::protocol::session::Session;
use crate::session::error::{RunError, RunResult};
use crate::session::runtime::Runtime;
use crate::session::service::Sessions;
pub use command::{command, init, CommandBody};
pub use compact::summarize;
use writer::{ChannelSink, Writer};

/// Runs a prompt to its end and returns the last assistant message with its
/// parts. On a busy session the prompt waits its turn (see [`Base::accept`]).
pub async fn run(rt: Arc<Runtime>, inst: Arc<Instance>, session: Session, body: PromptBody) -> RunResult<MessageWithParts> {
    let base = Base::load(rt, inst, session).await?;
    detach(base.prompt(body)).await
}

/// Stores the prompt's user message and takes its place in the session's
/// queue, then answers it in the background; returns the stored user message.
/// When this returns the session is busy (or the prompt queued behind a busy
/// one), so a client that polls `GET /session/{id}` right after (CodeTether's
/// bridge) never sees the idle of before the prompt.
pub async fn start(rt: Arc<Runtime>, inst: Arc<Instance>, session: Session, body: PromptBody) -> RunResult<MessageWithParts> {
    let base = Base::load(rt, inst, session).await?;
    match detach(base.accept(body)).await? {
        Accept::Answered(answer) => Ok(*answer),
        Accept::Waiting(accepted) => {
            let stored = accepted.base.sessions().store.message(&accepted.base.session.id, &accepted.user.id).await?;
            tokio::spawn(async move {
                if let Err(e) = accepted.finish().await {
                    tracing::warn!("background prompt failed: {e}");
                }
            });
            Ok(stored)
        }
    }
}

/// What [`Base::accept`] leaves: an answer already (a `noReply` prompt), or a
/// stored prompt waiting for its turn.
enum Accept {
    Answered(Box<MessageWithParts>),
    Waiting(Box<Accepted>),
}

/// A prompt whose user message is stored and whose place in the queue is
/// taken, not yet answered.
struct Accepted {
    base: Base,
    resolved: Result<Resolved, ResolveError>,
    ticket: Ticket,
    user: UserMessage,
    first: bool,
    input: Vec<Value>,
    system: Option<String>,
}

impl Accepted {
    /// Waits for the prompt's turn, then answers it.
    async fn finish(self: Box<Self>) -> RunResult<MessageWithParts> {
        let Self { base, resolved, ticket, user, first, input, system } = *self;
        let guard = match base.wait(ticket, &user).await? {
            Ok(guard) => guard,
            Err(answer) => return Ok(answer),
        };
        let p = Prompt { base, guard: Arc::new(guard) };
        let resolved = match resolved {
            Ok(r) => r,
            Err(e) => return p.refuse(&user, e).await,
        };
        if first && p.session.title.starts_with("New session - ") {
            p.spawn_title(resolve::small(&p.cfg, &resolved), user_text(&input));
        }
        if let Some(task) = input.iter().find(|p| p["type"] == "subtask") {
            let task = serde_json::from_value(task.clone()).map_err(|e| RunError::invalid(format!("invalid subtask part: {e}")))?;
            return p.subtask(&user, &resolved, task, system).await;
        }
        p.reply(&user, &resolved, system).await
    }
}

/// Runs `work` in a task of its own, so a client that hangs up does not cut
/// the turn short (aborting the session is the way to stop it).
async fn detach<T: Send + 'static>(work: impl Future<Output = RunResult<T>> + Send + 'static) -> RunResult<T> {
    tokio::spawn(work).await.map_err(|e| RunError::internal(format!("the prompt task failed: {e}")))?
}

/// What a prompt is told when the queue drops it before its turn.
const NEVER_RAN: &str = "The server stopped before this queued prompt ran";

/// A session with the config a prompt runs under, before it holds the session.
#[derive(Clone)]
pub(crate) struct Base {
    rt: Arc<Runtime>,
    inst: Arc<Instance>,
    scope: Scope,
    session: Session,
    cfg: Arc<Config>,
    paths: Arc<AgentPaths>,
    /// The built-in tools and those of the directory's connected MCP servers.
    registry: Registry,
}

/// A session held for a run, with the config it runs under.
#[derive(Clone)]
pub(crate) struct Prompt {
    base: Base,
    guard: Arc<RunGuard>,
}

impl std::ops::Deref for Prompt {
    type Target = Base;

    fn deref(&self) -> &Base {
        &self.base
    }
}

impl Base {
    /// Loads the config the prompt runs under.
    async fn load(rt: Arc<Runtime>, inst: Arc<Instance>, session: Session) -> RunResult<Self> {
        let cfg = Arc::new(rt.config(&inst).await?);
        let paths = Arc::new(rt.agent_paths(&inst));
        let scope = Scope::of(&inst);
        let registry = Registry::builtin().with(rt.mcp(&inst, &cfg).await.tools().await);
        Ok(Self { rt, inst, scope, session, cfg, paths, registry })
    }

    /// Holds the session once the runs before this one are over (a
    /// compaction, a subtask). An abort while it waits is a 409.
    async fn claim(self) -> RunResult<Prompt> {
        let ticket = self.sessions().runs.enqueue(&self.scope, &self.session.id, "");
        match ticket.turn().await {
            Ok(guard) if !guard.is_cancelled() => Ok(Prompt { base: self, guard: Arc::new(guard) }),
            _ => Err(RunError::busy(&self.session.id)),
        }
    }

    fn sessions(&self) -> &Arc<Sessions> {
        &self.rt.sessions
    }

    fn resolve(&self, agent: Option<&str>, model: Option<&ModelChoice>) -> Result<Resolved, ResolveError> {
        resolve::resolve(&self.cfg, &self.paths, agent, model)
    }

    /// The name of the agent a prompt that names none uses.
    fn default_agent(&self) -> String {
        agents::default_agent(&self.cfg, &agents::list(&self.cfg, &self.paths))
    }

    /// Stores the user message at once, waits for its turn, then answers it.
    async fn prompt(self, body: PromptBody) -> RunResult<MessageWithParts> {
        match self.accept(body).await? {
            Accept::Answered(answer) => Ok(*answer),
            Accept::Waiting(accepted) => accepted.finish().await,
        }
    }

    /// Stores the user message at once (so clients show it, queued if the
    /// session is busy) and takes the prompt's place in the queue;
    /// [`Accepted::finish`] waits for its turn and answers it.
    async fn accept(self, body: PromptBody) -> RunResult<Accept> {
        let resolved = self.resolve(body.agent.as_deref(), body.model.as_ref());
        let (agent, model) = match &resolved {
            Ok(r) => (r.agent.name.clone(), model_of(r)),
            Err(_) => (body.agent.clone().unwrap_or_else(|| "build".into()), self.sessions().model_for(&self.session).await?),
        };
        // A prompt after a revert drops the messages it hid, as OpenCode's does.
        crate::session::revert::cleanup(&self.rt, &self.scope, &self.session.id).await?;
        let first = self.sessions().store.messages(&self.session.id, Some(1), None).await?.messages.is_empty();
        let input = body.input_parts();
        let id = body.message_id.clone().unwrap_or_else(|| id::ascending(Prefix::Message));
        if body.no_reply {
            let user = self.store_user(Some(id), &agent, &model, body.system.clone(), &input).await?;
            return Ok(Accept::Answered(Box::new(self.sessions().store.message(&self.session.id, &user.id).await?)));
        }
        // The place in the queue is taken before the message is stored, so
        // turns run in the order their messages were stored.
        let ticket = self.sessions().runs.enqueue(&self.scope, &self.session.id, &id);
        let user = self.store_prompt(Some(id), &agent, &model, body.system.clone(), &input, ticket.is_queued()).await?;
        Ok(Accept::Waiting(Box::new(Accepted { base: self, resolved, ticket, user, first, input, system: body.system })))
    }

    /// Waits for the turn of `user`'s prompt, then forgets the error answer
    /// kept for it (unless the server is stopping: the next start stores it).
    /// A prompt that an abort dropped gets, as in OpenCode, the session's last
    /// assistant message, and its user message stays unanswered.
    async fn wait(&self, ticket: Ticket, user: &UserMessage) -> RunResult<Result<RunGuard, MessageWithParts>> {
        let store = &self.sessions().store;
        let queued = ticket.is_queued();
        let turn = ticket.turn().await;
        if queued && turn.as_ref().err() != Some(&Dropped::Shutdown) {
            store.unmark_queued(&user.id).await?;
        }
        match turn {
            Ok(guard) if !guard.is_cancelled() => Ok(Ok(guard)),
            _ => {
                let messages = store.messages(&self.session.id, None, None).await?.messages;
                let last = messages.iter().rev().find(|m| matches!(m.info, Message::Assistant(_))).or(messages.last()).cloned();
                Ok(Err(last.unwrap_or(store.message(&self.session.id, &user.id).await?)))
            }
        }
    }

    /// Stores a user message and its parts (given ids kept, others made).
    async fn store_user(&self, id: Option<String>, agent: &str, model: &ModelRef, system: Option<String>, parts: &[Value]) -> RunResult<UserMessage> {
        self.store_prompt(id, agent, model, system, parts, false).await
    }

    /// [`Self::store_user`]; with `queued`, also keeps the error answer that the
    /// next start stores if the server stops before the prompt's turn. It is
    /// kept before the parts are stored, so a client that has seen the parts
    /// knows the prompt will not be forgotten.
    async fn store_prompt(
        &self,
        id: Option<String>,
        agent: &str,
        model: &ModelRef,
        system: Option<String>,
        parts: &[Value],
        queued: bool,
    ) -> RunResult<UserMessage> {
        let store = &self.sessions().store;
        let user = UserMessage {
            id: id.unwrap_or_else(|| id::ascending(Prefix::Message)),
            session_id: self.session.id.clone(),
            time: UserTime { created: crate::now_ms() },
            format: None,
            summary: None,
            agent: agent.to_string(),
            model: model.clone(),
            system,
            tools: None,
        };
        store.put_message(&self.scope, Message::User(user.clone())).await?;
        if queued {
            let mut answer = self.assistant(&user, agent, model, &id::ascending(Prefix::Message));
            answer.error = Some(MessageError::MessageAbortedError { message: NEVER_RAN.into() });
            store.mark_queued(&answer).await?;
        }
        for raw in parts {
            let mut v = raw.clone();
            v["id"] = json!(v.get("id").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| id::ascending(Prefix::Part)));
            v["sessionID"] = json!(self.session.id);
            v["messageID"] = json!(user.id);
            let part: Part = serde_json::from_value(v).map_err(|e| RunError::invalid(format!("invalid part: {e}")))?;
            store.put_part(&self.scope, part).await?;
        }
        Ok(user)
    }

    fn assistant(&self, user: &UserMessage, agent: &str, model: &ModelRef, id: &str) -> AssistantMessage {
        let path = MessagePath { cwd: self.inst.directory.clone(), root: self.inst.project.worktree.clone() };
        AssistantMessage::new(id.to_string(), self.session.id.clone(), user.id.clone(), agent.to_string(), model, path)
    }
}

impl Prompt {
    /// Answers `user` with a chat turn over the session's history.
    async fn reply(&self, user: &UserMessage, r: &Resolved, extra_system: Option<String>) -> RunResult<MessageWithParts> {
        let mut system = prompt::system(&*self.rt.env, &self.inst.dir, r.agent.prompt.as_deref(), self.inst.project.vcs.is_some()).await;
        system.extend(extra_system);
        let stored = self.sessions().store.messages(&self.session.id, None, None).await?.messages;
        let messages = history::chat(&history::turn_order(stored, &self.sessions().runs.queued(&self.session.id)));
        let request = ChatRequest { model: r.api_model.clone(), system, messages, tools: self.tools(r), ..Default::default() };
        let (writer, sink) = self.writer(user, r, &r.agent.name, model_of(r), false);
        let turn = self.turn(r, sink);
        let outcome = turn.run(request).await;
        self.finish(turn, writer, outcome, user).await
    }

    /// Starts the writer of a turn answering `user`, and the sink that feeds it.
    fn writer(&self, user: &UserMessage, r: &Resolved, agent: &str, model: ModelRef, summary: bool) -> (JoinHandle<RunResult<Option<AssistantMessage>>>, Pipe) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mapper = PartMapper::new(&self.session.id).priced(r.pricing);
        let changes = Arc::new(Changes::default());
        let mut writer = Writer::new(self.clone(), user.clone(), agent.to_string(), model, mapper, changes.clone());
        writer.summary = summary;
        (tokio::spawn(writer.run(rx)), Pipe { sink: Arc::new(ChannelSink { tx, changes: changes.clone() }), changes })
    }

    /// Waits for the writer, records how the turn ended on its last message
    /// (`info.error`, `session.error`), and returns that message.
    async fn finish(
        &self,
        turn: Turn,
        writer: JoinHandle<RunResult<Option<AssistantMessage>>>,
        outcome: Outcome,
        user: &UserMessage,
    ) -> RunResult<MessageWithParts> {
        let store = &self.sessions().store;
        let changes = turn.tools.changes.clone();
        // Ends the abort watcher and drops the sink, which ends the writer.
        turn.abort.cancel();
        drop(turn);
        let last = writer.await.map_err(|e| RunError::internal(format!("the prompt writer failed: {e}")))??;
        self.summarize_changes(user, changes.diffs(&*self.rt.env).await).await?;
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

    /// Answers a prompt that cannot run (unknown agent or model) with an
    /// assistant message that carries the error, as OpenCode does.
    async fn refuse(&self, user: &UserMessage, e: ResolveError) -> RunResult<MessageWithParts> {
        let mut a = self.assistant(user, &user.agent, &user.model, &id::ascending(Prefix::Message));
        a.error = serde_json::from_value(e.to_error_json()).ok();
        a.time.completed = Some(crate::now_ms());
        self.sessions().store.put_message(&self.scope, Message::Assistant(a.clone())).await?;
        self.publish_error(e.to_error_json());
        Ok(self.sessions().store.message(&self.session.id, &a.id).await?)
    }

    /// The rules of a turn: the agent's, then the session's own (a sub-session's limits).
    fn rules(&self, r: &Resolved) -> Vec<Rule> {
        let own: Vec<Rule> = self.session.permission.iter().flatten().filter_map(|p| serde_json::from_value(json!(p)).ok()).collect();
        r.agent.permission.iter().cloned().chain(own).collect()
    }

    /// The tools offered to the model: all but those its rules deny outright;
    /// the task tool's description lists the subagents it may hand work to.
    fn tools(&self, r: &Resolved) -> Vec<ToolSpec> {
        let registry = &self.registry;
        let rules = self.rules(r);
        let specs = registry.specs();
        let off = permission::disabled(specs.iter().map(|s| s.name.as_str()), &rules);
        let mut specs: Vec<ToolSpec> = specs.into_iter().filter(|s| !off.contains(&s.name)).collect();
        if let Some(task) = specs.iter_mut().find(|s| s.name == "task") {
            task.description.push_str(&subtask::describe(&agents::list(&self.cfg, &self.paths), &rules));
        }
        specs
    }

    fn turn(&self, r: &Resolved, Pipe { sink, changes }: Pipe) -> Turn {
        let abort = tokio_util::sync::CancellationToken::new();
        let (aborted, watcher) = (self.guard.cancellation(), abort.clone());
        tokio::spawn(async move {
            tokio::select! { _ = aborted => watcher.cancel(), _ = watcher.cancelled() => {} }
        });
        let gate = SessionGate {
            permissions: self.rt.permissions.clone(),
            ruleset: self.rules(r),
            directory: Some(self.scope.directory.clone()),
            project: Some(self.scope.project.clone()),
        };
        let todos = Arc::new(TodoStore::default());
        let (store, scope) = (self.sessions().clone(), self.scope.clone());
        todos.on_change(Arc::new(move |session_id, list| {
            let list: Vec<crate::protocol::session::Todo> = serde_json::from_value(json!(list)).unwrap_or_default();
            let (store, scope, session_id) = (store.clone(), scope.clone(), session_id.to_string());
            tokio::spawn(async move { store.store.set_todos(&scope, &session_id, list).await });
        }));
        let tools = ToolContext {
            env: self.rt.env.clone(),
            cwd: self.inst.dir.clone(),
            session_id: self.session.id.clone(),
            message_id: String::new(),
            call_id: String::new(),
            abort: abort.clone(),
            gate: Arc::new(gate),
            todos,
            truncator: Arc::new(Truncator::new(self.rt.tool_output_dir())),
            metadata: None,
            subagents: Some(self.children(ModelChoice { provider_id: r.provider_id.clone(), model_id: r.model_id.clone() })),
            changes,
            questions: Some(Asker { questions: self.rt.questions.clone(), directory: Some(self.scope.directory.clone()) }),
        };
        // BURROW_RETRY_BASE_MS shortens the backoff (tests of failing providers).
        let retry_base =
            std::env::var("BURROW_RETRY_BASE_MS").ok().and_then(|v| v.parse().ok()).map(std::time::Duration::from_millis).unwrap_or(turn::RETRY_BASE);
        Turn { provider: r.provider.clone(), registry: self.registry.clone(), tools, sink, abort, retry_base }
    }

    fn publish_error(&self, error: Value) {
        events::transient(&self.rt.bus, &self.scope, events::SESSION_ERROR, json!({"sessionID": self.session.id, "error": error}));
    }

    fn spawn_title(&self, (provider, model): (Arc<dyn Provider>, String), text: String) {
        let (sessions, scope, id) = (self.sessions().clone(), self.scope.clone(), self.session.id.clone());
        tokio::spawn(async move {
            if let Some(title) = prompt::title(&*provider, &model, &text).await {
                let _ = sessions.store.update_session(&scope, &id, move |s| s.title = title).await;
            }
        });
    }
}

/// What a turn reports through: the writer's sink, and the record of the
/// files its tools change (read back for the turn's summary).
struct Pipe {
    sink: Arc<dyn Sink>,
    changes: Arc<Changes>,
}

/// The model a resolved prompt's messages name.
fn model_of(r: &Resolved) -> ModelRef {
    ModelRef { provider_id: r.provider_id.clone(), model_id: r.model_id.clone(), variant: None }
}
