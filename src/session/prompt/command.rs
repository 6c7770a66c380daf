//! Slash commands (`POST /session/{id}/command`; `init` is one): the
//! command's template with the arguments filled in and its `` !`cmd` ``
//! substitutions run in the environment, sent as a prompt. A subtask command
//! (or one whose agent is a subagent) sends a `subtask` part instead, which
//! the prompt runs in a sub-session.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::agent::input::{ModelChoice, PromptBody};
use crate::agent::resolve;
use crate::config::agent as agents;
use crate::config::command as commands;
use crate::env::{Env, ExecRequest, WorkspacePath};
use crate::instance::Instance;
use crate::protocol::message::MessageWithParts;
use crate::protocol::session::Session;
use crate::session::error::{RunError, RunResult};
use crate::session::events::{self, Scope};
use crate::session::runtime::Runtime;

/// How long a template's `` !`cmd` `` may run.
const SHELL_TIMEOUT: Duration = Duration::from_secs(120);
const SHELL_MAX_BYTES: usize = 1024 * 1024;

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CommandBody {
    #[serde(rename = "messageID")]
    #[schema(pattern = "^msg")]
    pub message_id: Option<String>,
    pub agent: Option<String>,
    /// `provider/model`.
    #[schema(pattern = r"^[^/]+/[\s\S]+$")]
    pub model: Option<String>,
    /// What the user typed after the command name.
    pub arguments: String,
    pub command: String,
    pub variant: Option<String>,
    /// File parts sent along.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub parts: Vec<Value>,
}

/// Runs a command in the session and returns the answer, like a prompt.
pub async fn command(rt: Arc<Runtime>, inst: Arc<Instance>, session: Session, body: CommandBody) -> RunResult<MessageWithParts> {
    let cfg = rt.config(&inst).await?;
    let paths = rt.agent_paths(&inst);
    let scope = Scope::of(&inst);
    // Like OpenCode, a command that cannot start also tells the session's watchers.
    let refuse = |message: String| {
        let error = json!({"name": "UnknownError", "data": {"message": message}});
        events::transient(&rt.bus, &scope, events::SESSION_ERROR, json!({"sessionID": session.id, "error": error}));
        RunError::invalid(message)
    };
    let all = commands::list(&cfg, &inst.project.worktree);
    let Some(cmd) = all.iter().find(|c| c.name == body.command) else {
        let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
        return Err(refuse(format!("Command not found: \"{}\". Available commands: {}", body.command, names.join(", "))));
    };
    let template = commands::expand(&cmd.template, &body.arguments);
    let template = substitute_shell(&*rt.env, &inst.dir, &template).await.trim().to_string();

    let list = agents::list(&cfg, &paths);
    let asked = match body.model.as_deref() {
        Some(m) => Some(ModelChoice::parse(m).ok_or_else(|| RunError::invalid(format!("model {m:?} must be \"provider/model\"")))?),
        None => None,
    };
    // The session's model, else its last user message's, else the config's default.
    let last = match &session.model {
        Some(m) => Some(ModelChoice { provider_id: m.provider_id.clone(), model_id: m.id.clone() }),
        None => rt.sessions.store.last_user_model(&session.id).await?.map(|m| ModelChoice { provider_id: m.provider_id, model_id: m.model_id }),
    };
    let last = last.or_else(|| resolve::resolve(&cfg, &paths, None, None).ok().map(|r| ModelChoice { provider_id: r.provider_id, model_id: r.model_id }));
    let agent_model = |name: &str| {
        list.iter().find(|a| a.name == name).and_then(|a| a.model.clone()).map(|m| ModelChoice { provider_id: m.provider_id, model_id: m.model_id })
    };
    let task_model = cmd
        .model
        .as_deref()
        .and_then(ModelChoice::parse)
        .or_else(|| cmd.agent.as_deref().and_then(agent_model))
        .or_else(|| asked.clone())
        .or_else(|| last.clone());
    let default = agents::default_agent(&cfg, &list);
    let agent = match cmd.agent.clone().or_else(|| body.agent.clone()) {
        Some(name) => list.iter().find(|a| a.name == name).ok_or_else(|| {
            let visible: Vec<&str> = list.iter().filter(|a| a.hidden != Some(true)).map(|a| a.name.as_str()).collect();
            refuse(format!("Agent not found: \"{name}\". Available agents: {}", visible.join(", ")))
        })?,
        None => list.iter().find(|a| a.name == default).ok_or_else(|| refuse(format!("Agent not found: \"{default}\"")))?,
    };
    let subtask = (agent.mode == "subagent" && cmd.subtask != Some(false)) || cmd.subtask == Some(true);
    let (parts, user_agent, user_model) = if subtask {
        let mut part = json!({"type": "subtask", "agent": agent.name, "description": cmd.description.clone().unwrap_or_default(), "command": body.command, "prompt": template});
        if let Some(m) = &task_model {
            part["model"] = json!({"providerID": m.provider_id, "modelID": m.model_id});
        }
        (vec![part], body.agent.clone().unwrap_or(default), asked.or(last))
    } else {
        let parts = std::iter::once(json!({"type": "text", "text": template})).chain(body.parts.iter().cloned()).collect();
        (parts, agent.name.clone(), task_model)
    };
    let prompt = PromptBody {
        message_id: body.message_id.clone(),
        model: user_model,
        agent: Some(user_agent),
        variant: body.variant.clone(),
        parts,
        ..Default::default()
    };
    let answer = super::run(rt.clone(), inst.clone(), session.clone(), prompt).await?;
    let executed = json!({"name": body.command, "sessionID": session.id, "arguments": body.arguments, "messageID": answer.info.id()});
    events::transient(&rt.bus, &scope, "command.executed", executed);
    Ok(answer)
}

