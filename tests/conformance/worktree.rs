//! `/experimental/worktree` (list, create, remove, reset), `POST /vcs/apply`
//! and `PATCH /project/{id}`: git worktrees and patches made by git in the
//! environment. Object storage runs no git: worktrees answer
//! `WorktreeNotGitError` and patches `VcsApplyError` with reason `non-git`
//! there (the list is empty, as OpenCode's is outside a git project).

use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::assert_error;
use crate::support::calls::{call, sse_frames, WAIT};
use crate::support::server::with_query;
use crate::support::{for_each_env, Served, Server};

/// A patch that adds `added.txt` and changes the first line of `src/lib.rs`
/// (as committed, which the standard fixture leaves unchanged).
const PATCH: &str = "diff --git a/added.txt b/added.txt
new file mode 100644
--- /dev/null
+++ b/added.txt
@@ -0,0 +1 @@
+from a patch
diff --git a/src/lib.rs b/src/lib.rs
--- a/src/lib.rs
+++ b/src/lib.rs
@@ -1,3 +1,3 @@
-pub fn greet() -> &'static str {
+pub fn greet_patched() -> &'static str {
     \"hello\"
 }
";

/// A patch whose context is not in the file.
const STALE_PATCH: &str = "diff --git a/src/lib.rs b/src/lib.rs
--- a/src/lib.rs
+++ b/src/lib.rs
@@ -1,3 +1,3 @@
-pub fn nothing_like_this() {
+pub fn changed() {
     \"hello\"
 }
";

/// The payloads of `GET /global/event` (every directory's events), in order.
struct GlobalEvents(mpsc::UnboundedReceiver<Value>);

impl GlobalEvents {
    async fn subscribe(srv: &Server) -> Self {
        let res = srv.request(Method::GET, "/global/event").send().await.expect("GET /global/event");
        assert_eq!(res.status().as_u16(), 200, "GET /global/event");
        let rx = sse_frames(res, |frame| frame.trim().strip_prefix("data: ").and_then(|d| serde_json::from_str::<Value>(d).ok()));
        let mut events = Self(rx);
        assert_eq!(events.next().await["payload"]["type"], "server.connected");
        events
    }

    async fn next(&mut self) -> Value {
        tokio::time::timeout(WAIT, self.0.recv()).await.expect("an event in time").expect("the event stream is open")
    }

    /// The next envelope whose payload has type `kind`.
    async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let e = self.next().await;
            if e["payload"]["type"] == kind {
                return e;
            }
        }
    }
}

fn q(path: &str, directory: &str) -> String {
    with_query(path, &[("directory", directory)])
}

#[tokio::test]
async fn vcs_apply_applies_a_patch_whole_or_not_at_all() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        let srv = &t.srv;
        if !t.git() {
            let got = call(srv, Method::POST, "/vcs/apply", Some(json!({ "patch": PATCH }))).await;
            assert_eq!(got.0, 400, "no git on object storage: {}", got.1);
            assert_eq!(got.1["name"], "VcsApplyError");
            assert_eq!(got.1["data"]["reason"], "non-git");
            return;
        }
        assert_eq!(call(srv, Method::POST, "/vcs/apply", Some(json!({ "patch": PATCH }))).await, (200, json!({ "applied": true })));
        let (_, added) = srv.get_q("/file/content", &[("path", "added.txt")]).await;
        assert_eq!(added["content"], "from a patch\n", "the new file: {added}");
        let (_, lib) = srv.get_q("/file/content", &[("path", "src/lib.rs")]).await;
        assert!(lib["content"].as_str().unwrap_or("").starts_with("pub fn greet_patched()"), "the changed file: {lib}");

        // The same patch again no longer fits; a stale one never did. Nothing changes.
        for (what, patch) in [("applied twice", PATCH), ("stale", STALE_PATCH), ("not a patch", "hello\n")] {
            let (status, body) = call(srv, Method::POST, "/vcs/apply", Some(json!({ "patch": patch }))).await;
            assert_eq!(status, 400, "{what}: {body}");
            assert_eq!(body["name"], "VcsApplyError", "{what}: {body}");
            assert_eq!(body["data"]["reason"], "not-clean", "{what}: {body}");
            assert!(body["data"]["message"].as_str().is_some_and(|m| m.len() > "Patch can't be applied: ".len()), "{what}: git's reason: {body}");
        }
        let (_, lib_after) = srv.get_q("/file/content", &[("path", "src/lib.rs")]).await;
        assert_eq!(lib_after, lib, "a patch that does not apply changes nothing");

        assert_error("no patch", call(srv, Method::POST, "/vcs/apply", Some(json!({}))).await, 400, "BadRequest");
        assert_error("a patch that is not text", call(srv, Method::POST, "/vcs/apply", Some(json!({ "patch": 3 }))).await, 400, "BadRequest");
    })
    .await;
}

