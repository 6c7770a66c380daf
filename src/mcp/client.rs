//! The client side of one MCP connection: JSON-RPC 2.0 requests over a
//! local server's stdio (run in the environment, see [`stdio`]) or a remote
//! server's streamable HTTP endpoint (see [`http`]), and the three calls
//! Burrow makes: `initialize`, `tools/list` and `tools/call`.
//!
//! The protocol is written here rather than taken from the `rmcp` SDK: the
//! stdio link is an environment's terminal (a byte channel, not an
//! `AsyncRead`/`AsyncWrite` pair), which carries the server's stderr too, so
//! lines that are not JSON-RPC must be skipped rather than fail the session;
//! and Burrow needs only the client's three calls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, watch};

use super::config::{LocalConfig, RemoteConfig};
use crate::env::{ProcessControl, PtyInput, PtyRequest, PtySize, SharedEnv, WorkspacePath};

/// Locks a mutex; a panic while it was held leaves plain data, still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The protocol version Burrow asks for (servers answer with theirs).
pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// One tool a server offers, as `tools/list` gives it.
#[derive(Clone, Debug, Deserialize)]
pub struct ToolDef {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, rename = "inputSchema")]
    pub input_schema: Value,
}

/// A connected server.
pub struct Client {
    link: Link,
    next_id: AtomicU64,
}

enum Link {
    Stdio(stdio::Stdio),
    Http(http::Http),
}

impl Client {
    /// Starts a local server in `env` (in `dir` unless its config names a
    /// `cwd`) and initializes the session.
    pub async fn local(env: SharedEnv, dir: &WorkspacePath, config: &LocalConfig, timeout: Duration) -> Result<Self, String> {
        let cwd = match &config.cwd {
            Some(c) if WorkspacePath::is_absolute(c) => WorkspacePath::parse(env.root(), c),
            Some(c) => dir.join_checked(c),
            None => Ok(dir.clone()),
        }
        .map_err(|e| format!("cwd: {e}"))?;
        let link = stdio::Stdio::start(env, cwd, config, timeout).await?;
        Self::initialize(Client { link: Link::Stdio(link), next_id: AtomicU64::new(1) }, timeout).await
    }

    /// Connects to a remote server over streamable HTTP.
    pub async fn remote(config: &RemoteConfig, timeout: Duration) -> Result<Self, String> {
        let link = http::Http::new(config)?;
        Self::initialize(Client { link: Link::Http(link), next_id: AtomicU64::new(1) }, timeout).await
    }

    async fn initialize(self, timeout: Duration) -> Result<Self, String> {
        let params = json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "burrow", "version": env!("CARGO_PKG_VERSION")},
        });
        let init = self.request("initialize", params, timeout).await;
        if let Err(e) = init {
            self.close().await;
            return Err(format!("initialize: {e}"));
        }
        self.notify("notifications/initialized").await?;
        Ok(self)
    }

    /// Every tool of the server, following `nextCursor` pages.
    pub async fn tools(&self, timeout: Duration) -> Result<Vec<ToolDef>, String> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        // OpenCode's bound on pages, against a server that loops.
        for _ in 0..1000 {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let page = self.request("tools/list", params, timeout).await.map_err(|e| format!("tools/list: {e}"))?;
            let tools: Vec<ToolDef> = serde_json::from_value(page.get("tools").cloned().unwrap_or(json!([]))).map_err(|e| format!("tools/list: {e}"))?;
            out.extend(tools);
            match page.get("nextCursor").and_then(Value::as_str) {
                Some(next) if cursor.as_deref() != Some(next) => cursor = Some(next.to_string()),
                Some(next) => return Err(format!("tools/list returned the same cursor twice: {next}")),
                None => return Ok(out),
            }
        }
        Err("tools/list returned more than 1000 pages".into())
    }

    /// Calls a tool; the result's `content`, `isError` and `structuredContent` as the server sent them.
    pub async fn call(&self, name: &str, arguments: Value, timeout: Duration) -> Result<Value, String> {
        self.request("tools/call", json!({"name": name, "arguments": arguments}), timeout).await
    }

    async fn request(&self, method: &str, params: Value, timeout: Duration) -> Result<Value, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let answer = tokio::time::timeout(timeout, async {
            match &self.link {
                Link::Stdio(s) => s.request(id, msg).await,
                Link::Http(h) => h.request(id, msg).await,
            }
        })
        .await
        .map_err(|_| format!("no answer to {method} within {} ms", timeout.as_millis()))??;
        answer_of(answer)
    }

    async fn notify(&self, method: &str) -> Result<(), String> {
        let msg = json!({"jsonrpc": "2.0", "method": method});
        match &self.link {
            Link::Stdio(s) => s.send(&msg).await,
            Link::Http(h) => h.notify(msg).await,
        }
    }

    /// Why a local server's process ended by itself, once it did.
    pub fn ended(&self) -> Option<String> {
        match &self.link {
            Link::Stdio(s) => s.ended.borrow().clone(),
            Link::Http(_) => None,
        }
    }

    /// Ends the session: a local server's process is killed, a remote
    /// session is deleted (best effort).
    pub async fn close(&self) {
        match &self.link {
            Link::Stdio(s) => s.close().await,
            Link::Http(h) => h.close().await,
        }
    }
}

