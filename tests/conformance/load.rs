//! A search never blocks other requests: searches run off the async runtime,
//! so the server keeps answering while they scan.
//!
//! Not timed, and not a race: the server runs with the debug-build hook
//! `BURROW_TEST_HOLD_SEARCHES`, so every search holds its worker thread until
//! the test opens the gate. The searches are sent first (on raw connections, so
//! the requests are on the wire before anything else happens), then health
//! checks one after another; each must be answered while every search is
//! provably still running. Then the gate opens and every search must finish
//! correctly.
//!
//! Runs where the search runs in the server process: local (the in-process
//! walk and grep) and object storage (the streamed search). In Docker and over
//! SSH the search runs in the helper, another process, and the server only
//! waits on a socket.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{for_each_env, Fixture, Served};

/// More concurrent searches than the runtime has worker threads on a small machine.
const SEARCHES: usize = 8;
/// Health checks in a row; each must be answered while every search still runs.
const HEALTH_CHECKS: usize = 20;

#[tokio::test]
async fn a_search_never_blocks_other_requests() {
    for_each_env(|env| async move {
        if !matches!(env.name(), "local" | "s3") {
            eprintln!("the search runs in the helper process here, not in the server");
            return;
        }
        let gate_dir = tempfile::tempdir().unwrap();
        let gate = gate_dir.path().join("open");
        let t = Served::new(env, Fixture::standard(), &[("BURROW_TEST_HOLD_SEARCHES", gate.to_str().unwrap())]).await;
        let addr = t.srv.url.strip_prefix("http://").unwrap().to_string();
        // Resolve the root directory once (project detection runs git), so the
        // searches go straight to scanning.
        assert_eq!(t.srv.get("/path").await.0, 200);
        let mut searches = Vec::new();
        for _ in 0..SEARCHES {
            let mut conn = TcpStream::connect(&addr).await.unwrap();
            let request = format!("GET /find?pattern=q-never-found HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
            conn.write_all(request.as_bytes()).await.unwrap();
            searches.push(conn);
        }
        for check in 0..HEALTH_CHECKS {
            assert_eq!(t.srv.get("/global/health").await.0, 200, "health check {check}");
            for (n, conn) in searches.iter().enumerate() {
                let mut byte = [0u8; 1];
                match conn.try_read(&mut byte) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    other => panic!("search {n} answered ({other:?}) while held: the hook did not hold it"),
                }
            }
        }
        std::fs::write(&gate, b"").unwrap();
        for (n, mut conn) in searches.into_iter().enumerate() {
            let mut response = String::new();
            conn.read_to_string(&mut response).await.unwrap();
            assert!(response.starts_with("HTTP/1.1 200"), "search {n}: {response}");
            assert!(response.ends_with("\r\n\r\n[]"), "search {n} found something: {response}");
        }
    })
    .await;
}

/// Searches sent at once with one search allowed to run and one to wait.
const OVER_THE_QUEUE: usize = 5;

