//! Permissions: whether a tool call may run, must wait for the user, or is refused.
//!
//! Rules come from the `permission` config and the agent (an ordered list;
//! the last rule whose permission and pattern both match wins, `ask` when
//! none does). A call that needs asking becomes a pending request, published
//! as `permission.asked`; the call waits until a client replies `once`,
//! `always` (which also approves the request's `always` patterns in the
//! session's project from then on, kept in the session database across
//! restarts: the saved answers of `GET /api/permission/saved`, which a client
//! may remove) or `reject` (which
//! also rejects the session's other pending requests, as OpenCode does).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use utoipa::ToSchema;

use crate::event::Bus;
use crate::id::{self, Prefix};

pub use crate::config::permission::{Action, Rule};

/// OpenCode's wildcard match over the whole text: `*` is any run of
/// characters (slashes included), `?` one character; a pattern ending in ` *`
/// also matches without the trailing arguments (`git *` matches `git`).
pub fn wildcard(text: &str, pattern: &str) -> bool {
    let text = text.replace('\\', "/");
    let pattern = pattern.replace('\\', "/");
    if let Some(head) = pattern.strip_suffix(" *") {
        if glob_match(text.as_bytes(), head.as_bytes()) {
            return true;
        }
    }
    glob_match(text.as_bytes(), pattern.as_bytes())
}

/// Iterative glob match with backtracking to the last `*`.
fn glob_match(text: &[u8], pattern: &[u8]) -> bool {
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            t += 1;
            p += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The action for `permission` on `pattern`: the last matching rule over all rulesets in order.
pub fn evaluate(permission: &str, pattern: &str, rulesets: &[&[Rule]]) -> Action {
    rulesets
        .iter()
        .flat_map(|r| r.iter())
        .rfind(|r| wildcard(permission, &r.permission) && wildcard(pattern, &r.pattern))
        .map(|r| r.action)
        .unwrap_or(Action::Ask)
}

/// The tools an agent may not call at all, so they are not offered to the
/// model: those whose last matching rule denies every pattern (`edit` rules
/// cover `write`, as in OpenCode).
pub fn disabled<'a>(tools: impl IntoIterator<Item = &'a str>, rules: &[Rule]) -> Vec<String> {
    tools
        .into_iter()
        .filter(|tool| {
            let permission = if *tool == "write" { "edit" } else { tool };
            let last = rules.iter().rev().find(|r| wildcard(permission, &r.permission));
            last.is_some_and(|r| r.pattern == "*" && r.action == Action::Deny)
        })
        .map(str::to_string)
        .collect()
}

/// What a tool asks to do.
#[derive(Clone, Debug, Default)]
pub struct AskInput {
    pub permission: String,
    pub patterns: Vec<String>,
    /// Patterns an `always` reply approves from then on.
    pub always: Vec<String>,
    pub metadata: Value,
    /// (messageID, callID) of the tool call asking.
    pub tool: Option<(String, String)>,
}

impl AskInput {
    pub fn new(permission: &str, patterns: Vec<String>, always: Vec<String>, metadata: Value) -> Self {
        Self { permission: permission.into(), patterns, always, metadata, tool: None }
    }
}

/// Why a call may not run, in the words OpenCode gives the model.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PermissionError {
    #[error("The user rejected permission to use this specific tool call.")]
    Rejected,
    #[error("The user rejected permission to use this specific tool call with the following feedback: {0}")]
    Corrected(String),
    #[error("The user has specified a rule which prevents you from using this specific tool call. Here are some of the relevant rules {}", serde_json::to_string(.0).unwrap_or_default())]
    Denied(Vec<Rule>),
}

/// Decides tool calls of a session.
#[async_trait]
pub trait Gate: Send + Sync {
    async fn ask(&self, session_id: &str, input: AskInput) -> Result<(), PermissionError>;
}

/// A gate that allows everything (tests, and agents configured with `"*": "allow"`).
pub struct AllowAll;

#[async_trait]
impl Gate for AllowAll {
    async fn ask(&self, _: &str, _: AskInput) -> Result<(), PermissionError> {
        Ok(())
    }
}

