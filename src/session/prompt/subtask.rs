//! Sub-sessions. The `task` tool's runner creates a child session (with
//! OpenCode's title and limits) and runs the prompt there as any prompt runs;
//! a command's subtask (a user message with a `subtask` part) runs the task
//! tool as a step of its own, then the model continues from its result.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{detach, model_of, Base, Prompt};
use crate::agent::input::{ModelChoice, PromptBody};
use crate::agent::permission::{evaluate, Action, Bypass, Rule};
use crate::agent::provider::ToolCall;
use crate::agent::resolve::Resolved;
use crate::agent::tools::{Subagents, Subtask, SubtaskChild};
use crate::config::agent::{self as agents, Agent};
use crate::id::{self, Prefix};
use crate::protocol::message::{Message, MessageWithParts, ModelRef, UserMessage};
use crate::protocol::part::{PartBody, SubtaskPart};
use crate::protocol::session::{PermissionAction, PermissionRule, Session};
use crate::session::error::RunResult;
use crate::session::service::NewSession;

/// What OpenCode tells the model after a command's subtask ran.
const CONTINUE: &str = "Summarize the task tool output above and continue with your task.";

/// The subagents a turn may hand work to, for the task tool's description:
/// the agents that are not primary and that the rules let it call, by name.
pub(super) fn describe(all: &[Agent], rules: &[Rule]) -> String {
    let mut usable: Vec<&Agent> = all.iter().filter(|a| a.mode != "primary" && evaluate("task", &a.name, &[rules]) != Action::Deny).collect();
    usable.sort_by(|a, b| a.name.cmp(&b.name));
    let lines: Vec<String> = usable
        .iter()
        .map(|a| format!("- {}: {}", a.name, a.description.as_deref().unwrap_or("This subagent should only be called manually by the user.")))
        .collect();
    format!("\nAvailable agent types and the tools they have access to:\n{}", lines.join("\n"))
}

impl Prompt {
    /// The task tool's runner for this prompt's turns; children use `model`
    /// unless their agent names its own.
    pub(super) fn children(&self, model: ModelChoice) -> Arc<dyn Subagents> {
        Arc::new(Children { parent: self.clone_unheld(), model })
    }

    /// Runs the subtask a user message carries, then answers that message (or,
    /// for a command's subtask, a synthetic one asking to carry on).
    pub(super) async fn subtask(&self, user: &UserMessage, r: &Resolved, task: SubtaskPart, system: Option<String>) -> RunResult<MessageWithParts> {
        let model = task.model.clone().map(|m| ModelRef { provider_id: m.provider_id, model_id: m.model_id, variant: None }).unwrap_or_else(|| model_of(r));
        let (writer, sink) = self.writer(user, r, &task.agent, model.clone(), false);
        let mut turn = self.turn(r, sink);
        turn.tools.gate = Arc::new(Bypass { permission: "task", inner: turn.tools.gate.clone() });
        turn.tools.subagents = Some(self.children(ModelChoice { provider_id: model.provider_id, model_id: model.model_id }));
        let input = json!({"prompt": task.prompt, "description": task.description, "subagent_type": task.agent, "command": task.command});
        let outcome = turn.call(ToolCall { id: id::ascending(Prefix::Call), name: "task".into(), input }).await;
        let done = self.finish(turn, writer, outcome, user).await?;
        if matches!(&done.info, Message::Assistant(a) if a.error.is_some()) {
            return Ok(done);
        }
        let next = match task.command {
            Some(_) => {
                let text = json!({"type": "text", "text": CONTINUE, "synthetic": true});
                self.store_user(None, &user.agent, &user.model, None, &[text]).await?
            }
            None => user.clone(),
        };
        self.reply(&next, r, system).await
    }

    /// A copy for work that outlives nothing of this run: the same session
    /// and config, no hold on the session (children hold their own).
    fn clone_unheld(&self) -> Parent {
        Parent { rt: self.rt.clone(), inst: self.inst.clone(), session: self.session.clone(), cfg: self.cfg.clone(), paths: self.paths.clone() }
    }
}

struct Parent {
    rt: Arc<crate::session::runtime::Runtime>,
    inst: Arc<crate::instance::Instance>,
    session: Session,
    cfg: Arc<crate::config::Config>,
    paths: Arc<agents::AgentPaths>,
}

struct Children {
    parent: Parent,
    model: ModelChoice,
}

impl Children {
    /// How deep `session` is nested (a top-level session is 0).
    async fn depth(&self, mut session: Session) -> usize {
        let mut depth = 0;
        while let Some(up) = session.parent_id.clone() {
            let Ok(s) = self.parent.rt.sessions.store.session(&up).await else { break };
            (session, depth) = (s, depth + 1);
        }
        depth
    }