#[tokio::test]
async fn worktrees_are_made_listed_reset_and_removed_in_the_environment() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        let srv = &t.srv;
        if !t.git() {
            assert_eq!(srv.get("/experimental/worktree").await, (200, json!([])), "no git, no worktrees");
            assert_error("create without git", call(srv, Method::POST, "/experimental/worktree", None).await, 400, "WorktreeNotGitError");
            return;
        }
        assert_eq!(srv.get("/experimental/worktree").await, (200, json!([])));
        // The search index is built before the worktrees come.
        assert_eq!(srv.get_q("/find/file", &[("query", "deep.txt")]).await, (200, json!(["a/b/c/deep.txt"])));
        let mut events = GlobalEvents::subscribe(srv).await;

        let dir = t.abs(".burrow-worktrees/my-feature");
        let (status, made) = call(srv, Method::POST, "/experimental/worktree", Some(json!({ "name": "My Feature!" }))).await;
        assert_eq!((status, &made), (200, &json!({ "name": "my-feature", "branch": "opencode/my-feature", "directory": dir })));
        let ready = events.next_of("worktree.ready").await;
        assert_eq!(ready["directory"], dir.as_str(), "{ready}");
        assert_eq!(ready["payload"]["properties"], json!({ "name": "my-feature", "branch": "opencode/my-feature" }), "{ready}");
        assert_eq!(srv.get("/experimental/worktree").await, (200, json!([dir])));

        // The worktree holds the last commit: old.txt is there, the main tree's
        // untracked new.txt is not; it is a project of its own directory, on its branch.
        let (status, old) = srv.get(&with_query("/file/content", &[("path", "old.txt"), ("directory", &dir)])).await;
        assert_eq!(status, 200, "{old}");
        assert_eq!(srv.get(&with_query("/file/content", &[("path", "new.txt"), ("directory", &dir)])).await.0, 404);
        assert_eq!(srv.get(&q("/vcs", &dir)).await, (200, json!({ "branch": "opencode/my-feature", "default_branch": "main" })));
        assert_eq!(srv.get(&q("/vcs/status", &dir)).await, (200, json!([])));
        // The main tree does not see the worktrees' folder.
        let (_, main_status) = srv.get("/vcs/status").await;
        let files: Vec<&str> = main_status.as_array().unwrap().iter().filter_map(|f| f["file"].as_str()).collect();
        assert_eq!(files, ["new.txt", "old.txt", "src/main.rs"], "{main_status}");
        let (_, found) = srv.get_q("/find/file", &[("query", "deep.txt")]).await;
        assert_eq!(found, json!(["a/b/c/deep.txt"]), "the main tree's search skips the worktrees");

        // A second worktree asked for by the same name gets a name of its own.
        let (status, second) = call(srv, Method::POST, "/experimental/worktree", Some(json!({ "name": "my-feature" }))).await;
        assert_eq!(status, 200, "{second}");
        let second_name = second["name"].as_str().unwrap().to_string();
        assert!(second_name.starts_with("my-feature-") && second_name.len() > "my-feature-".len(), "{second}");
        assert_eq!(events.next_of("worktree.ready").await["payload"]["properties"]["name"], second_name.as_str());

        // Reset puts a changed worktree back at the default branch.
        let patch = json!({ "patch": PATCH });
        assert_eq!(call(srv, Method::POST, &q("/vcs/apply", &dir), Some(patch)).await, (200, json!({ "applied": true })));
        assert_eq!(srv.get(&q("/vcs/status", &dir)).await.1.as_array().map(Vec::len), Some(2), "the patch changed the worktree");
        assert_eq!(call(srv, Method::POST, "/experimental/worktree/reset", Some(json!({ "directory": dir }))).await, (200, json!(true)));
        assert_eq!(srv.get(&q("/vcs/status", &dir)).await, (200, json!([])), "reset leaves no change");

        // Bad input: JSON 400s that say which operation failed.
        let unknown = t.abs("src");
        assert_error(
            "reset of a folder that is no worktree",
            call(srv, Method::POST, "/experimental/worktree/reset", Some(json!({ "directory": unknown }))).await,
            400,
            "WorktreeResetFailedError",
        );
        assert_error(
            "reset of the main worktree",
            call(srv, Method::POST, "/experimental/worktree/reset", Some(json!({ "directory": t.ws.root }))).await,
            400,
            "WorktreeResetFailedError",
        );
        assert_error(
            "remove of a folder that is no worktree",
            call(srv, Method::DELETE, "/experimental/worktree", Some(json!({ "directory": unknown }))).await,
            400,
            "WorktreeRemoveFailedError",
        );
        assert_eq!(srv.get("/file?path=src").await.0, 200, "a refused remove deletes nothing");
        assert_error("remove without a directory", call(srv, Method::DELETE, "/experimental/worktree", Some(json!({}))).await, 400, "BadRequest");
        assert_error(
            "remove outside the workspace",
            call(srv, Method::DELETE, "/experimental/worktree", Some(json!({ "directory": "/etc" }))).await,
            403,
            "ForbiddenError",
        );
        assert_error(
            "create with a field OpenCode has not",
            call(srv, Method::POST, "/experimental/worktree", Some(json!({ "nom": "x" }))).await,
            400,
            "BadRequest",
        );

        // Remove takes the files and the branch; the name is free again.
        assert_eq!(call(srv, Method::DELETE, "/experimental/worktree", Some(json!({ "directory": dir }))).await, (200, json!(true)));
        assert_eq!(srv.get("/experimental/worktree").await, (200, json!([second["directory"]])));
        assert_eq!(srv.get_q("/file", &[("path", ".burrow-worktrees")]).await.1.as_array().map(Vec::len), Some(1), "only the second is left");
        let (status, again) = call(srv, Method::POST, "/experimental/worktree", Some(json!({ "name": "my-feature" }))).await;
        assert_eq!((status, &again["name"]), (200, &json!("my-feature")), "{again}");
    })
    .await;
}