/// The result of a JSON-RPC response, or its error as text.
fn answer_of(msg: Value) -> Result<Value, String> {
    if let Some(err) = msg.get("error") {
        let message = err.get("message").and_then(Value::as_str).unwrap_or("unknown error");
        let code = err.get("code").map(|c| format!(" ({c})")).unwrap_or_default();
        return Err(format!("{message}{code}"));
    }
    Ok(msg.get("result").cloned().unwrap_or(Value::Null))
}

/// A JSON-RPC message's id as Burrow numbers its requests.
fn id_of(msg: &Value) -> Option<u64> {
    msg.get("id").and_then(|id| id.as_u64().or_else(|| id.as_str().and_then(|s| s.parse().ok())))
}

/// What a client answers a request from the server: `ping`, and an error for
/// what Burrow does not offer (sampling, roots, elicitation).
fn answer_server(msg: &Value) -> Value {
    let id = msg.get("id").cloned().unwrap_or(Value::Null);
    match msg.get("method").and_then(Value::as_str) {
        Some("ping") => json!({"jsonrpc": "2.0", "id": id, "result": {}}),
        Some(m) => json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": format!("method not supported by this client: {m}")}}),
        None => json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32600, "message": "invalid request"}}),
    }
}

/// A local server over its stdio, run in the environment.
///
/// The environment contract streams a process's input only on a terminal, so
/// the server runs on one, switched to raw mode first (`stty raw -echo`: no
/// echo of what Burrow writes, no `\r` added to what the server writes). A
/// marker line printed after `stty` tells Burrow the terminal is raw, and
/// nothing is written before it. The terminal carries the server's stderr
/// too: lines that are not JSON-RPC messages are kept (the last few) for the
/// error shown when the server fails.
mod stdio {
    use super::*;

    /// Printed once the terminal is raw.
    const READY: &str = "burrow-mcp-stdio-ready";
    /// Switches the terminal to raw mode, says so, then becomes the server.
    const WRAPPER: &str = "stty raw -echo || { echo 'burrow: cannot switch the terminal to raw mode (stty), which MCP servers need here' >&2; exit 127; }; echo burrow-mcp-stdio-ready; exec \"$@\"";
    /// How much of the server's other output is kept for its error.
    const TAIL: usize = 2048;

    type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

    pub struct Stdio {
        input: mpsc::Sender<PtyInput>,
        pending: Pending,
        control: Arc<dyn ProcessControl>,
        /// Why the server stopped, once it did.
        pub(super) ended: watch::Receiver<Option<String>>,
    }

    impl Stdio {
        pub async fn start(env: SharedEnv, cwd: WorkspacePath, config: &LocalConfig, timeout: Duration) -> Result<Self, String> {
            let mut args = vec!["-c".to_string(), WRAPPER.to_string(), "burrow-mcp".to_string()];
            args.extend(config.command.iter().cloned());
            // A wide terminal: raw mode does not wrap, but some servers read the width.
            let req = PtyRequest { command: "sh".into(), args, cwd, env: config.environment.clone(), size: PtySize { rows: 24, cols: 500 } };
            let pty = env.pty(req).await.map_err(|e| format!("cannot start {:?} in the {} environment: {e}", config.command.join(" "), env.kind()))?;
            let pending: Pending = Arc::default();
            let (ended_tx, ended) = watch::channel(None);
            let (ready_tx, ready) = oneshot::channel();
            let input = pty.input.clone();
            tokio::spawn(read(pty.output, pty.exit, pending.clone(), input.clone(), ready_tx, ended_tx));
            let this = Stdio { input, pending, control: pty.control, ended };
            let started = tokio::time::timeout(timeout, ready).await;
            match started {
                Ok(Ok(())) => Ok(this),
                Ok(Err(_)) => Err(this.why().await),
                Err(_) => {
                    this.close().await;
                    Err(format!("the server did not start within {} ms", timeout.as_millis()))
                }
            }
        }

