//! Whole prompts through the real server: a scripted provider configured in
//! opencode.json, tools changing files in the workspace, stored messages,
//! errors in `info.error`, and everything still there after a restart.

mod support;

use serde_json::{json, Value};
use support::agent::{post, AgentServer};
use support::llm::{unreachable_url, ScriptedLlm, Turn};
use support::{Fixture, Server, TestEnv};

fn config(url: &str, small: &str) -> String {
    support::agent::config(url, small).to_string()
}

#[tokio::test]
async fn a_pocketpaw_prompt_writes_and_edits_a_file_and_survives_a_restart() {
    let titler = ScriptedLlm::openai(vec![Turn::text("Fake title")]).await;
    let llm = ScriptedLlm::openai(vec![
        Turn::tool("call_w", "write", json!({"filePath": "hello.txt", "content": "hello from fake llm\n"})),
        Turn::tool("call_e", "edit", json!({"filePath": "hello.txt", "oldString": "fake llm", "newString": "burrow"})),
        Turn::text("Done."),
    ])
    .await;
    let env = TestEnv::from_name("local").unwrap();
    let fx = Fixture::standard();
    let ws = env.place(&fx).await.unwrap();
    let cfg = config(&llm.url, &titler.url);
    // One data folder for both server runs, so the restart finds the session.
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap().to_string();
    let vars = [("OPENCODE_CONFIG_CONTENT", cfg.as_str()), ("BURROW_DATA_DIR", data_dir.as_str())];
    let srv = Server::start_with(&ws, &vars).await;
    let (status, session) = post(&srv, "/session", json!({})).await;
    assert_eq!(status, 200, "{session}");
    let id = session["id"].as_str().unwrap().to_string();
    let (status, answer) = post(
        &srv,
        &format!("/session/{id}/message"),
        json!({"model": "fake/fake-model", "system": "be brief", "parts": [{"type": "text", "text": "WRITEFILE please"}]}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["info"]["role"], "assistant");
    assert_eq!(answer["info"]["finish"], "stop");
    assert!(answer["info"].get("error").is_none(), "{answer}");
    assert_eq!(answer["parts"].as_array().unwrap().iter().map(|p| p["type"].as_str().unwrap()).collect::<Vec<_>>(), ["step-start", "text", "step-finish"]);
    assert_eq!(std::fs::read_to_string(ws_path(&ws, "hello.txt")).unwrap(), "hello from burrow\n");
    // A new file has the usual mode (0666 less the umask), as an editor would make it.
    let umask = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(|m| u32::from_str_radix(m.trim(), 8).unwrap())
        .unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(ws_path(&ws, "hello.txt")).unwrap().permissions()) & 0o777;
    assert_eq!(mode, 0o666 & !umask);

    let messages = || async {
        let (status, list) = srv.get(&format!("/session/{id}/message")).await;
        assert_eq!(status, 200);
        list
    };
    let list = messages().await;
    let roles: Vec<&str> = list.as_array().unwrap().iter().map(|m| m["info"]["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "assistant", "assistant"]);
    let write = &list[1]["parts"];
    let tool = write.as_array().unwrap().iter().find(|p| p["type"] == "tool").unwrap();
    assert_eq!(tool["state"]["status"], "completed");
    assert_eq!(tool["state"]["output"], "Wrote file successfully.");
    assert!(write.as_array().unwrap().iter().any(|p| p["type"] == "patch"));
    // The model saw the system text and the tool results.
    let sent = llm.requests();
    let last = sent.last().unwrap()["messages"].as_array().unwrap().clone();
    assert!(sent.last().unwrap()["messages"].as_array().unwrap().iter().any(|m| m["role"] == "system" && m["content"] == "be brief"));
    assert!(last.iter().any(|m| m["role"] == "tool" && m["content"] == "Edit applied successfully."));

    // The small model named the session.
    let mut title = String::new();
    for _ in 0..200 {
        let (_, s) = srv.get(&format!("/session/{id}")).await;
        title = s["title"].as_str().unwrap_or_default().to_string();
        if title == "Fake title" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(title, "Fake title");
    let before = messages().await;
    drop(srv);
    let srv = Server::start_with(&ws, &vars).await;
    let (status, after) = srv.get(&format!("/session/{id}/message")).await;
    assert_eq!(status, 200);
    assert_eq!(after, before, "the turn is stored whole");
}

fn ws_path(ws: &support::Workspace, rel: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(ws.abs(rel))
}

#[tokio::test]
async fn an_unreachable_provider_ends_in_info_error() {
    let url = unreachable_url().await;
    let env = TestEnv::from_name("local").unwrap();
    let fx = Fixture::standard();
    let ws = env.place(&fx).await.unwrap();
    let cfg = config(&url, &url);
    let srv = Server::start_with(&ws, &[("OPENCODE_CONFIG_CONTENT", cfg.as_str()), ("BURROW_RETRY_BASE_MS", "1")]).await;
    let (_, session) = post(&srv, "/session", json!({})).await;
    let id = session["id"].as_str().unwrap();
    let (status, answer) = post(&srv, &format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "say hi"}]})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["info"]["error"]["name"], "APIError", "{answer}");
    assert_eq!(answer["info"]["error"]["data"]["isRetryable"], true);
    let (_, status) = srv.get("/session/status").await;
    assert_eq!(status, json!({}), "the session is idle again");
}

