//! Undo and redo (`POST /session/{id}/revert`, `/unrevert`) on the
//! environments' snapshots. A scripted turn writes one file, edits another and
//! runs `bash` that creates a third; revert puts all three back (content,
//! created files removed), unrevert brings the changes back, and a new prompt
//! after a revert drops the reverted messages. Files are read through
//! `GET /file/content`, which goes through the environment's file operations,
//! not through the snapshot store that did the restoring.
//!
//! Docker and SSH run where their services are (as `agent_env.rs`): without
//! them the tests say why and pass, except in CI.

// For the image check and `docker exec`.
mod docker_support;
mod support;

use serde_json::{json, Value};
use support::agent::{part, AgentServer};
use support::calls::Events;
use support::fixture::README;
use support::llm::{ScriptedLlm, Turn};
use support::s3::S3;
use support::ssh::Sshd;
use support::TestEnv;

/// The model's side: write, edit, and (where commands run) bash; then the answer to the prompt after the revert.
fn script(bash: bool) -> Vec<Turn> {
    let mut turns = vec![
        Turn::tool("call_w", "write", json!({"filePath": "agent/new.txt", "content": "made by write\n"})),
        Turn::tool("call_e", "edit", json!({"filePath": "README.md", "oldString": "hello from the readme", "newString": "edited by the model"})),
    ];
    if bash {
        turns.push(Turn::tool("call_b", "bash", json!({"command": "mkdir -p agent && printf made-by-bash > agent/bash.txt", "description": "Leave a file"})));
    }
    turns.push(Turn::text("Done."));
    turns.push(Turn::text("Starting over."));
    turns
}