        /// Why the server ended (waits for the reader to say).
        async fn why(&self) -> String {
            let mut ended = self.ended.clone();
            let why = match ended.wait_for(Option::is_some).await {
                Ok(why) => why.clone().unwrap_or_default(),
                Err(_) => "the server stopped".into(),
            };
            why
        }

        pub async fn send(&self, msg: &Value) -> Result<(), String> {
            let mut line = serde_json::to_vec(msg).map_err(|e| e.to_string())?;
            line.push(b'\n');
            if self.input.send(PtyInput::Data(Bytes::from(line))).await.is_err() {
                return Err(self.why().await);
            }
            Ok(())
        }

        pub async fn request(&self, id: u64, msg: Value) -> Result<Value, String> {
            let (tx, rx) = oneshot::channel();
            lock(&self.pending).insert(id, tx);
            // Forgets the request however this ends: answered, failed, or
            // dropped by a timeout or the turn's abort.
            let _waiting = Waiting { pending: &self.pending, id };
            if self.ended.borrow().is_some() {
                return Err(self.why().await);
            }
            self.send(&msg).await?;
            let answer = rx.await;
            match answer {
                Ok(v) => Ok(v),
                Err(_) => Err(self.why().await),
            }
        }

        pub async fn close(&self) {
            if let Err(e) = self.control.kill().await {
                tracing::warn!("cannot stop an MCP server: {e}");
            }
        }
    }

    /// A request waiting for its answer; dropping it forgets the request.
    struct Waiting<'a> {
        pending: &'a Pending,
        id: u64,
    }

    impl Drop for Waiting<'_> {
        fn drop(&mut self) {
            lock(self.pending).remove(&self.id);
        }
    }

    /// Reads the terminal: the marker, then one JSON-RPC message a line.
    async fn read(
        mut output: mpsc::Receiver<Bytes>,
        exit: oneshot::Receiver<crate::env::ExitStatus>,
        pending: Pending,
        input: mpsc::Sender<PtyInput>,
        ready: oneshot::Sender<()>,
        ended: watch::Sender<Option<String>>,
    ) {
        let mut ready = Some(ready);
        let mut buf: Vec<u8> = Vec::new();
        let mut tail = String::new();
        while let Some(chunk) = output.recv().await {
            buf.extend_from_slice(&chunk);
            while let Some(at) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=at).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim_end_matches(['\n', '\r']);
                if ready.is_some() {
                    if line.trim() == READY {
                        let _ = ready.take().map(|r| r.send(()));
                    } else {
                        keep(&mut tail, line);
                    }
                    continue;
                }
                match serde_json::from_str::<Value>(line) {
                    Ok(msg) if msg.get("jsonrpc").is_some() => handle(msg, &pending, &input).await,
                    _ => keep(&mut tail, line),
                }
            }
        }
        keep(&mut tail, &String::from_utf8_lossy(&buf));
        let status = exit.await.ok();
        let how = match status {
            Some(s) if s.code.is_some() => format!("exited with code {}", s.code.unwrap_or_default()),
            Some(s) if s.signal.is_some() => format!("was killed by signal {}", s.signal.unwrap_or_default()),
            _ => "stopped".into(),
        };
        let tail = tail.trim();
        let why = if tail.is_empty() { format!("the server {how}") } else { format!("the server {how}: {tail}") };
        // Said before the waiting requests are dropped: a request added after
        // the clearing sees it (see `Stdio::request`).
        let _ = ended.send(Some(why));
        lock(&pending).clear();
    }

    async fn handle(msg: Value, pending: &Pending, input: &mpsc::Sender<PtyInput>) {
        let is_response = msg.get("result").is_some() || msg.get("error").is_some();
        if is_response {
            if let Some(tx) = id_of(&msg).and_then(|id| lock(pending).remove(&id)) {
                let _ = tx.send(msg);
            }
        } else if msg.get("id").is_some() {
            let mut line = serde_json::to_vec(&answer_server(&msg)).unwrap_or_default();
            line.push(b'\n');
            let _ = input.send(PtyInput::Data(Bytes::from(line))).await;
        }
        // Notifications (logging, progress, list changes) are not used.
    }

    fn keep(tail: &mut String, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        tail.push_str(line);
        tail.push('\n');
        if tail.len() > TAIL {
            let mut cut = tail.len() - TAIL;
            while !tail.is_char_boundary(cut) {
                cut += 1;
            }
            tail.drain(..cut);
        }
    }
}