#[tokio::test]
async fn project_update_sets_name_icon_and_start_command() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        let srv = &t.srv;
        let id = t.project_id();
        let mut events = GlobalEvents::subscribe(srv).await;
        let body = json!({ "name": "Demo", "icon": { "color": "blue" }, "commands": { "start": "echo started > started.txt" } });
        let (status, project) = call(srv, Method::PATCH, &format!("/project/{id}"), Some(body)).await;
        assert_eq!(status, 200, "{project}");
        assert_eq!((&project["id"], &project["name"]), (&json!(id), &json!("Demo")), "{project}");
        assert_eq!(project["icon"], json!({ "color": "blue" }));
        assert_eq!(project["commands"], json!({ "start": "echo started > started.txt" }));
        let updated = events.next_of("project.updated").await;
        assert_eq!(updated["payload"]["properties"], project, "project.updated carries the project");

        // What the body leaves out stays; an icon changes field by field.
        let (status, again) = call(srv, Method::PATCH, &format!("/project/{id}"), Some(json!({ "icon": { "url": "https://example.com/i.png" } }))).await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["name"], "Demo");
        assert_eq!(again["icon"], json!({ "url": "https://example.com/i.png", "color": "blue" }));
        let (_, current) = srv.get("/project/current").await;
        assert_eq!(current, again, "the project shows what was set");
        let (_, listed) = srv.get("/project").await;
        assert!(listed.as_array().unwrap().contains(&again), "{listed}");

        let (status, missing) = call(srv, Method::PATCH, "/project/no-such-project", Some(json!({ "name": "x" }))).await;
        assert_eq!(status, 404, "{missing}");
        assert_eq!(missing, json!({ "_tag": "ProjectNotFoundError", "projectID": "no-such-project", "message": "Project not found: no-such-project" }));
        assert_error("a field OpenCode has not", call(srv, Method::PATCH, &format!("/project/{id}"), Some(json!({ "title": "x" }))).await, 400, "BadRequest");
        assert_error(
            "an icon that is no object",
            call(srv, Method::PATCH, &format!("/project/{id}"), Some(json!({ "icon": [null] }))).await,
            400,
            "BadRequest",
        );
        assert_error(
            "a start command that is no text",
            call(srv, Method::PATCH, &format!("/project/{id}"), Some(json!({ "commands": { "start": 1 } }))).await,
            400,
            "BadRequest",
        );

        if t.git() {
            // The start command runs in each new worktree, after it is ready.
            let (status, made) = call(srv, Method::POST, "/experimental/worktree", Some(json!({ "name": "started" }))).await;
            assert_eq!(status, 200, "{made}");
            let dir = made["directory"].as_str().unwrap().to_string();
            events.next_of("worktree.ready").await;
            let started = with_query("/file/content", &[("path", "started.txt"), ("directory", &dir)]);
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                let (status, file) = srv.get(&started).await;
                if status == 200 {
                    assert_eq!(file["content"], "started\n");
                    break;
                }
                assert!(tokio::time::Instant::now() < deadline, "the start command wrote started.txt in {dir}");
                // Polls the state; the interval only spares the server.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    })
    .await;
}

