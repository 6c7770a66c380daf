//! The tools a model may call, with OpenCode's names, argument schemas and
//! result shapes (title, output, metadata), so the TUI renders them as it
//! renders OpenCode's.
//!
//! Every tool works through the [`Env`](crate::env::Env) of the session: a
//! `bash` call in a Docker workspace runs in the container, a `write` over SSH
//! writes on the remote host. Nothing here touches the server's own
//! filesystem, except the folder where over-long outputs are saved
//! ([`truncate`]), which only the server reads back.

mod bash;
pub mod diff;
mod edit;
mod fs;
mod question;
mod read;
pub mod replace;
mod search;
mod task;
mod todo;
pub mod truncate;

pub use fs::MAX_EDIT_BYTES;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::permission::{AskInput, Gate, PermissionError};
use super::provider::ToolSpec;
use crate::env::{EnvError, SharedEnv, WorkspacePath};
pub use task::{Subagents, Subtask, SubtaskChild};
pub use todo::{Todo, TodoStore};
pub use truncate::Truncator;

/// What a tool produced, as OpenCode stores it in a completed tool part.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolOutput {
    pub title: String,
    pub output: String,
    pub metadata: Value,
    /// Files the tool changed, absolute as the environment names them: the
    /// loop publishes `file.edited` for each and records a `patch` part.
    pub edited: Vec<String>,
}

impl ToolOutput {
    pub fn new(title: impl Into<String>, output: impl Into<String>, metadata: Value) -> Self {
        Self { title: title.into(), output: output.into(), metadata, edited: Vec::new() }
    }
}

/// Why a tool call failed; the message goes to the model and into the part's `error`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Permission(#[from] PermissionError),
    #[error("Tool execution aborted")]
    Aborted,
}

impl From<EnvError> for ToolError {
    fn from(e: EnvError) -> Self {
        ToolError::Failed(e.to_string())
    }
}

pub type ToolResult = Result<ToolOutput, ToolError>;

pub fn fail<T>(message: impl Into<String>) -> Result<T, ToolError> {
    Err(ToolError::Failed(message.into()))
}

/// Streams a running tool's progress to its part: a title (the task tool
/// names its sub-session) and metadata (bash output so far).
pub type MetadataSink = Arc<dyn Fn(Option<String>, Value) + Send + Sync>;

/// Everything a tool call may use.
#[derive(Clone)]
pub struct ToolContext {
    pub env: SharedEnv,
    /// The directory the session works in, inside the workspace.
    pub cwd: WorkspacePath,
    pub session_id: String,
    pub message_id: String,
    pub call_id: String,
    /// Cancelled when the session is aborted: tools stop and kill what they started.
    pub abort: CancellationToken,
    pub gate: Arc<dyn Gate>,
    pub todos: Arc<TodoStore>,
    pub truncator: Arc<Truncator>,
    pub metadata: Option<MetadataSink>,
    /// Runs sub-sessions for the `task` tool; `None` where there are no sessions.
    pub subagents: Option<Arc<dyn Subagents>>,
    /// The files the turn changed, as they were before (the turn's summary).
    pub changes: Arc<crate::agent::changes::Changes>,
    /// Where the `question` tool asks the user; `None` where no client can answer.
    pub questions: Option<crate::agent::question::Asker>,
}

impl ToolContext {
    /// The workspace root as the environment names it.
    pub fn root(&self) -> &str {
        self.env.root()
    }

    /// Resolves a path the model gave (absolute inside the workspace, or
    /// relative to the session's directory) and checks it stays inside.
    pub async fn resolve(&self, input: &str) -> Result<WorkspacePath, ToolError> {
        let input = input.trim();
        let path = if input.starts_with('/') { WorkspacePath::parse(self.root(), input) } else { self.cwd.join_checked(input) };
        let path = path.map_err(|_| ToolError::Failed(format!("{input} is outside the workspace {}; tools can only reach files inside it", self.root())))?;
        self.env.confine(&path).await?;
        Ok(path)
    }

    /// The absolute path the model and the TUI see.
    pub fn absolute(&self, path: &WorkspacePath) -> String {
        path.absolute(self.root())
    }

    /// A path relative to the workspace root, as OpenCode titles and permission patterns use.
    pub fn relative(&self, path: &WorkspacePath) -> String {
        path.as_str().to_string()
    }

