//! `todowrite` and `todoread`: the session's task list, which the TUI shows
//! beside the conversation (`todo.updated`, `GET /session/{id}/todo`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{args, Tool, ToolContext, ToolOutput, ToolResult};
use crate::agent::permission::AskInput;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Todo {
    /// Brief description of the task.
    pub content: String,
    /// `pending`, `in_progress`, `completed` or `cancelled`.
    pub status: String,
    /// `high`, `medium` or `low`.
    pub priority: String,
    /// Older OpenCode versions gave todos an id; kept when a model sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Called with (sessionID, todos) after each change, to publish and persist it.
pub type TodoListener = Arc<dyn Fn(&str, &[Todo]) + Send + Sync>;

/// Every session's todo list.
#[derive(Default)]
pub struct TodoStore {
    lists: Mutex<HashMap<String, Vec<Todo>>>,
    listener: Mutex<Option<TodoListener>>,
}

impl TodoStore {
    pub fn on_change(&self, listener: TodoListener) {
        *self.listener.lock().unwrap_or_else(|e| e.into_inner()) = Some(listener);
    }

    pub fn get(&self, session_id: &str) -> Vec<Todo> {
        self.lists.lock().unwrap_or_else(|e| e.into_inner()).get(session_id).cloned().unwrap_or_default()
    }

    pub fn set(&self, session_id: &str, todos: Vec<Todo>) {
        self.lists.lock().unwrap_or_else(|e| e.into_inner()).insert(session_id.to_string(), todos.clone());
        let listener = self.listener.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(l) = listener {
            l(session_id, &todos);
        }
    }
}

fn result(todos: &[Todo]) -> ToolOutput {
    let open = todos.iter().filter(|t| t.status != "completed").count();
    let output = serde_json::to_string_pretty(todos).unwrap_or_default();
    ToolOutput::new(format!("{open} todos"), output, json!({"todos": todos}))
}

pub struct TodoWrite;

#[derive(Deserialize)]
struct WriteArgs {
    todos: Vec<Todo>,
}

#[async_trait]
impl Tool for TodoWrite {
    fn name(&self) -> &'static str {
        "todowrite"
    }
    fn description(&self) -> &'static str {
        "Create and maintain a structured task list for the current coding session. Tracks progress, organizes multi-step work, and surfaces status to the user.\n\nStates: `pending`, `in_progress` (exactly one at a time), `completed`, `cancelled`. Update status in real time; mark `completed` only after the work is actually done."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "todos": {
                    "type": "array",
                    "description": "The updated todo list",
                    "items": {
                        "type": "object",
                        "properties": {
                            "content": {"type": "string", "description": "Brief description of the task"},
                            "status": {"type": "string", "description": "Current status of the task: pending, in_progress, completed, cancelled"},
                            "priority": {"type": "string", "description": "Priority level of the task: high, medium, low"},
                            "id": {"type": "string", "description": "Unique identifier for the todo item"}
                        },
                        "required": ["content", "status", "priority"]
                    }
                }
            },
            "required": ["todos"]
        })
    }

    async fn run(&self, input: Value, ctx: &ToolContext) -> ToolResult {
        let a: WriteArgs = args("todowrite", input)?;
        ctx.ask(AskInput::new("todowrite", vec!["*".into()], vec!["*".into()], json!({}))).await?;
        ctx.todos.set(&ctx.session_id, a.todos.clone());
        Ok(result(&a.todos))
    }
}

pub struct TodoRead;

#[async_trait]
impl Tool for TodoRead {
    fn name(&self) -> &'static str {
        "todoread"
    }
    fn description(&self) -> &'static str {
        "Use this tool to read your todo list"
    }
    fn parameters(&self) -> Value {
        json!({"type": "object", "properties": {}})
    }

    async fn run(&self, _: Value, ctx: &ToolContext) -> ToolResult {
        ctx.ask(AskInput::new("todoread", vec!["*".into()], vec!["*".into()], json!({}))).await?;
        Ok(result(&ctx.todos.get(&ctx.session_id)))
    }
}
