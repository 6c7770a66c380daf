//! `POST /session/{id}/shell`: the event sequence OpenCode publishes, busy
//! sessions, abort, exit codes and bounded output.

use serde_json::{json, Value};

use crate::support::*;

/// What matters in an event for comparing sequences: its type and the fields
/// that tell the steps apart (not ids or times).
fn signature(e: &Value) -> String {
    let p = &e["properties"];
    match kind(e) {
        "session.created" | "session.updated" | "session.deleted" => format!("{} {}", kind(e), p["info"]["title"]),
        "session.status" => format!("session.status {}", p["status"]["type"]),
        "message.updated" => format!("message.updated {} completed={}", p["info"]["role"], p["info"]["time"]["completed"].is_u64()),
        "message.part.updated" => {
            let part = &p["part"];
            match part["type"].as_str() {
                Some("tool") => format!(
                    "part tool {} {} output={} final={}",
                    part["tool"], part["state"]["status"], part["state"]["metadata"]["output"], part["state"]["output"]
                ),
                _ => format!("part {} {} synthetic={}", part["type"], part["text"], part["synthetic"]),
            }
        }
        other => other.to_string(),
    }
}

/// Signatures with consecutive repeats folded (live output updates come per
/// chunk in OpenCode and throttled in Burrow).
fn signatures(events: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in events.iter().filter(|e| !matches!(kind(e), "server.connected" | "server.heartbeat")) {
        let s = signature(e);
        if out.last() != Some(&s) {
            out.push(s);
        }
    }
    out
}

#[tokio::test]
async fn a_shell_run_publishes_what_opencode_publishes() {
    let dirs = Dirs::new();
    let s = Server::start(&dirs);
    let mut events = s.events("/event").await;
    let id = s.session("sse test").await;
    let (status, resp) = s.shell(&id, "echo hi").await;
    assert_eq!(status, 200, "{resp}");
    let ours = events.until(|e| kind(e) == "session.idle").await;
    assert_eq!(signatures(&ours), signatures(&captured_events("sse_event.txt")));

    // The response has the reference's shape and values, ids and times aside.
    let theirs = read_json(&fixture("shell_resp.json"));
    assert_eq!(keys(&resp), keys(&theirs));
    for field in ["role", "modelID", "providerID", "mode", "agent", "cost", "tokens"] {
        assert_eq!(resp["info"][field], theirs["info"][field], "{field}");
    }
    assert_eq!(resp["info"]["path"], json!({ "cwd": dirs.root, "root": "/" }));
    let (ours_state, their_state) = (&resp["parts"][0]["state"], &theirs["parts"][0]["state"]);
    for field in ["status", "input", "output", "title", "metadata"] {
        assert_eq!(ours_state[field], their_state[field], "{field}");
    }
    assert_eq!(resp["parts"][0]["callID"].as_str().unwrap().len(), 26);
    // The user message and the assistant message are stored, in order.
    let (_, messages) = s.get(&format!("/session/{id}/message")).await;
    let messages = messages.as_array().unwrap().clone();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["info"]["role"], "user");
    assert_eq!(messages[0]["parts"][0]["text"], "The following tool was executed by the user");
    assert_eq!(messages[1], resp);
    assert_eq!(s.get(&format!("/session/{id}/message/{}", resp["info"]["id"].as_str().unwrap())).await.1, resp);
}

/// The key structure of a JSON value (object keys, recursively; array items' union).
fn keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut sorted: Vec<_> = m.iter().map(|(k, v)| (k.clone(), keys(v))).collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(keys).collect()),
        _ => Value::Null,
    }
}