/// Lets one permission through without asking and leaves the rest to
/// `inner`: a command's subtask needs no `task` permission, the user asked
/// for it by typing the command.
pub struct Bypass {
    pub permission: &'static str,
    pub inner: Arc<dyn Gate>,
}

#[async_trait]
impl Gate for Bypass {
    async fn ask(&self, session_id: &str, input: AskInput) -> Result<(), PermissionError> {
        if input.permission == self.permission {
            return Ok(());
        }
        self.inner.ask(session_id, input).await
    }
}

/// A client's answer to a pending request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Reply {
    Once,
    Always,
    Reject,
}

struct Pending {
    request: Value,
    session_id: String,
    permission: String,
    patterns: Vec<String>,
    always: Vec<String>,
    ruleset: Vec<Rule>,
    directory: Option<String>,
    project: String,
    done: oneshot::Sender<Result<(), PermissionError>>,
}

/// The project id of sessions outside any project, as OpenCode names it.
pub const GLOBAL_PROJECT: &str = "global";

/// An `always` answer: in `project`, `permission` (the v2 API's `action`) is
/// allowed for `pattern` (its `resource`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SavedRule {
    pub id: String,
    #[serde(rename = "projectID")]
    pub project_id: String,
    #[serde(rename = "action")]
    pub permission: String,
    #[serde(rename = "resource")]
    pub pattern: String,
}

/// Where saved `always` answers are kept across restarts (the session
/// database); [`Permissions::flush`] hands it each change in order.
#[async_trait]
pub trait SavedStore: Send + Sync {
    async fn add_saved(&self, rule: &SavedRule) -> anyhow::Result<()>;
    async fn remove_saved(&self, id: &str) -> anyhow::Result<()>;
}

/// A change to the saved answers not yet written to the [`SavedStore`].
enum Change {
    Add(SavedRule),
    Remove(String),
}

/// The server's pending requests and the rules approved with `always`.
pub struct Permissions {
    bus: Bus,
    pending: Mutex<Vec<(String, Pending)>>,
    approved: Mutex<Vec<SavedRule>>,
    store: Option<Arc<dyn SavedStore>>,
    /// Changes for `store`, in the order they were made.
    unsaved: Mutex<Vec<Change>>,
    /// Held while flushing, so two flushes cannot write out of order.
    flushing: tokio::sync::Mutex<()>,
}

impl Permissions {
    /// Saved answers kept in memory only (tests, tools without a server).
    pub fn new(bus: Bus) -> Arc<Self> {
        Self::build(bus, Vec::new(), None)
    }

    /// Saved answers starting from `saved` (read from `store`) and written
    /// back to `store` by [`Permissions::flush`], so they outlive the server.
    pub fn with_store(bus: Bus, saved: Vec<SavedRule>, store: Arc<dyn SavedStore>) -> Arc<Self> {
        Self::build(bus, saved, Some(store))
    }

    fn build(bus: Bus, saved: Vec<SavedRule>, store: Option<Arc<dyn SavedStore>>) -> Arc<Self> {
        Arc::new(Self {
            bus,
            pending: Mutex::new(Vec::new()),
            approved: Mutex::new(saved),
            store,
            unsaved: Mutex::new(Vec::new()),
            flushing: tokio::sync::Mutex::new(()),
        })
    }

    fn record(&self, change: Change) {
        if self.store.is_some() {
            self.unsaved.lock().unwrap_or_else(|e| e.into_inner()).push(change);
        }
    }

    /// Writes the changes to the saved answers made so far to the store, in
    /// order. Callers that change them (a reply, a removal) flush before they
    /// answer, so what a client was told is saved survives a restart.
    pub async fn flush(&self) -> anyhow::Result<()> {
        let Some(store) = &self.store else { return Ok(()) };
        let _order = self.flushing.lock().await;
        let changes = std::mem::take(&mut *self.unsaved.lock().unwrap_or_else(|e| e.into_inner()));
        for change in changes {
            match change {
                Change::Add(rule) => store.add_saved(&rule).await?,
                Change::Remove(id) => store.remove_saved(&id).await?,
            }
        }
        Ok(())
    }

