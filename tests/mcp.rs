//! MCP servers from the config: a local one runs inside the environment (the
//! local folder, a Docker container, an SSH host), answers `GET /mcp` as
//! connected, and its tool, called by the scripted model under OpenCode's
//! `<server>_<tool>` name, leaves a file where it ran; disconnect ends its
//! process and takes its tool away, connect brings it back; a broken command
//! is `failed` with the shell's error; a remote one is reached over HTTP.
//!
//! The local server is a POSIX shell script (the Docker test image is
//! busybox, without Python): one JSON-RPC message a line, as MCP's stdio
//! transport has it. Without Docker or the test sshd those tests say why
//! and pass; in CI (`CI=true`) they fail.

mod docker_support;
mod support;

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use support::agent::{part, tool_names, AgentServer};
use support::llm::{ScriptedLlm, Turn};
use support::s3::S3;
use support::ssh::Sshd;
use support::TestEnv;

/// A stdio MCP server with one tool, `where.am-i` (OpenCode names it
/// `probe_where_am-i`): it writes its `word` to `mcp-ran.txt` in its working
/// folder, prints a line on stderr (which Burrow must skip), and answers
/// where it ran.
const SERVER: &str = r#"while IFS= read -r line; do
  id=$(printf '%s\n' "$line" | sed -n 's/.*"id":\([0-9][0-9]*\).*/\1/p')
  case "$line" in
  *'"method":"initialize"'*)
    printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"probe","version":"1"}}}\n' "$id" ;;
  *'"method":"tools/list"'*)
    printf '{"jsonrpc":"2.0","id":%s,"result":{"tools":[{"name":"where.am-i","description":"Says where it runs","inputSchema":{"type":"object","properties":{"word":{"type":"string"}},"required":["word"]}}]}}\n' "$id" ;;
  *'"method":"tools/call"'*)
    word=$(printf '%s\n' "$line" | sed -n 's/.*"word":"\([^"]*\)".*/\1/p')
    printf '%s\n' "$word" > mcp-ran.txt
    echo "probe: a log line on stderr" >&2
    printf '{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"ran in %s on %s with %s"}]}}\n' "$id" "$(pwd)" "$(uname -n)" "$word" ;;
  esac
done
"#;

const TOOL: &str = "probe_where_am-i";

/// The config: the probe, a command that does not exist, and a disabled server.
fn mcp_config() -> Value {
    json!({"mcp": {
        "probe": {"type": "local", "command": ["sh", "mcp-probe.sh"], "environment": {"PROBE": "1"}, "timeout": 20000},
        "broken": {"type": "local", "command": ["burrow-no-such-mcp-server"], "timeout": 20000},
        "off": {"type": "local", "command": ["sh", "mcp-probe.sh"], "enabled": false},
    }})
}

async fn start(env: TestEnv) -> (ScriptedLlm, AgentServer) {
    let llm = ScriptedLlm::openai(vec![Turn::tool("call_mcp", TOOL, json!({"word": "hello"})), Turn::text("Done.")]).await;
    let a = AgentServer::start(env, &llm.url, mcp_config()).await;
    a.ws.write_behind("mcp-probe.sh", SERVER.as_bytes()).await.unwrap();
    (llm, a)
}

async fn status(a: &AgentServer) -> Value {
    let (code, status) = a.srv.get("/mcp").await;
    assert_eq!(code, 200, "{status}");
    status
}

async fn tool_ids(a: &AgentServer) -> Vec<String> {
    let (code, ids) = a.srv.get("/experimental/tool/ids").await;
    assert_eq!(code, 200, "{ids}");
    serde_json::from_value(ids).unwrap()
}

