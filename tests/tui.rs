//! What `opencode attach` asks at start-up, and the `/tui/*` remote control,
//! against the real binary.

mod common;

use common::{canonical, project, Server};
use serde_json::{json, Value};

#[tokio::test]
async fn every_start_up_endpoint_answers_with_the_right_shape() {
    let dir = project(true);
    std::fs::write(dir.path().join("opencode.json"), r#"{"provider": {"p": {"models": {"m": {"name": "M", "release_date": "2026-09-25"}}}}}"#).unwrap();
    let server = Server::start(dir.path());
    let root = canonical(dir.path());
    let (_, current) = server.get("/project/current").await;
    let project_id = current["id"].as_str().unwrap().to_string();
    let location = json!({"directory": root, "project": {"id": project_id, "directory": root}});

    // (path, the JSON type of the answer)
    let plain = [
        ("/config", "object"),
        ("/config/providers", "object"),
        ("/provider", "object"),
        ("/provider/auth", "object"),
        ("/agent", "array"),
        ("/command", "array"),
        ("/skill", "array"),
        ("/lsp", "array"),
        ("/mcp", "object"),
        ("/formatter", "array"),
        ("/experimental/capabilities", "object"),
        ("/experimental/console", "object"),
        ("/experimental/workspace", "array"),
        ("/experimental/workspace/status", "array"),
        ("/experimental/resource", "object"),
        ("/experimental/tool/ids", "array"),
        ("/global/config", "object"),
    ];
    for (path, kind) in plain {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let ok = match kind {
            "array" => body.is_array(),
            _ => body.is_object(),
        };
        assert!(ok, "{path} answers an {kind}: {body}");
    }
    assert_eq!(server.get("/experimental/capabilities").await.1, json!({"backgroundSubagents": false}));
    assert_eq!(server.get("/experimental/console").await.1, json!({"consoleManagedProviders": [], "switchableOrgCount": 0}));
    assert_eq!(server.get(&format!("/project/{project_id}/directories")).await, (200, json!([{"directory": root}])));
    assert_eq!(server.get("/project/nope/directories").await, (200, json!([])));

    assert_eq!(server.get("/api/location").await, (200, location.clone()));
    for path in ["/api/agent", "/api/integration", "/api/model", "/api/provider", "/api/reference", "/api/command", "/api/skill"] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["location"], location, "{path}");
        assert!(body["data"].is_array(), "{path}: {body}");
    }
    let (_, agents) = server.get("/api/agent").await;
    let build = &agents["data"][0];
    assert_eq!((build["id"].as_str(), build["mode"].as_str(), build["hidden"].as_bool()), (Some("build"), Some("primary"), Some(false)));
    assert_eq!(build["permissions"][0], json!({"action": "*", "resource": "*", "effect": "allow"}));
    let (_, models) = server.get("/api/model").await;
    assert_eq!(models["data"][0]["id"], "m");
    assert_eq!(models["data"][0]["providerID"], "p");
    assert_eq!(models["data"][0]["time"]["released"], 1_790_294_400_000u64);
    let (_, commands) = server.get("/api/command").await;
    assert_eq!(commands["data"].as_array().unwrap().iter().map(|c| c["name"].clone()).collect::<Vec<_>>(), [json!("init"), json!("review")]);
    let (_, skills) = server.get("/api/skill").await;
    assert_eq!(skills["data"][0]["location"], "/builtin/customize-opencode.md");
}

#[tokio::test]
async fn tui_endpoints_publish_tui_events() {
    let dir = project(false);
    let server = Server::start(dir.path());
    let mut events = server.events().await;

    // (path, body, the event it publishes)
    let calls: Vec<(&str, Option<Value>, Value)> = vec![
        ("/tui/show-toast", Some(json!({"title": "t", "message": "hello", "variant": "info", "duration": 5000})),
            json!({"type": "tui.toast.show", "properties": {"title": "t", "message": "hello", "variant": "info", "duration": 5000}})),
        ("/tui/show-toast", Some(json!({"message": "m", "variant": "success"})),
            json!({"type": "tui.toast.show", "properties": {"message": "m", "variant": "success", "duration": 5000}})),
        ("/tui/append-prompt", Some(json!({"text": "abc"})), json!({"type": "tui.prompt.append", "properties": {"text": "abc"}})),
        ("/tui/execute-command", Some(json!({"command": "session_new"})),
            json!({"type": "tui.command.execute", "properties": {"command": "session.new"}})),
        ("/tui/execute-command", Some(json!({"command": "agent.cycle"})),
            json!({"type": "tui.command.execute", "properties": {"command": "agent.cycle"}})),
        ("/tui/open-help", None, json!({"type": "tui.command.execute", "properties": {"command": "help.show"}})),
        ("/tui/open-sessions", None, json!({"type": "tui.command.execute", "properties": {"command": "session.list"}})),
        ("/tui/open-themes", None, json!({"type": "tui.command.execute", "properties": {"command": "theme.switch"}})),
        ("/tui/open-models", None, json!({"type": "tui.command.execute", "properties": {"command": "model.list"}})),
        ("/tui/submit-prompt", None, json!({"type": "tui.command.execute", "properties": {"command": "prompt.submit"}})),
        ("/tui/clear-prompt", None, json!({"type": "tui.command.execute", "properties": {"command": "prompt.clear"}})),
        ("/tui/select-session", Some(json!({"sessionID": "ses_abc"})),
            json!({"type": "tui.session.select", "properties": {"sessionID": "ses_abc"}})),
        ("/tui/publish", Some(json!({"type": "tui.prompt.append", "properties": {"text": "pub"}})),
            json!({"type": "tui.prompt.append", "properties": {"text": "pub"}})),
        ("/tui/publish", Some(json!({"type": "tui.toast.show", "properties": {"message": "pub", "variant": "error"}})),
            json!({"type": "tui.toast.show", "properties": {"message": "pub", "variant": "error", "duration": 5000}})),
    ];
    for (path, body, want) in calls {
        assert_eq!(server.post(path, body).await, (200, json!(true)), "{path}");
        let got = events.next_with_prefix("tui.").await;
        assert!(got["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(json!({"type": got["type"], "properties": got["properties"]}), want, "{path}");
    }

    let refused: Vec<(&str, Option<Value>)> = vec![
        ("/tui/show-toast", Some(json!({"message": "m"}))),
        ("/tui/show-toast", Some(json!({"message": "m", "variant": "loud"}))),
        ("/tui/show-toast", Some(json!({"message": "m", "variant": "info", "duration": 0}))),
        ("/tui/append-prompt", Some(json!({}))),
        ("/tui/append-prompt", None),
        ("/tui/execute-command", Some(json!({}))),
        ("/tui/select-session", Some(json!({"sessionID": "garbage"}))),
        ("/tui/publish", Some(json!({"type": "bogus", "properties": {}}))),
        ("/tui/control/response", None),
    ];
    for (path, body) in refused {
        let (status, err) = server.post(path, body.clone()).await;
        assert_eq!(status, 400, "{path} {body:?}");
        assert_eq!(err["name"], "BadRequest", "{path}: {err}");
    }
    assert_eq!(server.post("/tui/control/response", Some(json!({"ok": true}))).await, (200, json!(true)));
    // Nothing was published for the refused calls: the next tui event is this one.
    server.post("/tui/clear-prompt", None).await;
    assert_eq!(events.next_with_prefix("tui.").await["properties"], json!({"command": "prompt.clear"}));
}
