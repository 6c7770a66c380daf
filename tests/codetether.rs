//! CodeTether's OpenCode bridge (`a2a_server/opencode_bridge.py` in the
//! CodeTether server, before its OpenCode integration was removed), replayed
//! call for call: it creates a session with a bare `POST /session`, sends the
//! task with `POST /session/{id}/prompt` and takes anything but a 200 for a
//! failure, waits for completion by reading `status` from `GET
//! /session/{id}?directory=` (done when `status.idle` is true or
//! `status.status` is `"idle"`), then reads the result from `GET
//! /session/{id}/message?limit=1`. Follow-ups go to `/prompt` without an
//! agent, and `/interrupt` stops a run.
//!
//! The scripted model holds its answer until the test has seen the session
//! busy, so the checks wait on states and events, never on time.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::agent::AgentServer;
use support::calls::{call, Events};
use support::llm::{ScriptedLlm, Turn};
use tokio::sync::watch;

/// The bridge's completion test on a `GET /session/{id}` body.
fn bridge_sees_idle(session: &Value) -> bool {
    let status = &session["status"];
    status["idle"].as_bool().unwrap_or(false) || status["status"] == "idle"
}

#[tokio::test]
async fn codetether_bridge_triggers_waits_and_reads_the_result() {
    let (open, gate) = watch::channel(false);
    let llm = ScriptedLlm::openai(vec![Turn::held("task done", gate), Turn::text("follow-up done")]).await;
    let a = AgentServer::local(&llm.url, json!({})).await;
    let dir = a.ws.root.clone();
    let q = |path: &str, extra: &[(&str, &str)]| {
        let mut params = vec![("directory", dir.as_str())];
        params.extend_from_slice(extra);
        support::server::with_query(path, &params)
    };

    // `session.post(f'{base_url}/session')`: no body at all.
    let reply = a.srv.send(a.srv.request(Method::POST, "/session")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let id = reply.json()["id"].as_str().expect("the bridge reads data.get('id')").to_string();

    let mut events = Events::subscribe(&a.srv, "").await;
    let payload = json!({
        "sessionID": id,
        "parts": [{"type": "text", "text": "fix the bug"}],
        "agent": "build",
        "model": {"providerID": "fake", "modelID": "fake-model"},
    });
    let (status, body) = call(&a.srv, Method::POST, &format!("/session/{id}/prompt"), Some(payload)).await;
    assert_eq!(status, 200, "the bridge accepts only a 200: {body}");
    assert_eq!(body["info"]["role"], "user", "a JSON body: the stored prompt {body}");
    assert_eq!(body["parts"][0]["text"], "fix the bug");

    // The bridge's first poll comes at once: the run must already show.
    let (status, session) = a.srv.get(&q(&format!("/session/{id}"), &[])).await;
    assert_eq!(status, 200, "{session}");
    assert!(!bridge_sees_idle(&session), "busy while the model works: {session}");
    assert_eq!(session["status"]["type"], "busy", "OpenCode's shape is kept too: {session}");
    assert_eq!(session["id"], id.as_str());

    open.send_replace(true);
    loop {
        let e = events.next_of("session.idle").await;
        if e["properties"]["sessionID"] == id.as_str() {
            break;
        }
    }
    let (status, session) = a.srv.get(&q(&format!("/session/{id}"), &[])).await;
    assert_eq!(status, 200, "{session}");
    assert!(bridge_sees_idle(&session), "{session}");
    assert_eq!(session["status"], json!({"type": "idle", "idle": true, "status": "idle"}));

    // The result: the text parts of `messages[0]` of the last one.
    let (status, messages) = a.srv.get(&q(&format!("/session/{id}/message"), &[("limit", "1")])).await;
    assert_eq!(status, 200, "{messages}");
    let texts: Vec<&str> = messages[0]["parts"].as_array().expect("parts").iter().filter(|p| p["type"] == "text").filter_map(|p| p["text"].as_str()).collect();
    assert_eq!(texts, ["task done"]);

    // `send_message`: a follow-up without an agent, then `interrupt_agent`.
    let follow = json!({"sessionID": id, "parts": [{"type": "text", "text": "and the tests"}]});
    let (status, body) = call(&a.srv, Method::POST, &format!("/session/{id}/prompt"), Some(follow)).await;
    assert_eq!(status, 200, "{body}");
    loop {
        let e = events.next_of("session.idle").await;
        if e["properties"]["sessionID"] == id.as_str() {
            break;
        }
    }
    let (status, stopped) = call(&a.srv, Method::POST, &format!("/session/{id}/interrupt"), None).await;
    assert_eq!((status, stopped), (200, json!(true)));
    let sent = llm.requests();
    assert_eq!(sent.len(), 2, "one model call per prompt");

    // A prompt for a session that does not exist is a JSON 404, not a 200.
    let (status, body) = call(&a.srv, Method::POST, "/session/ses_missing/prompt", Some(json!({"parts": []}))).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["name"], "NotFoundError", "{body}");
}