/// Each of `expected` appears in `actual`, in this order.
fn assert_in_order(actual: &[String], expected: &[&str]) {
    let mut at = 0;
    for e in expected {
        match actual[at..].iter().position(|a| a == e) {
            Some(i) => at += i + 1,
            None => panic!("{e:?} missing (in order) from:\n{actual:#?}"),
        }
    }
}

fn short(e: &Value) -> String {
    let p = &e["properties"];
    match e["type"].as_str().unwrap_or("") {
        "message.updated" => {
            let diffs = p["info"]["summary"]["diffs"].as_array().map(|d| format!(" diffs={}", d.len())).unwrap_or_default();
            format!("message {}{}{diffs}", p["info"]["role"].as_str().unwrap_or(""), if p["info"]["finish"].is_string() { " finished" } else { "" })
        }
        "session.diff" => format!("session.diff {}", p["diff"].as_array().map_or(0, Vec::len)),
        "message.part.updated" => {
            let part = &p["part"];
            let status = part["state"]["status"].as_str().map(|s| format!(":{s}")).unwrap_or_default();
            let end = if part["time"]["end"].is_number() { " end" } else { "" };
            format!("part {}{status}{end}", part["type"].as_str().unwrap_or(""))
        }
        "message.part.delta" => format!("delta {}", p["delta"].as_str().unwrap_or("")),
        "session.status" => format!("status {}", p["status"]["type"].as_str().unwrap_or("")),
        other => other.to_string(),
    }
}

async fn served(llm_url: &str, extra: Value) -> AgentServer {
    AgentServer::local(llm_url, extra).await
}

#[tokio::test]
async fn a_two_step_turn_publishes_opencode_events_in_order() {
    let llm = ScriptedLlm::openai(vec![
        Turn::Stream {
            steps: vec![
                support::llm::reasoning("I should "),
                support::llm::reasoning("run echo."),
                support::llm::text("Running it now."),
                support::llm::call("call_fake1", "bash", json!({"command": "echo hi", "description": "Print hi"})),
            ],
            finish: "tool_calls".into(),
            input_tokens: 100,
            output_tokens: 20,
        },
        Turn::Stream {
            steps: vec![support::llm::text("The "), support::llm::text("command printed hi.")],
            finish: "stop".into(),
            input_tokens: 120,
            output_tokens: 4,
        },
    ])
    .await;
    let a = served(&llm.url, json!({})).await;
    let srv = &a.srv;
    let (_, session) = post(srv, "/session", json!({})).await;
    let id = session["id"].as_str().unwrap().to_string();
    let mut events = support::calls::Events::subscribe(srv, "").await;
    let (status, answer) = post(srv, &format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "run echo hi please"}]})).await;
    assert_eq!(status, 200, "{answer}");
    let mut seen = Vec::new();
    loop {
        let e = events.next().await;
        if e["properties"]["sessionID"] != json!(id) && e["properties"]["info"]["sessionID"] != json!(id) && e["properties"]["part"]["sessionID"] != json!(id) {
            continue;
        }
        let s = short(&e);
        let done = s == "session.idle";
        seen.push(s);
        if done {
            break;
        }
    }
    assert_in_order(
        &seen,
        &[
            "message user",
            "part text",
            "message assistant",
            "part step-start",
            "part reasoning",
            "delta I should ",
            "delta run echo.",
            "part reasoning end",
            "part text",
            "delta Running it now.",
            "part tool:pending",
            "part tool:running",
            "part tool:completed",
            "part step-finish",
            "message assistant finished",
            "message assistant",
            "part step-start",
            "part text",
            "delta The ",
            "delta command printed hi.",
            "part text end",
            "part step-finish",
            "message assistant finished",
            "status idle",
            "session.idle",
        ],
    );
    assert_in_order(&seen, &["part text", "delta Running it now.", "part text end", "part step-finish"]);
    assert!(seen.iter().any(|s| s == "status busy"));
}

