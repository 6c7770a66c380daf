//! v2's `GET /api/session/{sessionID}/event`: the session's durable history
//! after `after`, then new events as the session changes, each frame with
//! its sequence as `id` and its type as `event`; the same events that
//! `GET /api/session/{id}/history` lists, sent as they happen.

use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::support::agent::AgentServer;
use crate::support::calls::{call, sse_frames, Events, WAIT};
use crate::support::llm::{ScriptedLlm, Turn};

/// The frames of the stream at `path`, as (id, event, data).
async fn frames(t: &AgentServer, path: &str) -> mpsc::UnboundedReceiver<(String, String, Value)> {
    let res = t.srv.request(Method::GET, path).send().await.expect("GET the session's events");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    sse_frames(res, |frame| {
        let field = |name: &str| frame.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string());
        let (Some(id), Some(event), Some(data)) = (field("id:"), field("event:"), field("data:")) else { return None };
        Some((id, event, serde_json::from_str(&data).expect("a JSON event")))
    })
}

async fn take(rx: &mut mpsc::UnboundedReceiver<(String, String, Value)>, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let (id, event, data) = tokio::time::timeout(WAIT, rx.recv()).await.expect("an event in time").expect("the stream is open");
        assert_eq!(id, data["durable"]["seq"].to_string(), "the frame's id is the sequence: {data}");
        assert_eq!(event, data["type"].as_str().unwrap(), "the frame's event is the type: {data}");
        out.push(data);
    }
    out
}

async fn history(t: &AgentServer, id: &str) -> Vec<Value> {
    let (status, body) = t.srv.get(&format!("/api/session/{id}/history")).await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

async fn prompt(t: &AgentServer, id: &str, text: &str) {
    let (status, answer) = t.post(&format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": text}]})).await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn replays_the_history_then_follows_the_session() {
    let llm = ScriptedLlm::openai(vec![Turn::text("first answer"), Turn::text("second answer")]).await;
    let t = AgentServer::local(&llm.url, json!({})).await;
    let id = t.session().await;
    prompt(&t, &id, "one").await;
    let first = history(&t, &id).await;
    let kinds: Vec<&str> = first.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"session.next.prompted"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"session.next.step.ended"), "{kinds:?}");

    // The whole history, then (after it) what the next prompt adds.
    let mut all = frames(&t, &format!("/api/session/{id}/event")).await;
    assert_eq!(take(&mut all, first.len()).await, first);
    let mut rest = frames(&t, &format!("/api/session/{id}/event?after={}", first.len())).await;
    prompt(&t, &id, "two").await;
    let both = history(&t, &id).await;
    let added = &both[first.len()..];
    assert!(!added.is_empty());
    assert_eq!(added[0]["type"], "session.next.prompted", "{added:?}");
    assert_eq!(take(&mut all, added.len()).await, added);
    assert_eq!(take(&mut rest, added.len()).await, added, "after skips what the client has");
}

/// Events go out as they happen, not when the answer ends: while the model's
/// `question` call waits for the user, the step's start and the call are
/// already sent; the answer brings the call's result and the rest.
#[tokio::test]
async fn a_running_step_sends_its_events_as_they_happen() {
    let ask = json!({"questions": [{"question": "Go on?", "header": "Go", "options": [{"label": "Yes", "description": "Go on"}]}]});
    let llm = ScriptedLlm::openai(vec![Turn::tool("call_q", "question", ask), Turn::text("done")]).await;
    let t = AgentServer::local(&llm.url, json!({})).await;
    let id = t.session().await;
    let mut live = frames(&t, &format!("/api/session/{id}/event")).await;
    let mut bus = Events::subscribe(&t.srv, "").await;
    let (status, _) = t.post(&format!("/session/{id}/prompt_async"), json!({"parts": [{"type": "text", "text": "go"}]})).await;
    assert_eq!(status, 204);
    let asked = bus.next_of("question.asked").await;

    let early = take(&mut live, 3).await;
    let kinds: Vec<&str> = early.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["session.next.prompted", "session.next.step.started", "session.next.tool.called"]);
    assert_eq!(early[2]["data"]["tool"], "question");
    assert_eq!(early[2]["data"]["callID"], "call_q");

    let request = asked["properties"]["id"].as_str().unwrap();
    let (status, _) = t.post(&format!("/question/{request}/reply"), json!({"answers": [["Yes"]]})).await;
    assert_eq!(status, 200);
    bus.next_of("session.idle").await;
    let all = history(&t, &id).await;
    assert_eq!(all[..3], early[..], "what went out early is what the history keeps");
    assert_eq!(all[3]["type"], "session.next.tool.success", "{all:?}");
    assert_eq!(take(&mut live, all.len() - 3).await, all[3..]);
}

#[tokio::test]
async fn bad_session_event_requests_are_clear_errors() {
    let llm = ScriptedLlm::openai(vec![]).await;
    let t = AgentServer::local(&llm.url, json!({})).await;
    let id = t.session().await;
    let (status, body) = call(&t.srv, Method::GET, "/api/session/ses_nope/event", None).await;
    assert_eq!((status, &body["_tag"]), (404, &json!("SessionNotFoundError")), "{body}");
    let (status, body) = call(&t.srv, Method::GET, &format!("/api/session/{id}/event?after=soon"), None).await;
    assert_eq!((status, &body["_tag"]), (400, &json!("InvalidRequestError")), "{body}");
}