    /// A child's own rules, as OpenCode sets them: the parent session's denials
    /// and external-directory rules, and no todo list or further tasks unless
    /// the agent's rules speak of them.
    fn limits(&self, agent: &Agent) -> Vec<PermissionRule> {
        let deny = |permission: &str| PermissionRule { permission: permission.into(), pattern: "*".into(), action: PermissionAction::Deny };
        let inherited =
            self.parent.session.permission.iter().flatten().filter(|r| r.permission == "external_directory" || r.action == PermissionAction::Deny).cloned();
        let mut out: Vec<PermissionRule> = inherited.collect();
        for own in ["todowrite", "task"] {
            let rule = deny(own);
            if !agent.permission.iter().any(|r| r.permission == own) && !out.contains(&rule) {
                out.push(rule);
            }
        }
        out
    }
}

#[async_trait]
impl Subagents for Children {
    async fn start(&self, parent_session: &str, task: &Subtask) -> Result<SubtaskChild, String> {
        let p = &self.parent;
        let sessions = &p.rt.sessions;
        let parent = sessions.store.session(parent_session).await.map_err(|e| e.to_string())?;
        let limit = p
            .cfg
            .data
            .get("subagent_depth")
            .or_else(|| p.cfg.data.get("experimental").and_then(|e| e.get("subagent_depth")))
            .and_then(|v| v.as_u64())
            .unwrap_or(1);
        if self.depth(parent).await as u64 >= limit {
            return Err(format!("Subagent depth limit reached ({limit}). Increase \"subagent_depth\" to allow nested subagents."));
        }
        let agent = agents::list(&p.cfg, &p.paths)
            .into_iter()
            .find(|a| a.name == task.agent)
            .ok_or_else(|| format!("Unknown agent type: {} is not a valid agent type", task.agent))?;
        let model = agent
            .model
            .as_ref()
            .map(|m| ModelChoice { provider_id: m.provider_id.clone(), model_id: m.model_id.clone() })
            .unwrap_or_else(|| self.model.clone());
        let resumed = match &task.task_id {
            Some(id) => sessions.store.session(id).await.ok(),
            None => None,
        };
        let child = match resumed {
            Some(s) => s,
            None => {
                let new = NewSession {
                    parent_id: Some(parent_session.to_string()),
                    title: Some(format!("{} (@{} subagent)", task.description, agent.name)),
                    agent: Some(agent.name.clone()),
                    permission: Some(self.limits(&agent)),
                    ..Default::default()
                };
                sessions.create(&p.inst, new).await.map_err(|e| e.to_string())?
            }
        };
        Ok(SubtaskChild { session_id: child.id, provider_id: model.provider_id, model_id: model.model_id })
    }

    async fn run(&self, child: &SubtaskChild, task: &Subtask, abort: CancellationToken) -> Result<String, String> {
        let p = &self.parent;
        let session = p.rt.sessions.store.session(&child.session_id).await.map_err(|e| e.to_string())?;
        let body = PromptBody {
            model: Some(ModelChoice { provider_id: child.provider_id.clone(), model_id: child.model_id.clone() }),
            agent: Some(task.agent.clone()),
            parts: vec![json!({"type": "text", "text": task.prompt})],
            ..Default::default()
        };
        let prompt = Base::load(p.rt.clone(), p.inst.clone(), session).await.map_err(|e| e.to_string())?;
        // An abort of the parent's turn aborts the child's, until the child is done.
        let done = CancellationToken::new();
        let (runs, scope, id, finished) = (p.rt.sessions.runs.clone(), prompt.scope.clone(), child.session_id.clone(), done.clone());
        tokio::spawn(async move {
            tokio::select! { _ = abort.cancelled() => runs.abort(&scope, &id).await, _ = finished.cancelled() => {} }
        });
        let answer = detach(prompt.prompt(body)).await;
        done.cancel();
        let answer = answer.map_err(|e| e.to_string())?;
        if let Message::Assistant(a) = &answer.info {
            if let Some(e) = &a.error {
                let v = serde_json::to_value(e).unwrap_or_default();
                return Err(v
                    .pointer("/data/message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
                    .unwrap_or_else(|| v["name"].as_str().unwrap_or("error").to_string()));
            }
        }
        let text = answer.parts.iter().rev().find_map(|p| match &p.body {
            PartBody::Text(t) => Some(t.text.clone()),
            _ => None,
        });
        Ok(text.unwrap_or_default())
    }
}