#[tokio::test]
async fn a_permission_ask_is_answered_over_http() {
    let llm = ScriptedLlm::openai(vec![Turn::tool("call_w", "write", json!({"filePath": "asked.txt", "content": "yes"})), Turn::text("ok")]).await;
    let a = served(&llm.url, json!({"permission": {"edit": "ask"}})).await;
    let (ws, srv) = (&a.ws, &a.srv);
    let (_, session) = post(srv, "/session", json!({})).await;
    let id = session["id"].as_str().unwrap().to_string();
    let mut events = support::calls::Events::subscribe(srv, "").await;
    let (status, _) = post(srv, &format!("/session/{id}/prompt_async"), json!({"parts": [{"type": "text", "text": "write it"}]})).await;
    assert_eq!(status, 204);
    let asked = events.next_of("permission.asked").await;
    assert_eq!(asked["properties"]["sessionID"], json!(id));
    assert_eq!(asked["properties"]["permission"], "edit");
    assert_eq!(asked["properties"]["tool"]["callID"], "call_w");
    let (_, pending) = srv.get("/permission").await;
    assert_eq!(pending.as_array().unwrap().len(), 1);
    assert!(!std::path::Path::new(&ws.abs("asked.txt")).exists());
    let request = asked["properties"]["id"].as_str().unwrap();
    let (status, ok) = post(srv, &format!("/permission/{request}/reply"), json!({"reply": "once"})).await;
    assert_eq!((status, ok), (200, json!(true)));
    let replied = events.next_of("permission.replied").await;
    assert_eq!(replied["properties"]["reply"], "once");
    events.next_of("session.idle").await;
    assert_eq!(std::fs::read_to_string(ws.abs("asked.txt")).unwrap(), "yes");
}

#[tokio::test]
async fn abort_stops_a_turn_mid_stream() {
    let llm = ScriptedLlm::openai(vec![Turn::Hang(vec![support::llm::text("partial")])]).await;
    let a = served(&llm.url, json!({})).await;
    let srv = &a.srv;
    let (_, session) = post(srv, "/session", json!({})).await;
    let id = session["id"].as_str().unwrap().to_string();
    let mut events = support::calls::Events::subscribe(srv, "").await;
    let (status, _) = post(srv, &format!("/session/{id}/prompt_async"), json!({"parts": [{"type": "text", "text": "go"}]})).await;
    assert_eq!(status, 204);
    events.next_of("message.part.delta").await;
    let (status, ok) = post(srv, &format!("/session/{id}/interrupt"), json!({})).await;
    assert_eq!((status, ok), (200, json!(true)));
    let (_, list) = srv.get(&format!("/session/{id}/message")).await;
    let last = list.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["info"]["error"]["name"], "MessageAbortedError", "{last}");
    let text = last["parts"].as_array().unwrap().iter().find(|p| p["type"] == "text").unwrap();
    assert_eq!(text["text"], "partial");
    llm.hung_up().await;
}

#[tokio::test]
async fn pocketpaw_finds_the_server_at_the_root() {
    let a = served(&unreachable_url().await, json!({})).await;
    let srv = &a.srv;
    let (status, body) = srv.get("/").await;
    assert_eq!(status, 200);
    assert_eq!(body["healthy"], true);
}

#[tokio::test]
async fn steps_are_priced_from_the_configured_cost() {
    let llm = ScriptedLlm::openai(vec![Turn::tool("call_r", "read", json!({"filePath": "README.md"})), Turn::text("Read it.")]).await;
    // $3 per million input tokens, $15 per million output tokens.
    let mut priced = support::agent::config(&llm.url, &unreachable_url().await)["provider"].clone();
    priced["fake"]["models"]["fake-model"] = json!({"cost": {"input": 3, "output": 15, "cache_read": 0.3}});
    let a = served(&llm.url, json!({"provider": priced})).await;
    let id = a.session().await;
    let (status, answer) = a.post(&format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "read the readme"}]})).await;
    assert_eq!(status, 200, "{answer}");
    let list = a.messages(&id).await;
    let costs: Vec<f64> = list[1..].iter().map(|m| support::agent::part(m, "step-finish")["cost"].as_f64().unwrap()).collect();
    // The tool step used 100 in, 20 out; the last one 10 in, 2 out (see `Turn`).
    let expected = [(100.0 * 3.0 + 20.0 * 15.0) / 1e6, (10.0 * 3.0 + 2.0 * 15.0) / 1e6];
    for (got, want) in costs.iter().zip(expected) {
        assert!((got - want).abs() < 1e-12, "step cost {got}, expected {want}");
    }
    for (m, want) in list[1..].iter().zip(expected) {
        assert!((m["info"]["cost"].as_f64().unwrap() - want).abs() < 1e-12, "{m}");
    }
    let (_, session) = a.srv.get(&format!("/session/{id}")).await;
    assert!((session["cost"].as_f64().unwrap() - expected.iter().sum::<f64>()).abs() < 1e-12, "{session}");

    // Without a configured cost, steps cost 0.
    let free = ScriptedLlm::openai(vec![Turn::text("Free.")]).await;
    let b = served(&free.url, json!({})).await;
    let id = b.session().await;
    let (_, answer) = b.post(&format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "hi"}]})).await;
    assert_eq!(support::agent::part(&answer, "step-finish")["cost"], json!(0));
    assert_eq!(answer["info"]["cost"], json!(0));
}

