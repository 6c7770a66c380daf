//! Slash commands, `init` and compaction through the real server, answered by
//! a scripted OpenAI-compatible provider: templates filled in, commands run as
//! prompts or in sub-sessions, AGENTS.md written, summaries that replace the
//! history.

mod support;

use serde_json::{json, Value};
use support::agent::{contents, part, part_types, tool_names, AgentServer};
use support::calls::Events;
use support::llm::{ScriptedLlm, Turn};

/// The text parts of a message, joined.
fn text(message: &Value) -> String {
    message["parts"].as_array().unwrap().iter().filter(|p| p["type"] == "text").filter_map(|p| p["text"].as_str()).collect()
}

#[tokio::test]
async fn a_config_command_fills_its_template_and_runs_as_a_prompt() {
    let llm = ScriptedLlm::openai(vec![Turn::text("Hello, Ada.")]).await;
    let greet = json!({"greet": {"description": "greet someone", "template": "Say hello to $1 in $2. Marker: !`echo SHELL-OK`"}});
    let a = AgentServer::local(&llm.url, json!({"command": greet})).await;
    let id = a.session().await;
    let mut events = Events::subscribe(&a.srv, "").await;
    let (status, answer) = a.post(&format!("/session/{id}/command"), json!({"command": "greet", "arguments": "Ada \"plain English\""})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer["info"]["role"].as_str(), answer["info"]["finish"].as_str()), (Some("assistant"), Some("stop")), "{answer}");
    assert_eq!(text(&answer), "Hello, Ada.");

    // The template was filled in and its shell part ran in the workspace.
    let expanded = "Say hello to Ada in plain English. Marker: SHELL-OK";
    assert_eq!(contents(&llm.requests()[0], "user"), [expanded]);
    let list = a.messages(&id).await;
    assert_eq!(list[0]["info"]["role"], "user");
    assert_eq!(part(&list[0], "text")["text"], expanded);
    let executed = events.next_of("command.executed").await;
    assert_eq!(executed["properties"], json!({"name": "greet", "sessionID": id, "arguments": "Ada \"plain English\"", "messageID": answer["info"]["id"]}));

    // An unknown command is a 400 naming the ones there are.
    let (status, err) = a.post(&format!("/session/{id}/command"), json!({"command": "nope", "arguments": ""})).await;
    assert_eq!(status, 400, "{err}");
    let message = err["data"]["message"].as_str().unwrap();
    assert!(message.starts_with("Command not found: \"nope\".") && message.contains("greet") && message.contains("init"), "{message}");
    let published = events.next_of("session.error").await;
    assert_eq!(published["properties"]["error"]["data"]["message"], message);
    let (status, _) = a.post(&format!("/session/{id}/command"), json!({"command": "greet"})).await;
    assert_eq!(status, 400, "arguments is required");
}

#[tokio::test]
async fn init_has_the_model_write_agents_md() {
    let llm = ScriptedLlm::openai(vec![
        Turn::tool("call_w", "write", json!({"filePath": "AGENTS.md", "content": "# Agents\n- run `make test`\n"})),
        Turn::text("Wrote AGENTS.md."),
    ])
    .await;
    let a = AgentServer::local(&llm.url, json!({})).await;
    let id = a.session().await;
    let message_id = burrow::id::ascending(burrow::id::Prefix::Message);
    let (status, ok) = a.post(&format!("/session/{id}/init"), json!({"providerID": "fake", "modelID": "fake-model", "messageID": message_id})).await;
    assert_eq!((status, ok), (200, json!(true)));
    assert_eq!(std::fs::read_to_string(a.ws.abs("AGENTS.md")).unwrap(), "# Agents\n- run `make test`\n");
    let asked = &contents(&llm.requests()[0], "user")[0];
    assert!(asked.starts_with("Create or update `AGENTS.md` for this repository."), "{asked}");
    let list = a.messages(&id).await;
    assert_eq!(list[0]["info"]["id"], json!(message_id), "the user message has the id the client chose");
    assert_eq!(list.last().unwrap()["info"]["finish"], "stop");
    let (status, _) = a.post(&format!("/session/{id}/init"), json!({"providerID": "fake", "modelID": "fake-model"})).await;
    assert_eq!(status, 400, "messageID is required");
    let (status, err) = a.post(&format!("/session/{id}/init"), json!({"providerID": "fake", "modelID": "nope", "messageID": message_id})).await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["data"]["message"], "Model not found: fake/nope");
}

