//! The `task` tool through the real server: the model hands work to a
//! subagent, which runs in a child session with its own turn against the
//! same scripted provider; the parent gets the child's answer. Aborting the
//! parent aborts the child.

mod support;

use serde_json::{json, Value};
use support::agent::{part, tool_names, AgentServer};
use support::calls::Events;
use support::llm::{text, ScriptedLlm, Turn};

fn task_call(description: &str, prompt: &str, agent: &str) -> Turn {
    Turn::tool("call_task", "task", json!({"description": description, "prompt": prompt, "subagent_type": agent}))
}

/// The event's session, wherever its properties name it.
fn session_of(e: &Value) -> Option<&str> {
    let p = &e["properties"];
    p["sessionID"].as_str().or(p["info"]["sessionID"].as_str()).or(p["part"]["sessionID"].as_str())
}

#[tokio::test]
async fn the_task_tool_runs_a_subagent_in_a_child_session() {
    let llm = ScriptedLlm::openai(vec![task_call("Find the answer", "compute 6*7", "general"), Turn::text("42"), Turn::text("The subagent says 42.")]).await;
    let a = AgentServer::local(&llm.url, json!({})).await;
    let id = a.session().await;
    let mut events = Events::subscribe(&a.srv, "").await;
    let (status, answer) = a.post(&format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "ask a subagent"}]})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(part(&answer, "text")["text"], "The subagent says 42.");

    let (_, children) = a.srv.get(&format!("/session/{id}/children")).await;
    let child = children.as_array().unwrap()[0].clone();
    let child_id = child["id"].as_str().unwrap().to_string();
    assert_eq!((child["parentID"].clone(), child["title"].as_str()), (json!(id), Some("Find the answer (@general subagent)")));
    // `general` has its own todowrite rule (deny); it gets no task of its own either.
    assert_eq!(child["permission"], json!([{"permission": "task", "pattern": "*", "action": "deny"}]));

    let list = a.messages(&id).await;
    let task = part(&list[1], "tool");
    let state = &task["state"];
    assert_eq!((task["tool"].as_str(), state["status"].as_str(), state["title"].as_str()), (Some("task"), Some("completed"), Some("Find the answer")));
    assert_eq!(state["output"], format!("<task id=\"{child_id}\" state=\"completed\">\n<task_result>\n42\n</task_result>\n</task>"));
    assert_eq!(state["metadata"]["sessionId"], json!(child_id));
    assert_eq!(state["metadata"]["parentSessionId"], json!(id));
    assert_eq!(state["metadata"]["model"], json!({"modelID": "fake-model", "providerID": "fake"}));
    let child_messages = a.messages(&child_id).await;
    assert_eq!(part(&child_messages[0], "text")["text"], "compute 6*7");
    assert_eq!(child_messages[1]["info"]["agent"], "general");

    // While the child worked, the running part already named it (the TUI follows it there).
    let running = loop {
        let e = events.next_of("message.part.updated").await;
        if e["properties"]["part"]["state"]["status"] == "running"
            && e["properties"]["part"]["tool"] == "task"
            && e["properties"]["part"]["state"]["metadata"].is_object()
        {
            break e;
        }
    };
    assert_eq!(running["properties"]["part"]["state"]["metadata"]["sessionId"], json!(child_id));
    assert_eq!(running["properties"]["part"]["state"]["title"], "Find the answer");

    let requests = llm.requests();
    let description = requests[0]["tools"].as_array().unwrap().iter().find(|t| t["function"]["name"] == "task").unwrap()["function"]["description"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(description.contains("Available agent types") && description.contains("- general: ") && description.contains("- explore: "), "{description}");
    assert!(!description.contains("- build:"), "primary agents are not subagents");
    assert!(!tool_names(&requests[1]).contains(&"task".to_string()), "the child may not nest tasks");
    assert!(requests[2]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["role"] == "tool" && m["content"].as_str().unwrap_or("").contains("<task_result>\n42")));
}

#[tokio::test]
async fn unknown_subagents_are_an_error_the_model_reads() {
    let llm = ScriptedLlm::openai(vec![task_call("Nothing", "x", "ghost"), Turn::text("Sorry.")]).await;
    let a = AgentServer::local(&llm.url, json!({})).await;
    let id = a.session().await;
    a.post(&format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "go"}]})).await;
    let list = a.messages(&id).await;
    let task = part(&list[1], "tool");
    assert_eq!(task["state"]["status"], "error");
    assert_eq!(task["state"]["error"], "Unknown agent type: ghost is not a valid agent type");
    let (_, children) = a.srv.get(&format!("/session/{id}/children")).await;
    assert_eq!(children, json!([]));
}

#[tokio::test]
async fn aborting_the_parent_aborts_the_child() {
    let llm = ScriptedLlm::openai(vec![task_call("Slow work", "take your time", "general"), Turn::Hang(vec![text("thinking")])]).await;
    let a = AgentServer::local(&llm.url, json!({})).await;
    let id = a.session().await;
    let mut events = Events::subscribe(&a.srv, "").await;
    let (status, _) = a.post(&format!("/session/{id}/prompt_async"), json!({"parts": [{"type": "text", "text": "delegate"}]})).await;
    assert_eq!(status, 204);
    // The child streams, then hangs.
    let delta = events.next_of("message.part.delta").await;
    let child_id = session_of(&delta).unwrap().to_string();
    assert_ne!(child_id, id);
    let (status, ok) = a.post(&format!("/session/{id}/abort"), json!({})).await;
    assert_eq!((status, ok), (200, json!(true)));

    let child = a.messages(&child_id).await;
    assert_eq!(child.last().unwrap()["info"]["error"]["name"], "MessageAbortedError", "{child:?}");
    let parent = a.messages(&id).await;
    let last = parent.last().unwrap();
    assert_eq!(last["info"]["error"]["name"], "MessageAbortedError");
    assert_eq!(part(last, "tool")["state"]["status"], "error");
    let (_, status) = a.srv.get("/session/status").await;
    assert_eq!(status, json!({}), "both sessions are idle");
    llm.hung_up().await;
}