    pub async fn ask(&self, input: AskInput) -> Result<(), ToolError> {
        let input = AskInput { tool: Some((self.message_id.clone(), self.call_id.clone())), ..input };
        self.gate.ask(&self.session_id, input).await.map_err(ToolError::Permission)
    }

    pub fn report(&self, metadata: Value) {
        self.progress(None, metadata);
    }

    pub fn progress(&self, title: Option<String>, metadata: Value) {
        if let Some(sink) = &self.metadata {
            sink(title, metadata);
        }
    }
}

#[async_trait]
pub trait Tool: Send + Sync {
    /// Built-in tools have fixed names; an MCP server's are known at run time.
    fn name(&self) -> &str;
    fn description(&self) -> &str;
    /// The JSON Schema of the arguments.
    fn parameters(&self) -> Value;
    async fn run(&self, input: Value, ctx: &ToolContext) -> ToolResult;

    /// Whether the tool ends by itself once `ctx.abort` fires, after winding
    /// down work that must not be left behind (a subagent's session, which
    /// must be idle when the parent's abort returns). Other tools are simply
    /// dropped at the abort.
    fn winds_down_on_abort(&self) -> bool {
        false
    }
}

/// Parses a tool's arguments, with the error OpenCode gives a model that sent bad ones.
pub fn args<T: DeserializeOwned>(tool: &str, input: Value) -> Result<T, ToolError> {
    serde_json::from_value(input).map_err(|e| {
        ToolError::Failed(format!("The {tool} tool was called with invalid arguments: {e}.\nPlease rewrite the input so it satisfies the expected schema."))
    })
}

/// The tools by name.
#[derive(Clone)]
pub struct Registry {
    tools: HashMap<String, Arc<dyn Tool>>,
    order: Vec<String>,
}

impl Registry {
    /// OpenCode's built-in tools.
    pub fn builtin() -> Self {
        let all: Vec<Arc<dyn Tool>> = vec![
            Arc::new(question::Question),
            Arc::new(bash::Bash),
            Arc::new(read::Read),
            Arc::new(fs::Write),
            Arc::new(edit::Edit),
            Arc::new(search::Glob),
            Arc::new(search::Grep),
            Arc::new(fs::List),
            Arc::new(todo::TodoWrite),
            Arc::new(todo::TodoRead),
            Arc::new(task::Task),
        ];
        let order = all.iter().map(|t| t.name().to_string()).collect();
        Self { tools: all.into_iter().map(|t| (t.name().to_string(), t)).collect(), order }
    }

    /// The built-in tools and `extra` (an MCP server's), after them; an extra
    /// tool never replaces a built-in one of the same name.
    pub fn with(mut self, extra: Vec<Arc<dyn Tool>>) -> Self {
        for tool in extra {
            let name = tool.name().to_string();
            if !self.tools.contains_key(&name) {
                self.order.push(name.clone());
                self.tools.insert(name, tool);
            }
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Tool>> {
        self.tools.get(name).cloned()
    }

    /// The specs sent to the model, in a stable order.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.order
            .iter()
            .filter_map(|n| self.tools.get(n.as_str()))
            .map(|t| ToolSpec { name: t.name().to_string(), description: t.description().to_string(), parameters: t.parameters() })
            .collect()
    }

    /// Runs one call. An unknown tool is an error the model can read and correct.
    pub async fn run(&self, name: &str, input: Value, ctx: &ToolContext) -> ToolResult {
        let Some(tool) = self.get(name) else {
            let known = self.order.join(", ");
            return fail(format!("Model tried to call unavailable tool '{name}'. Available tools: {known}."));
        };
        if ctx.abort.is_cancelled() {
            return Err(ToolError::Aborted);
        }
        let mut out = if tool.winds_down_on_abort() {
            let res = tool.run(input, ctx).await;
            if ctx.abort.is_cancelled() {
                return Err(ToolError::Aborted);
            }
            res?
        } else {
            tokio::select! {
                res = tool.run(input, ctx) => res?,
                _ = ctx.abort.cancelled() => return Err(ToolError::Aborted),
            }
        };
        // Tools that cap their own output say so in `truncated`; the rest are capped here.
        if out.metadata.get("truncated").is_none() {
            let t = ctx.truncator.output(&out.output, truncate::Keep::Head).await;
            out.output = t.content;
            if let Some(map) = out.metadata.as_object_mut() {
                map.insert("truncated".into(), Value::Bool(t.truncated));
                if let Some(p) = t.output_path {
                    map.insert("outputPath".into(), Value::String(p));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests;