    /// The pending requests, oldest first, as `GET /permission` lists them.
    pub fn list(&self) -> Vec<Value> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(_, p)| p.request.clone()).collect()
    }

    /// The rules `always` answers approved in `project`.
    fn approved(&self, project: &str) -> Vec<Rule> {
        let saved = self.approved.lock().unwrap_or_else(|e| e.into_inner());
        saved.iter().filter(|s| s.project_id == project).map(|s| Rule::new(&s.permission, &s.pattern, Action::Allow)).collect()
    }

    /// The saved `always` answers, oldest first, of one project or all.
    pub fn saved(&self, project: Option<&str>) -> Vec<SavedRule> {
        let saved = self.approved.lock().unwrap_or_else(|e| e.into_inner());
        saved.iter().filter(|s| project.is_none_or(|p| s.project_id == p)).cloned().collect()
    }

    /// Forgets a saved answer, so its calls are asked about again; whether
    /// there was one with that id.
    pub fn remove_saved(&self, id: &str) -> bool {
        let mut saved = self.approved.lock().unwrap_or_else(|e| e.into_inner());
        let before = saved.len();
        saved.retain(|s| s.id != id);
        let removed = saved.len() != before;
        if removed {
            self.record(Change::Remove(id.to_string()));
        }
        removed
    }

    /// Answers a pending request; `None` when there is no such request.
    pub fn reply(&self, request_id: &str, reply: Reply, message: Option<String>) -> Option<()> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let index = pending.iter().position(|(id, _)| id == request_id)?;
        let (_, req) = pending.remove(index);
        self.replied(&req, request_id, reply);
        match reply {
            Reply::Once => {
                let _ = req.done.send(Ok(()));
            }
            Reply::Reject => {
                let err = match message.filter(|m| !m.trim().is_empty()) {
                    Some(m) => PermissionError::Corrected(m),
                    None => PermissionError::Rejected,
                };
                let (same, rest): (Vec<_>, Vec<_>) = pending.drain(..).partition(|(_, p)| p.session_id == req.session_id);
                *pending = rest;
                let _ = req.done.send(Err(err));
                for (id, other) in same {
                    self.replied(&other, &id, Reply::Reject);
                    let _ = other.done.send(Err(PermissionError::Rejected));
                }
            }
            Reply::Always => {
                {
                    let mut approved = self.approved.lock().unwrap_or_else(|e| e.into_inner());
                    for pattern in &req.always {
                        let known = approved.iter().any(|s| s.project_id == req.project && s.permission == req.permission && s.pattern == *pattern);
                        if !known {
                            let rule = SavedRule {
                                id: id::ascending(Prefix::SavedPermission),
                                project_id: req.project.clone(),
                                permission: req.permission.clone(),
                                pattern: pattern.clone(),
                            };
                            self.record(Change::Add(rule.clone()));
                            approved.push(rule);
                        }
                    }
                }
                let _ = req.done.send(Ok(()));
                let approved = self.approved(&req.project);
                let (now_allowed, rest): (Vec<_>, Vec<_>) = pending.drain(..).partition(|(_, p)| {
                    p.session_id == req.session_id && p.patterns.iter().all(|pat| evaluate(&p.permission, pat, &[&p.ruleset, &approved]) == Action::Allow)
                });
                *pending = rest;
                for (id, other) in now_allowed {
                    self.replied(&other, &id, Reply::Always);
                    let _ = other.done.send(Ok(()));
                }
            }
        }
        Some(())
    }

    fn replied(&self, req: &Pending, request_id: &str, reply: Reply) {
        let props = json!({"sessionID": req.session_id, "requestID": request_id, "reply": reply});
        self.bus.publish(req.directory.as_deref(), None, "permission.replied", props);
    }

    fn forget(&self, request_id: &str) {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).retain(|(id, _)| id != request_id);
    }
}