/// A file's content through the environment, `None` when it is not there.
async fn read(a: &AgentServer, rel: &str) -> Option<String> {
    let path = urlencode(rel);
    let (status, body) = a.srv.get(&format!("/file/content?path={path}")).await;
    match status {
        200 => Some(body["content"].as_str().unwrap_or_else(|| panic!("{rel}: {body}")).to_string()),
        404 => None,
        _ => panic!("reading {rel}: {status} {body}"),
    }
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

async fn changed_state(a: &AgentServer, bash: bool) {
    assert_eq!(read(a, "agent/new.txt").await.as_deref(), Some("made by write\n"));
    assert_eq!(read(a, "README.md").await.as_deref(), Some(README.replace("hello from the readme", "edited by the model").as_str()));
    assert_eq!(read(a, "agent/bash.txt").await.as_deref(), bash.then_some("made-by-bash"));
}

async fn original_state(a: &AgentServer) {
    assert_eq!(read(a, "agent/new.txt").await, None);
    assert_eq!(read(a, "README.md").await.as_deref(), Some(README));
    assert_eq!(read(a, "agent/bash.txt").await, None);
}

async fn session(a: &AgentServer, id: &str) -> Value {
    let (status, s) = a.srv.get(&format!("/session/{id}")).await;
    assert_eq!(status, 200, "{s}");
    s
}

/// Runs the whole sequence; returns the server, still running, for checks behind its back.
async fn undo_and_redo(env: TestEnv) -> AgentServer {
    undo_and_redo_with(env, &[], "store").await
}

/// [`undo_and_redo`] with variables for the server, expecting snapshots kept by `method`.
async fn undo_and_redo_with(env: TestEnv, vars: &[(&str, &str)], method: &str) -> AgentServer {
    // Object storage runs no commands.
    let bash = env.name() != "s3";
    let llm = ScriptedLlm::openai(script(bash)).await;
    let a = AgentServer::start_with(env, &llm.url, json!({}), vars).await;
    let id = a.session().await;
    let (status, answer) = a.post(&format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "change three files"}]})).await;
    assert_eq!(status, 200, "{answer}");
    let list = a.messages(&id).await;
    let steps = if bash { 3 } else { 2 };
    assert_eq!(list.len(), steps + 2, "{list:?}");
    for m in &list[1..=steps] {
        assert_eq!(part(m, "tool")["state"]["status"], "completed", "{m}");
    }
    changed_state(&a, bash).await;
    // Known once the environment was probed (the first turn did).
    let (_, caps) = a.srv.get("/burrow/capabilities").await;
    assert_eq!(caps["undo"]["enabled"], true, "{caps}");
    assert_eq!(caps["undo"]["method"], method, "{caps}");

    // Each step starts with a snapshot; the last step's patch names the file
    // it changed (bash's, which no tool reported).
    let user_id = list[0]["info"]["id"].as_str().unwrap().to_string();
    let last = &list[steps];
    let start = part(last, "step-start")["snapshot"].as_str().unwrap_or_else(|| panic!("{last}")).to_string();
    assert_eq!(start.len(), 40, "{start}");
    let patch = part(last, "patch");
    assert_eq!(patch["hash"], json!(start));
    let made = if bash { "agent/bash.txt" } else { "README.md" };
    assert_eq!(patch["files"], json!([a.ws.abs(made)]), "{patch}");
    // The session's diff comes from the snapshots, so bash's file is in it.
    let (_, diffs) = a.srv.get(&format!("/session/{id}/diff")).await;
    let files: Vec<&str> = diffs.as_array().unwrap().iter().map(|d| d["file"].as_str().unwrap()).collect();
    let expected: &[&str] = if bash { &["README.md", "agent/bash.txt", "agent/new.txt"] } else { &["README.md", "agent/new.txt"] };
    assert_eq!(files, expected, "{diffs}");

    // Unknown messages are a 404 with a JSON error.
    let (status, err) = a.post(&format!("/session/{id}/revert"), json!({"messageID": "msg_0000000000000000000000000"})).await;
    assert_eq!(status, 404, "{err}");
    assert!(err["data"]["message"].is_string(), "{err}");

    // Revert to the user message: all three files go back.
    let (status, reverted) = a.post(&format!("/session/{id}/revert"), json!({"messageID": user_id})).await;
    assert_eq!(status, 200, "{reverted}");
    assert_eq!(reverted["revert"]["messageID"], json!(user_id), "{reverted}");
    assert!(reverted["revert"]["snapshot"].as_str().is_some_and(|s| s.len() == 40), "{reverted}");
    assert!(reverted["revert"]["diff"].as_str().unwrap().contains("made by write"), "{reverted}");
    original_state(&a).await;
    // The messages stay until the next prompt; the session says where the revert is.
    assert_eq!(a.messages(&id).await.len(), steps + 2);
    assert_eq!(session(&a, &id).await["revert"]["messageID"], json!(user_id));

    // Unrevert brings them back and clears the state.
    let (status, unreverted) = a.post(&format!("/session/{id}/unrevert"), json!({})).await;
    assert_eq!(status, 200, "{unreverted}");
    assert!(unreverted.get("revert").is_none(), "{unreverted}");
    changed_state(&a, bash).await;

    // Revert again, then a new prompt drops the reverted messages for good.
    let (status, reverted) = a.post(&format!("/session/{id}/revert"), json!({"messageID": user_id})).await;
    assert_eq!(status, 200, "{reverted}");
    original_state(&a).await;
    let (status, answer) = a.post(&format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "start over"}]})).await;
    assert_eq!(status, 200, "{answer}");
    let list = a.messages(&id).await;
    let texts: Vec<String> = list.iter().map(|m| part(m, "text")["text"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(texts, ["start over", "Starting over."], "{list:?}");
    assert!(session(&a, &id).await.get("revert").is_none());
    original_state(&a).await;
    a
}

#[tokio::test]
async fn undo_and_redo_on_a_local_folder() {
    undo_and_redo(TestEnv::from_name("local").unwrap()).await;
}

/// Inside a container the helper keeps the store next to the files (in its
/// cache folder, not in the workspace); the files are checked with `docker exec`.
#[tokio::test]
async fn undo_and_redo_inside_a_container() {
    if docker_support::image().is_none() {
        return;
    }
    let a = undo_and_redo(TestEnv::from_name("docker").unwrap()).await;
    let at = a.ws.args.iter().position(|x| x == "--name").expect("a container name");
    let container = a.ws.args[at + 1].clone();
    let inside = |cmd: &str| docker_support::sh(&container, cmd);
    assert_eq!(inside("cat /workspace/README.md"), README.trim_end());
    assert_eq!(inside("test -e /workspace/agent/bash.txt && echo there || echo gone"), "gone");
    assert_eq!(inside("ls -d ~/.cache/burrow/snapshot/*/objects | wc -l"), "1");
}

#[tokio::test]
async fn undo_and_redo_on_an_ssh_host() {
    let Some(sshd) = Sshd::get() else { return };
    let a = undo_and_redo(TestEnv::from_name("ssh").unwrap()).await;
    assert_eq!(sshd.sh(&format!("cat '{}'", a.ws.abs("README.md"))).unwrap(), README);
    assert_eq!(sshd.sh(&format!("test -e '{}' && echo there || echo gone", a.ws.abs("agent/bash.txt"))).unwrap().trim(), "gone");
}

/// Without the helper (searches forced to POSIX grep, so no helper session)
/// the host's own `git` keeps the snapshots, in a git folder of its own.
#[tokio::test]
async fn undo_and_redo_on_an_ssh_host_with_git_and_no_helper() {
    let Some(sshd) = Sshd::get() else { return };
    let a = undo_and_redo_with(TestEnv::from_name("ssh").unwrap(), &[("BURROW_SEARCH", "grep")], "git").await;
    assert_eq!(sshd.sh(&format!("cat '{}'", a.ws.abs("README.md"))).unwrap(), README);
    let stores = sshd.sh("ls -d ~/.cache/burrow/snapshot-git/*/objects | wc -l").unwrap();
    assert_ne!(stores.trim(), "0", "no git snapshot folder on the host");
}

/// A container without the helper session (searches forced to POSIX grep):
/// the container's own `git` keeps the snapshots (scripts mode).
#[tokio::test]
async fn undo_and_redo_inside_a_container_with_git_and_no_helper() {
    if docker_support::image().is_none() {
        return;
    }
    let a = undo_and_redo_with(TestEnv::from_name("docker").unwrap(), &[("BURROW_SEARCH", "grep")], "git").await;
    let at = a.ws.args.iter().position(|x| x == "--name").expect("a container name");
    let inside = |cmd: &str| docker_support::sh(&a.ws.args[at + 1], cmd);
    assert_eq!(inside("cat /workspace/README.md"), README.trim_end());
    assert_ne!(inside("ls -d ~/.cache/burrow/snapshot-git/*/objects | wc -l"), "0");
}

/// Object storage keeps the snapshots under their own prefix in the bucket.
#[tokio::test]
async fn undo_and_redo_in_a_bucket() {
    if S3::require().is_none() {
        return;
    }
    undo_and_redo(TestEnv::from_name("s3").unwrap()).await;
}

/// A snapshot store that cannot be written (here its folder's place is taken
/// by a file, as a full or read-only disk would refuse it) does not stop the
/// turn: the files still change, a warning toast says undo is off for the
/// turn, the patch part has no hash, and revert says why it cannot.
#[tokio::test]
async fn a_store_that_cannot_be_written_leaves_the_turn_running_with_a_warning() {
    let llm =
        ScriptedLlm::openai(vec![Turn::tool("call_w", "write", json!({"filePath": "agent/new.txt", "content": "made by write\n"})), Turn::text("Done.")]).await;
    // In place before the server starts: its watcher may make the store at once.
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("snapshot"), "not a folder").unwrap();
    let vars = [("BURROW_DATA_DIR", data.path().to_str().unwrap())];
    let a = AgentServer::start_with(TestEnv::from_name("local").unwrap(), &llm.url, json!({}), &vars).await;
    let mut events = Events::subscribe(&a.srv, "").await;
    let id = a.session().await;
    let (status, answer) = a.post(&format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "write"}]})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(read(&a, "agent/new.txt").await.as_deref(), Some("made by write\n"));
    let toast = events.next_of("tui.toast.show").await;
    assert_eq!(toast["properties"]["variant"], "warning", "{toast}");
    assert!(toast["properties"]["message"].as_str().unwrap().contains("Undo is off"), "{toast}");
    let list = a.messages(&id).await;
    assert!(part(&list[1], "step-start").get("snapshot").is_none(), "{}", list[1]);
    assert_eq!(part(&list[1], "patch")["hash"], "", "{}", list[1]);
    let user_id = list[0]["info"]["id"].as_str().unwrap();
    let (status, err) = a.post(&format!("/session/{id}/revert"), json!({"messageID": user_id})).await;
    assert!(status >= 400, "{status} {err}");
    assert!(err["data"]["message"].as_str().unwrap().contains("snapshot"), "{err}");
}