#[tokio::test]
async fn past_the_queue_a_search_gets_503_with_retry_after() {
    for_each_env(|env| async move {
        if !matches!(env.name(), "local" | "s3") {
            eprintln!("the hold hook runs where the search runs in the server process");
            return;
        }
        let gate_dir = tempfile::tempdir().unwrap();
        let gate = gate_dir.path().join("open");
        let vars = [("BURROW_TEST_HOLD_SEARCHES", gate.to_str().unwrap()), ("BURROW_SEARCH_CONCURRENCY", "1"), ("BURROW_SEARCH_QUEUE", "1")];
        let t = Served::new(env, Fixture::standard(), &vars).await;
        let addr = t.srv.url.strip_prefix("http://").unwrap().to_string();
        assert_eq!(t.srv.get("/path").await.0, 200);
        // Every search is held, so whatever order they arrive in, exactly one
        // runs, one waits, and the rest are refused at once.
        let mut searches = tokio::task::JoinSet::new();
        for _ in 0..OVER_THE_QUEUE {
            let mut conn = TcpStream::connect(&addr).await.unwrap();
            let request = format!("GET /find?pattern=q-never-found HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
            conn.write_all(request.as_bytes()).await.unwrap();
            searches.spawn(async move {
                let mut response = String::new();
                conn.read_to_string(&mut response).await.unwrap();
                response
            });
        }
        let guard = std::time::Duration::from_secs(60);
        for n in 0..OVER_THE_QUEUE - 2 {
            let response = tokio::time::timeout(guard, searches.join_next()).await.expect("a refusal").unwrap().unwrap();
            assert!(response.starts_with("HTTP/1.1 503"), "refusal {n}: {response}");
            assert!(response.to_ascii_lowercase().contains("\r\nretry-after: 1\r\n"), "refusal {n}: {response}");
            let body: serde_json::Value = serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
            assert_eq!(body["name"], "BusyError", "{body}");
            assert!(body["data"]["message"].is_string(), "{body}");
        }
        // Fuzzy lookups and other requests do not wait behind the searches.
        assert_eq!(t.srv.get("/find/file?query=a").await.0, 200);
        assert_eq!(t.srv.get("/global/health").await.0, 200);
        std::fs::write(&gate, b"").unwrap();
        while let Some(response) = searches.join_next().await {
            let response = response.unwrap();
            assert!(response.starts_with("HTTP/1.1 200") && response.ends_with("\r\n\r\n[]"), "{response}");
        }
    })
    .await;
}

/// Reads until the server closes the connection; returns what it sent.
async fn until_closed(conn: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let guard = std::time::Duration::from_secs(60);
    let read = tokio::time::timeout(guard, async {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = conn.read(&mut buf).await {
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open; it sent {:?}", String::from_utf8_lossy(&got));
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn slow_and_idle_clients_are_dropped_but_streams_are_not() {
    for_each_env(|env| async move {
        if env.name() != "local" {
            eprintln!("connection timeouts do not depend on the environment");
            return;
        }
        let vars = [("BURROW_HEADER_TIMEOUT", "1"), ("BURROW_BODY_TIMEOUT", "1"), ("BURROW_IDLE_TIMEOUT", "1")];
        let t = Served::new(env, Fixture::standard(), &vars).await;
        let addr = t.srv.url.strip_prefix("http://").unwrap().to_string();

        // Half a header.
        let mut conn = TcpStream::connect(&addr).await.unwrap();
        conn.write_all(format!("GET /global/health HTTP/1.1\r\nhost: {addr}\r\n").as_bytes()).await.unwrap();
        let sent = until_closed(&mut conn).await;
        assert!(!sent.contains("200 OK"), "{sent}");

        // Half a body: an error (never a 500), then the connection closes.
        let mut conn = TcpStream::connect(&addr).await.unwrap();
        let head = format!("POST /session HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"title\":");
        conn.write_all(head.as_bytes()).await.unwrap();
        let sent = until_closed(&mut conn).await;
        assert!(sent.starts_with("HTTP/1.1 4"), "{sent}");

        // A finished request, then nothing: the keep-alive connection closes.
        let mut conn = TcpStream::connect(&addr).await.unwrap();
        conn.write_all(format!("GET /global/health HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
        let sent = until_closed(&mut conn).await;
        assert!(sent.starts_with("HTTP/1.1 200"), "{sent}");

        // An event stream outlives every timeout: after three of them, it
        // still delivers.
        let mut events = TcpStream::connect(&addr).await.unwrap();
        events.write_all(format!("GET /event HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("server.connected") {
            let n = tokio::time::timeout(std::time::Duration::from_secs(60), events.read(&mut buf)).await.expect("connected").unwrap();
            assert!(n > 0, "the stream ended");
            seen.extend_from_slice(&buf[..n]);
        }
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        let toast = serde_json::json!({ "type": "tui.prompt.append", "properties": { "text": "still-here" } });
        assert_eq!(crate::support::calls::post(&t.srv, "/tui/publish", Some(toast)).await.0, 200);
        while !String::from_utf8_lossy(&seen).contains("still-here") {
            let n = tokio::time::timeout(std::time::Duration::from_secs(60), events.read(&mut buf)).await.expect("the event").unwrap();
            assert!(n > 0, "the stream was cut off: {}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await;
}
