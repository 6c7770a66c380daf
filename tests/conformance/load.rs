//! A search over a huge tree never blocks other requests: searches run off the
//! async runtime, so the server keeps answering while they scan.
//!
//! Order-based, not timed: the searches are sent first (on raw connections, so
//! the requests are on the wire before anything else happens), then health
//! checks one after another; every health check must be answered while every
//! search is still running, and then every search must finish correctly.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{for_each_env, Fixture, Served};

/// Files in the tree; no file contains a `q`, so a search for it reads them all.
const FILES: usize = 20_000;
/// More concurrent searches than the runtime has worker threads on a small machine.
const SEARCHES: usize = 4;
/// Health checks in a row; each must be answered while every search still runs.
const HEALTH_CHECKS: usize = 20;

#[tokio::test]
async fn a_search_over_a_huge_tree_never_blocks_other_requests() {
    for_each_env(|env| async move {
        let t = Served::new(env, Fixture::large(FILES), &[]).await;
        let addr = t.srv.url.strip_prefix("http://").unwrap().to_string();
        // Resolve the root directory once (project detection runs git), so the
        // searches go straight to scanning.
        assert_eq!(t.srv.get("/path").await.0, 200);
        let mut searches = Vec::new();
        for _ in 0..SEARCHES {
            let mut conn = TcpStream::connect(&addr).await.unwrap();
            let request = format!("GET /find?pattern=q HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
            conn.write_all(request.as_bytes()).await.unwrap();
            searches.push(conn);
        }
        for check in 0..HEALTH_CHECKS {
            assert_eq!(t.srv.get("/global/health").await.0, 200);
            for (n, conn) in searches.iter().enumerate() {
                let mut byte = [0u8; 1];
                match conn.try_read(&mut byte) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    other => panic!("search {n} answered ({other:?}) before health check {check} did: searches block the server"),
                }
            }
        }
        for (n, mut conn) in searches.into_iter().enumerate() {
            let mut response = String::new();
            conn.read_to_string(&mut response).await.unwrap();
            assert!(response.starts_with("HTTP/1.1 200"), "search {n}: {response}");
            assert!(response.ends_with("\r\n\r\n[]"), "search {n} found nothing: {response}");
        }
    })
    .await;
}
