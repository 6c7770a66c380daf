//! Provider credentials: `PUT|DELETE /auth/{providerID}` (OpenCode's
//! `auth.set` and `auth.remove`) and the v2 integration and credential
//! routes. The stored key is what the provider gets, it lives in a 0600 file
//! of the data folder, and no answer of any route shows it.

use std::os::unix::fs::PermissionsExt;

use reqwest::Method;
use serde_json::{json, Value};

use crate::assert_error;
use crate::support::agent::AgentServer;
use crate::support::calls::{call, Events};
use crate::support::llm::{ScriptedLlm, Turn};

const SECRET: &str = "sk-stored-0123456789-secret";

/// Sends one prompt and waits for its answer.
async fn prompt(t: &AgentServer) {
    let id = t.session().await;
    let (status, answer) = t.post(&format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "hi"}]})).await;
    assert_eq!(status, 200, "{answer}");
}

/// The credential connections of integration `id`, from `GET /api/integration/{id}`.
async fn stored_connections(t: &AgentServer, id: &str) -> Vec<Value> {
    let (status, got) = t.srv.get(&format!("/api/integration/{id}")).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["data"]["id"], id, "{got}");
    assert!(got["location"]["directory"].is_string(), "{got}");
    got["data"]["connections"].as_array().unwrap().iter().filter(|c| c["type"] == "credential").cloned().collect()
}

#[tokio::test]
async fn a_stored_key_reaches_the_provider_and_no_answer() {
    let llm = ScriptedLlm::openai(vec![Turn::text("with the stored key"), Turn::text("without it")]).await;
    let t = AgentServer::local(&llm.url, json!({})).await;
    let mut events = Events::subscribe(&t.srv, "").await;

    let (status, body) = call(&t.srv, Method::PUT, "/auth/fake", Some(json!({"type": "api", "key": SECRET}))).await;
    assert_eq!((status, body), (200, json!(true)));
    assert_eq!(events.next_of("integration.").await["properties"], json!({"integrationID": "fake"}));
    let file = t.data_dir().join("auth.json");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "the credentials file is private");
    let stored: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!((stored["fake"]["type"].as_str(), stored["fake"]["key"].as_str()), (Some("api"), Some(SECRET)), "OpenCode's auth.json shape: {stored}");

    prompt(&t).await;
    assert_eq!(llm.credentials(), [Some(format!("Bearer {SECRET}"))], "the provider gets the stored key");

    for path in [
        "/config",
        "/global/config",
        "/config/providers",
        "/provider",
        "/agent",
        "/api/provider",
        "/api/model",
        "/api/integration",
        "/api/integration/fake",
        "/doc",
    ] {
        let reply = t.srv.send(t.srv.request(Method::GET, path)).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        assert!(!reply.text.contains(SECRET), "{path} shows the stored key");
    }

    let creds = stored_connections(&t, "fake").await;
    assert_eq!(creds.len(), 1, "{creds:?}");
    let id = creds[0]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("crd_"), "{id}");
    assert_eq!(creds[0]["label"], "API key");
    let (status, body) = call(&t.srv, Method::PATCH, &format!("/api/credential/{id}"), Some(json!({"label": "work"}))).await;
    assert_eq!((status, body), (204, Value::Null));
    assert_eq!(stored_connections(&t, "fake").await, [json!({"type": "credential", "id": id, "label": "work"})], "relabelled, same id");

    let (status, body) = call(&t.srv, Method::DELETE, "/auth/fake", None).await;
    assert_eq!((status, body), (200, json!(true)));
    assert!(stored_connections(&t, "fake").await.is_empty());
    prompt(&t).await;
    assert_eq!(llm.credentials()[1], None, "after removal the provider gets no key");
    let (status, body) = call(&t.srv, Method::DELETE, "/auth/fake", None).await;
    assert_eq!((status, body), (200, json!(true)), "removing what is not there is still true, as in OpenCode");
}

#[tokio::test]
async fn v2_connects_a_key_and_removes_the_credential() {
    let llm = ScriptedLlm::openai(vec![Turn::text("keyed")]).await;
    let t = AgentServer::local(&llm.url, json!({})).await;
    let (status, body) = call(&t.srv, Method::POST, "/api/integration/fake/connect/key", Some(json!({"key": SECRET, "label": "ci"}))).await;
    assert_eq!((status, body), (204, Value::Null));
    let creds = stored_connections(&t, "fake").await;
    assert_eq!(creds.len(), 1, "{creds:?}");
    assert_eq!(creds[0]["label"], "ci");
    prompt(&t).await;
    assert_eq!(llm.credentials(), [Some(format!("Bearer {SECRET}"))]);

    let path = format!("/api/credential/{}", creds[0]["id"].as_str().unwrap());
    assert_eq!(call(&t.srv, Method::DELETE, &path, None).await, (204, Value::Null));
    assert!(stored_connections(&t, "fake").await.is_empty());
    assert_error("remove again", call(&t.srv, Method::DELETE, &path, None).await, 404, "NotFoundError");
    assert_error("relabel a removed one", call(&t.srv, Method::PATCH, &path, Some(json!({"label": "x"}))).await, 404, "NotFoundError");
    assert_error("an unknown integration", t.srv.get("/api/integration/no-such-provider").await, 404, "NotFoundError");
}

#[tokio::test]
async fn bad_credentials_are_clear_400s() {
    let llm = ScriptedLlm::openai(vec![]).await;
    let t = AgentServer::local(&llm.url, json!({})).await;
    for (what, body) in [
        ("no type", json!({"key": "k"})),
        ("an unknown type", json!({"type": "password", "key": "k"})),
        ("an api credential without its key", json!({"type": "api"})),
        ("a key that is not a string", json!({"type": "api", "key": 5})),
        ("an unknown field", json!({"type": "api", "key": "k", "baseURL": "http://h"})),
        ("an empty key", json!({"type": "api", "key": ""})),
        ("oauth without its tokens", json!({"type": "oauth", "refresh": "r"})),
        ("not an object", json!(["api"])),
    ] {
        assert_error(what, call(&t.srv, Method::PUT, "/auth/fake", Some(body)).await, 400, "BadRequest");
    }
    assert_error("an empty v2 key", call(&t.srv, Method::POST, "/api/integration/fake/connect/key", Some(json!({"key": ""}))).await, 400, "BadRequest");
    assert_error("a v2 label of the wrong type", call(&t.srv, Method::PATCH, "/api/credential/crd_x", Some(json!({"label": 3}))).await, 400, "BadRequest");
    assert!(!t.data_dir().join("auth.json").exists(), "nothing was stored");
}
