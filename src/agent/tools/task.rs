//! `task`: hands a piece of work to a subagent in a sub-session of its own (a
//! child session, `parentID` set), waits for it and returns its final text,
//! with OpenCode's input (`description`, `prompt`, `subagent_type`) and
//! metadata (`sessionId`, which the TUI follows into the child).
//!
//! The agent layer knows no sessions: a [`Subagents`] runner from the session
//! layer creates the child and runs the prompt there, through the same turn
//! machinery as any prompt, in the same environment.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::{args, fail, Tool, ToolContext, ToolError, ToolOutput, ToolResult};
use crate::agent::permission::AskInput;

pub struct Task;

/// What the model (or a command) asks a subagent to do.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Subtask {
    pub description: String,
    pub prompt: String,
    #[serde(rename = "subagent_type")]
    pub agent: String,
    /// A child session to continue instead of a new one.
    pub task_id: Option<String>,
    /// The command that started this task.
    pub command: Option<String>,
}

/// The child session a task runs in, and the model it uses.
#[derive(Clone, Debug, PartialEq)]
pub struct SubtaskChild {
    pub session_id: String,
    pub provider_id: String,
    pub model_id: String,
}

/// Creates and runs sub-sessions; the messages are what the model reads.
#[async_trait]
pub trait Subagents: Send + Sync {
    /// Checks the request (known agent, nesting depth) and creates the child
    /// session, or finds the one `task_id` names.
    async fn start(&self, parent_session: &str, task: &Subtask) -> Result<SubtaskChild, String>;
    /// Runs the task's prompt in the child to its end: the child's final
    /// text, or why it failed. Cancelling `abort` aborts the child's turn.
    async fn run(&self, child: &SubtaskChild, task: &Subtask, abort: CancellationToken) -> Result<String, String>;
}

pub const DESCRIPTION: &str = "Launch a new agent to handle complex, multistep tasks autonomously.
When using the Task tool, you must specify a subagent_type parameter to select which agent type to use.
When NOT to use the Task tool:
- If you want to read a specific file path, use the Read or Glob tool instead of the Task tool, to find the match more quickly
- If you are searching for a specific class definition like \"class Foo\", use the Grep tool instead, to find the match more quickly
- If you are searching for code within a specific file or set of 2-3 files, use the Read tool instead of the Task tool, to find the match more quickly
- If no available agent is a good fit for the task, use other tools directly
Usage notes:
1. Launch multiple agents concurrently whenever possible, to maximize performance; to do that, use a single message with multiple tool uses
2. Once you have delegated work to an agent, do not duplicate that work yourself. Continue with non-overlapping tasks, or wait for the result.
3. When the agent is done, it will return a single message back to you. The result returned by the agent is not visible to the user. To show the user the result, you should send a text message back to the user with a concise summary of the result. The output includes a task_id you can reuse later to continue the same subagent session.
4. Each agent invocation starts with a fresh context unless you provide task_id to resume the same subagent session (which continues with its previous messages and tool outputs). When starting fresh, your prompt should contain a highly detailed task description for the agent to perform autonomously and you should specify exactly what information the agent should return back to you in its final and only message to you.
5. The agent's outputs should generally be trusted
6. Clearly tell the agent whether you expect it to write code or just to do research (search, file reads, web fetches, etc.), since it is not aware of the user's intent. Tell it how to verify its work if possible (e.g., relevant test commands).
7. If the agent description mentions that it should be used proactively, then you should try your best to use it without the user having to ask for it first. Use your judgement.
";

/// The tool's output, as OpenCode wraps a finished task for the model.
pub fn result(session_id: &str, text: &str) -> String {
    format!("<task id=\"{session_id}\" state=\"completed\">\n<task_result>\n{text}\n</task_result>\n</task>")
}

