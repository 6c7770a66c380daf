//! `POST /log`, `GET /question` and `GET /experimental/tool`: the SDK's
//! `app.log`, `question.list` and `tool.list`.

use reqwest::Method;
use serde_json::{json, Value};

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

    assert_eq!(t.srv.get("/question").await, (200, json!([])), "no turn asked anything, so nothing is pending");

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

/// `git` in `dir` with a clean identity and no user config.
fn git_in(dir: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
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
}

/// `GET /vcs/diff` (and `/raw`): the changed files with their patches,
/// computed by git in the environment; none where nothing runs.
#[tokio::test]
async fn vcs_diff_gives_each_changed_file_with_its_patch() {
    crate::support::for_each_env(|env| async move {
        let t = Served::standard(env).await;
        let (status, diff) = t.srv.get("/vcs/diff?mode=git").await;
        assert_eq!(status, 200, "{diff}");
        if !t.git() {
            assert_eq!(diff, json!([]), "no git where nothing runs");
            return;
        }
        let files = diff.as_array().unwrap();
        let summary: Vec<(&str, u64, u64, &str)> = files
            .iter()
            .map(|f| (f["file"].as_str().unwrap(), f["additions"].as_u64().unwrap(), f["deletions"].as_u64().unwrap(), f["status"].as_str().unwrap()))
            .collect();
        assert_eq!(summary, [("new.txt", 2, 0, "added"), ("old.txt", 0, 1, "deleted"), ("src/main.rs", 1, 0, "modified")]);
        let patch = |name: &str| files.iter().find(|f| f["file"] == name).unwrap()["patch"].as_str().unwrap().to_string();
        assert!(patch("src/main.rs").contains("\n+// changed\n"), "{}", patch("src/main.rs"));
        assert!(patch("new.txt").contains("@@ -0,0 +1,2 @@\n+new untracked\n+second line\n"), "{}", patch("new.txt"));
        assert!(patch("old.txt").contains("\n-to be deleted\n"), "{}", patch("old.txt"));
        let (_, wide) = t.srv.get("/vcs/diff?mode=git&context=0").await;
        assert!(wide.as_array().unwrap().iter().all(|f| f["patch"].as_str().is_some()), "{wide}");
        let (_, src) = t.srv.get_q("/vcs/diff", &[("mode", "git"), ("directory", &t.abs("src"))]).await;
        assert_eq!(src.as_array().unwrap().iter().map(|f| f["file"].as_str().unwrap()).collect::<Vec<_>>(), ["main.rs"], "relative to the directory");

        let raw = t.srv.send(t.srv.request(Method::GET, "/vcs/diff/raw")).await;
        assert_eq!(raw.status, 200);
        assert_eq!(raw.header("content-type"), Some("text/x-diff; charset=utf-8"));
        assert_eq!(raw.text, ["new.txt", "old.txt", "src/main.rs"].map(patch).concat());

        for bad in ["/vcs/diff", "/vcs/diff?mode=svn", "/vcs/diff?mode=git&context=-1"] {
            let (status, body) = t.srv.get(bad).await;
            assert_eq!(status, 400, "{bad}: {body}");
        }
    })
    .await;
}

/// `mode=branch` shows what the branch changed since it left `main`,
/// committed or not; `mode=git` only what is not committed.
#[tokio::test]
async fn vcs_diff_branch_mode_counts_from_where_the_branch_left_main() {
    let t = Served::standard(crate::support::TestEnv::from_name("local").unwrap()).await;
    let root = t.ws.root.clone();
    git_in(&root, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(format!("{root}/feature.txt"), "on the branch\n").unwrap();
    git_in(&root, &["add", "feature.txt"]);
    git_in(&root, &["commit", "-q", "-m", "feature"]);
    let files = |v: Value| v.as_array().unwrap().iter().map(|f| f["file"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let (_, uncommitted) = t.srv.get("/vcs/diff?mode=git").await;
    assert_eq!(files(uncommitted), ["new.txt", "old.txt", "src/main.rs"]);
    let (_, branch) = t.srv.get("/vcs/diff?mode=branch").await;
    assert_eq!(files(branch), ["feature.txt", "new.txt", "old.txt", "src/main.rs"]);
}

/// No turn asked anything, so answering a question is a 404 `QuestionNotFoundError`.
#[tokio::test]
async fn question_reply_and_reject_find_no_pending_question() {
    let t = Served::standard(TestEnv::from_name("local").unwrap()).await;
    let que = "que_0000000000000000000000000a";
    let reply = call(&t.srv, Method::POST, &format!("/question/{que}/reply"), Some(json!({ "answers": [["yes"]] }))).await;
    assert_eq!((reply.0, &reply.1["_tag"]), (404, &json!("QuestionNotFoundError")), "{}", reply.1);
    let reject = call(&t.srv, Method::POST, &format!("/question/{que}/reject"), None).await;
    assert_eq!((reject.0, &reject.1["requestID"]), (404, &json!(que)), "{}", reject.1);
    assert_eq!(call(&t.srv, Method::POST, "/question/x/reject", None).await.0, 404, "any id: none is pending");
    let bad = call(&t.srv, Method::POST, &format!("/question/{que}/reply"), Some(json!({ "answers": "yes" }))).await;
    assert_error("answers must be lists", bad, 400, "BadRequest");
}

/// `POST /project/git/init` makes the directory a repository, in the
/// environment, and answers with the project as it now is.
#[tokio::test]
async fn git_init_makes_the_directory_a_repository() {
    crate::support::for_each_env(|env| async move {
        let t = Served::new(env, crate::support::Fixture::unpacked_source(), &[]).await;
        let (status, project) = call(&t.srv, Method::POST, "/project/git/init", None).await;
        if !t.git() {
            assert_error("git init where nothing runs", (status, project), 501, "UnsupportedError");
            return;
        }
        assert_eq!(status, 200, "{project}");
        // A repository without a commit has no root commit to name its project by: still the global one.
        assert_eq!(project, t.srv.get("/project/current").await.1);
        let (_, listing) = t.srv.get("/file?path=.").await;
        assert!(listing.as_array().unwrap().iter().any(|e| e["name"] == ".git" && e["type"] == "directory"), "{listing}");
        let (_, status) = t.srv.get("/file/status").await;
        assert_eq!(status, json!([]), "not a project until its first commit: {status}");
    })
    .await;
}
