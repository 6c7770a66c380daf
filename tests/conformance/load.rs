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