#[async_trait]
impl Tool for Task {
    fn name(&self) -> &'static str {
        "task"
    }

    /// An abort reaches the child's turn through `runner.run`, which returns
    /// once the child's session is idle again.
    fn winds_down_on_abort(&self) -> bool {
        true
    }
    fn description(&self) -> &'static str {
        DESCRIPTION
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "description": {"type": "string", "description": "A short (3-5 words) description of the task"},
                "prompt": {"type": "string", "description": "The task for the agent to perform"},
                "subagent_type": {"type": "string", "description": "The type of specialized agent to use for this task"},
                "task_id": {"type": "string", "description": "This should only be set if you mean to resume a previous task (you can pass a prior task_id and the task will continue the same subagent session as before instead of creating a fresh one)"},
                "command": {"type": "string", "description": "The command that triggered this task"}
            },
            "required": ["description", "prompt", "subagent_type"]
        })
    }

    async fn run(&self, input: Value, ctx: &ToolContext) -> ToolResult {
        let task: Subtask = args("task", input)?;
        let Some(runner) = ctx.subagents.clone() else {
            return fail("The task tool needs a session to attach its sub-session to.");
        };
        let metadata = json!({"description": task.description, "subagent_type": task.agent});
        let start = async {
            ctx.ask(AskInput::new("task", vec![task.agent.clone()], vec!["*".into()], metadata)).await?;
            runner.start(&ctx.session_id, &task).await.map_err(ToolError::Failed)
        };
        // Until the child runs there is nothing to wind down.
        let child = tokio::select! {
            child = start => child?,
            _ = ctx.abort.cancelled() => return Err(ToolError::Aborted),
        };
        let metadata = json!({
            "parentSessionId": ctx.session_id,
            "sessionId": child.session_id,
            "model": {"modelID": child.model_id, "providerID": child.provider_id},
        });
        ctx.progress(Some(task.description.clone()), metadata.clone());
        let text = runner
            .run(&child, &task, ctx.abort.clone())
            .await
            .map_err(|e| ToolError::Failed(format!("Subagent failed (task_id: {}): {e}", child.session_id)))?;
        Ok(ToolOutput::new(task.description.clone(), result(&child.session_id, &text), metadata))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::agent::tools::testing::Fixture;

    /// Records what it was asked and answers from a script.
    #[derive(Default)]
    struct Fake {
        seen: Mutex<Vec<Subtask>>,
        fail: bool,
    }

    #[async_trait]
    impl Subagents for Fake {
        async fn start(&self, parent: &str, task: &Subtask) -> Result<SubtaskChild, String> {
            assert_eq!(parent, "ses_test");
            if task.agent == "ghost" {
                return Err(format!("Unknown agent type: {} is not a valid agent type", task.agent));
            }
            self.seen.lock().unwrap().push(task.clone());
            Ok(SubtaskChild { session_id: "ses_child".into(), provider_id: "fake".into(), model_id: "m".into() })
        }
        async fn run(&self, child: &SubtaskChild, task: &Subtask, _: CancellationToken) -> Result<String, String> {
            if self.fail {
                return Err("APIError: down".into());
            }
            Ok(format!("{} did: {}", child.session_id, task.prompt))
        }
    }

    fn fixture(fake: Arc<Fake>) -> Fixture {
        let mut fx = Fixture::new();
        fx.ctx.subagents = Some(fake);
        fx
    }

    #[tokio::test]
    async fn runs_the_prompt_in_a_child_and_wraps_its_answer() {
        let fake = Arc::new(Fake::default());
        let fx = fixture(fake.clone());
        let out = fx.run("task", json!({"description": "Count files", "prompt": "count the files", "subagent_type": "general"})).await.unwrap();
        assert_eq!(out.title, "Count files");
        assert_eq!(out.output, "<task id=\"ses_child\" state=\"completed\">\n<task_result>\nses_child did: count the files\n</task_result>\n</task>");
        assert_eq!(out.metadata["sessionId"], "ses_child");
        assert_eq!(out.metadata["parentSessionId"], "ses_test");
        assert_eq!(out.metadata["model"], json!({"modelID": "m", "providerID": "fake"}));
        assert_eq!(fake.seen.lock().unwrap()[0].agent, "general");
    }

    #[tokio::test]
    async fn failures_name_the_child() {
        let fx = fixture(Arc::new(Fake { fail: true, ..Default::default() }));
        let err = fx.run("task", json!({"description": "d", "prompt": "p", "subagent_type": "general"})).await.unwrap_err();
        assert_eq!(err.to_string(), "Subagent failed (task_id: ses_child): APIError: down");
        let fx = fixture(Arc::new(Fake::default()));
        let err = fx.run("task", json!({"description": "d", "prompt": "p", "subagent_type": "ghost"})).await.unwrap_err();
        assert_eq!(err.to_string(), "Unknown agent type: ghost is not a valid agent type");
        let err = Fixture::new().run("task", json!({"description": "d", "prompt": "p", "subagent_type": "general"})).await.unwrap_err();
        assert!(err.to_string().contains("needs a session"), "{err}");
    }
}