#[tokio::test]
async fn global_events_carry_sync_twins_with_sequence_numbers() {
    let dirs = Dirs::new();
    let s = Server::start(&dirs);
    let mut events = s.events("/global/event").await;
    let id = s.session("sse test").await;
    assert_eq!(s.shell(&id, "echo hi").await.0, 200);
    let ours = events.until(|e| e["payload"]["type"] == "session.idle").await;
    let theirs = captured_events("sse_global.txt");
    let shape = |list: &[Value]| -> Vec<String> {
        list.iter()
            .filter(|e| !matches!(e["payload"]["type"].as_str(), Some("server.connected" | "server.heartbeat")))
            .map(|e| match e["payload"]["type"].as_str() {
                Some("sync") => format!("sync {} seq={}", e["payload"]["syncEvent"]["type"], e["payload"]["syncEvent"]["seq"]),
                Some(t) => t.to_string(),
                None => "?".into(),
            })
            .collect()
    };
    let (mine, reference) = (shape(&ours), shape(&theirs));
    // Same events, same sync types and sequence numbers (the reference folds no output updates here either).
    assert_eq!(mine, reference);
    for pair in ours.windows(2) {
        let (event, twin) = (&pair[0], &pair[1]);
        if twin["payload"]["type"] != "sync" {
            continue;
        }
        assert_eq!(twin["payload"]["id"], event["payload"]["id"]);
        assert_eq!(twin["payload"]["syncEvent"]["id"], event["payload"]["id"]);
        assert_eq!(twin["payload"]["syncEvent"]["aggregateID"], id.as_str());
        assert_eq!(twin["payload"]["syncEvent"]["data"], event["payload"]["properties"]);
        assert_eq!(twin["directory"], dirs.root.to_str().unwrap());
        assert_eq!(twin["project"], event["project"]);
    }
    // The sync history (`POST /sync/history`) holds exactly those events, under the same ids.
    let sent: Vec<Value> = ours
        .iter()
        .filter(|e| e["payload"]["type"] == "sync")
        .map(|e| {
            let sync = &e["payload"]["syncEvent"];
            json!({"id": sync["id"], "aggregate_id": sync["aggregateID"], "seq": sync["seq"], "type": sync["type"], "data": sync["data"]})
        })
        .collect();
    let (status, history) = s.post("/sync/history", json!({})).await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history.as_array().unwrap(), &sent);
}

#[tokio::test]
async fn busy_sessions_refuse_a_second_run_and_abort_kills_the_process() {
    let dirs = Dirs::new();
    let (s, id, needle, mut events, run) = long_run(&dirs, true).await;
    assert!(!processes_with(&needle.0).is_empty(), "the command runs");
    assert_eq!(s.get("/session/status").await.1, json!({ id.clone(): { "type": "busy" } }));
    // GET /session/{id} carries the status too (for bridges like CodeTether).
    assert_eq!(s.get(&format!("/session/{id}")).await.1["status"], json!({ "type": "busy", "idle": false, "status": "busy" }));

    let (status, busy) = s.shell(&id, "echo second").await;
    assert_eq!(status, 409);
    let message = format!("Session is busy: {id}");
    assert_eq!(busy["_tag"], "SessionBusyError");
    assert_eq!(busy["sessionID"], id.as_str());
    assert_eq!(busy["message"], message.as_str());
    assert_eq!(busy["name"], "SessionBusyError");
    assert_eq!(busy["data"]["message"], message.as_str());

    assert_eq!(s.post(&format!("/session/{id}/abort"), json!({})).await, (200, json!(true)));
    // Abort answers once the run has wound down: the processes are gone.
    assert_eq!(processes_with(&needle.0), Vec::<u32>::new());
    assert_eq!(s.get("/session/status").await.1, json!({}));
    let session = s.get(&format!("/session/{id}")).await.1;
    assert_eq!((session["id"].as_str(), &session["status"]), (Some(id.as_str()), &json!({ "type": "idle", "idle": true, "status": "idle" })));
    let (status, resp) = run.await.unwrap();
    assert_eq!(status, 200, "{resp}");
    let state = &resp["parts"][0]["state"];
    assert_eq!(state["status"], "completed");
    assert_eq!(state["output"], "started\n\n\n<metadata>\nUser aborted the command\n</metadata>");
    assert_eq!(state["metadata"], json!({ "output": state["output"] }));
    let tail = events.until(|e| kind(e) == "session.idle").await;
    let kinds: Vec<&str> = tail.iter().map(kind).collect();
    assert_eq!(kinds, ["message.updated", "message.part.updated", "session.status", "session.idle"]);
    // The session works again.
    assert_eq!(s.shell(&id, "echo again").await.1["parts"][0]["state"]["output"], "again\n");
}

#[tokio::test]
async fn deleting_a_busy_session_stops_its_command() {
    let dirs = Dirs::new();
    let (s, id, needle, _events, run) = long_run(&dirs, true).await;
    assert_eq!(s.delete(&format!("/session/{id}")).await, (200, json!(true)));
    assert_eq!(processes_with(&needle.0), Vec::<u32>::new());
    assert_eq!(s.get(&format!("/session/{id}")).await.0, 404);
    assert_eq!(s.get("/session/status").await.1, json!({}));
    // The run itself ended normally, before the session went.
    assert_eq!(run.await.unwrap().0, 200);
}

