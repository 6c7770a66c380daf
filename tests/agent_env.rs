//! An agent turn over environments other than the local folder. The scripted
//! model (on the host's loopback, where the server runs) calls `write`,
//! `edit` and `bash`; the files change inside the Docker container (started
//! with networking off) or on the SSH host, and the test reads them there
//! behind Burrow's back: `docker exec`, or the ssh client. Over object
//! storage (no commands there) the turn writes and edits, and its change
//! summary is read back through the bucket.
//!
//! Without Docker or the test sshd these tests say why and pass; in CI
//! (`CI=true`) they fail.

// For the image check and `docker exec`.
mod docker_support;
mod support;

use serde_json::json;
use support::agent::{part, AgentServer};
use support::llm::{ScriptedLlm, Turn};
use support::s3::S3;
use support::ssh::Sshd;
use support::TestEnv;

/// The model's side of the turn: write a file, edit it, then run a command
/// that leaves a file behind, then stop.
async fn script() -> ScriptedLlm {
    ScriptedLlm::openai(vec![
        Turn::tool("call_w", "write", json!({"filePath": "agent/hello.txt", "content": "hello from the model\n"})),
        Turn::tool("call_e", "edit", json!({"filePath": "agent/hello.txt", "oldString": "the model", "newString": "burrow"})),
        Turn::tool("call_b", "bash", json!({"command": "printf ran-here > agent/bash.txt && cat /etc/hostname", "description": "Leave a mark"})),
        Turn::text("Done."),
    ])
    .await
}

/// Runs the turn and checks what the server recorded; returns the bash output.
async fn run_turn(a: &AgentServer) -> String {
    let id = a.session().await;
    let (status, answer) = a.post(&format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "write, edit, run"}]})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["info"]["finish"], "stop", "{answer}");
    let list = a.messages(&id).await;
    let tool = |i: usize| part(&list[i], "tool")["state"].clone();
    for i in 1..=3 {
        assert_eq!(tool(i)["status"], "completed", "{}", tool(i));
    }
    let patch = part(&list[1], "patch");
    assert_eq!(patch["files"], json!([a.ws.abs("agent/hello.txt")]));
    // The turn's summary was read back through the environment.
    let diffs = list[0]["info"]["summary"]["diffs"].as_array().unwrap_or_else(|| panic!("no summary: {}", list[0]));
    let hello = diffs.iter().find(|d| d["file"] == "agent/hello.txt").unwrap_or_else(|| panic!("{diffs:?}"));
    assert_eq!((&hello["status"], &hello["additions"], &hello["deletions"]), (&json!("added"), &json!(1), &json!(0)));
    assert!(hello["patch"].as_str().unwrap().ends_with("@@ -0,0 +1,1 @@\n+hello from burrow\n"), "{hello}");
    tool(3)["output"].as_str().unwrap().to_string()
}

/// The value after `flag` in the server's arguments.
fn arg<'a>(args: &'a [String], flag: &str) -> &'a str {
    let at = args.iter().position(|a| a == flag).unwrap_or_else(|| panic!("no {flag} in {args:?}"));
    &args[at + 1]
}

#[tokio::test]
async fn write_edit_and_bash_change_files_inside_a_container() {
    if docker_support::image().is_none() {
        return;
    }
    let llm = script().await;
    let a = AgentServer::start(TestEnv::from_name("docker").unwrap(), &llm.url, json!({})).await;
    assert_eq!(arg(&a.ws.args, "--network"), "none");
    let container = arg(&a.ws.args, "--name").to_string();
    let hostname = run_turn(&a).await;
    let inside = |path: &str| docker_support::sh(&container, &format!("cat /workspace/{path}"));
    assert_eq!(inside("agent/hello.txt"), "hello from burrow");
    assert_eq!(inside("agent/bash.txt"), "ran-here");
    // bash ran in the container: it printed the container's host name.
    assert_eq!(hostname.trim(), docker_support::sh(&container, "cat /etc/hostname"));
    assert!(!std::path::Path::new("/workspace/agent/hello.txt").exists(), "nothing was written on the host");
}

#[tokio::test]
async fn write_edit_and_bash_change_files_on_an_ssh_host() {
    let Some(sshd) = Sshd::get() else { return };
    let llm = script().await;
    let a = AgentServer::start(TestEnv::from_name("ssh").unwrap(), &llm.url, json!({})).await;
    run_turn(&a).await;
    let remote = |path: &str| sshd.sh(&format!("cat '{}'", a.ws.abs(path))).unwrap();
    assert_eq!(remote("agent/hello.txt"), "hello from burrow\n");
    assert_eq!(remote("agent/bash.txt"), "ran-here");
}

#[tokio::test]
async fn write_and_edit_change_objects_and_the_summary_reads_them_back() {
    if S3::require().is_none() {
        return;
    }
    // Object storage runs no commands: the turn only writes and edits.
    let llm = ScriptedLlm::openai(vec![
        Turn::tool("call_w", "write", json!({"filePath": "agent/hello.txt", "content": "hello from the model\n"})),
        Turn::tool("call_e", "edit", json!({"filePath": "README.md", "oldString": "Fixture", "newString": "Changed fixture"})),
        Turn::text("Done."),
    ])
    .await;
    let a = AgentServer::start(TestEnv::from_name("s3").unwrap(), &llm.url, json!({})).await;
    let id = a.session().await;
    let (status, answer) = a.post(&format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "write and edit"}]})).await;
    assert_eq!(status, 200, "{answer}");
    let (_, diffs) = a.srv.get(&format!("/session/{id}/diff")).await;
    let files: Vec<(&str, &str)> = diffs.as_array().unwrap().iter().map(|d| (d["file"].as_str().unwrap(), d["status"].as_str().unwrap())).collect();
    assert_eq!(files, [("README.md", "modified"), ("agent/hello.txt", "added")], "{diffs}");
    assert!(diffs[0]["patch"].as_str().unwrap().contains("-# Fixture\n+# Changed fixture\n"), "{diffs}");
    let (_, session) = a.srv.get(&format!("/session/{id}")).await;
    assert_eq!(session["summary"]["files"], json!(2), "{session}");
}