/// `init`: the built-in command that has the model write AGENTS.md. A model
/// the config does not know is a 400 here (the answer is only `true`, so an
/// error stored in a message would go unseen).
pub async fn init(rt: Arc<Runtime>, inst: Arc<Instance>, session: Session, model: ModelChoice, message_id: String) -> RunResult<bool> {
    let cfg = rt.config(&inst).await?;
    if let Err(e @ resolve::ResolveError::ModelNotFound { .. }) = resolve::resolve(&cfg, &rt.agent_paths(&inst), None, Some(&model)) {
        return Err(RunError::invalid(e.to_string()));
    }
    let body = CommandBody {
        message_id: Some(message_id),
        model: Some(format!("{}/{}", model.provider_id, model.model_id)),
        command: "init".into(),
        ..Default::default()
    };
    command(rt, inst, session, body).await?;
    Ok(true)
}

/// Replaces each `` !`cmd` `` with what `cmd` prints, run by the shell where
/// the workspace is (a failed command leaves its output, or nothing).
async fn substitute_shell(env: &dyn Env, cwd: &WorkspacePath, template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find("!`") {
        let Some(len) = rest[at + 2..].find('`') else { break };
        if len == 0 {
            out.push_str(&rest[..at + 2]);
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let command = &rest[at + 2..at + 2 + len];
        let printed = match env.exec(ExecRequest::shell(command, cwd.clone())).await {
            Ok(process) => match process.collect(SHELL_MAX_BYTES, Some(SHELL_TIMEOUT)).await {
                Ok(done) => String::from_utf8_lossy(&done.stdout).into_owned(),
                Err(e) => {
                    tracing::warn!("command template: {command}: {e}");
                    String::new()
                }
            },
            Err(e) => {
                tracing::warn!("command template: cannot run {command}: {e}");
                String::new()
            }
        };
        out.push_str(&printed);
        rest = &rest[at + 2 + len + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::local::LocalEnv;

    #[tokio::test]
    async fn shell_substitutions_run_in_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("marker.txt"), "here").unwrap();
        let env = LocalEnv::new(dir.path()).unwrap();
        let out = substitute_shell(&env, &WorkspacePath::root(), "files: !`ls` and !`printf 'a b'`, not !`` but !`echo c`").await;
        assert_eq!(out, "files: marker.txt\n and a b, not !`` but c\n");
    }
}
