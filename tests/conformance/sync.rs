//! The sync routes: `POST /sync/history` lists each session's durable events,
//! `POST /sync/replay` applies one session's history on another server (and
//! refuses one that does not fit), `POST /sync/steal` takes a session into the
//! request's workspace, `POST /sync/start` answers `true`; and
//! `POST /experimental/control-plane/move-session`, which moves a session to
//! another folder of its project, with its uncommitted changes if asked.

use std::path::Path;

use reqwest::Method;
use serde_json::{json, Value};

use crate::assert_error;
use crate::support::calls::{call, post};
use crate::support::env::Backend;
use crate::support::fixture::{Fixture, MAIN_RS, MAIN_RS_CHANGED, NEW_TXT, OLD_TXT};
use crate::support::server::with_query;
use crate::support::{Server, TestEnv, Workspace};

/// A local server on the standard fixture; `extra` serve flags added.
async fn serve(fx: &Fixture, extra: &[&str]) -> (Workspace, Server) {
    let mut ws = (TestEnv { backend: Backend::Local }).place(fx).await.expect("the local fixture");
    ws.args.extend(extra.iter().map(|s| s.to_string()));
    let srv = Server::start(&ws).await;
    (ws, srv)
}

async fn new_session(srv: &Server, directory: &str) -> Value {
    let (status, session) = post(srv, &with_query("/session", &[("directory", directory)]), Some(json!({}))).await;
    assert_eq!(status, 200, "{session}");
    session
}

/// The events of session `id` in `POST /sync/history`'s answer to `known`.
async fn history_of(srv: &Server, id: &str, known: Value) -> Vec<Value> {
    let (status, all) = post(srv, "/sync/history", Some(known)).await;
    assert_eq!(status, 200, "{all}");
    all.as_array().expect("a list of events").iter().filter(|e| e["aggregate_id"] == id).cloned().collect()
}

