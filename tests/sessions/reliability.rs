//! Faults: a client that stops reading, SIGTERM while it does, `kill -9` with
//! commands running, and a command too long for argv.
//!
//! Nothing here is timed: every wait is a loop on an observable state, bounded
//! by PATIENCE only to turn a hang into a failure.

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::support::*;

/// `GET path` on a raw connection whose response head is read, and then
/// nothing more: a subscriber that stopped reading.
async fn stalled_subscriber(s: &Server, path: &str) -> TcpStream {
    let addr = s.url.strip_prefix("http://").unwrap().to_string();
    let mut conn = TcpStream::connect(&addr).await.unwrap();
    conn.write_all(format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tokio::time::timeout(PATIENCE, conn.read_exact(&mut byte)).await.expect("a response head").unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
    conn
}

/// Publishes `count` events of `size` bytes each to the default directory.
async fn publish_large(s: &Server, count: usize, size: usize) {
    let text = "x".repeat(size);
    for n in 0..count {
        let (status, body) = s.post("/tui/publish", json!({ "type": "tui.prompt.append", "properties": { "text": text } })).await;
        assert_eq!(status, 200, "event {n}: {body}");
    }
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_is_disconnected() {
    let dirs = Dirs::new();
    let s = Server::start(&dirs);
    let mut stalled = stalled_subscriber(&s, "/event").await;
    // 80 MiB: far more than the socket buffers, the stream's channel and the
    // bounded backlog hold together.
    publish_large(&s, 80, 1 << 20).await;
    // Reading now, the client gets what was in flight and then the end of the
    // connection, not an endless stream.
    let ended = tokio::time::timeout(PATIENCE, async {
        let mut buf = vec![0u8; 1 << 20];
        while let Ok(n @ 1..) = stalled.read(&mut buf).await {
            let _ = n;
        }
    })
    .await;
    assert!(ended.is_ok(), "the stalled subscriber was never disconnected");
    // Everyone else is served as before, new subscribers included.
    assert_eq!(s.get("/global/health").await.0, 200);
    let mut fresh = s.events("/event").await;
    publish_large(&s, 1, 10).await;
    fresh.until(|e| kind(e) == "tui.prompt.append").await;
}

#[tokio::test]
async fn sigterm_exits_while_subscribers_do_not_read() {
    let dirs = Dirs::new();
    let s = Server::start(&dirs);
    let _stalled = [stalled_subscriber(&s, "/event").await, stalled_subscriber(&s, "/global/event").await];
    publish_large(&s, 40, 1 << 20).await;
    // `stop` sends SIGTERM and fails unless the process exits.
    s.stop().await;
}

#[tokio::test]
async fn a_one_mebibyte_command_runs() {
    let dirs = Dirs::new();
    let s = Server::start(&dirs);
    let id = s.session("long command").await;
    // Eight times what the kernel accepts as one argument.
    let command = format!("x='{}'; echo ${{#x}}", "a".repeat(1 << 20));
    let (status, body) = s.shell(&id, &command).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["parts"][0]["state"]["output"], format!("{}\n", 1 << 20));
}

/// Waits until no process carries `needle`.
async fn until_gone(needle: &str, why: &str) {
    let gone = tokio::time::timeout(PATIENCE, async {
        while !processes_with(needle).is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "{why}: {:?} still run", processes_with(needle));
}

#[tokio::test]
async fn kill_9_of_the_server_ends_its_commands() {
    let dirs = Dirs::new();
    // A command with a child in the background: the whole group must go.
    let (s, _id, needle, events, run) = long_run(&dirs, true).await;
    drop(events);
    run.abort();
    let _ = run.await;
    assert!(!processes_with(&needle.0).is_empty(), "the command runs");
    s.kill9();
    until_gone(&needle.0, "the watchdog did not end the commands of the killed server").await;
}

#[tokio::test]
async fn commands_left_by_a_crash_are_ended_at_the_next_start() {
    let dirs = Dirs::new();
    let (s, _id, needle, events, run) = long_run(&dirs, true).await;
    drop(events);
    run.abort();
    let _ = run.await;
    // The watchdog goes first, as when the whole tree is killed at once.
    let watchdog = processes_with(&format!("reap {}", dirs.data.display()));
    assert_eq!(watchdog.len(), 1, "one watchdog runs");
    kill_all(&watchdog);
    s.kill9();
    assert!(!processes_with(&needle.0).is_empty(), "the command outlived its server");
    let _s = Server::start(&dirs);
    until_gone(&needle.0, "the next start did not end the commands of the crashed server").await;
}
