//! `POST /log`, `GET /question` and `GET /experimental/tool`: the SDK's
//! `app.log`, `question.list` and `tool.list`.

use reqwest::Method;
use serde_json::json;

use crate::assert_error;
use crate::support::calls::call;
use crate::support::{Served, TestEnv};

#[tokio::test]
async fn log_question_and_tool_list_answer_like_opencode() {
    let t = Served::standard(TestEnv::from_name("local").unwrap()).await;
    let log = |body| call(&t.srv, Method::POST, "/log", Some(body));
    let entry = json!({"service": "sdk-test", "level": "info", "message": "hello from a client", "extra": {"n": 1}});
    assert_eq!(log(entry).await, (200, json!(true)));
    assert_eq!(log(json!({"service": "s", "level": "warn", "message": "m"})).await, (200, json!(true)));
    for bad in [
        json!({"service": "s", "message": "no level"}),
        json!({"service": "s", "level": "loud", "message": "m"}),
        json!({"service": "s", "level": "info", "message": "m", "other": 1}),
        json!([]),
    ] {
        assert_error(&format!("POST /log {bad}"), log(bad.clone()).await, 400, "BadRequest");
    }

    assert_eq!(t.srv.get("/question").await, (200, json!([])), "no question tool, so nothing is ever pending");

    let (status, tools) = t.srv.get_q("/experimental/tool", &[("provider", "anthropic"), ("model", "claude")]).await;
    assert_eq!(status, 200, "{tools}");
    let tools = tools.as_array().expect("a list of tools");
    let ids: Vec<&str> = tools.iter().map(|t| t["id"].as_str().expect("an id")).collect();
    for id in ["bash", "read", "write", "edit", "glob", "grep"] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    for tool in tools {
        let keys: Vec<&String> = tool.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 3, "exactly id, description and parameters: {tool}");
        assert!(tool["description"].as_str().is_some_and(|d| !d.is_empty()), "{tool}");
        assert_eq!(tool["parameters"]["type"], "object", "a JSON Schema: {tool}");
    }
    assert_error("GET /experimental/tool without model", t.srv.get_q("/experimental/tool", &[("provider", "x")]).await, 400, "BadRequest");
}
