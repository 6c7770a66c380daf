//! Workspaces: one server with its own local folder and a Docker, an SSH and
//! an S3 workspace at once, each picked per request by `?workspace=` (or the
//! `x-opencode-workspace` header). Files and search through each; a shell
//! command in the container and on the SSH host; a restart that keeps the
//! workspaces and their sessions with no second container; deletion that
//! leaves none; idle stop and wake-up.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::support::env::Backend;
use crate::support::fixture::{Fixture, LIB_RS, README};
use crate::support::{Server, TestEnv, Workspace};

/// The `(type, extra)` of a create request from the `burrow serve` flags a
/// placed fixture is served with: the same fields, as a definition.
fn definition(args: &[String]) -> (String, Value) {
    let mut extra = Map::new();
    let mut i = 0;
    while i < args.len() {
        let key = args[i].trim_start_matches("--").to_string();
        match args.get(i + 1).filter(|v| !v.starts_with("--")) {
            Some(value) => {
                extra.insert(key, Value::String(value.clone()));
                i += 2;
            }
            None => {
                extra.insert(key, Value::Bool(true));
                i += 1;
            }
        }
    }
    // The workspace names its own container.
    extra.remove("name");
    let env = extra["env"].as_str().expect("the flags name an environment").to_string();
    let kind = if env.contains("://") { "s3".to_string() } else { env };
    (kind, Value::Object(extra))
}

/// The placed fixture of `backend`, or `None` (said on stderr) when its
/// service is not running outside CI.
async fn placed(backend: Backend, fx: &Fixture) -> Option<Workspace> {
    match (TestEnv { backend }).place(fx).await {
        Ok(ws) => Some(ws),
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipping the {backend:?} workspace: {e:#}");
            None
        }
        Err(e) => panic!("the {backend:?} workspace cannot be placed: {e:#}"),
    }
}

fn q(path: &str, params: &[(&str, &str)]) -> String {
    crate::support::server::with_query(path, params)
}

async fn create(srv: &Server, kind: &str, extra: &Value) -> String {
    let reply = srv.send(srv.request(Method::POST, "/experimental/workspace").json(&json!({ "type": kind, "extra": extra }))).await;
    assert_eq!(reply.status, 200, "creating a {kind} workspace: {}", reply.text);
    let info = reply.json();
    let id = info["id"].as_str().expect("the workspace has an id").to_string();
    assert!(id.starts_with("wrk"), "{info}");
    assert_eq!(info["type"], kind);
    id
}

/// The file and search checks the conformance suite makes, through workspace `id`.
async fn files_and_search(srv: &Server, id: &str, root: &str) {
    let (status, body) = srv.get_q("/file/content", &[("path", "README.md"), ("workspace", id)]).await;
    assert_eq!(status, 200, "{id}: {body}");
    assert_eq!(body["content"], README, "{id}");
    let (status, body) = srv.get_q("/file/content", &[("path", &format!("{}/src/lib.rs", root.trim_end_matches('/'))), ("workspace", id)]).await;
    assert_eq!((status, body["content"].as_str()), (200, Some(LIB_RS)), "{id}: an absolute path in the workspace: {body}");
    let (status, body) = srv.get_q("/file", &[("path", "src"), ("workspace", id)]).await;
    assert_eq!(status, 200, "{id}: {body}");
    let mut names: Vec<&str> = body.as_array().unwrap().iter().filter_map(|n| n["name"].as_str()).collect();
    names.sort();
    assert_eq!(names, ["lib.rs", "main.rs"], "{id}");
    let (status, body) = srv.get_q("/find/file", &[("query", "deep.txt"), ("workspace", id)]).await;
    assert_eq!(status, 200, "{id}: {body}");
    assert_eq!(body, json!(["a/b/c/deep.txt"]), "{id}");
    let (status, body) = srv.get_q("/find", &[("pattern", "fn greet"), ("workspace", id)]).await;
    assert_eq!(status, 200, "{id}: {body}");
    let paths: Vec<&str> = body.as_array().unwrap().iter().filter_map(|m| m["path"]["text"].as_str()).collect();
    assert_eq!(paths, ["src/lib.rs"], "{id}: {body}");
    // The header works as the parameter does.
    let reply = srv.send(srv.request(Method::GET, "/find/file?query=guide.md").header("x-opencode-workspace", id)).await;
    assert_eq!((reply.status, reply.json()), (200, json!(["docs/guide.md"])), "{id}");
}

