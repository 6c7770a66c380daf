//! v2's `GET /api/event`: every event of the server in v2's shape (`data`
//! for v1's `properties`, the directory as `location`, and `durable` on the
//! events that make up a session's history), after `server.connected`.

use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::support::calls::{post, sse_frames, WAIT};
use crate::support::{Fixture, Server, TestEnv};

/// The events of `GET /api/event`, as they come.
async fn subscribe(srv: &Server) -> mpsc::UnboundedReceiver<Value> {
    let res = srv.request(Method::GET, "/api/event").send().await.expect("GET /api/event");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    sse_frames(res, |frame| frame.trim().strip_prefix("data: ").map(|d| serde_json::from_str::<Value>(d).expect("a JSON frame")))
}

async fn next_of(rx: &mut mpsc::UnboundedReceiver<Value>, kind: &str) -> Value {
    loop {
        let e = tokio::time::timeout(WAIT, rx.recv()).await.expect("an event in time").expect("the stream is open");
        if e["type"] == kind {
            return e;
        }
    }
}

#[tokio::test]
async fn api_event_streams_v2_shaped_events() {
    let fx = Fixture::standard();
    let ws = TestEnv::from_name("local").unwrap().place(&fx).await.unwrap();
    let srv = Server::start_with(&ws, &[]).await;
    let mut rx = subscribe(&srv).await;
    let connected = tokio::time::timeout(WAIT, rx.recv()).await.unwrap().unwrap();
    assert_eq!(connected["type"], "server.connected", "{connected}");
    assert_eq!(connected["data"], json!({}), "{connected}");
    assert!(connected["id"].as_str().is_some_and(|id| id.starts_with("evt_")), "{connected}");

    let (status, session) = post(&srv, "/session", Some(json!({"title": "v2 events"}))).await;
    assert_eq!(status, 200, "{session}");
    let id = session["id"].as_str().unwrap();
    let created = next_of(&mut rx, "session.created").await;
    let keys: Vec<&String> = created.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "type", "durable", "location", "data"], "{created}");
    assert_eq!(created["data"]["sessionID"], id, "{created}");
    assert_eq!(created["data"]["info"]["title"], "v2 events", "{created}");
    assert_eq!(created["location"], json!({"directory": session["directory"]}), "{created}");
    assert_eq!((created["durable"]["aggregateID"].as_str(), created["durable"]["seq"].as_u64()), (Some(id), Some(0)), "{created}");
    assert!(created["durable"]["version"].is_u64(), "{created}");
}