/// History rows as `/sync/replay` takes them.
fn as_replay(events: &[Value]) -> Vec<Value> {
    events.iter().map(|e| json!({"id": e["id"], "aggregateID": e["aggregate_id"], "seq": e["seq"], "type": e["type"], "data": e["data"]})).collect()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git").arg("-C").arg(dir).args(args).output().expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn history_and_replay_carry_a_session_to_another_server() {
    let (fx_a, fx_b) = (Fixture::standard(), Fixture::standard());
    let (ws_a, a) = serve(&fx_a, &[]).await;
    let (_ws_b, b) = serve(&fx_b, &[]).await;
    let session = new_session(&a, &ws_a.root).await;
    let id = session["id"].as_str().unwrap().to_string();
    let (status, body) =
        post(&a, &format!("/session/{id}/message"), Some(json!({"parts": [{"type": "text", "text": "remember this"}], "noReply": true}))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&a, Method::PATCH, &format!("/session/{id}"), Some(json!({"title": "carried over"}))).await;
    assert_eq!(status, 200, "{body}");

    // The whole history: from session.created at 0, with no gaps, in OpenCode's row shape.
    let events = history_of(&a, &id, json!({})).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["session.created.1", "message.updated.1", "message.part.updated.1", "session.updated.1"], "{events:?}");
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["seq"], i, "{event}");
        assert!(event["id"].as_str().unwrap().starts_with("evt_"), "{event}");
        let mut keys: Vec<&str> = event.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["aggregate_id", "data", "id", "seq", "type"], "{event}");
        assert_eq!(event["data"]["sessionID"], id.as_str(), "{event}");
    }
    assert_eq!(history_of(&a, &id, json!({ &id: 1 })).await, events[2..], "only what comes after the known sequence");
    assert_eq!(history_of(&a, &id, json!({ &id: 3 })).await, Vec::<Value>::new());

    // Replayed on B: the same session and messages, and the same history.
    let replay = |events: Vec<Value>| post(&b, "/sync/replay", Some(json!({"directory": ws_a.root, "events": events})));
    assert_eq!(replay(as_replay(&events)).await, (200, json!({"sessionID": id})));
    let (status, got) = b.get(&format!("/session/{id}")).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["title"], "carried over");
    assert_eq!(got["time"], a.get(&format!("/session/{id}")).await.1["time"]);
    let (_, messages_a) = a.get(&format!("/session/{id}/message")).await;
    assert_eq!(b.get(&format!("/session/{id}/message")).await, (200, messages_a));
    assert_eq!(history_of(&b, &id, json!({})).await, events);

    // Replaying it again changes nothing; a later part continues it.
    assert_eq!(replay(as_replay(&events)).await, (200, json!({"sessionID": id})));
    let (status, body) = call(&a, Method::PATCH, &format!("/session/{id}"), Some(json!({"title": "renamed on A"}))).await;
    assert_eq!(status, 200, "{body}");
    let more = history_of(&a, &id, json!({ &id: 3 })).await;
    assert_eq!(more.len(), 1, "{more:?}");
    assert_eq!(replay(as_replay(&more)).await, (200, json!({"sessionID": id})));
    assert_eq!(b.get(&format!("/session/{id}")).await.1["title"], "renamed on A");

    // Histories that do not fit are refused, and nothing of them is applied.
    let mut diverged = as_replay(&more);
    diverged[0]["data"]["info"]["title"] = json!("something else");
    let refused = replay(diverged).await;
    assert!(refused.1["data"]["message"].as_str().unwrap().contains("diverged"), "{refused:?}");
    assert_error("a different event at a known sequence", refused, 400, "SyncReplayError");
    let mut gap = as_replay(&more);
    gap[0]["seq"] = json!(6);
    gap[0]["id"] = json!("evt_gap");
    assert_error("a gap", replay(gap).await, 400, "SyncReplayError");
    let mut two = as_replay(&events[..2]);
    two[1]["aggregateID"] = json!("ses_other");
    assert_error("two sessions", replay(two).await, 400, "SyncReplayError");
    let mut holes = as_replay(&events[..3]);
    holes.remove(1);
    assert_error("sequence numbers with a hole", replay(holes).await, 400, "SyncReplayError");
    let mut unknown = as_replay(&events[..1]);
    unknown[0]["type"] = json!("session.exploded.1");
    unknown[0]["aggregateID"] = json!("ses_fresh");
    assert_error("an unknown event type", replay(unknown).await, 400, "SyncReplayError");
    let mut mismatch = as_replay(&events[..1]);
    mismatch[0]["aggregateID"] = json!("ses_fresh");
    assert_error("data of another session", replay(mismatch).await, 400, "SyncReplayError");
    let orphan = vec![json!({"id": "evt_orphan", "aggregateID": "ses_nothere", "seq": 0, "type": "message.removed.1",
        "data": {"sessionID": "ses_nothere", "messageID": "msg_x"}})];
    assert_error("a history that does not start with session.created", replay(orphan).await, 400, "SyncReplayError");
    assert_eq!(b.get("/session/ses_fresh").await.0, 404, "nothing of a refused replay is applied");
    assert_eq!(b.get(&format!("/session/{id}")).await.1["title"], "renamed on A");
    for (what, body) in [
        ("no events", json!({"directory": "/x", "events": []})),
        ("no directory", json!({"events": as_replay(&events[..1])})),
        ("an id without evt_", json!({"directory": "/x", "events": [{"id": "x", "aggregateID": "ses_a", "seq": 0, "type": "session.created.1", "data": {}}]})),
        ("a negative seq", json!({"directory": "/x", "events": [{"id": "evt_a", "aggregateID": "ses_a", "seq": -1, "type": "session.created.1", "data": {}}]})),
        ("an unknown field", json!({"directory": "/x", "events": as_replay(&events[..1]), "extra": 1})),
        (
            "data that is not an object",
            json!({"directory": "/x", "events": [{"id": "evt_a", "aggregateID": "ses_a", "seq": 0, "type": "session.created.1", "data": 1}]}),
        ),
    ] {
        let got = post(&b, "/sync/replay", Some(body)).await;
        assert_eq!(got.0, 400, "{what}: {got:?}");
        assert!(got.1["data"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {got:?}");
    }
    for bad in [json!({"ses_a": -1}), json!({"ses_a": "three"}), json!([1])] {
        assert_error(&format!("POST /sync/history {bad}"), post(&a, "/sync/history", Some(bad.clone())).await, 400, "BadRequest");
    }
    assert_eq!(post(&a, "/sync/start", None).await, (200, json!(true)));
}

#[tokio::test]
async fn steal_takes_a_session_into_the_request_workspace() {
    let fx = Fixture::standard();
    let root = fx.path().display().to_string();
    let (ws, srv) = serve(&fx, &["--allow-workspaces", "--workspace-root", &root]).await;
    let reply = srv.send(srv.request(Method::POST, "/experimental/workspace").json(&json!({"type": "local", "extra": {"dir": fx.path().join("src")}}))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let wrk = reply.json()["id"].as_str().unwrap().to_string();
    let id = new_session(&srv, &ws.root).await["id"].as_str().unwrap().to_string();

    let steal = |query: String, body: Value| {
        let srv = &srv;
        async move { post(srv, &format!("/sync/steal{query}"), Some(body)).await }
    };
    assert_eq!(steal(format!("?workspace={wrk}"), json!({"sessionID": id})).await, (200, json!({"sessionID": id})));
    let (_, session) = srv.get(&format!("/session/{id}")).await;
    assert_eq!(session["workspaceID"], wrk.as_str(), "{session}");
    let last = history_of(&srv, &id, json!({})).await.pop().unwrap();
    assert_eq!((last["type"].as_str(), &last["data"]["info"]["workspaceID"]), (Some("session.updated.1"), &json!(wrk)), "{last}");

    // Its history is the workspace's now: a replay from no workspace is refused.
    let events = history_of(&srv, &id, json!({})).await;
    let mut next = as_replay(&events[events.len() - 1..]);
    next[0]["id"] = json!("evt_zzzzzzzzzzzzzzzzzzzzzzzzzz");
    next[0]["seq"] = json!(events.len());
    let refused = post(&srv, "/sync/replay", Some(json!({"directory": ws.root, "events": next.clone()}))).await;
    assert!(refused.1["data"]["message"].as_str().unwrap().contains("owner"), "{refused:?}");
    assert_error("a replay from another owner", refused, 400, "SyncReplayError");
    let (status, body) = post(&srv, &format!("/sync/replay?workspace={wrk}"), Some(json!({"directory": ws.root, "events": next}))).await;
    assert_eq!((status, body), (200, json!({"sessionID": id})), "the owner's replay applies");

    assert_error("no workspace", steal(String::new(), json!({"sessionID": id})).await, 400, "BadRequest");
    assert_error("an unknown workspace", steal("?workspace=wrk_nope".into(), json!({"sessionID": id})).await, 404, "NotFoundError");
    assert_error("an unknown session", steal(format!("?workspace={wrk}"), json!({"sessionID": "ses_nope"})).await, 404, "NotFoundError");
    assert_error("a session id without ses", steal(format!("?workspace={wrk}"), json!({"sessionID": "nope"})).await, 400, "BadRequest");
    assert_error("no session id", steal(format!("?workspace={wrk}"), json!({})).await, 400, "BadRequest");
}

#[tokio::test]
async fn move_session_moves_it_within_its_project_with_its_changes() {
    let fx = Fixture::standard();
    let root = fx.path();
    // A second worktree of the fixture's repository, inside the served folder
    // and ignored by the first.
    std::fs::write(root.join(".git/info/exclude"), "/wt2/\n").unwrap();
    git(&root, &["worktree", "add", "-q", "-b", "other", "wt2"]);
    let (ws, srv) = serve(&fx, &[]).await;
    let session = new_session(&srv, &ws.root).await;
    let id = session["id"].as_str().unwrap().to_string();
    let moving = |body: Value| post(&srv, "/experimental/control-plane/move-session", Some(body));

    // Into a folder of the same worktree: the session's folder and path change.
    let docs = format!("{}/docs", ws.root);
    assert_eq!(moving(json!({"sessionID": id, "destination": {"directory": docs}})).await, (204, Value::Null));
    let (_, moved) = srv.get(&format!("/session/{id}")).await;
    assert_eq!((moved["directory"].as_str(), moved["path"].as_str()), (Some(docs.as_str()), Some("docs")), "{moved}");
    assert_eq!(moving(json!({"sessionID": id, "destination": {"directory": docs}})).await, (204, Value::Null), "already there");

    // To the other worktree with its changes: they leave the first one.
    assert_eq!(moving(json!({"sessionID": id, "destination": {"directory": ws.root}})).await, (204, Value::Null));
    let wt2 = format!("{}/wt2", ws.root);
    assert_eq!(moving(json!({"sessionID": id, "destination": {"directory": wt2}, "moveChanges": true})).await, (204, Value::Null));
    let (_, moved) = srv.get(&format!("/session/{id}")).await;
    assert_eq!((moved["directory"].as_str(), moved["path"].as_str()), (Some(wt2.as_str()), Some("")), "{moved}");
    let read = |p: &Path| std::fs::read_to_string(p).ok();
    assert_eq!(read(&root.join("wt2/src/main.rs")).as_deref(), Some(MAIN_RS_CHANGED));
    assert_eq!(read(&root.join("wt2/new.txt")).as_deref(), Some(NEW_TXT));
    assert!(!root.join("wt2/old.txt").exists(), "the deletion moved too");
    assert_eq!(read(&root.join("src/main.rs")).as_deref(), Some(MAIN_RS), "the source is back at HEAD");
    assert_eq!(read(&root.join("old.txt")).as_deref(), Some(OLD_TXT));
    assert!(!root.join("new.txt").exists(), "the untracked file left the source");

    // Bad requests.
    let outside = fx.outside().display().to_string();
    assert_error("outside the workspace", moving(json!({"sessionID": id, "destination": {"directory": outside}})).await, 403, "ForbiddenError");
    let missing = format!("{}/nowhere", ws.root);
    assert_error("a missing folder", moving(json!({"sessionID": id, "destination": {"directory": missing}})).await, 400, "MoveSessionError");
    assert_error("an unknown session", moving(json!({"sessionID": "ses_nope", "destination": {"directory": ws.root}})).await, 400, "MoveSessionError");
    assert_error("no destination", moving(json!({"sessionID": id})).await, 400, "BadRequest");
    assert_error("an unknown field", moving(json!({"sessionID": id, "destination": {"directory": ws.root}, "copy": true})).await, 400, "BadRequest");
    assert_error("an id without ses", moving(json!({"sessionID": "x", "destination": {"directory": ws.root}})).await, 400, "BadRequest");
}

#[tokio::test]
async fn move_session_refuses_another_project() {
    let fx = Fixture::standard();
    // A repository of its own inside the served folder: another project.
    let other = fx.path().join("a/b");
    git(&other, &["init", "-q", "-b", "main"]);
    git(&other, &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "other"]);
    let (ws, srv) = serve(&fx, &[]).await;
    let id = new_session(&srv, &ws.root).await["id"].as_str().unwrap().to_string();
    let body = json!({"sessionID": id, "destination": {"directory": format!("{}/a/b", ws.root)}});
    let refused = post(&srv, "/experimental/control-plane/move-session", Some(body)).await;
    assert_eq!(refused.1["data"]["message"], "Destination directory belongs to another project", "{refused:?}");
    assert_error("another project", refused, 400, "MoveSessionError");
}
