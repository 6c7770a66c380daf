//! Starts the real `burrow serve --port 0` binary for integration tests, with
//! its own HOME and XDG folders, and talks to it over HTTP and SSE.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

/// Upper bound for waiting on something that should happen promptly; a test
/// that hits it fails instead of hanging.
pub const WAIT: Duration = Duration::from_secs(30);

/// Environment variables that would leak the developer's own setup into a test.
const SCRUBBED: &[&str] = &[
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OPENCODE_CONFIG",
    "OPENCODE_CONFIG_DIR", "OPENCODE_CONFIG_CONTENT", "OPENCODE_DISABLE_PROJECT_CONFIG", "OPENCODE_SERVER_PASSWORD",
    "XDG_CONFIG_HOME", "XDG_DATA_HOME", "BURROW_DATA_DIR",
];

pub struct Server {
    child: Child,
    pub base: String,
    pub home: PathBuf,
    _home: tempfile::TempDir,
}

impl Server {
    /// Serves `dir` with an empty home folder.
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, |_| {}, &[])
    }

    /// Serves `dir`; `setup` may write files into the home folder first.
    pub fn start_with(dir: &Path, setup: impl FnOnce(&Path), env: &[(&str, &str)]) -> Self {
        let home = tempfile::tempdir().expect("a temp home");
        setup(home.path());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_burrow"));
        cmd.args(["serve", "--port", "0", "--dir"]).arg(dir);
        for k in SCRUBBED {
            cmd.env_remove(k);
        }
        cmd.env("HOME", home.path())
            // Not ~/.config, so the tests show that XDG_CONFIG_HOME is honoured.
            .env("XDG_CONFIG_HOME", home.path().join("xdg-config"))
            .env("XDG_DATA_HOME", home.path().join(".local/share"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("burrow starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("burrow prints its URL");
        let base = line.trim().rsplit(' ').next().expect("a URL").to_string();
        assert!(base.starts_with("http://127.0.0.1:"), "unexpected first line: {line:?}");
        Self { child, base, home: home.path().to_path_buf(), _home: home }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.base.replacen("http://", "ws://", 1))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = reqwest::get(self.url(path)).await.expect("GET");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Sends `body` as JSON (no body when `None`).
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = reqwest::Client::new().request(method, self.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    /// Subscribes to `GET /event` and returns its events, once `server.connected` arrived.
    pub async fn events(&self) -> Events {
        let res = reqwest::get(self.url("/event")).await.expect("GET /event");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut stream = res.bytes_stream();
            let mut buf = String::new();
            while let Some(Ok(chunk)) = stream.next().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let frame: String = buf.drain(..end + 2).collect();
                    if let Some(data) = frame.trim().strip_prefix("data: ") {
                        if let Ok(v) = serde_json::from_str::<Value>(data) {
                            if tx.send(v).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        });
        let mut events = Events(rx);
        let first = events.next().await;
        assert_eq!(first["type"], "server.connected");
        events
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Events(mpsc::UnboundedReceiver<Value>);

impl Events {
    pub async fn next(&mut self) -> Value {
        tokio::time::timeout(WAIT, self.0.recv()).await.expect("an event in time").expect("the stream is open")
    }

    /// The next event of `kind`, skipping heartbeats and others.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let e = self.next().await;
            if e["type"] == kind {
                return e;
            }
        }
    }

    /// The next event whose type starts with `prefix`.
    pub async fn next_with_prefix(&mut self, prefix: &str) -> Value {
        loop {
            let e = self.next().await;
            if e["type"].as_str().is_some_and(|t| t.starts_with(prefix)) {
                return e;
            }
        }
    }
}

/// A fresh project folder (a git repository with one commit when `git` is true).
pub fn project(git: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp project");
    std::fs::write(dir.path().join("README.md"), "# test\n").expect("write");
    if git {
        let git = |args: &[&str]| {
            let ok = Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"])
                .args(args)
                .current_dir(dir.path())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "git {args:?} failed (is git installed?)");
        };
        git(&["init", "-q"]);
        git(&["add", "-A"]);
        git(&["commit", "-qm", "init"]);
    }
    dir
}

/// The canonical path, as the server reports directories.
pub fn canonical(p: &Path) -> String {
    std::fs::canonicalize(p).expect("canonical").to_string_lossy().into_owned()
}
