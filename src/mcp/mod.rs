//! MCP servers, as OpenCode runs them: the config's `mcp` entries are
//! connected when a directory first needs them (`GET /mcp`, a turn's tools),
//! their tools join the agent's under `<server>_<tool>` names, and
//! `POST /mcp`, connect and disconnect change them at run time.
//!
//! A local server runs **inside the environment** (in the container, on the
//! SSH host, in the local folder), started through [`Env::pty`]; a remote one
//! is reached over HTTP from the server. Servers belong to one workspace's
//! [`Mcp`]: shutting the workspace down (idle stop, removal, server exit)
//! closes them, and a disconnect kills the process at once.
//!
//! [`Env::pty`]: crate::env::Env::pty

pub mod client;
pub mod config;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::agent::permission::AskInput;
use crate::agent::tools::{Tool, ToolContext, ToolError, ToolOutput, ToolResult};
use crate::env::{SharedEnv, WorkspacePath};
use client::{Client, ToolDef};
pub use config::ServerConfig;

/// A server's status, as OpenCode's `MCPStatus` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    Connected,
    Disabled,
    Failed { error: String },
}

/// No server of that name (`McpServerNotFoundError`).
#[derive(Debug, thiserror::Error)]
#[error("MCP server not found: {0}")]
pub struct NotFound(pub String);

/// The MCP servers of one workspace, per directory (each directory has its
/// own config, as each OpenCode instance has).
pub struct Mcp {
    env: SharedEnv,
    dirs: Mutex<HashMap<WorkspacePath, Arc<Servers>>>,
}

/// The servers of one directory.
pub struct Servers {
    env: SharedEnv,
    dir: WorkspacePath,
    loaded: tokio::sync::OnceCell<()>,
    /// In config order; connecting holds the lock, so two requests never
    /// start the same server twice.
    list: tokio::sync::Mutex<Vec<Server>>,
}

struct Server {
    name: String,
    config: Result<ServerConfig, String>,
    state: State,
}

enum State {
    Connected { client: Arc<Client>, tools: Vec<ToolDef> },
    Disabled,
    Failed(String),
}