#[tokio::test]
async fn project_copies_are_git_worktrees_made_in_the_environment() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        let srv = &t.srv;
        let id = t.project_id();
        let copy = format!("/experimental/project/{id}/copy");
        let parent = t.abs("copies");
        let (status, named) = call(srv, Method::POST, &format!("{copy}/generate-name"), Some(json!({ "context": "Fix the login page, then deploy" }))).await;
        assert_eq!((status, named), (200, json!({ "name": "fix-the-login-page" })));
        if !t.git() {
            let (status, body) = call(srv, Method::POST, &copy, Some(json!({ "strategy": "git_worktree", "directory": parent }))).await;
            assert_eq!((status, &body["name"]), (400, &json!("ProjectCopyError")), "no git on object storage: {body}");
            return;
        }
        let mut events = GlobalEvents::subscribe(srv).await;
        let body = json!({ "strategy": "git_worktree", "directory": parent, "name": "login" });
        assert_eq!(call(srv, Method::POST, &copy, Some(body.clone())).await, (200, json!({ "directory": t.abs("copies/login") })));
        assert_eq!(events.next_of("project.directories.updated").await["payload"]["properties"], json!({ "projectID": id }));
        // The name is taken: the next copy is `login-2`. Each holds the last commit.
        assert_eq!(call(srv, Method::POST, &copy, Some(body)).await, (200, json!({ "directory": t.abs("copies/login-2") })));
        let second = t.abs("copies/login-2");
        assert_eq!(srv.get(&with_query("/file/content", &[("path", "old.txt"), ("directory", &second)])).await.0, 200);

        // A copy with changes is removed only with `force`.
        assert_eq!(call(srv, Method::POST, &q("/vcs/apply", &second), Some(json!({ "patch": PATCH }))).await, (200, json!({ "applied": true })));
        let (status, refused) = call(srv, Method::DELETE, &copy, Some(json!({ "directory": second, "force": false }))).await;
        assert_eq!(status, 400, "{refused}");
        assert_eq!((&refused["name"], &refused["data"]["forceRequired"]), (&json!("ProjectCopyError"), &json!(true)), "{refused}");
        assert_eq!(srv.send(srv.request(Method::DELETE, &copy).json(&json!({ "directory": second, "force": true }))).await.status, 204);
        assert_eq!(srv.get(&q("/vcs", &second)).await.0, 404, "the copy's folder is gone");
        let unchanged = t.abs("copies/login");
        assert_eq!(srv.send(srv.request(Method::DELETE, &copy).json(&json!({ "directory": unchanged, "force": false }))).await.status, 204);
        assert_eq!(srv.send(srv.request(Method::POST, &format!("{copy}/refresh"))).await.status, 204);

        // Bad input: JSON 400s.
        for (what, method, body) in [
            ("an unknown strategy", Method::POST, json!({ "strategy": "rsync", "directory": parent })),
            ("the main worktree", Method::DELETE, json!({ "directory": t.ws.root, "force": true })),
            ("a folder that is no copy", Method::DELETE, json!({ "directory": t.abs("src"), "force": true })),
        ] {
            let (status, body) = call(srv, method, &copy, Some(body)).await;
            assert_eq!((status, &body["name"]), (400, &json!("ProjectCopyError")), "{what}: {body}");
            assert!(body["data"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
        }
        let (status, other) =
            call(srv, Method::POST, "/experimental/project/not-this-one/copy", Some(json!({ "strategy": "git_worktree", "directory": parent }))).await;
        assert_eq!((status, &other["name"]), (400, &json!("ProjectCopyError")), "another project: {other}");
        assert_error("no strategy", call(srv, Method::POST, &copy, Some(json!({ "directory": parent }))).await, 400, "BadRequest");
    })
    .await;
}
