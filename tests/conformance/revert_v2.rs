//! v2 revert staging (`POST /api/session/{sessionID}/revert/stage|commit|clear`):
//! stage puts the files back and hides the messages (or, with `files: false`,
//! only moves the point), clear brings the files back, commit drops the
//! hidden messages at once; each publishes its `session.next.revert.*` event.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::agent::AgentServer;
use crate::support::calls::{call, Events};
use crate::support::llm::{ScriptedLlm, Turn};

/// Whether `agent/new.txt` is in the workspace, read through the environment.
async fn written(t: &AgentServer) -> bool {
    let (status, body) = t.srv.get("/file/content?path=agent/new.txt").await;
    match status {
        200 => true,
        404 => false,
        _ => panic!("reading agent/new.txt: {status} {body}"),
    }
}

async fn revert_of(t: &AgentServer, id: &str) -> Value {
    let (status, s) = t.srv.get(&format!("/session/{id}")).await;
    assert_eq!(status, 200, "{s}");
    s.get("revert").cloned().unwrap_or(Value::Null)
}

#[track_caller]
fn assert_tagged(what: &str, got: (u16, Value), status: u16, tag: &str) {
    assert_eq!(got.0, status, "{what}: {}", got.1);
    assert_eq!(got.1["_tag"], tag, "{what}: {}", got.1);
    assert!(got.1["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {}", got.1);
}

#[tokio::test]
async fn stage_clear_and_commit_a_revert() {
    let llm =
        ScriptedLlm::openai(vec![Turn::tool("call_w", "write", json!({"filePath": "agent/new.txt", "content": "made by write\n"})), Turn::text("Done.")]).await;
    let t = AgentServer::local(&llm.url, json!({})).await;
    let id = t.session().await;
    let (status, answer) = t.post(&format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "write a file"}]})).await;
    assert_eq!(status, 200, "{answer}");
    assert!(written(&t).await);
    let user_id = t.messages(&id).await[0]["info"]["id"].as_str().unwrap().to_string();
    let mut events = Events::subscribe(&t.srv, "").await;
    let stage = format!("/api/session/{id}/revert/stage");

    // Stage: the files go back, the point is set.
    let (status, body) = call(&t.srv, Method::POST, &stage, Some(json!({"messageID": user_id}))).await;
    assert_eq!(status, 200, "{body}");
    let state = &body["data"];
    assert_eq!(state["messageID"], json!(user_id), "{body}");
    assert!(state["snapshot"].as_str().is_some_and(|s| s.len() == 40), "{body}");
    assert!(state["diff"].as_str().unwrap().contains("made by write"), "{body}");
    let file = state["files"].as_array().unwrap().iter().find(|f| f["path"] == "agent/new.txt").unwrap_or_else(|| panic!("{body}"));
    assert_eq!((file["status"].as_str(), file["additions"].as_u64()), (Some("added"), Some(1)), "{file}");
    let staged = events.next_of("session.next.revert.staged").await;
    assert_eq!((staged["properties"]["sessionID"].as_str(), &staged["properties"]["revert"]), (Some(id.as_str()), state));
    assert!(!written(&t).await, "stage put the file back");
    assert_eq!(revert_of(&t, &id).await["messageID"], json!(user_id));

    // Clear: the files come back, the point goes.
    assert_eq!(call(&t.srv, Method::POST, &format!("/api/session/{id}/revert/clear"), None).await, (204, Value::Null));
    assert_eq!(events.next_of("session.next.revert.cleared").await["properties"]["sessionID"], json!(id));
    assert!(written(&t).await, "clear brought the file back");
    assert_eq!(revert_of(&t, &id).await, Value::Null);

    // Stage without files: only the point moves.
    let (status, body) = call(&t.srv, Method::POST, &stage, Some(json!({"messageID": user_id, "files": false}))).await;
    assert_eq!((status, &body["data"]), (200, &json!({"messageID": user_id})), "{body}");
    assert!(written(&t).await, "files: false leaves the files alone");

    // Commit: the hidden messages are gone now, not at the next prompt.
    assert_eq!(call(&t.srv, Method::POST, &format!("/api/session/{id}/revert/commit"), None).await, (204, Value::Null));
    assert_eq!(events.next_of("session.next.revert.committed").await["properties"]["messageID"], json!(user_id));
    assert!(t.messages(&id).await.is_empty());
    assert_eq!(revert_of(&t, &id).await, Value::Null);
    assert_eq!(call(&t.srv, Method::POST, &format!("/api/session/{id}/revert/commit"), None).await, (204, Value::Null), "nothing to commit");
}

#[tokio::test]
async fn bad_revert_requests_are_clear_errors() {
    let llm = ScriptedLlm::openai(vec![]).await;
    let t = AgentServer::local(&llm.url, json!({})).await;
    let id = t.session().await;
    let stage = format!("/api/session/{id}/revert/stage");
    let missing = "msg_0000000000000000000000000";
    assert_tagged("an unknown message", call(&t.srv, Method::POST, &stage, Some(json!({"messageID": missing}))).await, 404, "MessageNotFoundError");
    assert_tagged("a malformed message id", call(&t.srv, Method::POST, &stage, Some(json!({"messageID": "nope"}))).await, 400, "InvalidRequestError");
    let (status, body) = call(&t.srv, Method::POST, &stage, Some(json!({"messageID": missing, "extra": 1}))).await;
    assert_eq!((status, &body["name"]), (400, &json!("BadRequest")), "{body}");
    for op in ["stage", "commit", "clear"] {
        let path = format!("/api/session/ses_nope/revert/{op}");
        let got = call(&t.srv, Method::POST, &path, (op == "stage").then(|| json!({"messageID": missing}))).await;
        assert_tagged(&path, got, 404, "SessionNotFoundError");
    }
}