impl State {
    /// A server whose process ended by itself is `failed` with the reason.
    fn status(&self) -> Status {
        match self {
            State::Connected { client, .. } => match client.ended() {
                Some(why) => Status::Failed { error: why },
                None => Status::Connected,
            },
            State::Disabled => Status::Disabled,
            State::Failed(e) => Status::Failed { error: e.clone() },
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Mcp {
    pub fn new(env: SharedEnv) -> Self {
        Self { env, dirs: Mutex::default() }
    }

    /// The servers of `dir`, connected from `mcp` (the directory's config
    /// key) the first time.
    pub async fn servers(&self, dir: &WorkspacePath, mcp: Option<&Map<String, Value>>) -> Arc<Servers> {
        let servers = lock(&self.dirs)
            .entry(dir.clone())
            .or_insert_with(|| Arc::new(Servers { env: self.env.clone(), dir: dir.clone(), loaded: Default::default(), list: Default::default() }))
            .clone();
        servers.load(mcp).await;
        servers
    }

    /// Closes every server (their processes are killed); the next use of a
    /// directory connects them again.
    pub async fn close_all(&self) {
        let all: Vec<Arc<Servers>> = lock(&self.dirs).drain().map(|(_, s)| s).collect();
        for servers in all {
            servers.close_all().await;
        }
    }
}

impl Servers {
    async fn load(&self, mcp: Option<&Map<String, Value>>) {
        self.loaded
            .get_or_init(|| async {
                let configs = config::servers(mcp);
                let mut list = self.list.lock().await;
                let connecting = configs.into_iter().map(|(name, config)| async move {
                    let state = match &config {
                        Ok(c) if c.enabled() => self.connect_to(&name, c).await,
                        Ok(_) => State::Disabled,
                        Err(e) => State::Failed(e.clone()),
                    };
                    Server { name, config, state }
                });
                *list = futures::future::join_all(connecting).await;
            })
            .await;
    }

    async fn connect_to(&self, name: &str, config: &ServerConfig) -> State {
        let timeout = config.connect_timeout();
        if matches!(config, ServerConfig::Local(l) if l.command.is_empty()) {
            // Only `{"enabled": false}` in the config, and connected by hand.
            return State::Failed("no `command` in this server's config".into());
        }
        let connected = match config {
            ServerConfig::Local(l) => Client::local(self.env.clone(), &self.dir, l, timeout).await,
            ServerConfig::Remote(r) => Client::remote(r, timeout).await,
        };
        let client = match connected {
            Ok(c) => Arc::new(c),
            Err(e) => {
                tracing::warn!("MCP server {name} failed: {e}");
                return State::Failed(e);
            }
        };
        match client.tools(timeout).await {
            Ok(tools) => State::Connected { client, tools },
            Err(e) => {
                client.close().await;
                tracing::warn!("MCP server {name} failed: {e}");
                State::Failed(e)
            }
        }
    }

    /// Every server's status, by name in config order.
    pub async fn status(&self) -> Map<String, Value> {
        let list = self.list.lock().await;
        list.iter().map(|s| (s.name.clone(), json!(s.state.status()))).collect()
    }

    /// Adds (or replaces) server `name` and connects it unless it is disabled.
    pub async fn add(&self, name: &str, config: ServerConfig) -> Map<String, Value> {
        let state = if config.enabled() { self.connect_to(name, &config).await } else { State::Disabled };
        let mut list = self.list.lock().await;
        let server = Server { name: name.to_string(), config: Ok(config), state };
        match list.iter_mut().find(|s| s.name == name) {
            Some(old) => {
                let old = std::mem::replace(old, server);
                close(old.state).await;
            }
            None => list.push(server),
        }
        drop(list);
        self.status().await
    }

    /// Connects server `name` again (even one its config disables), closing
    /// its current connection first.
    pub async fn connect(&self, name: &str) -> Result<Status, NotFound> {
        let mut list = self.list.lock().await;
        let server = list.iter_mut().find(|s| s.name == name).ok_or_else(|| NotFound(name.to_string()))?;
        close(std::mem::replace(&mut server.state, State::Disabled)).await;
        server.state = match &server.config {
            Ok(c) => self.connect_to(name, c).await,
            Err(e) => State::Failed(e.clone()),
        };
        Ok(server.state.status())
    }

    /// Disconnects server `name`: its process is killed, its tools leave the agent.
    pub async fn disconnect(&self, name: &str) -> Result<(), NotFound> {
        let mut list = self.list.lock().await;
        let server = list.iter_mut().find(|s| s.name == name).ok_or_else(|| NotFound(name.to_string()))?;
        close(std::mem::replace(&mut server.state, State::Disabled)).await;
        Ok(())
    }

    async fn close_all(&self) {
        let mut list = self.list.lock().await;
        for server in list.iter_mut() {
            close(std::mem::replace(&mut server.state, State::Disabled)).await;
        }
    }

    /// The tools of the connected servers, named as OpenCode names them.
    pub async fn tools(&self) -> Vec<Arc<dyn Tool>> {
        let list = self.list.lock().await;
        let mut out: Vec<Arc<dyn Tool>> = Vec::new();
        for server in list.iter() {
            let State::Connected { client, tools } = &server.state else { continue };
            if client.ended().is_some() {
                continue;
            }
            let timeout = server.config.as_ref().map(ServerConfig::call_timeout).unwrap_or(config::CALL_TIMEOUT);
            for def in tools {
                out.push(Arc::new(McpTool {
                    name: tool_name(&server.name, &def.name),
                    description: def.description.clone().unwrap_or_default(),
                    parameters: parameters(&def.input_schema),
                    tool: def.name.clone(),
                    client: client.clone(),
                    timeout,
                }));
            }
        }
        out
    }
}

async fn close(state: State) {
    if let State::Connected { client, .. } = state {
        client.close().await;
    }
}

/// OpenCode's sanitizing of server and tool names: anything but ASCII
/// letters, digits, `_` and `-` becomes `_`.
pub fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}

/// The name the agent knows a server's tool by.
pub fn tool_name(server: &str, tool: &str) -> String {
    format!("{}_{}", sanitize(server), sanitize(tool))
}

/// The tool's input schema as OpenCode hands it to the model: an object,
/// with `properties` always present and no properties beyond them.
fn parameters(schema: &Value) -> Value {
    let mut out = schema.as_object().cloned().unwrap_or_default();
    out.insert("type".into(), json!("object"));
    if !out.get("properties").is_some_and(Value::is_object) {
        out.insert("properties".into(), json!({}));
    }
    out.insert("additionalProperties".into(), json!(false));
    Value::Object(out)
}

/// One MCP tool offered to the agent.
struct McpTool {
    name: String,
    description: String,
    parameters: Value,
    /// The server's own name for it.
    tool: String,
    client: Arc<Client>,
    timeout: Duration,
}

#[async_trait]
impl Tool for McpTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> Value {
        self.parameters.clone()
    }

    async fn run(&self, input: Value, ctx: &ToolContext) -> ToolResult {
        // As OpenCode asks for an MCP tool: the tool's own name, any pattern.
        ctx.ask(AskInput::new(&self.name, vec!["*".into()], vec!["*".into()], json!({}))).await?;
        let arguments = if input.is_null() { json!({}) } else { input };
        let result = self.client.call(&self.tool, arguments, self.timeout).await.map_err(ToolError::Failed)?;
        let texts = texts(&result);
        if result.get("isError").and_then(Value::as_bool) == Some(true) {
            let text = texts.into_iter().filter(|t| !t.trim().is_empty()).collect::<Vec<_>>().join("\n");
            return Err(ToolError::Failed(if text.is_empty() { "MCP tool returned an error".into() } else { text }));
        }
        let output = if texts.is_empty() {
            result.get("structuredContent").filter(|v| !v.is_null()).map(Value::to_string).unwrap_or_default()
        } else {
            texts.join("\n\n")
        };
        Ok(ToolOutput::new("", output, json!({})))
    }
}

/// The text of a `tools/call` result: its text items, the text of embedded
/// resources, and `name: uri` for resource links (binary items are not kept).
fn texts(result: &Value) -> Vec<String> {
    let items = result.get("content").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    items
        .iter()
        .filter_map(|item| match item.get("type").and_then(Value::as_str) {
            Some("text") => item.get("text").and_then(Value::as_str).map(str::to_string),
            Some("resource") => item.pointer("/resource/text").and_then(Value::as_str).map(str::to_string),
            Some("resource_link") => Some(format!("{}: {}", item["name"].as_str().unwrap_or(""), item["uri"].as_str().unwrap_or(""))),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitized_as_opencode_does() {
        assert_eq!(tool_name("my server", "read.file"), "my_server_read_file");
        assert_eq!(tool_name("gh-2", "list_issues"), "gh-2_list_issues");
        assert_eq!(tool_name("é", "a/b"), "__a_b");
    }

    #[test]
    fn schemas_are_closed_objects() {
        assert_eq!(parameters(&json!({"type": "object"})), json!({"type": "object", "properties": {}, "additionalProperties": false}));
        let p = parameters(&json!({"properties": {"q": {"type": "string"}}, "required": ["q"]}));
        assert_eq!(p["required"], json!(["q"]));
        assert_eq!(p["type"], "object");
    }

    #[test]
    fn statuses_have_opencode_shapes() {
        assert_eq!(json!(Status::Connected), json!({"status": "connected"}));
        assert_eq!(json!(Status::Disabled), json!({"status": "disabled"}));
        assert_eq!(json!(Status::Failed { error: "x".into() }), json!({"status": "failed", "error": "x"}));
    }

    #[test]
    fn results_read_as_opencode_reads_them() {
        let r = json!({"content": [{"type": "text", "text": "a"}, {"type": "image", "data": "", "mimeType": "image/png"}, {"type": "resource_link", "name": "n", "uri": "u"}]});
        assert_eq!(texts(&r), ["a", "n: u"]);
    }
}
