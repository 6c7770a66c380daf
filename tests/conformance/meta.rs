//! `/global/health`, `/path`, `/project`, `/project/current`, `/vcs` and
//! Burrow's `/burrow/capabilities`.

use serde_json::{json, Value};

use crate::support::env::Backend;
use crate::support::{for_each_env, Served};
use crate::OPENCODE_VERSION;

#[tokio::test]
async fn global_health() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        assert_eq!(t.srv.get("/global/health").await, (200, json!({"healthy": true, "version": OPENCODE_VERSION})));
    })
    .await;
}

#[tokio::test]
async fn path_reports_home_state_config_worktree_and_directory() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        let want = json!({
            "home": t.srv.home,
            "state": t.srv.data_dir,
            "config": format!("{}/.config/opencode", t.srv.home),
            "worktree": t.worktree(),
            "directory": t.ws.root,
        });
        assert_eq!(t.srv.get("/path").await, (200, want));
    })
    .await;
}

/// Checks a project object against the fixture: id, worktree, vcs, time and
/// sandboxes, and nothing else.
#[track_caller]
fn assert_project(t: &Served, p: &Value) {
    assert_eq!(p["id"], t.project_id(), "project id in {p}");
    assert_eq!(p["worktree"], t.worktree(), "worktree in {p}");
    assert_eq!(p["sandboxes"], json!([]), "sandboxes in {p}");
    let mut keys: Vec<&str> = p.as_object().expect("a project is an object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    if t.git() {
        assert_eq!(p["vcs"], "git", "vcs in {p}");
        assert_eq!(keys, ["id", "sandboxes", "time", "vcs", "worktree"], "project fields");
    } else {
        // Documented: without processes there is no git, so no `vcs` field (OpenCode's global project).
        assert_eq!(keys, ["id", "sandboxes", "time", "worktree"], "project fields");
    }
    let created = p["time"]["created"].as_u64().unwrap_or_else(|| panic!("time.created is a number of ms in {p}"));
    let updated = p["time"]["updated"].as_u64().unwrap_or_else(|| panic!("time.updated is a number of ms in {p}"));
    assert!(created > 1_600_000_000_000 && updated >= created, "plausible times in {p}");
}

#[tokio::test]
async fn project_current_and_project_list() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        let (status, current) = t.srv.get("/project/current").await;
        assert_eq!(status, 200, "{current}");
        assert_project(&t, &current);
        let (status, list) = t.srv.get("/project").await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(list, json!([current]), "the one project seen so far");
    })
    .await;
}

#[tokio::test]
async fn vcs_reports_branch_and_default_branch() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        // Documented: without processes (object storage) there is no git; OpenCode
        // answers nulls for a folder outside git, Burrow leaves the fields out (its schema has no nulls).
        let want = if t.git() { json!({"branch": "main", "default_branch": "main"}) } else { json!({}) };
        assert_eq!(t.srv.get("/vcs").await, (200, want));
    })
    .await;
}

#[tokio::test]
async fn capabilities_describe_the_environment() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        let (status, body) = t.srv.get("/burrow/capabilities").await;
        assert_eq!(status, 200);
        let kind = match env.backend {
            Backend::Local => "local",
            Backend::Docker => "docker",
            Backend::Ssh => "ssh",
            Backend::S3 => "object",
        };
        assert_eq!(body["env"], kind, "{body}");
        assert_eq!(body["protocol"], OPENCODE_VERSION, "{body}");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"), "{body}");
        assert_eq!(body["root"], t.ws.root, "{body}");
        let caps = &body["capabilities"];
        for flag in ["exec", "pty", "watch"] {
            assert!(caps[flag].is_boolean(), "capabilities.{flag} in {body}");
        }
        assert!(caps["search"].is_string(), "capabilities.search in {body}");
        if env.backend == Backend::Local {
            assert_eq!(caps, &json!({"exec": true, "pty": true, "watch": true, "search": "in-process"}));
        }
        if kind == "object" {
            assert_eq!((caps["exec"].as_bool(), caps["pty"].as_bool()), (Some(false), Some(false)), "object storage runs nothing");
        }
    })
    .await;
}
