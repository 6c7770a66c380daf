//! Sessions survive restarts, `kill -9` included, and a run cut short by a
//! crash is settled at the next start.

use serde_json::{json, Value};

use crate::support::*;

async fn history(s: &Server, id: &str) -> (Value, Value) {
    let (status, session) = s.get(&format!("/session/{id}")).await;
    assert_eq!(status, 200, "{session}");
    let (status, messages) = s.get(&format!("/session/{id}/message")).await;
    assert_eq!(status, 200, "{messages}");
    (session, messages)
}

#[tokio::test]
async fn sessions_survive_a_restart_and_a_kill_9() {
    let dirs = Dirs::new();
    let s = Server::start(&dirs);
    let id = s.session("keep me").await;
    let (_, child) = s.post("/session", json!({ "parentID": id })).await;
    assert_eq!(s.shell(&id, "echo one").await.0, 200);
    let before = history(&s, &id).await;
    s.stop().await;

    let s = Server::start(&dirs);
    assert_eq!(history(&s, &id).await, before);
    assert_eq!(s.get(&format!("/session/{id}/children")).await.1, json!([child]));
    // A completed command, then kill -9 straight away: nothing committed is lost.
    let (_, second) = s.shell(&id, "echo two").await;
    let after = history(&s, &id).await;
    assert_eq!(after.1.as_array().unwrap().len(), 4);
    assert_eq!(after.1[3], second);
    s.kill9();

    let s = Server::start(&dirs);
    assert_eq!(history(&s, &id).await, after);
    // Ids made after the restart still sort after the old ones.
    let (_, third) = s.shell(&id, "echo three").await;
    let (_, messages) = s.get(&format!("/session/{id}/message")).await;
    assert_eq!(messages.as_array().unwrap().last().unwrap(), &third);
}

#[tokio::test]
async fn a_run_cut_short_by_kill_9_is_settled_at_the_next_start() {
    let dirs = Dirs::new();
    let (s, id, needle, events, run) = long_run(&dirs, false).await;
    drop(events);
    run.abort();
    let _ = run.await;
    s.kill9();
    // The killed server could not stop the command; this test does.
    kill_all(&processes_with(&needle.0));

    let s = Server::start(&dirs);
    let (_, messages) = s.get(&format!("/session/{id}/message")).await;
    let assistant = &messages[1];
    assert!(assistant["info"]["time"]["completed"].is_u64(), "{assistant}");
    assert_eq!(assistant["info"]["error"]["name"], "MessageAbortedError");
    let state = &assistant["parts"][0]["state"];
    assert_eq!(state["status"], "error", "{state}");
    assert!(state["error"].as_str().unwrap().starts_with("Interrupted"));
    assert_eq!(state["metadata"]["output"], "started\n");
    assert!(state["time"]["end"].as_u64() >= state["time"]["start"].as_u64());
    // Nothing is left running, and the session takes new commands.
    assert_eq!(s.get("/session/status").await.1, json!({}));
    assert_eq!(s.shell(&id, "echo ok").await.1["parts"][0]["state"]["output"], "ok\n");
}

#[tokio::test]
async fn the_message_history_pages_backwards() {
    let dirs = Dirs::new();
    let s = Server::start(&dirs);
    let id = s.session("paging").await;
    for word in ["one", "two", "three"] {
        assert_eq!(s.shell(&id, &format!("echo {word}")).await.0, 200);
    }
    let (_, all) = s.get(&format!("/session/{id}/message")).await;
    let all = all.as_array().unwrap().clone();
    assert_eq!(all.len(), 6);
    assert_eq!(s.get(&format!("/session/{id}/message?limit=0")).await.1, json!(all));
    assert_eq!(s.get(&format!("/session/{id}/message?limit=6")).await.1, json!(all));

    // limit=2 pages from the newest back, following the cursor the headers give.
    let mut pages = Vec::new();
    let mut url = s.at(&format!("/session/{id}/message?limit=2"));
    loop {
        let res = s.http.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let next = res.headers().get("x-next-cursor").map(|v| v.to_str().unwrap().to_string());
        let link = res.headers().get("link").map(|v| v.to_str().unwrap().to_string());
        pages.push(res.json::<Value>().await.unwrap());
        let Some(cursor) = next else { break };
        let link = link.expect("a Link header with the cursor");
        assert!(link.ends_with(">; rel=\"next\"") && link.contains(&format!("before={cursor}")), "{link}");
        url = link.trim_start_matches('<').split('>').next().unwrap().to_string();
    }
    assert_eq!(pages.len(), 3);
    let flattened: Vec<Value> = pages.into_iter().rev().flat_map(|p| p.as_array().unwrap().clone()).collect();
    assert_eq!(flattened, all);
}

#[tokio::test]
async fn shutdown_stops_commands_and_ends_event_streams() {
    let dirs = Dirs::new();
    let (s, id, needle, events, run) = long_run(&dirs, false).await;
    let global = s.events("/global/event").await;
    s.stop().await;
    // The command was stopped and its request answered before the exit.
    assert_eq!(processes_with(&needle.0), Vec::<u32>::new());
    let (status, resp) = run.await.unwrap();
    assert_eq!(status, 200, "{resp}");
    assert!(resp["parts"][0]["state"]["output"].as_str().unwrap().ends_with("User aborted the command\n</metadata>"));
    drop((events, global));

    let s = Server::start(&dirs);
    let (_, messages) = s.get(&format!("/session/{id}/message")).await;
    assert_eq!(messages[1], resp);
}
