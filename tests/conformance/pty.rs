//! Terminals over HTTP and the WebSocket: creation, keystrokes and output,
//! cursor replay, resizing, removal, exit, events and connect tickets. An
//! environment without processes (object storage) answers 501.

use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::support::calls::{call, post, ws_url, Events, WAIT};
use crate::support::server::Server;
use crate::support::{for_each_env, Fixture, Served};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(srv: &Server, path: &str) -> Socket {
    tokio_tungstenite::connect_async(ws_url(srv, path)).await.expect("WebSocket handshake").0
}

/// The HTTP status a refused WebSocket handshake got.
async fn refused(srv: &Server, path: &str) -> u16 {
    match tokio_tungstenite::connect_async(ws_url(srv, path)).await {
        Err(tungstenite::Error::Http(res)) => res.status().as_u16(),
        other => panic!("expected {path} to be refused, got {other:?}"),
    }
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

/// Whether the environment runs terminals; if not, checks that it says so.
async fn runs_terminals(t: &Served) -> bool {
    if t.caps.exec {
        return true;
    }
    let (status, body) = post(&t.srv, "/pty", Some(json!({}))).await;
    assert_eq!(status, 501, "no processes, no terminals: {body}");
    false
}

/// Runs `check` on the standard fixture in every environment that runs
/// terminals. The fixture lives until `check` is done (an `async move` block
/// that names only `t.srv` would otherwise take just that field and let the
/// fixture's files go).
async fn with_terminals<F, Fut>(check: F)
where
    F: Fn(Arc<Served>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let check = &check;
    for_each_env(|env| async move {
        let t = Arc::new(Served::standard(env).await);
        if runs_terminals(&t).await {
            check(t.clone()).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_terminal_session_from_start_to_end() {
    with_terminals(|t| async move {
        let srv = &t.srv;
        let mut events = Events::subscribe(srv, "").await;

        let (status, info) = post(srv, "/pty", Some(json!({"title": "t1"}))).await;
        assert_eq!(status, 200, "{info}");
        let id = info["id"].as_str().expect("an id").to_string();
        assert!(id.starts_with("pty_"));
        assert_eq!((info["title"].as_str(), info["status"].as_str()), (Some("t1"), Some("running")));
        assert_eq!(info["cwd"], t.abs(""));
        assert!(info["command"].as_str().unwrap().starts_with('/'), "the shell is an absolute path: {info}");
        assert_eq!(info["args"].as_array().unwrap().last().unwrap(), "-l", "a login shell: {info}");
        assert!(info["pid"].is_u64());
        assert_eq!(events.next_of("pty.created").await["properties"]["info"], info);

        // First connection: the replay (whatever the shell printed so far), the
        // cursor frame that counts it, then live output for our keystrokes.
        let mut ws = connect(srv, &format!("/pty/{id}/connect")).await;
        let (first, cursor) = replay(&mut ws).await;
        assert_eq!(first.len() as u64, cursor);
        ws.send(Message::text("echo hello-$((40+2))\r")).await.unwrap();
        let live = read_until(&mut ws, "hello-42").await;
        assert!(live.contains("echo hello-$((40+2))"), "the terminal echoes the keystrokes: {live:?}");
        drop(ws);

        // Reconnecting from 0 replays everything, the keystrokes and the output included.
        let mut ws = connect(srv, &format!("/pty/{id}/connect?cursor=0")).await;
        let (all, end) = replay(&mut ws).await;
        assert_eq!(all.len() as u64, end);
        assert!(all.starts_with(&format!("{first}{live}")), "replay {all:?} starts with what was seen");

        // From the middle: exactly the rest. (The shell may still print, so the
        // end may have moved on; what was there must not have changed.)
        let mut ws = connect(srv, &format!("/pty/{id}/connect?cursor=5")).await;
        let (rest, end2) = replay(&mut ws).await;
        assert_eq!(rest.len() as u64, end2 - 5);
        assert!(rest.starts_with(&all[5..]));

        // From the end: only what came after it. With -1: nothing, and the cursor.
        let mut ws = connect(srv, &format!("/pty/{id}/connect?cursor={end}")).await;
        let (after, end3) = replay(&mut ws).await;
        assert_eq!(after.len() as u64, end3 - end);
        let mut ws = connect(srv, &format!("/pty/{id}/connect?cursor=-1")).await;
        let (nothing, end4) = replay(&mut ws).await;
        assert_eq!(nothing, "");
        assert!(end4 >= end3);

        // Resize and rename; the terminal sees the new size.
        let body = json!({"title": "renamed", "size": {"rows": 30, "cols": 100}});
        let (status, updated) = call(srv, Method::PUT, &format!("/pty/{id}"), Some(body)).await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["title"], "renamed");
        assert_eq!(events.next_of("pty.updated").await["properties"]["info"], updated);
        ws.send(Message::text("stty size\r")).await.unwrap();
        read_until(&mut ws, "30 100").await;

        assert_eq!(srv.get("/pty").await, (200, json!([updated])));
        assert_eq!(srv.get(&format!("/pty/{id}")).await, (200, updated.clone()));

        // Removal: the connected client is closed normally, the event names the
        // terminal, and it is gone for every endpoint.
        assert_eq!(call(srv, Method::DELETE, &format!("/pty/{id}"), None).await, (200, json!(true)));
        assert_eq!(closed(&mut ws).await, 1000);
        assert_eq!(events.next_of("pty.deleted").await["properties"], json!({"id": id}));
        let gone = json!({"_tag": "PtyNotFoundError", "ptyID": id, "message": format!("PTY session not found: {id}")});
        assert_eq!(srv.get(&format!("/pty/{id}")).await, (404, gone));
        assert_eq!(call(srv, Method::DELETE, &format!("/pty/{id}"), None).await.0, 404);
        assert_eq!(refused(srv, &format!("/pty/{id}/connect")).await, 404);
    })
    .await;
}

#[tokio::test]
async fn a_terminal_whose_process_exits_says_so_and_goes_away() {
    with_terminals(|t| async move {
        let srv = &t.srv;
        let mut events = Events::subscribe(srv, "").await;
        let (status, info) = post(srv, "/pty", Some(json!({"command": "/bin/sh", "env": {"GREETING": "hi there"}}))).await;
        assert_eq!(status, 200, "{info}");
        let id = info["id"].as_str().unwrap().to_string();
        assert_eq!(info["title"], format!("Terminal {}", &id[id.len() - 4..]));
        assert_eq!(info["args"], json!(["-l"]));

        let mut ws = connect(srv, &format!("/pty/{id}/connect")).await;
        replay(&mut ws).await;
        ws.send(Message::text("echo \"$GREETING/$TERM/$OPENCODE_TERMINAL\"; exit 3\r")).await.unwrap();
        read_until(&mut ws, "hi there/xterm-256color/1").await;
        assert_eq!(closed(&mut ws).await, 1000);
        assert_eq!(events.next_of("pty.exited").await["properties"], json!({"id": id, "exitCode": 3}));
        assert_eq!(srv.get(&format!("/pty/{id}")).await.0, 404);
        assert_eq!(srv.get("/pty").await, (200, json!([])));
    })
    .await;
}

#[tokio::test]
async fn terminals_belong_to_their_directory_and_bad_input_is_refused() {
    with_terminals(|t| async move {
        let srv = &t.srv;
        let src = t.abs("src");
        let (status, info) = post(srv, &format!("/pty?directory={src}"), Some(json!({}))).await;
        assert_eq!(status, 200, "{info}");
        assert_eq!(info["cwd"], src);
        let id = info["id"].as_str().unwrap();
        assert_eq!(srv.get(&format!("/pty/{id}")).await.0, 404, "not visible from another directory");
        assert_eq!(srv.get(&format!("/pty?directory={src}")).await.1.as_array().unwrap().len(), 1);

        let put_path = format!("/pty/{id}?directory={src}");
        let put = |body: Value| call(srv, Method::PUT, &put_path, Some(body));
        let checks = [
            (post(srv, "/pty", None).await.0, 400, "no body"),
            (post(srv, "/pty", Some(json!({"title": 5}))).await.0, 400, "a title that is not a string"),
            (post(srv, "/pty", Some(json!({"command": "/nonexistent/bin"}))).await.0, 400, "a program that does not exist"),
            (post(srv, "/pty", Some(json!({"cwd": "/etc"}))).await.0, 403, "a folder outside the workspace"),
            (srv.get("/pty/garbage").await.0, 400, "an id of the wrong shape"),
            (srv.get("/pty/pty_missing").await.0, 404, "an unknown id"),
            (put(json!({"size": {"rows": 0, "cols": 100}})).await.0, 400, "a zero size"),
            (put(json!({"size": {"rows": 30}})).await.0, 400, "a size without cols"),
        ];
        for (got, want, what) in checks {
            assert_eq!(got, want, "{what}");
        }
        // A plain GET of the connect URL is not a WebSocket request.
        assert_eq!(call(srv, Method::GET, &format!("/pty/{id}/connect?directory={src}"), None).await.0, 400);
    })
    .await;
}

#[tokio::test]
async fn the_default_shell_is_the_users() {
    for_each_env(|env| async move {
        // $SHELL is the server's own variable: it names a shell where the server runs.
        let t = Served::new(env, Fixture::standard(), &[("SHELL", "/bin/sh")]).await;
        if t.caps.env != "local" || !runs_terminals(&t).await {
            return;
        }
        let (status, info) = post(&t.srv, "/pty", Some(json!({}))).await;
        assert_eq!(status, 200, "{info}");
        assert_eq!((info["command"].as_str(), info["args"].clone()), (Some("/bin/sh"), json!(["-l"])));
        let (_, shells) = t.srv.get("/pty/shells").await;
        assert!(shells.as_array().unwrap().iter().any(|s| s["path"] == "/bin/sh" && s["acceptable"] == true), "{shells}");
    })
    .await;
}

#[tokio::test]
async fn browsers_open_a_terminal_with_a_one_use_ticket() {
    for_each_env(|env| async move {
        // Not `Served`, which reads the capabilities unauthenticated.
        let fx = Fixture::standard();
        let ws = env.place(&fx).await.unwrap_or_else(|e| panic!("[{}] {e:#}", env.name()));
        let srv = &Server::start_with(&ws, &[("OPENCODE_SERVER_PASSWORD", "secret")]).await;
        let authed = |m: Method, path: &str| srv.request(m, path).basic_auth("opencode", Some("secret"));
        let exec = srv.send(authed(Method::GET, "/burrow/capabilities")).await.json()["capabilities"]["exec"] == true;
        let created = srv.send(authed(Method::POST, "/pty").json(&json!({}))).await;
        if !exec {
            assert_eq!(created.status, 501);
            return;
        }
        let id = created.json()["id"].as_str().unwrap().to_string();
        let token_path = format!("/pty/{id}/connect-token");

        let status = |r: reqwest::RequestBuilder| async move { srv.send(r).await.status };
        assert_eq!(status(authed(Method::POST, &token_path)).await, 403, "without x-opencode-ticket");
        let foreign = authed(Method::POST, &token_path).header("x-opencode-ticket", "1").header("origin", "http://evil.example.com");
        assert_eq!(status(foreign).await, 403, "from a foreign page");
        let anonymous = srv.request(Method::POST, &token_path).header("x-opencode-ticket", "1");
        assert_eq!(status(anonymous).await, 401, "tickets are for authenticated clients");
        let token = srv.send(authed(Method::POST, &token_path).header("x-opencode-ticket", "1")).await;
        assert_eq!(token.status, 200, "{}", token.text);
        let token = token.json();
        assert_eq!(token["expires_in"], 60);
        let ticket = token["ticket"].as_str().unwrap();

        assert_eq!(refused(srv, &format!("/pty/{id}/connect")).await, 401, "no credentials, no ticket");
        assert_eq!(refused(srv, &format!("/pty/{id}/connect?ticket=bogus")).await, 403);
        let mut ws = connect(srv, &format!("/pty/{id}/connect?ticket={ticket}")).await;
        replay(&mut ws).await;
        ws.send(Message::text("echo ticket-$((6*7))\r")).await.unwrap();
        read_until(&mut ws, "ticket-42").await;
        assert_eq!(refused(srv, &format!("/pty/{id}/connect?ticket={ticket}")).await, 403, "a ticket works once");
    })
    .await;
}

/// v2's `GET /api/pty/{ptyID}/connect` is the same WebSocket: replay, cursor
/// frame, keystrokes and output, 404 for an unknown terminal, and tickets
/// from v2's `connect-token`.
#[tokio::test]
async fn the_v2_connect_path_serves_the_same_terminal() {
    with_terminals(|t| async move {
        let srv = &t.srv;
        let (status, created) = post(srv, "/api/pty", Some(json!({}))).await;
        assert_eq!(status, 200, "{created}");
        let id = created["data"]["id"].as_str().expect("an id").to_string();
        let mut ws = connect(srv, &format!("/api/pty/{id}/connect")).await;
        replay(&mut ws).await;
        ws.send(Message::text("echo v2-$((6*7))\r")).await.unwrap();
        read_until(&mut ws, "v2-42").await;
        drop(ws);
        let mut ws = connect(srv, &format!("/api/pty/{id}/connect?cursor=0")).await;
        let (text, _) = replay(&mut ws).await;
        assert!(text.contains("v2-42"), "a reconnect from 0 replays the output: {text:?}");
        assert_eq!(refused(srv, "/api/pty/pty_missing/connect").await, 404);
        assert_eq!(call(srv, Method::DELETE, &format!("/api/pty/{id}"), None).await.0, 204);
    })
    .await;
}