/// The gate of one session: its agent's rules, the approved ones, and the
/// pending-request registry for what needs asking.
pub struct SessionGate {
    pub permissions: Arc<Permissions>,
    pub ruleset: Vec<Rule>,
    /// The session's directory, for the events' instance.
    pub directory: Option<String>,
    /// The session's project, whose `always` answers apply ([`GLOBAL_PROJECT`] when `None`).
    pub project: Option<String>,
}

/// Removes a pending request whose waiting call was dropped (an abort).
struct ForgetOnDrop<'a>(&'a Permissions, String);

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.forget(&self.1);
    }
}

impl SessionGate {
    /// What the rules and the project's saved answers say about `input`:
    /// `Deny` (with the relevant rules) when a pattern is denied, else `Ask`
    /// when one needs asking, else `Allow`.
    fn effect(&self, input: &AskInput) -> Result<Action, PermissionError> {
        let approved = self.permissions.approved(self.project());
        let mut needs_asking = false;
        for pattern in &input.patterns {
            match evaluate(&input.permission, pattern, &[&self.ruleset, &approved]) {
                Action::Deny => {
                    let relevant = self.ruleset.iter().filter(|r| wildcard(&input.permission, &r.permission)).cloned().collect();
                    return Err(PermissionError::Denied(relevant));
                }
                Action::Ask => needs_asking = true,
                Action::Allow => {}
            }
        }
        Ok(if needs_asking { Action::Ask } else { Action::Allow })
    }

    fn project(&self) -> &str {
        self.project.as_deref().unwrap_or(GLOBAL_PROJECT)
    }

    /// Makes `input` a pending request with id `request_id`, published as
    /// `permission.asked`; the receiver gets the reply.
    fn pend(&self, session_id: &str, request_id: &str, input: AskInput) -> oneshot::Receiver<Result<(), PermissionError>> {
        let mut request = json!({
            "id": request_id,
            "sessionID": session_id,
            "permission": input.permission,
            "patterns": input.patterns,
            "metadata": input.metadata,
            "always": input.always,
        });
        if let Some((message_id, call_id)) = &input.tool {
            request["tool"] = json!({"messageID": message_id, "callID": call_id});
        }
        let (done, wait) = oneshot::channel();
        let pending = Pending {
            request: request.clone(),
            session_id: session_id.to_string(),
            permission: input.permission,
            patterns: input.patterns,
            always: input.always,
            ruleset: self.ruleset.clone(),
            directory: self.directory.clone(),
            project: self.project().to_string(),
            done,
        };
        self.permissions.pending.lock().unwrap_or_else(|e| e.into_inner()).push((request_id.to_string(), pending));
        self.permissions.bus.publish(self.directory.as_deref(), None, "permission.asked", request);
        wait
    }

    /// A request a client makes for the session (v2 `POST
    /// /api/session/{id}/permission`): evaluated as a tool's would be and,
    /// when it needs asking, left pending for a client to answer; nothing
    /// waits for that answer here. The request's id (`id` when given) and the
    /// effect; `None` when a request with that id is already pending.
    pub fn create(&self, session_id: &str, id: Option<String>, input: AskInput) -> Option<(String, Action)> {
        let request_id = id.unwrap_or_else(|| id::ascending(Prefix::Permission));
        if self.permissions.pending.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|(known, _)| *known == request_id) {
            return None;
        }
        let effect = match self.effect(&input) {
            Err(_) => return Some((request_id, Action::Deny)),
            Ok(effect) => effect,
        };
        if effect == Action::Ask {
            drop(self.pend(session_id, &request_id, input));
        }
        Some((request_id, effect))
    }
}

#[async_trait]
impl Gate for SessionGate {
    async fn ask(&self, session_id: &str, input: AskInput) -> Result<(), PermissionError> {
        if self.effect(&input)? == Action::Allow {
            return Ok(());
        }
        let request_id = id::ascending(Prefix::Permission);
        let wait = self.pend(session_id, &request_id, input);
        let _guard = ForgetOnDrop(&self.permissions, request_id);
        wait.await.unwrap_or(Err(PermissionError::Rejected))
    }
}

#[cfg(test)]
mod tests;
