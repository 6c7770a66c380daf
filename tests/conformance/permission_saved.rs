//! Saved `always` answers (v2 `GET /api/permission/saved`, `DELETE
//! /api/permission/saved/{id}`): an `always` reply saves the request's
//! patterns for the session's project, later calls they cover run without
//! asking, even after a restart (they are stored with the sessions), and
//! removing the saved answer makes them ask again.

use reqwest::Method;
use serde_json::{json, Value};

use crate::assert_error;
use crate::support::agent::AgentServer;
use crate::support::calls::{call, Events};
use crate::support::llm::{ScriptedLlm, Turn};

/// Prompts the session to write `file` (the script's next turns) and returns
/// the events up to the session's idle, answering any permission ask with
/// `reply`.
async fn write_turn(t: &AgentServer, events: &mut Events, session: &str, file: &str, reply: &str) -> Vec<String> {
    let (status, body) = t.post(&format!("/session/{session}/prompt_async"), json!({"parts": [{"type": "text", "text": format!("write {file}")}]})).await;
    assert_eq!(status, 204, "{body}");
    let mut seen = Vec::new();
    loop {
        let e = events.next().await;
        let kind = e["type"].as_str().unwrap_or_default().to_string();
        if kind == "permission.asked" {
            let request = e["properties"]["id"].as_str().unwrap();
            let (status, ok) = t.post(&format!("/permission/{request}/reply"), json!({"reply": reply})).await;
            assert_eq!((status, ok), (200, json!(true)));
        }
        let idle = kind == "session.idle" && e["properties"]["sessionID"] == session;
        seen.push(kind);
        if idle {
            return seen;
        }
    }
}

async fn saved(t: &AgentServer, query: &str) -> Vec<Value> {
    let (status, body) = t.srv.get(&format!("/api/permission/saved{query}")).await;
    assert_eq!(status, 200, "{body}");
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["data"], "{body}");
    body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_always_answer_is_saved_listed_and_removable() {
    let write = |id: &str, file: &str| Turn::tool(id, "write", json!({"filePath": file, "content": "x"}));
    let llm = ScriptedLlm::openai(vec![
        write("call_a", "a.txt"),
        Turn::text("ok"),
        write("call_b", "b.txt"),
        Turn::text("ok"),
        write("call_c", "c.txt"),
        Turn::text("ok"),
    ])
    .await;
    let mut t = AgentServer::local(&llm.url, json!({"permission": {"edit": "ask"}})).await;
    let session = t.session().await;
    let (_, info) = t.srv.get(&format!("/session/{session}")).await;
    let project = info["projectID"].as_str().unwrap().to_string();
    let mut events = Events::subscribe(&t.srv, "").await;
    assert!(saved(&t, "").await.is_empty());

    let seen = write_turn(&t, &mut events, &session, "a.txt", "always").await;
    assert!(seen.iter().any(|k| k == "permission.asked"), "{seen:?}");
    let list = saved(&t, "").await;
    assert_eq!(list.len(), 1, "{list:?}");
    let id = list[0]["id"].as_str().unwrap().to_string();
    assert_eq!(list[0], json!({"id": id, "projectID": project, "action": "edit", "resource": "*"}));
    assert_eq!(saved(&t, &format!("?projectID={project}")).await, list);
    assert!(saved(&t, "?projectID=another").await.is_empty());

    // Stored with the project: a restart (a kill, even) keeps the answer.
    drop(events);
    t.restart().await;
    assert_eq!(saved(&t, "").await, list, "the saved answer survives a restart");
    let mut events = Events::subscribe(&t.srv, "").await;

    let seen = write_turn(&t, &mut events, &session, "b.txt", "reject").await;
    assert!(!seen.iter().any(|k| k == "permission.asked"), "the saved answer covers the next write: {seen:?}");
    assert!(std::path::Path::new(&t.ws.abs("b.txt")).exists());

    assert_eq!(call(&t.srv, Method::DELETE, &format!("/api/permission/saved/{id}"), None).await, (204, Value::Null));
    assert!(saved(&t, "").await.is_empty());
    assert_error("remove again", call(&t.srv, Method::DELETE, &format!("/api/permission/saved/{id}"), None).await, 404, "NotFoundError");
    drop(events);
    t.restart().await;
    assert!(saved(&t, "").await.is_empty(), "the removal is stored too");
    let mut events = Events::subscribe(&t.srv, "").await;

    let seen = write_turn(&t, &mut events, &session, "c.txt", "once").await;
    assert!(seen.iter().any(|k| k == "permission.asked"), "asked again once the answer is removed: {seen:?}");
    assert!(saved(&t, "").await.is_empty(), "a once answer is not saved");
}