/// Runs `command` through a session made in workspace `id`; its output.
async fn shell(srv: &Server, id: &str, command: &str) -> String {
    let reply = srv.send(srv.request(Method::POST, &q("/session", &[("workspace", id)])).json(&json!({ "title": "ws" }))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let session = reply.json();
    assert_eq!(session["workspaceID"], id, "a session made in a workspace belongs to it");
    let sid = session["id"].as_str().unwrap();
    // Sent without the workspace: the session's own workspace runs it.
    let reply = srv.send(srv.request(Method::POST, &format!("/session/{sid}/shell")).json(&json!({ "agent": "build", "command": command }))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    body["parts"][0]["state"]["output"].as_str().unwrap_or_else(|| panic!("no output in {body}")).to_string()
}

/// The containers named after workspace `id`, running or not.
fn containers_of(id: &str) -> Vec<String> {
    let name = format!("^/burrow-{}$", id.to_ascii_lowercase());
    let out = std::process::Command::new("docker").args(["ps", "-a", "-q", "--filter", &format!("name={name}")]).output().expect("docker runs");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// Polls `/experimental/workspace/status` until workspace `id`'s environment
/// is open (`running`) or not, as `want` says. Its `status` stays `connected`
/// all along: a stopped workspace opens again on its next request.
async fn wait_running(srv: &Server, id: &str, want: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = srv.get("/experimental/workspace/status").await;
        assert_eq!(status, 200, "{body}");
        let row = body.as_array().unwrap().iter().find(|r| r["workspaceID"] == id).cloned().unwrap_or_else(|| panic!("no status of {id}: {body}"));
        assert_eq!(row["status"], "connected", "{row}");
        if row["running"] == want {
            return;
        }
        assert!(Instant::now() < deadline, "workspace {id} never had running={want}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn serve_args(ws: &mut Workspace, extra: &[&str]) {
    let tmp = std::env::temp_dir();
    ws.args.extend(["--allow-workspaces".to_string(), "--workspace-root".to_string(), tmp.display().to_string()]);
    ws.args.extend(extra.iter().map(|s| s.to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn one_server_serves_local_docker_ssh_and_s3_workspaces() {
    let fx = Fixture::standard();
    let data = tempfile::Builder::new().prefix("burrow-ws-data-").tempdir().unwrap();
    let data_dir = data.path().display().to_string();
    let mut base = (TestEnv { backend: Backend::Local }).place(&fx).await.unwrap();
    serve_args(&mut base, &["--workspace-idle", "0"]);
    let mut others = Vec::new();
    for backend in [Backend::Docker, Backend::Ssh, Backend::S3] {
        if let Some(ws) = placed(backend, &fx).await {
            base.vars.extend(ws.vars.clone());
            // The SSH key and known hosts the test services keep: allowed too.
            for pair in ws.args.windows(2).filter(|p| p[0] == "--identity" || p[0] == "--known-hosts") {
                let parent = std::path::Path::new(&pair[1]).parent().unwrap().display().to_string();
                base.args.extend(["--workspace-root".to_string(), parent]);
            }
            others.push((backend, ws));
        }
    }
    let vars = [("BURROW_DATA_DIR", data_dir.as_str())];
    let srv = Server::start_with(&base, &vars).await;

    let (status, adapters) = srv.get("/experimental/workspace/adapter").await;
    assert_eq!(status, 200, "{adapters}");
    let kinds: Vec<&str> = adapters.as_array().unwrap().iter().filter_map(|a| a["type"].as_str()).collect();
    for kind in ["local", "docker", "ssh", "s3", "python"] {
        assert!(kinds.contains(&kind), "{kind} is an adapter: {adapters}");
    }
    let (status, body) = srv.get_q("/file/content", &[("path", "README.md"), ("workspace", "wrk_nosuch")]).await;
    assert_eq!((status, body["name"].as_str()), (404, Some("NotFoundError")), "an unknown workspace: {body}");

    // A second local folder: the fixture itself, as a workspace.
    let local = create(&srv, "local", &json!({ "dir": fx.path() })).await;
    files_and_search(&srv, &local, &base.root).await;
    let mut made = vec![(Backend::Local, local.clone(), base.root.clone())];
    for (backend, ws) in &others {
        let (kind, extra) = definition(&ws.args);
        let id = create(&srv, &kind, &extra).await;
        files_and_search(&srv, &id, &ws.root).await;
        made.push((*backend, id, ws.root.clone()));
    }
    let (_, listed) = srv.get("/experimental/workspace").await;
    assert_eq!(listed.as_array().unwrap().len(), made.len(), "{listed}");
    let mut shells = Vec::new();
    for (backend, id, _) in &made {
        if matches!(backend, Backend::Docker | Backend::Ssh) {
            let out = shell(&srv, id, "cat src/lib.rs; echo ws-$((6*7))").await;
            assert_eq!(out, format!("{LIB_RS}ws-42\n"), "{backend:?}");
            shells.push(id.clone());
        }
    }
    let docker = made.iter().find(|(b, ..)| *b == Backend::Docker).map(|(_, id, _)| id.clone());
    if let Some(id) = &docker {
        assert_eq!(containers_of(id).len(), 1, "one container for workspace {id}");
    }
    let (_, sessions_before) = srv.get("/session").await;

    // A container labelled for this data folder whose workspace no record
    // names (as after a crash between removing a record and its container).
    let leaked = format!("burrow-test-leak-{}-{:06x}", std::process::id(), fastrand::u32(..0xffffff));
    if docker.is_some() {
        let store = format!("burrow.workspace.store={data_dir}");
        let out = std::process::Command::new("docker")
            .args(["create", "--name", &leaked, "--label", "burrow.workspace=wrk_gone", "--label", &store, "burrow-test-busybox-git:latest", "true"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    // Restart on the same data: the same workspaces and sessions, and the
    // Docker workspace finds its container again.
    drop(srv);
    let srv = Server::start_with(&base, &vars).await;
    let (_, relisted) = srv.get("/experimental/workspace").await;
    let ids = |v: &Value| v.as_array().unwrap().iter().map(|w| w["id"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(ids(&relisted), ids(&listed), "the workspaces survive a restart");
    let (_, sessions_after) = srv.get("/session").await;
    let workspaces_of = |v: &Value| v.as_array().unwrap().iter().map(|s| (s["id"].clone(), s["workspaceID"].clone())).collect::<Vec<_>>();
    assert_eq!(workspaces_of(&sessions_after), workspaces_of(&sessions_before), "the sessions keep their workspaces");
    for (_, id, root) in &made {
        files_and_search(&srv, id, root).await;
    }
    if docker.is_some() {
        let out = std::process::Command::new("docker").args(["ps", "-a", "-q", "--filter", &format!("name=^/{leaked}$")]).output().unwrap();
        assert!(out.stdout.is_empty(), "the container of a deleted workspace is removed at start");
    }
    if let Some(id) = &docker {
        assert_eq!(containers_of(id).len(), 1, "still one container for workspace {id} after the restart");
        let out = shell(&srv, id, "echo again").await;
        assert_eq!(out, "again\n");
    }

    // Deleting leaves no container; the workspace is gone for requests.
    for (_, id, _) in &made {
        let reply = srv.send(srv.request(Method::DELETE, &format!("/experimental/workspace/{id}"))).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json()["id"], id.as_str());
        assert!(containers_of(id).is_empty() || !matches!(docker.as_deref(), Some(d) if d == id), "the container of {id} is removed");
        let (status, _) = srv.get_q("/file", &[("path", ""), ("workspace", id)]).await;
        assert_eq!(status, 404, "{id} is deleted");
    }
    if let Some(id) = &docker {
        assert!(containers_of(id).is_empty(), "no container is left for {id}");
    }
    let (_, listed) = srv.get("/experimental/workspace").await;
    assert_eq!(listed, json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_workspace_stops_and_wakes_on_the_next_request() {
    let fx = Fixture::standard();
    let mut base = (TestEnv { backend: Backend::Local }).place(&fx).await.unwrap();
    serve_args(&mut base, &["--workspace-idle", "0.3"]);
    let docker = placed(Backend::Docker, &fx).await;
    let srv = Server::start(&base).await;
    let (kind, extra, root) = match &docker {
        Some(ws) => {
            let (kind, extra) = definition(&ws.args);
            (kind, extra, ws.root.clone())
        }
        None => ("local".to_string(), json!({ "dir": fx.path() }), base.root.clone()),
    };
    let id = create(&srv, &kind, &extra).await;
    // Lazy: nothing is opened until the first request.
    wait_running(&srv, &id, false).await;
    files_and_search(&srv, &id, &root).await;
    wait_running(&srv, &id, false).await;
    if docker.is_some() {
        // `running` turns false only once the stop has finished.
        let name = format!("burrow-{}", id.to_ascii_lowercase());
        let out = std::process::Command::new("docker").args(["inspect", "-f", "{{.State.Running}}", &name]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "false", "the idle container is stopped once the status says so: {out:?}");
    }
    // The next request starts it again.
    let (status, body) = srv.get_q("/find/file", &[("query", "deep.txt"), ("workspace", &id)]).await;
    assert_eq!((status, body), (200, json!(["a/b/c/deep.txt"])));
    let reply = srv.send(srv.request(Method::DELETE, &format!("/experimental/workspace/{id}"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn creating_workspaces_needs_a_password_or_the_flag_and_an_allowed_root() {
    let fx = Fixture::standard();
    let ws = (TestEnv { backend: Backend::Local }).place(&fx).await.unwrap();
    let srv = Server::start(&ws).await;
    let reply = srv.send(srv.request(Method::POST, "/experimental/workspace").json(&json!({ "type": "local", "extra": { "dir": fx.path() } }))).await;
    assert_eq!(reply.status, 403, "no password and no --allow-workspaces: {}", reply.text);
    drop(srv);

    let mut ws = ws;
    ws.args.extend(["--allow-workspaces", "--workspace-root", &fx.path().join("src").display().to_string(), "--max-workspaces", "1"].map(String::from));
    let srv = Server::start(&ws).await;
    let post = |body: Value| srv.send(srv.request(Method::POST, "/experimental/workspace").json(&body));
    let reply = post(json!({ "type": "local", "extra": { "dir": fx.path() } })).await;
    assert_eq!((reply.status, reply.json()["name"].as_str()), (400, Some("WorkspaceCreateError")), "outside the allowed root: {}", reply.text);
    let reply = post(json!({ "type": "docker", "extra": { "image": "busybox", "copy": "/etc" } })).await;
    assert_eq!(reply.status, 400, "a copy of a host folder outside the roots: {}", reply.text);
    let reply = post(json!({ "type": "local", "extra": { "dir": fx.path().join("src") } })).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let reply = post(json!({ "type": "local", "extra": { "dir": fx.path().join("src") } })).await;
    assert_eq!(reply.status, 400, "past --max-workspaces: {}", reply.text);
    let reply = post(json!({ "type": "nosuch" })).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workspace_whose_container_is_gone_answers_503_until_recreated() {
    let fx = Fixture::standard();
    let mut base = (TestEnv { backend: Backend::Local }).place(&fx).await.unwrap();
    serve_args(&mut base, &["--workspace-idle", "0"]);
    let Some(docker) = placed(Backend::Docker, &fx).await else { return };
    let srv = Server::start(&base).await;
    let (kind, extra) = definition(&docker.args);
    let id = create(&srv, &kind, &extra).await;
    files_and_search(&srv, &id, &docker.root).await;
    let name = format!("burrow-{}", id.to_ascii_lowercase());
    let out = std::process::Command::new("docker").args(["rm", "-f", &name]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let (status, body) = srv.get_q("/file/content", &[("path", "README.md"), ("workspace", &id)]).await;
    assert_eq!(status, 503, "{body}");
    let recreate = format!("POST /burrow/env/recreate?workspace={id}");
    assert!(body["data"]["message"].as_str().unwrap_or_default().contains(&recreate), "the message names {recreate}: {body}");
    // The default environment is not affected.
    let (status, _) = srv.get_q("/file/content", &[("path", "README.md")]).await;
    assert_eq!(status, 200);

    let reply = srv.send(srv.request(Method::POST, &q("/burrow/env/recreate", &[("workspace", &id)]))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    files_and_search(&srv, &id, &docker.root).await;
    assert_eq!(containers_of(&id).len(), 1, "one container again");
    let reply = srv.send(srv.request(Method::DELETE, &format!("/experimental/workspace/{id}"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(containers_of(&id).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_turn_of_a_session_in_a_docker_workspace_runs_its_tools_there() {
    use crate::support::agent::{config, part};
    use crate::support::llm::{unreachable_url, ScriptedLlm, Turn};
    let fx = Fixture::standard();
    let mut base = (TestEnv { backend: Backend::Local }).place(&fx).await.unwrap();
    serve_args(&mut base, &["--workspace-idle", "0"]);
    let Some(docker) = placed(Backend::Docker, &fx).await else { return };
    let llm = ScriptedLlm::openai(vec![
        Turn::tool("call_b", "bash", json!({"command": "test -f /.dockerenv && pwd && cat README.md", "description": "Where am I"})),
        Turn::text("Done."),
    ])
    .await;
    let cfg = config(&llm.url, &unreachable_url().await).to_string();
    let srv = Server::start_with(&base, &[("OPENCODE_CONFIG_CONTENT", cfg.as_str())]).await;
    let (kind, extra) = definition(&docker.args);
    let id = create(&srv, &kind, &extra).await;

    let reply = srv.send(srv.request(Method::POST, &q("/session", &[("workspace", &id)])).json(&json!({}))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let sid = reply.json()["id"].as_str().unwrap().to_string();
    // Sent without the workspace: the session's workspace runs the turn.
    let prompt = json!({"parts": [{"type": "text", "text": "where are you?"}]});
    let reply = srv.send(srv.request(Method::POST, &format!("/session/{sid}/message")).json(&prompt)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["info"]["finish"], "stop");
    let (status, list) = srv.get(&format!("/session/{sid}/message")).await;
    assert_eq!(status, 200, "{list}");
    let state = part(&list[1], "tool")["state"].clone();
    assert_eq!(state["status"], "completed", "{state}");
    assert_eq!(state["output"], format!("{}\n{README}", docker.root), "bash ran in the container's workspace");
    let reply = srv.send(srv.request(Method::DELETE, &format!("/experimental/workspace/{id}"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_local_workspace_whose_folder_is_gone_answers_503_naming_the_workspace() {
    let fx = Fixture::standard();
    let mut base = (TestEnv { backend: Backend::Local }).place(&fx).await.unwrap();
    serve_args(&mut base, &["--workspace-idle", "0"]);
    let srv = Server::start(&base).await;
    let folder = tempfile::Builder::new().prefix("burrow-ws-gone-").tempdir().unwrap();
    std::fs::write(folder.path().join("here.txt"), "here\n").unwrap();
    let id = create(&srv, "local", &json!({ "dir": folder.path() })).await;
    // Removed before its first request: the workspace cannot be opened.
    folder.close().unwrap();

    let (status, body) = srv.get_q("/file/content", &[("path", "here.txt"), ("workspace", &id)]).await;
    assert_eq!((status, body["name"].as_str()), (503, Some("WorkspaceUnavailableError")), "{body}");
    let message = body["data"]["message"].as_str().unwrap_or_default();
    for named in [format!("?workspace={id}"), format!("POST /burrow/env/recreate?workspace={id}")] {
        assert!(message.contains(&named), "the message names {named}: {body}");
    }
    let (_, statuses) = srv.get("/experimental/workspace/status").await;
    let row = statuses.as_array().unwrap().iter().find(|r| r["workspaceID"] == id.as_str()).cloned().unwrap();
    assert_eq!((row["status"].as_str(), row["running"].as_bool()), (Some("error"), Some(false)), "{statuses}");
    // The server's own environment is not affected.
    let (status, _) = srv.get_q("/file/content", &[("path", "README.md")]).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn session_lists_name_only_the_sessions_of_the_request_workspace() {
    let fx = Fixture::standard();
    let mut base = (TestEnv { backend: Backend::Local }).place(&fx).await.unwrap();
    serve_args(&mut base, &["--workspace-idle", "0"]);
    let srv = Server::start(&base).await;
    // The same folder as the server's own: the same project in both.
    let id = create(&srv, "local", &json!({ "dir": base.root })).await;
    let make = |workspace: Option<&str>, title: &str| {
        let path = match workspace {
            Some(w) => q("/session", &[("workspace", w)]),
            None => "/session".to_string(),
        };
        srv.send(srv.request(Method::POST, &path).json(&json!({ "title": title })))
    };
    let reply = make(None, "at home").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let home = reply.json()["id"].as_str().unwrap().to_string();
    let reply = make(Some(&id), "in the workspace").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let away = reply.json()["id"].as_str().unwrap().to_string();
    let ids = |v: &Value| {
        let mut ids: Vec<String> = v.as_array().unwrap_or_else(|| panic!("{v}")).iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
        ids.sort();
        ids
    };
    let mut both = vec![home.clone(), away.clone()];
    both.sort();

    // GET /session: the named workspace's own, by the parameter or the header;
    // without one, the project's wherever they run, as OpenCode lists them.
    let (status, body) = srv.get_q("/session", &[("workspace", &id)]).await;
    assert_eq!((status, ids(&body)), (200, vec![away.clone()]), "{body}");
    let reply = srv.send(srv.request(Method::GET, "/session").header("x-opencode-workspace", id.as_str())).await;
    assert_eq!((reply.status, ids(&reply.json())), (200, vec![away.clone()]), "{}", reply.text);
    let (status, body) = srv.get("/session").await;
    assert_eq!((status, ids(&body)), (200, both), "{body}");

    // experimental.session.list: the request workspace's projects' sessions
    // that live there; without a workspace, the server's own environment's.
    let (status, body) = srv.get_q("/experimental/session", &[("workspace", &id)]).await;
    assert_eq!((status, ids(&body)), (200, vec![away.clone()]), "{body}");
    let reply = srv.send(srv.request(Method::GET, "/experimental/session").header("x-opencode-workspace", id.as_str())).await;
    assert_eq!((reply.status, ids(&reply.json())), (200, vec![away.clone()]), "{}", reply.text);
    let (status, body) = srv.get("/experimental/session").await;
    assert_eq!((status, ids(&body)), (200, vec![home.clone()]), "{body}");

    // v2 (`/api/session?workspace=`) filters the same way.
    let (status, body) = srv.get_q("/api/session", &[("workspace", &id)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body["data"]), vec![away.clone()], "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_outside_the_named_workspace_means_its_root() {
    let fx = Fixture::standard();
    let mut base = (TestEnv { backend: Backend::Local }).place(&fx).await.unwrap();
    serve_args(&mut base, &["--workspace-idle", "0"]);
    let srv = Server::start(&base).await;
    let folder = tempfile::Builder::new().prefix("burrow-ws-dir-").tempdir().unwrap();
    std::fs::write(folder.path().join("only-here.txt"), "here\n").unwrap();
    let id = create(&srv, "local", &json!({ "dir": folder.path() })).await;
    let root = std::fs::canonicalize(folder.path()).unwrap().display().to_string();

    // What OpenCode's TUI sends: the server's own folder, and the workspace.
    let reply = srv.send(srv.request(Method::POST, &q("/session", &[("workspace", &id), ("directory", &base.root)])).json(&json!({}))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let session = reply.json();
    assert_eq!((session["directory"].as_str(), session["workspaceID"].as_str()), (Some(root.as_str()), Some(id.as_str())), "{session}");
    let (status, body) = srv.get_q("/file", &[("path", ""), ("workspace", &id), ("directory", &base.root)]).await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body.as_array().unwrap().iter().filter_map(|n| n["name"].as_str()).collect();
    assert_eq!(names, ["only-here.txt"], "{body}");
    // Without a workspace, a folder outside the server's own is still refused.
    let (status, body) = srv.get_q("/file", &[("path", ""), ("directory", &root)]).await;
    assert!(status == 400 || status == 403, "{status} {body}");
}