/// The processes that run the probe script in `root` on this machine.
fn probes_in(root: &std::path::Path) -> Vec<String> {
    let procs = std::fs::read_dir("/proc").unwrap().filter_map(Result::ok);
    procs
        .filter(|p| std::fs::read_link(p.path().join("cwd")).is_ok_and(|cwd| cwd == root))
        .filter(|p| std::fs::read(p.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("mcp-probe.sh")))
        .map(|p| p.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Waits for `done` to hold (a process ending after its kill), for at most 10 s.
async fn until(done: impl Fn() -> bool) -> bool {
    for _ in 0..100 {
        if done() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    done()
}

/// Status, tools, a turn that calls the tool, disconnect and connect; the
/// tool's answer (which says where it ran) for the caller's own checks.
/// `gone` tells whether the server's process has ended, where it ran.
async fn check(a: &AgentServer, llm: &ScriptedLlm, gone: impl Fn() -> bool) -> String {
    let s = status(a).await;
    assert_eq!(s["probe"], json!({"status": "connected"}), "{s}");
    assert_eq!(s["off"], json!({"status": "disabled"}), "{s}");
    assert_eq!(s["broken"]["status"], "failed", "{s}");
    let error = s["broken"]["error"].as_str().unwrap();
    assert!(error.contains("burrow-no-such-mcp-server") && error.contains("127"), "a clear error: {error}");

    assert!(tool_ids(a).await.contains(&TOOL.to_string()));
    let (code, tools) = a.srv.get("/experimental/tool?provider=fake&model=fake-model").await;
    assert_eq!(code, 200, "{tools}");
    let tool = tools.as_array().unwrap().iter().find(|t| t["id"] == TOOL).unwrap_or_else(|| panic!("{tools}"));
    assert_eq!(tool["description"], "Says where it runs");
    assert_eq!(tool["parameters"]["required"], json!(["word"]));

    let id = a.session().await;
    let (code, answer) = a.post(&format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "where are you?"}]})).await;
    assert_eq!(code, 200, "{answer}");
    assert!(tool_names(&llm.requests()[0]).contains(&TOOL.to_string()), "the model was offered the tool");
    let list = a.messages(&id).await;
    let state = part(&list[1], "tool")["state"].clone();
    assert_eq!(state["status"], "completed", "{state}");
    let output = state["output"].as_str().unwrap().to_string();
    assert!(output.starts_with(&format!("ran in {} on ", a.ws.root)) && output.ends_with(" with hello"), "{output}");

    assert!(!gone(), "the server's process runs while connected");
    let (code, done) = a.post("/mcp/probe/disconnect", json!({})).await;
    assert_eq!((code, done), (200, json!(true)));
    assert_eq!(status(a).await["probe"], json!({"status": "disabled"}));
    assert!(!tool_ids(a).await.contains(&TOOL.to_string()));
    assert!(until(&gone).await, "the server's process ended with the disconnect");

    let (code, done) = a.post("/mcp/probe/connect", json!({})).await;
    assert_eq!((code, done), (200, json!(true)));
    assert_eq!(status(a).await["probe"], json!({"status": "connected"}));
    assert!(tool_ids(a).await.contains(&TOOL.to_string()));

    let (code, missing) = a.post("/mcp/nobody/connect", json!({})).await;
    assert_eq!(code, 404, "{missing}");
    assert_eq!(missing["_tag"], "McpServerNotFoundError");
    output
}

#[tokio::test]
async fn a_local_server_runs_in_the_local_folder() {
    let (llm, a) = start(TestEnv::from_name("local").unwrap()).await;
    let ran = std::path::Path::new(&a.ws.root).join("mcp-ran.txt");
    let root = std::fs::canonicalize(&a.ws.root).unwrap();
    check(&a, &llm, || probes_in(&root).is_empty()).await;
    assert_eq!(std::fs::read_to_string(ran).unwrap(), "hello\n");

    // Added at run time, and replaced by a second add of the same name.
    let (code, all) = a.post("/mcp", json!({"name": "late", "config": {"type": "local", "command": ["sh", "mcp-probe.sh"]}})).await;
    assert_eq!(code, 200, "{all}");
    assert_eq!(all["late"], json!({"status": "connected"}), "{all}");
    assert_eq!(all["probe"], json!({"status": "connected"}), "{all}");
    assert!(tool_ids(&a).await.contains(&"late_where_am-i".to_string()));
    let (code, all) = a.post("/mcp", json!({"name": "late", "config": {"type": "local", "command": ["sh", "mcp-probe.sh"], "enabled": false}})).await;
    assert_eq!((code, &all["late"]), (200, &json!({"status": "disabled"})), "{all}");
    let (code, bad) = a.post("/mcp", json!({"name": "x", "config": {"type": "local"}})).await;
    assert_eq!(code, 400, "{bad}");

    // A server whose process dies is `failed` with the reason, and its tool is gone.
    // The replaced `late` server's process ends with the replacing add; the probe's remains.
    assert!(until(|| probes_in(&root).len() == 1).await, "{:?}", probes_in(&root));
    let pids = probes_in(&root);
    assert!(std::process::Command::new("kill").args(["-9", &pids[0]]).status().unwrap().success());
    let mut s = status(&a).await;
    for _ in 0..100 {
        if s["probe"]["status"] == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        s = status(&a).await;
    }
    // (The local terminal reports a killed process as exit code 1, not by its signal.)
    assert_eq!(s["probe"]["status"], "failed", "{s}");
    assert!(s["probe"]["error"].as_str().unwrap().starts_with("the server "), "{s}");
    assert!(!tool_ids(&a).await.contains(&TOOL.to_string()));
}

#[tokio::test]
async fn a_local_server_runs_inside_the_container() {
    if docker_support::image().is_none() {
        return;
    }
    let (llm, a) = start(TestEnv::from_name("docker").unwrap()).await;
    let at = a.ws.args.iter().position(|x| x == "--name").unwrap();
    let container = a.ws.args[at + 1].clone();
    let output = check(&a, &llm, || !docker_support::ps(&container).contains("mcp-probe.sh")).await;
    // The tool ran in the container: its host name, and the file it left there.
    let hostname = docker_support::sh(&container, "uname -n");
    assert!(output.contains(&format!(" on {hostname} with ")), "{output}");
    assert_eq!(docker_support::sh(&container, "cat /workspace/mcp-ran.txt"), "hello");
    assert!(!std::path::Path::new("/workspace/mcp-ran.txt").exists(), "nothing was written on the host");
    assert!(docker_support::ps(&container).contains("mcp-probe.sh"), "connected again: {}", docker_support::ps(&container));
}

