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

#[tokio::test]
async fn vcs_status_lists_the_changed_files_with_line_counts() {
    let t = Served::standard(TestEnv::from_name("local").unwrap()).await;
    let want = json!([
        {"file": "new.txt", "additions": 2, "deletions": 0, "status": "added"},
        {"file": "old.txt", "additions": 0, "deletions": 1, "status": "deleted"},
        {"file": "src/main.rs", "additions": 1, "deletions": 0, "status": "modified"},
    ]);
    assert_eq!(t.srv.get("/vcs/status").await, (200, want));
    assert_error("GET /vcs/status outside the workspace", t.srv.get_q("/vcs/status", &[("directory", "/etc")]).await, 403, "ForbiddenError");
    let outside = Served::new(TestEnv::from_name("local").unwrap(), crate::support::Fixture::unpacked_source(), &[]).await;
    assert_eq!(outside.srv.get("/vcs/status").await, (200, json!([])), "not a repository");
}

/// `instance.dispose` forgets what was resolved for the directory: a
/// repository made since then is seen at the next request, not before.
#[tokio::test]
async fn instance_dispose_makes_the_next_request_find_the_project_afresh() {
    let t = Served::new(TestEnv::from_name("local").unwrap(), crate::support::Fixture::unpacked_source(), &[]).await;
    let (status, project) = t.srv.get("/project/current").await;
    assert_eq!((status, &project["id"]), (200, &json!("global")), "{project}");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(&t.ws.root)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@burrow.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@burrow.invalid")
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    // Its `.gitignore` of `/*` applies now: nothing is added, so the commit is empty.
    git(&["commit", "-q", "--allow-empty", "-m", "first"]);
    let root = git(&["rev-list", "--max-parents=0", "HEAD"]);
    assert_eq!(t.srv.get("/project/current").await.1["id"], "global", "resolved once and kept until disposed");
    assert_eq!(call(&t.srv, Method::POST, "/instance/dispose", None).await, (200, json!(true)));
    let (_, project) = t.srv.get("/project/current").await;
    assert_eq!((&project["id"], &project["vcs"]), (&json!(root), &json!("git")), "{project}");
    assert_eq!(call(&t.srv, Method::POST, "/global/dispose", None).await, (200, json!(true)));
    assert_eq!(t.srv.get("/project/current").await.1["id"], root.as_str());
}
