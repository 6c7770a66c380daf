//! What `opencode attach` asks at start-up, and the `/tui/*` remote control.

use serde_json::{json, Value};

use crate::support::calls::{post, Events};
use crate::support::{for_each_env, Served};

#[tokio::test]
async fn every_start_up_endpoint_answers_with_the_right_shape() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        let model = br#"{"provider": {"p": {"models": {"m": {"name": "M", "release_date": "2026-09-25"}}}}}"#;
        t.ws.write_behind("opencode.json", model).await.unwrap();
        let srv = &t.srv;
        let location = json!({"directory": t.abs(""), "project": {"id": t.project_id(), "directory": t.worktree()}});

        // (path, whether the answer is a list)
        let plain = [
            ("/config", false),
            ("/config/providers", false),
            ("/provider", false),
            ("/provider/auth", false),
            ("/agent", true),
            ("/command", true),
            ("/skill", true),
            ("/lsp", true),
            ("/mcp", false),
            ("/formatter", true),
            ("/experimental/capabilities", false),
            ("/experimental/console", false),
            ("/experimental/workspace", true),
            ("/experimental/workspace/status", true),
            ("/experimental/resource", false),
            ("/experimental/tool/ids", true),
            ("/global/config", false),
        ];
        for (path, list) in plain {
            let (status, body) = srv.get(path).await;
            assert_eq!(status, 200, "{path}: {body}");
            assert!(if list { body.is_array() } else { body.is_object() }, "{path}: {body}");
        }
        assert_eq!(srv.get("/experimental/capabilities").await.1, json!({"backgroundSubagents": false}));
        assert_eq!(srv.get("/experimental/console").await.1, json!({"consoleManagedProviders": [], "switchableOrgCount": 0}));
        let dirs = if t.git() { json!([{"directory": t.abs("")}]) } else { json!([]) };
        assert_eq!(srv.get(&format!("/project/{}/directories", t.project_id())).await, (200, dirs));
        assert_eq!(srv.get("/project/nope/directories").await, (200, json!([])));

        assert_eq!(srv.get("/api/location").await, (200, location.clone()));
        for path in ["/api/agent", "/api/integration", "/api/model", "/api/provider", "/api/reference", "/api/command", "/api/skill"] {
            let (status, body) = srv.get(path).await;
            assert_eq!(status, 200, "{path}: {body}");
            assert_eq!(body["location"], location, "{path}");
            assert!(body["data"].is_array(), "{path}: {body}");
        }
        let (_, agents) = srv.get("/api/agent").await;
        let build = &agents["data"][0];
        assert_eq!((build["id"].as_str(), build["mode"].as_str(), build["hidden"].as_bool()), (Some("build"), Some("primary"), Some(false)));
        assert_eq!(build["permissions"][0], json!({"action": "*", "resource": "*", "effect": "allow"}));
        let (_, models) = srv.get("/api/model").await;
        assert_eq!((models["data"][0]["id"].as_str(), models["data"][0]["providerID"].as_str()), (Some("m"), Some("p")));
        assert_eq!(models["data"][0]["time"]["released"], 1_790_294_400_000u64);
        let (_, commands) = srv.get("/api/command").await;
        let names: Vec<&Value> = commands["data"].as_array().unwrap().iter().map(|c| &c["name"]).collect();
        assert_eq!(names, [&json!("init"), &json!("review")]);
        let (_, skills) = srv.get("/api/skill").await;
        assert_eq!(skills["data"][0]["location"], "/builtin/customize-opencode.md");
    })
    .await;
}

#[tokio::test]
async fn tui_endpoints_publish_tui_events() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        let srv = &t.srv;
        let mut events = Events::subscribe(srv, "").await;
        let toast = |props: Value| json!({"type": "tui.toast.show", "properties": props});
        let command = |c: &str| json!({"type": "tui.command.execute", "properties": {"command": c}});

        // (path, body, the event it publishes)
        let calls: Vec<(&str, Option<Value>, Value)> = vec![
            (
                "/tui/show-toast",
                Some(json!({"title": "t", "message": "hello", "variant": "info", "duration": 5000})),
                toast(json!({"title": "t", "message": "hello", "variant": "info", "duration": 5000})),
            ),
            ("/tui/show-toast", Some(json!({"message": "m", "variant": "success"})), toast(json!({"message": "m", "variant": "success", "duration": 5000}))),
            ("/tui/append-prompt", Some(json!({"text": "abc"})), json!({"type": "tui.prompt.append", "properties": {"text": "abc"}})),
            ("/tui/execute-command", Some(json!({"command": "session_new"})), command("session.new")),
            ("/tui/execute-command", Some(json!({"command": "agent.cycle"})), command("agent.cycle")),
            ("/tui/open-help", None, command("help.show")),
            ("/tui/open-sessions", None, command("session.list")),
            ("/tui/open-themes", None, command("theme.switch")),
            ("/tui/open-models", None, command("model.list")),
            ("/tui/submit-prompt", None, command("prompt.submit")),
            ("/tui/clear-prompt", None, command("prompt.clear")),
            ("/tui/select-session", Some(json!({"sessionID": "ses_abc"})), json!({"type": "tui.session.select", "properties": {"sessionID": "ses_abc"}})),
            (
                "/tui/publish",
                Some(json!({"type": "tui.prompt.append", "properties": {"text": "pub"}})),
                json!({"type": "tui.prompt.append", "properties": {"text": "pub"}}),
            ),
            (
                "/tui/publish",
                Some(json!({"type": "tui.toast.show", "properties": {"message": "pub", "variant": "error"}})),
                toast(json!({"message": "pub", "variant": "error", "duration": 5000})),
            ),
        ];
        for (path, body, want) in calls {
            assert_eq!(post(srv, path, body).await, (200, json!(true)), "{path}");
            let got = events.next_of("tui.").await;
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
            crate::assert_error(&format!("{path} {body:?}"), post(srv, path, body.clone()).await, 400, "BadRequest");
        }
        assert_eq!(post(srv, "/tui/control/response", Some(json!({"ok": true}))).await, (200, json!(true)));
        // Nothing was published for the refused calls: the next tui event is this one.
        post(srv, "/tui/clear-prompt", None).await;
        assert_eq!(events.next_of("tui.").await["properties"], json!({"command": "prompt.clear"}));
    })
    .await;
}
