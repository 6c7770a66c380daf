//! Whole prompts through the real server: a scripted provider configured in
//! opencode.json, tools changing files in the workspace, stored messages,
//! errors in `info.error`, and everything still there after a restart.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::llm::{unreachable_url, ScriptedLlm, Turn};
use support::{Fixture, Server, TestEnv};

fn config(url: &str, small: &str) -> String {
    json!({
        "provider": {
            "fake": {"npm": "@ai-sdk/openai-compatible", "options": {"baseURL": url}, "models": {"fake-model": {}}},
            "small": {"npm": "@ai-sdk/openai-compatible", "options": {"baseURL": small}, "models": {"tiny": {}}}
        },
        "model": "fake/fake-model",
        "small_model": "small/tiny",
    })
    .to_string()
}

async fn post(srv: &Server, path: &str, body: Value) -> (u16, Value) {
    let reply = srv.send(srv.request(Method::POST, path).json(&body)).await;
    let v = if reply.text.is_empty() { Value::Null } else { reply.json() };
    (reply.status, v)
}

#[tokio::test]
async fn a_pocketpaw_prompt_writes_and_edits_a_file_and_survives_a_restart() {
    let titler = ScriptedLlm::openai(vec![Turn::text("Fake title")]).await;
    let llm = ScriptedLlm::openai(vec![
        Turn::tool("call_w", "write", json!({"filePath": "hello.txt", "content": "hello from fake llm\n"})),
        Turn::tool("call_e", "edit", json!({"filePath": "hello.txt", "oldString": "fake llm", "newString": "burrow"})),
        Turn::text("Done."),
    ])
    .await;
    let env = TestEnv::from_name("local").unwrap();
    let fx = Fixture::standard();
    let ws = env.place(&fx).await.unwrap();
    let cfg = config(&llm.url, &titler.url);
    // One data folder for both server runs, so the restart finds the session.
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap().to_string();
    let vars = [("OPENCODE_CONFIG_CONTENT", cfg.as_str()), ("BURROW_DATA_DIR", data_dir.as_str())];
    let srv = Server::start_with(&ws, &vars).await;
    let (status, session) = post(&srv, "/session", json!({})).await;
    assert_eq!(status, 200, "{session}");
    let id = session["id"].as_str().unwrap().to_string();
    let (status, answer) = post(&srv, &format!("/session/{id}/message"), json!({"model": "fake/fake-model", "system": "be brief", "parts": [{"type": "text", "text": "WRITEFILE please"}]})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["info"]["role"], "assistant");
    assert_eq!(answer["info"]["finish"], "stop");
    assert!(answer["info"].get("error").is_none(), "{answer}");
    assert_eq!(answer["parts"].as_array().unwrap().iter().map(|p| p["type"].as_str().unwrap()).collect::<Vec<_>>(), ["step-start", "text", "step-finish"]);
    assert_eq!(std::fs::read_to_string(ws_path(&ws, "hello.txt")).unwrap(), "hello from burrow\n");

    let messages = || async {
        let (status, list) = srv.get(&format!("/session/{id}/message")).await;
        assert_eq!(status, 200);
        list
    };
    let list = messages().await;
    let roles: Vec<&str> = list.as_array().unwrap().iter().map(|m| m["info"]["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "assistant", "assistant"]);
    let write = &list[1]["parts"];
    let tool = write.as_array().unwrap().iter().find(|p| p["type"] == "tool").unwrap();
    assert_eq!(tool["state"]["status"], "completed");
    assert_eq!(tool["state"]["output"], "Wrote file successfully.");
    assert!(write.as_array().unwrap().iter().any(|p| p["type"] == "patch"));
    // The model saw the system text and the tool results.
    let sent = llm.requests();
    let last = sent.last().unwrap()["messages"].as_array().unwrap().clone();
    assert!(sent.last().unwrap()["messages"].as_array().unwrap().iter().any(|m| m["role"] == "system" && m["content"] == "be brief"));
    assert!(last.iter().any(|m| m["role"] == "tool" && m["content"] == "Edit applied successfully."));

    // The small model named the session.
    let mut title = String::new();
    for _ in 0..200 {
        let (_, s) = srv.get(&format!("/session/{id}")).await;
        title = s["title"].as_str().unwrap_or_default().to_string();
        if title == "Fake title" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(title, "Fake title");
    let before = messages().await;
    drop(srv);
    let srv = Server::start_with(&ws, &vars).await;
    let (status, after) = srv.get(&format!("/session/{id}/message")).await;
    assert_eq!(status, 200);
    assert_eq!(after, before, "the turn is stored whole");
}

fn ws_path(ws: &support::Workspace, rel: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(ws.abs(rel))
}

#[tokio::test]
async fn an_unreachable_provider_ends_in_info_error() {
    let url = unreachable_url().await;
    let env = TestEnv::from_name("local").unwrap();
    let fx = Fixture::standard();
    let ws = env.place(&fx).await.unwrap();
    let cfg = config(&url, &url);
    let srv = Server::start_with(&ws, &[("OPENCODE_CONFIG_CONTENT", cfg.as_str()), ("BURROW_RETRY_BASE_MS", "1")]).await;
    let (_, session) = post(&srv, "/session", json!({})).await;
    let id = session["id"].as_str().unwrap();
    let (status, answer) = post(&srv, &format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "say hi"}]})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["info"]["error"]["name"], "APIError", "{answer}");
    assert_eq!(answer["info"]["error"]["data"]["isRetryable"], true);
    let (_, status) = srv.get("/session/status").await;
    assert_eq!(status, json!({}), "the session is idle again");
}