#[tokio::test]
async fn a_summary_stands_in_for_the_history_before_it() {
    let summary = "## Objective\n- greet the user";
    let llm = ScriptedLlm::openai(vec![Turn::text("Hi there."), Turn::text(summary), Turn::text("Next, nothing.")]).await;
    let a = AgentServer::local(&llm.url, json!({})).await;
    let id = a.session().await;
    let mut events = Events::subscribe(&a.srv, "").await;
    let (status, _) = a.post(&format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "hello"}]})).await;
    assert_eq!(status, 200);
    let (status, ok) = a.post(&format!("/session/{id}/summarize"), json!({"providerID": "fake", "modelID": "fake-model"})).await;
    assert_eq!((status, ok), (200, json!(true)));
    events.next_of("session.compacted").await;

    let list = a.messages(&id).await;
    assert_eq!(list.len(), 4);
    let (asked, answered) = (&list[2], &list[3]);
    assert_eq!(part_types(asked), ["compaction"]);
    assert_eq!(part(asked, "compaction")["auto"], false);
    assert_eq!(asked["info"]["model"], json!({"providerID": "fake", "modelID": "fake-model"}));
    let info = &answered["info"];
    assert_eq!((info["summary"].as_bool(), info["agent"].as_str(), info["mode"].as_str()), (Some(true), Some("compaction"), Some("compaction")), "{info}");
    assert_eq!((info["parentID"].clone(), info["finish"].as_str()), (asked["info"]["id"].clone(), Some("stop")));
    assert_eq!(text(answered), summary);

    // The summary request: the compaction agent's prompt, the transcript, no tools.
    let sent = &llm.requests()[1];
    assert!(contents(sent, "system")[0].starts_with("You are a context summarization agent."), "{sent}");
    let ask = &contents(sent, "user")[0];
    assert!(ask.contains("<conversation>\n[User]: hello\n[Assistant]: Hi there.\n</conversation>"), "{ask}");
    assert!(ask.contains("## Relevant Files"));
    assert!(tool_names(sent).is_empty());

    // From now on the summary replaces what came before it.
    let (_, answer) = a.post(&format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "what next?"}]})).await;
    assert_eq!(text(&answer), "Next, nothing.");
    let sent = &llm.requests()[2];
    assert_eq!(contents(sent, "user"), ["What did we do so far?", "what next?"]);
    assert_eq!(contents(sent, "assistant"), [summary]);
}

#[tokio::test]
async fn an_automatic_compaction_lets_the_model_carry_on() {
    let llm = ScriptedLlm::openai(vec![Turn::text("Sure."), Turn::text("## Objective\n- x"), Turn::text("Carrying on.")]).await;
    let a = AgentServer::local(&llm.url, json!({})).await;
    let id = a.session().await;
    a.post(&format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "start"}]})).await;
    let (status, ok) = a.post(&format!("/session/{id}/summarize"), json!({"providerID": "fake", "modelID": "fake-model", "auto": true})).await;
    assert_eq!((status, ok), (200, json!(true)));
    let list = a.messages(&id).await;
    assert_eq!(list.len(), 6, "{list:#?}");
    let nudge = part(&list[4], "text");
    assert_eq!((nudge["synthetic"].as_bool(), nudge["metadata"]["compaction_continue"].as_bool()), (Some(true), Some(true)));
    assert_eq!(text(&list[5]), "Carrying on.");
    let sent = &llm.requests()[2];
    assert_eq!(contents(sent, "user")[0], "What did we do so far?");
    assert!(contents(sent, "user")[1].starts_with("Continue if you have next steps"));
}

#[tokio::test]
async fn a_subtask_command_runs_in_a_child_session() {
    // The child answers first, then the parent goes on from the task's result.
    let llm = ScriptedLlm::openai(vec![Turn::text("No bugs found."), Turn::text("The review found nothing.")]).await;
    let a = AgentServer::local(&llm.url, json!({})).await;
    let id = a.session().await;
    let (status, answer) = a.post(&format!("/session/{id}/command"), json!({"command": "review", "arguments": "HEAD~1"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(text(&answer), "The review found nothing.");

    let (_, children) = a.srv.get(&format!("/session/{id}/children")).await;
    let child = &children.as_array().unwrap()[0];
    let child_id = child["id"].as_str().unwrap();
    assert_eq!(child["parentID"], json!(id));
    assert_eq!(child["title"], "review changes [commit|branch|pr], defaults to uncommitted (@build subagent)");
    let child_messages = a.messages(child_id).await;
    assert!(text(&child_messages[0]).contains("Input: HEAD~1"), "the child got the filled-in template");
    assert_eq!(text(child_messages.last().unwrap()), "No bugs found.");

    let list = a.messages(&id).await;
    assert_eq!(part_types(&list[0]), ["subtask"]);
    assert_eq!(part(&list[0], "subtask")["command"], "review");
    let task = part(&list[1], "tool");
    assert_eq!((task["tool"].as_str(), task["state"]["status"].as_str()), (Some("task"), Some("completed")), "{task}");
    assert_eq!(task["state"]["metadata"]["sessionId"], json!(child_id));
    assert_eq!(part(&list[2], "text")["text"], "Summarize the task tool output above and continue with your task.");

    let requests = llm.requests();
    assert!(!tool_names(&requests[0]).contains(&"task".to_string()), "a child may not start tasks of its own");
    assert!(!tool_names(&requests[0]).contains(&"todowrite".to_string()));
    let results: Vec<&Value> = requests[1]["messages"].as_array().unwrap().iter().filter(|m| m["role"] == "tool").collect();
    assert!(results[0]["content"].as_str().unwrap().contains("<task_result>\nNo bugs found.\n</task_result>"), "{results:?}");
}
