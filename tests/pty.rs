//! Terminals over HTTP and the WebSocket, against the real binary: creation,
//! keystrokes and output, cursor replay, resizing, removal, exit and events.

mod common;

use common::{canonical, project, Server, WAIT};
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &Server, path: &str) -> Socket {
    tokio_tungstenite::connect_async(server.ws_url(path)).await.expect("WebSocket handshake").0
}

async fn recv(ws: &mut Socket) -> Option<Message> {
    tokio::time::timeout(WAIT, ws.next()).await.expect("a frame in time").map(|m| m.expect("a frame"))
}

/// Reads the replay: text frames up to the 0x00 cursor frame. Returns the text and the cursor.
async fn replay(ws: &mut Socket) -> (String, u64) {
    let mut text = String::new();
    loop {
        match recv(ws).await.expect("the socket stays open") {
            Message::Text(t) => text.push_str(&t),
            Message::Binary(b) => {
                assert_eq!(b[0], 0, "a binary frame from the server is the cursor frame");
                let meta: Value = serde_json::from_slice(&b[1..]).expect("cursor JSON");
                return (text, meta["cursor"].as_u64().expect("a cursor"));
            }
            other => panic!("unexpected frame before the cursor frame: {other:?}"),
        }
    }
}

/// Reads live output until it contains `needle`; returns everything read.
async fn read_until(ws: &mut Socket, needle: &str) -> String {
    let mut text = String::new();
    while !text.contains(needle) {
        match recv(ws).await.expect("the socket stays open") {
            Message::Text(t) => text.push_str(&t),
            other => panic!("unexpected frame: {other:?}"),
        }
    }
    text
}

/// Waits for the server to close the socket; returns the close code.
async fn closed(ws: &mut Socket) -> u16 {
    loop {
        match recv(ws).await {
            Some(Message::Close(Some(frame))) => return frame.code.into(),
            Some(Message::Close(None)) | None => return 1005,
            Some(_) => {}
        }
    }
}