#[tokio::test]
async fn exit_codes_stderr_quoting_and_directories() {
    let dirs = Dirs::new();
    std::fs::create_dir_all(dirs.root.join("sub")).unwrap();
    let s = Server::start(&dirs);
    let id = s.session("misc").await;
    let state = |v: Value| v["parts"][0]["state"].clone();

    let failed = state(s.shell(&id, "echo out; echo err >&2; exit 3").await.1);
    assert_eq!(failed["status"], "completed");
    assert_eq!(failed["output"], "out\nerr\n");
    assert_eq!(failed["metadata"], json!({ "output": "out\nerr\n", "exit": 3 }));
    let missing = state(s.shell(&id, "nonexistent_cmd_xyz").await.1);
    assert!(missing["output"].as_str().unwrap().contains("nonexistent_cmd_xyz: command not found"), "{missing}");
    assert_eq!(missing["metadata"]["exit"], 127);

    // The command reaches the shell verbatim (OpenCode expands '$HOME' and breaks `$(...)`).
    assert_eq!(state(s.shell(&id, "echo '$HOME'").await.1)["output"], "$HOME\n");
    assert_eq!(state(s.shell(&id, "for i in $(seq 1 3); do echo n$i; done").await.1)["output"], "n1\nn2\nn3\n");
    assert_eq!(state(s.shell(&id, "printf 'no newline'").await.1)["output"], "no newline");
    assert_eq!(state(s.shell(&id, "true").await.1)["metadata"], json!({ "output": "" }));

    // It runs where the request is, with the user's shell.
    assert_eq!(state(s.shell(&id, "pwd; echo $SHELL").await.1)["output"], format!("{}\n/bin/bash\n", dirs.root.display()));
    let sub = dirs.root.join("sub");
    let (status, resp) = s.post(&format!("/session/{id}/shell?directory={}", sub.display()), json!({ "agent": "plan", "command": "pwd" })).await;
    assert_eq!(status, 200);
    assert_eq!(state(resp.clone())["output"], format!("{}\n", sub.display()));
    assert_eq!((resp["info"]["agent"].clone(), resp["info"]["mode"].clone()), (json!("plan"), json!("plan")));

    // A model named in the request is used, and later runs keep using it.
    let model = json!({ "providerID": "nope", "modelID": "nope" });
    let (_, named) = s.post(&format!("/session/{id}/shell"), json!({ "agent": "build", "command": "true", "model": model })).await;
    assert_eq!((named["info"]["providerID"].clone(), named["info"]["modelID"].clone()), (json!("nope"), json!("nope")));
    assert_eq!(s.shell(&id, "true").await.1["info"]["providerID"], "nope");
}

#[tokio::test]
async fn long_output_is_bounded_and_saved_in_full() {
    let dirs = Dirs::new();
    let s = Server::start(&dirs);
    let id = s.session("big").await;
    let mut events = s.events("/event").await;
    let (status, resp) = s.shell(&id, "seq 1 200000").await;
    assert_eq!(status, 200);
    let state = &resp["parts"][0]["state"];
    let output = state["output"].as_str().unwrap();
    assert!(output.starts_with("1\n2\n3\n"), "{}", &output[..20]);
    assert!(output.ends_with("199999\n200000\n"));
    assert!(output.len() < 60_000, "{} bytes shown", output.len());
    assert!(output.contains(" bytes truncated; full output saved to "));
    assert_eq!(state["metadata"]["truncated"], true);
    assert_eq!(state["metadata"]["output"], state["output"]);
    let saved = std::fs::read_to_string(state["metadata"]["outputPath"].as_str().unwrap()).unwrap();
    let expected: String = (1..=200_000).map(|i| format!("{i}\n")).collect();
    assert!(saved == expected, "the saved file holds the whole output ({} bytes)", saved.len());
    // Every live update stays within the bound too.
    for e in events.until(|e| kind(e) == "session.idle").await {
        if let Some(out) = e["properties"]["part"]["state"]["metadata"]["output"].as_str() {
            assert!(out.len() < 60_000, "{} bytes in a live update", out.len());
        }
    }
}