#[tokio::test]
async fn a_local_server_runs_on_the_ssh_host() {
    let Some(sshd) = Sshd::get() else { return };
    let (llm, a) = start(TestEnv::from_name("ssh").unwrap()).await;
    let count = format!("for p in /proc/[0-9]*; do [ \"$(readlink $p/cwd)\" = '{}' ] && grep -q mcp-probe $p/cmdline && echo $p; done; true", a.ws.root);
    check(&a, &llm, || sshd.sh(&count).unwrap().trim().is_empty()).await;
    assert_eq!(sshd.sh(&format!("cat '{}'", a.ws.abs("mcp-ran.txt"))).unwrap(), "hello\n");
}

/// A request the remote server got: its method and session header.
type Seen = (String, Option<String>);

/// A remote server over streamable HTTP: `initialize` answers JSON with a
/// session id, `tools/list` answers as server-sent events, and every later
/// request carries the session id.
#[tokio::test]
async fn a_remote_server_is_reached_over_http() {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;

    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/mcp",
        axum::routing::post(move |headers: HeaderMap, axum::Json(msg): axum::Json<Value>| {
            let log = log.clone();
            async move {
                let method = msg["method"].as_str().unwrap_or("").to_string();
                let session = headers.get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_string);
                log.lock().unwrap().push((method.clone(), session));
                let id = msg["id"].clone();
                let result = match method.as_str() {
                    "initialize" => json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "web", "version": "1"}}),
                    "tools/list" => {
                        let body = json!({"jsonrpc": "2.0", "id": id, "result": {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}});
                        return ([("content-type", "text/event-stream")], format!("event: message\ndata: {body}\n\n")).into_response();
                    }
                    "tools/call" => json!({"content": [{"type": "text", "text": format!("echo {}", msg["params"]["arguments"]["say"])}]}),
                    _ => return StatusCode::ACCEPTED.into_response(),
                };
                ([("mcp-session-id", "s-1")], axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result}))).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let llm = ScriptedLlm::openai(vec![Turn::tool("call_web", "web_echo", json!({"say": "hi"})), Turn::text("Done.")]).await;
    let a = AgentServer::local(&llm.url, json!({"mcp": {"web": {"type": "remote", "url": url, "headers": {"x-token": "t"}}}})).await;
    assert_eq!(status(&a).await, json!({"web": {"status": "connected"}}));
    let id = a.session().await;
    let (code, answer) = a.post(&format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "echo"}]})).await;
    assert_eq!(code, 200, "{answer}");
    let state = part(&a.messages(&id).await[1], "tool")["state"].clone();
    assert_eq!((&state["status"], &state["output"]), (&json!("completed"), &json!("echo \"hi\"")), "{state}");
    let seen = seen.lock().unwrap().clone();
    let methods: Vec<&str> = seen.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(methods, ["initialize", "notifications/initialized", "tools/list", "tools/call"]);
    assert!(seen[1..].iter().all(|(_, s)| s.as_deref() == Some("s-1")), "{seen:?}");
}

/// Object storage runs no processes: a local server there fails, saying why.
#[tokio::test]
async fn a_local_server_on_object_storage_fails_clearly() {
    if S3::require().is_none() {
        return;
    }
    let (_llm, a) = start(TestEnv::from_name("s3").unwrap()).await;
    let s = status(&a).await;
    assert_eq!(s["probe"]["status"], "failed", "{s}");
    let error = s["probe"]["error"].as_str().unwrap();
    assert!(error.contains("sh mcp-probe.sh") && error.contains("object storage"), "{error}");
    assert!(!tool_ids(&a).await.iter().any(|t| t.starts_with("probe_")));
}

/// An MCP tool goes through the permission rules under its own name: a
/// `deny` for it keeps it from the model, as for a built-in tool.
#[tokio::test]
async fn a_denied_mcp_tool_is_not_offered() {
    let llm = ScriptedLlm::openai(vec![Turn::text("Nothing to do.")]).await;
    let mut cfg = mcp_config();
    cfg["permission"] = json!({"probe_*": "deny"});
    let a = AgentServer::start(TestEnv::from_name("local").unwrap(), &llm.url, cfg).await;
    a.ws.write_behind("mcp-probe.sh", SERVER.as_bytes()).await.unwrap();
    assert_eq!(status(&a).await["probe"], json!({"status": "connected"}));
    let id = a.session().await;
    let (code, answer) = a.post(&format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "hi"}]})).await;
    assert_eq!(code, 200, "{answer}");
    let offered = tool_names(&llm.requests()[0]);
    assert!(offered.contains(&"bash".to_string()) && !offered.contains(&TOOL.to_string()), "{offered:?}");
}