/// A remote server over streamable HTTP: each message is POSTed; the answer
/// comes as a JSON body or as server-sent events on that response.
mod http {
    use super::*;
    use eventsource_stream::Eventsource;
    use futures::StreamExt;
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};

    const SESSION: &str = "mcp-session-id";

    pub struct Http {
        client: reqwest::Client,
        url: String,
        headers: HeaderMap,
        session: Mutex<Option<String>>,
    }

    impl Http {
        pub fn new(config: &RemoteConfig) -> Result<Self, String> {
            let mut headers = HeaderMap::new();
            for (k, v) in &config.headers {
                let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("header {k}: {e}"))?;
                let value = HeaderValue::from_str(v).map_err(|e| format!("header {k}: {e}"))?;
                headers.insert(name, value);
            }
            reqwest::Url::parse(&config.url).map_err(|e| format!("url {}: {e}", config.url))?;
            Ok(Http { client: reqwest::Client::new(), url: config.url.clone(), headers, session: Mutex::new(None) })
        }

        fn post(&self, msg: &Value) -> reqwest::RequestBuilder {
            let mut req = self
                .client
                .post(&self.url)
                .headers(self.headers.clone())
                .header(ACCEPT, "application/json, text/event-stream")
                .header("mcp-protocol-version", PROTOCOL_VERSION)
                .json(msg);
            if let Some(s) = lock(&self.session).clone() {
                req = req.header(SESSION, s);
            }
            req
        }

        async fn send(&self, msg: &Value) -> Result<reqwest::Response, String> {
            let resp = self.post(msg).send().await.map_err(|e| format!("{}: {e}", self.url))?;
            if let Some(s) = resp.headers().get(SESSION).and_then(|v| v.to_str().ok()) {
                *lock(&self.session) = Some(s.to_string());
            }
            let status = resp.status();
            if !status.is_success() {
                let body = resp.text().await.unwrap_or_default();
                let body: String = body.chars().take(500).collect();
                return Err(format!("{} answered {status}: {body}", self.url));
            }
            Ok(resp)
        }

        pub async fn notify(&self, msg: Value) -> Result<(), String> {
            self.send(&msg).await.map(drop)
        }

        pub async fn request(&self, id: u64, msg: Value) -> Result<Value, String> {
            let resp = self.send(&msg).await?;
            let kind = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
            if kind.starts_with("text/event-stream") {
                let mut events = resp.bytes_stream().eventsource();
                while let Some(event) = events.next().await {
                    let event = event.map_err(|e| format!("{}: {e}", self.url))?;
                    let Ok(msg) = serde_json::from_str::<Value>(&event.data) else { continue };
                    if let Some(found) = self.take(id, msg).await {
                        return Ok(found);
                    }
                }
                return Err(format!("{} ended its event stream without answering", self.url));
            }
            let body: Value = resp.json().await.map_err(|e| format!("{}: {e}", self.url))?;
            let messages = match body {
                Value::Array(all) => all,
                one => vec![one],
            };
            for msg in messages {
                if let Some(found) = self.take(id, msg).await {
                    return Ok(found);
                }
            }
            Err(format!("{} did not answer request {id}", self.url))
        }

        /// The response to `id`, or `None` after answering a server request.
        async fn take(&self, id: u64, msg: Value) -> Option<Value> {
            let is_response = msg.get("result").is_some() || msg.get("error").is_some();
            if is_response && id_of(&msg) == Some(id) {
                return Some(msg);
            }
            if !is_response && msg.get("id").is_some() {
                if let Err(e) = self.send(&answer_server(&msg)).await {
                    tracing::warn!("MCP server request unanswered: {e}");
                }
            }
            None
        }

        pub async fn close(&self) {
            let Some(session) = lock(&self.session).take() else { return };
            let req = self.client.delete(&self.url).headers(self.headers.clone()).header(SESSION, session);
            let _ = tokio::time::timeout(Duration::from_secs(2), req.send()).await;
        }
    }
}