/// Reads events of session `id` (in their short form) up to `session.idle`.
async fn events_until_idle(events: &mut support::calls::Events, id: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let e = events.next().await;
        let p = &e["properties"];
        if p["sessionID"] != json!(id) && p["info"]["sessionID"] != json!(id) && p["part"]["sessionID"] != json!(id) {
            continue;
        }
        seen.push(short(&e));
        if seen.last().unwrap() == "session.idle" {
            return seen;
        }
    }
}

#[tokio::test]
async fn a_turn_summarises_the_files_it_changed() {
    let llm = ScriptedLlm::openai(vec![
        Turn::tool("call_w", "write", json!({"filePath": "hello.txt", "content": "hello from fake llm\n"})),
        Turn::tool("call_e", "edit", json!({"filePath": "a/b/c/deep.txt", "oldString": "deep", "newString": "deeper"})),
        Turn::text("Done."),
        Turn::tool("call_e2", "edit", json!({"filePath": "hello.txt", "oldString": "fake llm", "newString": "burrow"})),
        Turn::text("Done again."),
    ])
    .await;
    let a = served(&llm.url, json!({})).await;
    let id = a.session().await;
    let mut events = support::calls::Events::subscribe(&a.srv, "").await;
    let (status, answer) = a.post(&format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "write and edit"}]})).await;
    assert_eq!(status, 200, "{answer}");
    let seen = events_until_idle(&mut events, &id).await;
    // As OpenCode: each step starts with the summary so far, and the turn ends with the whole one.
    #[rustfmt::skip]
    assert_in_order(&seen, &[
        "message user", "part text",
        "message assistant", "session.diff 0", "message user diffs=0", "part step-start", "part tool:completed", "part step-finish", "part patch",
        "message assistant", "session.diff 1", "message user diffs=1", "part step-start", "part tool:completed", "part step-finish", "part patch",
        "message assistant", "session.diff 2", "message user diffs=2", "part step-start", "part text", "part step-finish", "message assistant finished",
        "session.diff 2", "message user diffs=2", "session.idle",
    ]);

    let list = a.messages(&id).await;
    let user = list[0]["info"]["id"].as_str().unwrap().to_string();
    let diffs = list[0]["info"]["summary"]["diffs"].clone();
    assert_eq!(
        diffs,
        json!([
            {"file": "a/b/c/deep.txt", "patch": "Index: a/b/c/deep.txt\n===================================================================\n--- a/b/c/deep.txt\t\n+++ a/b/c/deep.txt\t\n@@ -1,1 +1,1 @@\n-deep\n+deeper\n", "additions": 1, "deletions": 1, "status": "modified"},
            {"file": "hello.txt", "patch": "Index: hello.txt\n===================================================================\n--- hello.txt\t\n+++ hello.txt\t\n@@ -0,0 +1,1 @@\n+hello from fake llm\n", "additions": 1, "deletions": 0, "status": "added"},
        ])
    );
    let (status, by_message) = a.srv.get(&format!("/session/{id}/diff?messageID={user}")).await;
    assert_eq!((status, &by_message), (200, &diffs));
    let (_, whole) = a.srv.get(&format!("/session/{id}/diff")).await;
    assert_eq!(whole, diffs);
    let (_, session) = a.srv.get(&format!("/session/{id}")).await;
    assert_eq!(
        (&session["summary"]["additions"], &session["summary"]["deletions"], &session["summary"]["files"]),
        (&json!(2), &json!(1), &json!(2)),
        "{session}"
    );

    // A second turn: its message lists only what it changed; the session keeps both files.
    let (status, answer) = a.post(&format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "edit again"}]})).await;
    assert_eq!(status, 200, "{answer}");
    let list = a.messages(&id).await;
    let second = list.iter().rev().find(|m| m["info"]["role"] == "user").unwrap();
    let diffs = second["info"]["summary"]["diffs"].as_array().unwrap();
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert_eq!(
        (&diffs[0]["file"], &diffs[0]["status"], &diffs[0]["additions"], &diffs[0]["deletions"]),
        (&json!("hello.txt"), &json!("modified"), &json!(1), &json!(1))
    );
    let (_, whole) = a.srv.get(&format!("/session/{id}/diff")).await;
    assert_eq!(whole.as_array().unwrap().iter().map(|d| d["file"].as_str().unwrap()).collect::<Vec<_>>(), ["a/b/c/deep.txt", "hello.txt"]);
    let (_, session) = a.srv.get(&format!("/session/{id}")).await;
    assert_eq!(session["summary"]["files"], json!(2), "{session}");
}