#[tokio::test]
async fn a_terminal_session_from_start_to_end() {
    let dir = project(false);
    let server = Server::start(dir.path());
    let mut events = server.events().await;

    let (status, info) = server.post("/pty", Some(json!({"title": "t1"}))).await;
    assert_eq!(status, 200, "{info}");
    let id = info["id"].as_str().expect("an id").to_string();
    assert!(id.starts_with("pty_"));
    assert_eq!(info["title"], "t1");
    assert_eq!(info["status"], "running");
    assert_eq!(info["cwd"], canonical(dir.path()));
    assert!(info["command"].as_str().unwrap().starts_with('/'), "the shell is an absolute path: {info}");
    assert_eq!(info["args"].as_array().unwrap().last().unwrap(), "-l", "a login shell: {info}");
    assert!(info["pid"].as_u64().unwrap() > 0);
    let created = events.next_of("pty.created").await;
    assert_eq!(created["properties"]["info"], info);

    // First connection: the replay (whatever the shell printed so far), the
    // cursor frame that counts it, then live output for our keystrokes.
    let mut ws = connect(&server, &format!("/pty/{id}/connect")).await;
    let (first, cursor) = replay(&mut ws).await;
    assert_eq!(first.len() as u64, cursor);
    ws.send(Message::text("echo hello-$((40+2))\r")).await.unwrap();
    let live = read_until(&mut ws, "hello-42").await;
    assert!(live.contains("echo hello-$((40+2))"), "the terminal echoes the keystrokes: {live:?}");
    drop(ws);

    // Reconnecting from 0 replays everything, the keystrokes and the output included.
    let mut ws = connect(&server, &format!("/pty/{id}/connect?cursor=0")).await;
    let (all, end) = replay(&mut ws).await;
    assert_eq!(all.len() as u64, end);
    assert!(all.starts_with(&format!("{first}{live}")), "replay {all:?} starts with what was seen");
    drop(ws);

    // From the middle: exactly the rest. (The shell may still print, so the
    // end may have moved on; what was there must not have changed.)
    let mut ws = connect(&server, &format!("/pty/{id}/connect?cursor=5")).await;
    let (rest, end2) = replay(&mut ws).await;
    assert_eq!(rest.len() as u64, end2 - 5);
    assert!(rest.starts_with(&all[5..]));
    drop(ws);

    // From the end: only what came after it. With -1: nothing, and the cursor.
    let mut ws = connect(&server, &format!("/pty/{id}/connect?cursor={end}")).await;
    let (after, end3) = replay(&mut ws).await;
    assert_eq!(after.len() as u64, end3 - end);
    let mut ws = connect(&server, &format!("/pty/{id}/connect?cursor=-1")).await;
    let (nothing, end4) = replay(&mut ws).await;
    assert_eq!(nothing, "");
    assert!(end4 >= end3);
    drop(ws);

    // Resize and rename; the terminal sees the new size.
    let (status, updated) = server
        .send(Method::PUT, &format!("/pty/{id}"), Some(json!({"title": "renamed", "size": {"rows": 30, "cols": 100}})))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["title"], "renamed");
    assert_eq!(events.next_of("pty.updated").await["properties"]["info"], updated);
    let mut ws = connect(&server, &format!("/pty/{id}/connect?cursor=-1")).await;
    replay(&mut ws).await;
    ws.send(Message::text("stty size\r")).await.unwrap();
    read_until(&mut ws, "30 100").await;

    let (_, list) = server.get("/pty").await;
    assert_eq!(list, json!([updated]));
    assert_eq!(server.get(&format!("/pty/{id}")).await, (200, updated.clone()));

    // Removal: the connected client is closed normally, the event names the
    // terminal, and it is gone for every endpoint.
    assert_eq!(server.send(Method::DELETE, &format!("/pty/{id}"), None).await, (200, json!(true)));
    assert_eq!(closed(&mut ws).await, 1000);
    assert_eq!(events.next_of("pty.deleted").await["properties"], json!({"id": id}));
    let (status, body) = server.get(&format!("/pty/{id}")).await;
    assert_eq!(status, 404);
    assert_eq!(body, json!({"_tag": "PtyNotFoundError", "ptyID": id, "message": format!("PTY session not found: {id}")}));
    assert_eq!(server.send(Method::DELETE, &format!("/pty/{id}"), None).await.0, 404);
    let refused = tokio_tungstenite::connect_async(server.ws_url(&format!("/pty/{id}/connect"))).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 404),
        other => panic!("connecting to a removed terminal must fail with 404, got {other:?}"),
    }
}

#[tokio::test]
async fn a_terminal_whose_process_exits_says_so_and_goes_away() {
    let dir = project(false);
    let server = Server::start(dir.path());
    let mut events = server.events().await;
    let (status, info) = server.post("/pty", Some(json!({"command": "/bin/sh", "env": {"GREETING": "hi there"}}))).await;
    assert_eq!(status, 200, "{info}");
    let id = info["id"].as_str().unwrap().to_string();
    assert_eq!(info["title"], format!("Terminal {}", &id[id.len() - 4..]));
    assert_eq!(info["args"], json!(["-l"]));

    let mut ws = connect(&server, &format!("/pty/{id}/connect")).await;
    replay(&mut ws).await;
    ws.send(Message::text("echo \"$GREETING/$TERM/$OPENCODE_TERMINAL\"; exit 3\r")).await.unwrap();
    read_until(&mut ws, "hi there/xterm-256color/1").await;
    assert_eq!(closed(&mut ws).await, 1000);
    let exited = events.next_of("pty.exited").await;
    assert_eq!(exited["properties"], json!({"id": id, "exitCode": 3}));
    assert_eq!(server.get(&format!("/pty/{id}")).await.0, 404);
    assert_eq!(server.get("/pty").await, (200, json!([])));
}

#[tokio::test]
async fn the_default_shell_is_the_users() {
    let dir = project(false);
    let server = Server::start_with(dir.path(), |_| {}, &[("SHELL", "/bin/sh")]);
    let (status, info) = server.post("/pty", Some(json!({}))).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!((info["command"].as_str(), info["args"].clone()), (Some("/bin/sh"), json!(["-l"])));
    let (_, shells) = server.get("/pty/shells").await;
    assert!(shells.as_array().unwrap().iter().any(|s| s["path"] == "/bin/sh" && s["acceptable"] == true), "{shells}");
}

