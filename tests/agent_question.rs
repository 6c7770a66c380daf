//! The agent's `question` tool through the real server: the scripted model
//! asks, the test answers (or dismisses) through the v1 and v2 routes, and the
//! turn goes on with what the user said, as in OpenCode.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::agent::{post, AgentServer};
use support::calls::Events;
use support::llm::{ScriptedLlm, Turn};

fn ask() -> Value {
    json!({"questions": [{
        "question": "Which database?",
        "header": "Database",
        "options": [{"label": "SQLite (Recommended)", "description": "One file"}, {"label": "Postgres", "description": "A server"}]
    }]})
}

/// What the model was told about its `question` call in the request after it.
fn tool_output(llm: &ScriptedLlm) -> String {
    let sent = llm.requests();
    let messages = sent.last().unwrap()["messages"].as_array().unwrap().clone();
    let tool = messages.iter().find(|m| m["role"] == "tool").unwrap_or_else(|| panic!("no tool message in {messages:?}"));
    tool["content"].as_str().map(str::to_string).unwrap_or_else(|| tool["content"].to_string())
}

/// The stored `question` tool part of the session.
async fn question_part(a: &AgentServer, id: &str) -> Value {
    let list = a.messages(id).await;
    let parts = list.iter().flat_map(|m| m["parts"].as_array().unwrap().clone());
    parts.into_iter().find(|p| p["type"] == "tool" && p["tool"] == "question").expect("a question tool part")
}

/// Starts a prompt whose model asks [`ask`], and returns the session, the
/// event stream and the `question.asked` event.
async fn asked(a: &AgentServer) -> (String, Events, Value) {
    let id = a.session().await;
    let mut events = Events::subscribe(&a.srv, "").await;
    let (status, _) = post(&a.srv, &format!("/session/{id}/prompt_async"), json!({"parts": [{"type": "text", "text": "set up storage"}]})).await;
    assert_eq!(status, 204);
    let asked = events.next_of("question.asked").await;
    (id, events, asked)
}

#[tokio::test]
async fn an_answered_question_goes_back_to_the_model() {
    let llm = ScriptedLlm::openai(vec![Turn::tool("call_q", "question", ask()), Turn::text("Using SQLite.")]).await;
    let a = AgentServer::local(&llm.url, json!({})).await;
    let (id, mut events, asked) = asked(&a).await;
    let request = asked["properties"].clone();
    let rid = request["id"].as_str().unwrap().to_string();
    assert!(rid.starts_with("que"), "{request}");
    assert_eq!(request["sessionID"], json!(id));
    assert_eq!(request["questions"], ask()["questions"]);
    assert_eq!(request["tool"]["callID"], "call_q");
    assert!(request["tool"]["messageID"].as_str().unwrap().starts_with("msg"), "{request}");

    // Pending in every list until answered, and the turn waits.
    assert_eq!(a.srv.get("/question").await, (200, json!([request])));
    assert_eq!(a.srv.get(&format!("/api/session/{id}/question")).await, (200, json!({"data": [request]})));
    let (status, located) = a.srv.get("/api/question/request").await;
    assert_eq!((status, &located["data"]), (200, &json!([request])), "{located}");
    assert_eq!(llm.requests().len(), 1, "the model waits for the answer");

    let (status, ok) = post(&a.srv, &format!("/question/{rid}/reply"), json!({"answers": [["SQLite (Recommended)"]]})).await;
    assert_eq!((status, ok), (200, json!(true)));
    let replied = events.next_of("question.replied").await;
    assert_eq!(replied["properties"], json!({"sessionID": id, "requestID": rid, "answers": [["SQLite (Recommended)"]]}));
    events.next_of("session.idle").await;

    assert_eq!(
        tool_output(&llm),
        "User has answered your questions: \"Which database?\"=\"SQLite (Recommended)\". You can now continue with the user's answers in mind."
    );
    let part = question_part(&a, &id).await;
    assert_eq!(part["state"]["status"], "completed", "{part}");
    assert_eq!(part["state"]["title"], "Asked 1 question");
    assert_eq!(part["state"]["metadata"]["answers"], json!([["SQLite (Recommended)"]]));
    assert_eq!(a.srv.get("/question").await, (200, json!([])), "answered, so no longer pending");
    let again = a.srv.send(a.srv.request(Method::POST, &format!("/question/{rid}/reply")).json(&json!({"answers": [["Postgres"]]}))).await;
    assert_eq!((again.status, &again.json()["_tag"]), (404, &json!("QuestionNotFoundError")));
}

#[tokio::test]
async fn a_rejected_question_fails_the_call_with_opencodes_error_and_the_turn_goes_on() {
    let llm = ScriptedLlm::openai(vec![Turn::tool("call_q", "question", ask()), Turn::text("I'll pick one myself.")]).await;
    let a = AgentServer::local(&llm.url, json!({})).await;
    let (id, mut events, asked) = asked(&a).await;
    let rid = asked["properties"]["id"].as_str().unwrap().to_string();

    // v2: a question of another session is not found there.
    let other = a.session().await;
    let (status, err) = post(&a.srv, &format!("/api/session/{other}/question/{rid}/reject"), Value::Null).await;
    assert_eq!((status, &err["_tag"]), (404, &json!("QuestionNotFoundError")), "{err}");

    let (status, body) = post(&a.srv, &format!("/api/session/{id}/question/{rid}/reject"), Value::Null).await;
    assert_eq!((status, body), (204, Value::Null));
    let rejected = events.next_of("question.rejected").await;
    assert_eq!(rejected["properties"], json!({"sessionID": id, "requestID": rid}));
    events.next_of("session.idle").await;

    let part = question_part(&a, &id).await;
    assert_eq!(part["state"]["status"], "error", "{part}");
    assert_eq!(part["state"]["error"], "The user dismissed this question");
    assert!(tool_output(&llm).contains("The user dismissed this question"), "{}", tool_output(&llm));
    let list = a.messages(&id).await;
    let last = list.last().unwrap();
    assert_eq!(support::agent::part(last, "text")["text"], "I'll pick one myself.");
}

#[tokio::test]
async fn a_v2_reply_answers_the_question() {
    let llm = ScriptedLlm::openai(vec![Turn::tool("call_q", "question", ask()), Turn::text("ok")]).await;
    let a = AgentServer::local(&llm.url, json!({})).await;
    let (id, mut events, asked) = asked(&a).await;
    let rid = asked["properties"]["id"].as_str().unwrap().to_string();
    let (status, err) = post(&a.srv, &format!("/api/session/{id}/question/{rid}/reply"), json!({"answers": "Postgres"})).await;
    assert_eq!(status, 400, "answers are lists of labels: {err}");
    let (status, body) = post(&a.srv, &format!("/api/session/{id}/question/{rid}/reply"), json!({"answers": [["Postgres"]]})).await;
    assert_eq!((status, body), (204, Value::Null));
    events.next_of("session.idle").await;
    assert!(tool_output(&llm).contains("\"Which database?\"=\"Postgres\""), "{}", tool_output(&llm));
}
