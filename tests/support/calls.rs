//! Beyond plain GETs: JSON calls with any method, the `GET /event` stream,
//! and WebSocket addresses.

use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use serde_json::Value;
use tokio::sync::mpsc;

use super::server::Server;

/// A bound on waiting for something that should come promptly (an event, a
/// frame): a test that reaches it fails instead of hanging.
pub const WAIT: Duration = Duration::from_secs(30);

/// `method path` with an optional JSON body, as (status, body). A body that is
/// not JSON (an empty 404, say) comes back as `null`.
pub async fn call(srv: &Server, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = srv.request(method, path);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let reply = srv.send(req).await;
    (reply.status, serde_json::from_str(&reply.text).unwrap_or(Value::Null))
}

pub async fn post(srv: &Server, path: &str, body: Option<Value>) -> (u16, Value) {
    call(srv, Method::POST, path, body).await
}

/// The `ws://` address of a path on the server.
pub fn ws_url(srv: &Server, path: &str) -> String {
    format!("{}{path}", srv.url.replacen("http://", "ws://", 1))
}

/// The events of `GET /event`, in order.
pub struct Events(mpsc::UnboundedReceiver<Value>);

impl Events {
    /// Subscribes (with `?directory=` when given) and waits for `server.connected`.
    pub async fn subscribe(srv: &Server, query: &str) -> Self {
        let res = srv.request(Method::GET, &format!("/event{query}")).send().await.expect("GET /event");
        let status = res.status().as_u16();
        assert_eq!(status, 200, "GET /event: {}", if status == 200 { String::new() } else { res.text().await.unwrap_or_default() });
        let rx = sse_frames(res, |frame| frame.trim().strip_prefix("data: ").and_then(|d| serde_json::from_str::<Value>(d).ok()));
        let mut events = Self(rx);
        assert_eq!(events.next().await["type"], "server.connected");
        events
    }

    pub async fn next(&mut self) -> Value {
        tokio::time::timeout(WAIT, self.0.recv()).await.expect("an event in time").expect("the event stream is open")
    }

    /// The next event whose type starts with `prefix` (a whole type works too).
    pub async fn next_of(&mut self, prefix: &str) -> Value {
        loop {
            let e = self.next().await;
            if e["type"].as_str().is_some_and(|t| t.starts_with(prefix)) {
                return e;
            }
        }
    }
}

/// The frames of a server-sent event stream, each (up to its blank line)
/// turned into a `T` by `parse` and dropped when it gives none, as they come.
pub fn sse_frames<T: Send + 'static>(res: reqwest::Response, parse: impl Fn(&str) -> Option<T> + Send + 'static) -> mpsc::UnboundedReceiver<T> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = res.bytes_stream();
        let mut buf = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let frame: String = buf.drain(..end + 2).collect();
                if parse(&frame).is_some_and(|t| tx.send(t).is_err()) {
                    return;
                }
            }
        }
    });
    rx
}
