//! v2 `POST /api/session/{sessionID}/permission` (`session.permission.create`):
//! a client's own permission request, evaluated with the session's agent
//! rules and saved answers. `allow` and `deny` answer at once; `ask` leaves a
//! pending request that is published, listed and answered like a tool's.

use serde_json::{json, Value};

use crate::assert_error;
use crate::support::agent::AgentServer;
use crate::support::calls::Events;
use crate::support::llm::unreachable_url;

#[tokio::test]
async fn a_created_request_is_evaluated_and_asks_when_the_rules_say_ask() {
    let rules = json!({"permission": {"bash": {"*": "ask", "ls *": "allow", "rm *": "deny"}}});
    let t = AgentServer::local(&unreachable_url().await, rules).await;
    let session = t.session().await;
    let path = format!("/api/session/{session}/permission");

    let (status, allowed) = t.post(&path, json!({"action": "bash", "resources": ["ls -la"]})).await;
    assert_eq!(status, 200, "{allowed}");
    assert_eq!(allowed["data"]["effect"], "allow");
    assert!(allowed["data"]["id"].as_str().unwrap().starts_with("per"), "{allowed}");
    let (_, denied) = t.post(&path, json!({"action": "bash", "resources": ["ls", "rm -rf /"]})).await;
    assert_eq!(denied["data"]["effect"], "deny", "one denied resource denies the request: {denied}");
    assert_eq!(t.srv.get(&path).await, (200, json!({"data": []})), "allow and deny leave nothing pending");

    let mut events = Events::subscribe(&t.srv, "").await;
    let id = "per_0000000000000000000000000a";
    let body = json!({"id": id, "action": "bash", "resources": ["make"], "save": ["make *"], "metadata": {"why": "build"},
        "source": {"type": "tool", "messageID": "msg_1", "callID": "call_1"}});
    let (status, asked) = t.post(&path, body.clone()).await;
    assert_eq!((status, asked), (200, json!({"data": {"id": id, "effect": "ask"}})));
    let event = events.next_of("permission.asked").await;
    assert_eq!(event["properties"]["id"], id);
    assert_eq!(event["properties"]["permission"], "bash");
    let pending = json!({"id": id, "sessionID": session, "action": "bash", "resources": ["make"], "save": ["make *"], "metadata": {"why": "build"},
        "source": {"type": "tool", "messageID": "msg_1", "callID": "call_1"}});
    assert_eq!(t.srv.get(&path).await, (200, json!({"data": [pending]})));
    let (status, again) = t.post(&path, body).await;
    assert_eq!(status, 409, "the id is already pending: {again}");

    // Answered like a tool's request; `always` saves its `save` patterns.
    let (status, _) = t.post(&format!("{path}/{id}/reply"), json!({"reply": "always"})).await;
    assert_eq!(status, 204);
    assert_eq!(events.next_of("permission.replied").await["properties"]["reply"], "always");
    assert_eq!(t.srv.get(&path).await, (200, json!({"data": []})));
    let (_, now) = t.post(&path, json!({"action": "bash", "resources": ["make test"]})).await;
    assert_eq!(now["data"]["effect"], "allow", "the saved answer covers it: {now}");
}

#[tokio::test]
async fn a_bad_permission_request_is_refused_and_an_unknown_agent_gets_the_default_rules() {
    let t = AgentServer::local(&unreachable_url().await, json!({})).await;
    let session = t.session().await;
    let path = format!("/api/session/{session}/permission");
    assert_eq!(t.post(&path, json!({"resources": ["x"]})).await.0, 400, "action is required");
    assert_eq!(t.post(&path, json!({"action": "bash", "resources": ["x"], "extra": 1})).await.0, 400);
    assert_eq!(t.post(&path, json!({"id": "abc", "action": "bash", "resources": ["x"]})).await.0, 400, "ids start with per");
    let (status, fallback) = t.post(&path, json!({"action": "bash", "resources": ["x"], "agent": "nobody"})).await;
    assert_eq!((status, &fallback["data"]["effect"]), (200, &json!("allow")), "an unknown agent gets the default agent's rules: {fallback}");
    let (status, body) = t.post("/api/session/ses_0000000000000000000000000a/permission", json!({"action": "bash", "resources": ["x"]})).await;
    assert_eq!((status, &body["_tag"]), (404, &json!("SessionNotFoundError")), "{body}");
}

#[tokio::test]
async fn background_detaches_nothing_since_burrow_runs_subagents_in_the_turn() {
    let t = AgentServer::local(&unreachable_url().await, json!({})).await;
    let session = t.session().await;
    let (status, caps) = t.srv.get("/experimental/capabilities").await;
    assert_eq!((status, caps), (200, json!({"backgroundSubagents": false})));
    assert_eq!(t.post(&format!("/experimental/session/{session}/background"), Value::Null).await, (200, json!(false)));
    assert_error("not a session id", t.post("/experimental/session/abc/background", Value::Null).await, 400, "BadRequest");
}