#[tokio::test]
async fn terminals_belong_to_their_directory_and_bad_input_is_refused() {
    let dir = project(false);
    std::fs::create_dir(dir.path().join("docs")).unwrap();
    let server = Server::start(dir.path());
    let docs = canonical(&dir.path().join("docs"));

    let (status, info) = server.post(&format!("/pty?directory={docs}"), Some(json!({}))).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["cwd"], docs);
    let id = info["id"].as_str().unwrap();
    assert_eq!(server.get(&format!("/pty/{id}")).await.0, 404, "not visible from another directory");
    assert_eq!(server.get(&format!("/pty?directory={docs}")).await.1.as_array().unwrap().len(), 1);

    let checks = [
        (server.post("/pty", None).await.0, 400, "no body"),
        (server.post("/pty", Some(json!({"title": 5}))).await.0, 400, "a title that is not a string"),
        (server.post("/pty", Some(json!({"command": "/nonexistent/bin"}))).await.0, 400, "a program that does not exist"),
        (server.post("/pty", Some(json!({"cwd": "/etc"}))).await.0, 403, "a folder outside the workspace"),
        (server.get("/pty/garbage").await.0, 400, "an id of the wrong shape"),
        (server.get("/pty/pty_missing").await.0, 404, "an unknown id"),
        (
            server.send(Method::PUT, &format!("/pty/{id}?directory={docs}"), Some(json!({"size": {"rows": 0, "cols": 100}}))).await.0,
            400,
            "a zero size",
        ),
        (
            server.send(Method::PUT, &format!("/pty/{id}?directory={docs}"), Some(json!({"size": {"rows": 30}}))).await.0,
            400,
            "a size without cols",
        ),
    ];
    for (got, want, what) in checks {
        assert_eq!(got, want, "{what}");
    }
    // A plain GET of the connect URL is not a WebSocket request.
    let plain = reqwest::get(server.url(&format!("/pty/{id}/connect?directory={docs}"))).await.unwrap();
    assert_eq!(plain.status().as_u16(), 400);
}

#[tokio::test]
async fn browsers_open_a_terminal_with_a_one_use_ticket() {
    let dir = project(false);
    let server = Server::start_with(dir.path(), |_| {}, &[("OPENCODE_SERVER_PASSWORD", "secret")]);
    let client = reqwest::Client::new();
    let authed = |m: Method, path: &str| client.request(m, server.url(path)).basic_auth("opencode", Some("secret"));
    let info: Value = authed(Method::POST, "/pty").json(&json!({})).send().await.unwrap().json().await.unwrap();
    let id = info["id"].as_str().unwrap();
    let token_path = format!("/pty/{id}/connect-token");

    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(status(authed(Method::POST, &token_path).send().await.unwrap()), 403, "without x-opencode-ticket");
    let foreign = authed(Method::POST, &token_path).header("x-opencode-ticket", "1").header("origin", "http://evil.example.com");
    assert_eq!(status(foreign.send().await.unwrap()), 403, "from a foreign page");
    let anonymous = client.post(server.url(&token_path)).header("x-opencode-ticket", "1");
    assert_eq!(status(anonymous.send().await.unwrap()), 401, "tickets are for authenticated clients");
    let res = authed(Method::POST, &token_path).header("x-opencode-ticket", "1").send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let token: Value = res.json().await.unwrap();
    assert_eq!(token["expires_in"], 60);
    let ticket = token["ticket"].as_str().unwrap();

    let refused = |path: String| async move {
        match tokio_tungstenite::connect_async(path).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => res.status().as_u16(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    };
    assert_eq!(refused(server.ws_url(&format!("/pty/{id}/connect"))).await, 401, "no credentials, no ticket");
    assert_eq!(refused(server.ws_url(&format!("/pty/{id}/connect?ticket=bogus"))).await, 403);
    let mut ws = connect(&server, &format!("/pty/{id}/connect?ticket={ticket}")).await;
    replay(&mut ws).await;
    ws.send(Message::text("echo ticket-$((6*7))\r")).await.unwrap();
    read_until(&mut ws, "ticket-42").await;
    assert_eq!(refused(server.ws_url(&format!("/pty/{id}/connect?ticket={ticket}"))).await, 403, "a ticket works once");
}
