//! Starting the real `burrow serve` binary and talking to it: HTTP helpers and
//! an SSE reader.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::task::JoinHandle;

/// How long any single wait may take before the test gives up (a safety net
/// against hangs, not a timing assertion).
pub const PATIENCE: Duration = Duration::from_secs(120);

/// A workspace folder, a data folder and a home folder that outlive restarts.
pub struct Dirs {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub data: PathBuf,
    pub home: PathBuf,
}

impl Dirs {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let (root, data, home) = (base.join("work"), base.join("data"), base.join("home"));
        for d in [&root, &data, &home] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(root.join("hello.txt"), "hello world\n").unwrap();
        Self { _tmp: tmp, root, data, home }
    }
}

#[path = "../support/launch.rs"]
mod launch;

pub struct Server {
    run: launch::Running,
    pub url: String,
    pub http: reqwest::Client,
}

impl Server {
    /// Starts `burrow serve --port 0` over `dirs.root`, with a clean home (no
    /// rc files of the machine's user) and `bash` as the user's shell.
    pub fn start(dirs: &Dirs) -> Self {
        Self::start_with(dirs, &[])
    }

    /// [`Server::start`] with more environment variables (`BURROW_*` settings).
    pub fn start_with(dirs: &Dirs, vars: &[(&str, &str)]) -> Self {
        let launch =
            launch::Launch::serve().envs(vars.iter().copied()).arg("--dir").arg(&dirs.root).data_dir(&dirs.data).home(&dirs.home).env("SHELL", "/bin/bash");
        let run = launch.start().unwrap_or_else(|f| panic!("burrow serve did not start ({:?}): {}{}", f.code, f.stdout, f.stderr));
        let url = run.url.clone();
        assert!(url.starts_with("http://127.0.0.1:"), "unexpected URL {url:?}");
        Self { run, url, http: reqwest::Client::new() }
    }

    /// `kill -9`: no chance to flush or clean up.
    pub fn kill9(mut self) {
        self.run.child.kill().unwrap();
        self.run.child.wait().unwrap();
    }

    /// SIGTERM, then wait for the graceful exit (which must come).
    pub async fn stop(mut self) {
        self.run.signal(nix::sys::signal::Signal::SIGTERM);
        let waited = tokio::time::timeout(PATIENCE, async {
            while self.run.child.try_wait().unwrap().is_none() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        waited.await.expect("burrow exits after SIGTERM");
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        send(self.http.get(self.at(path))).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        send(self.http.post(self.at(path)).json(&body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        send(self.http.patch(self.at(path)).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        send(self.http.delete(self.at(path))).await
    }

    /// A new session; returns its id.
    pub async fn session(&self, title: &str) -> String {
        let (status, body) = self.post("/session", serde_json::json!({ "title": title })).await;
        assert_eq!(status, 200, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    pub async fn shell(&self, session: &str, command: &str) -> (u16, Value) {
        self.post(&format!("/session/{session}/shell"), serde_json::json!({ "agent": "build", "command": command })).await
    }

    pub async fn events(&self, path: &str) -> Events {
        Events::connect(&self.http, &self.at(path)).await
    }
}

pub async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = tokio::time::timeout(PATIENCE, req.send()).await.expect("no answer in time").expect("request");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// A Server-Sent Events subscription; yields each `data:` payload as JSON.
pub struct Events {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: Vec<u8>,
}

impl Events {
    async fn connect(http: &reqwest::Client, url: &str) -> Self {
        let res = http.get(url).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let mut events = Self { stream: res.bytes_stream().boxed(), buf: Vec::new() };
        let first = events.next().await;
        let first_kind = first.get("payload").map(kind).unwrap_or_else(|| kind(&first)).to_string();
        assert_eq!(first_kind, "server.connected", "{first}");
        events
    }

    pub async fn next(&mut self) -> Value {
        tokio::time::timeout(PATIENCE, self.next_inner()).await.expect("no event in time")
    }

    async fn next_inner(&mut self) -> Value {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let frame: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&frame);
                let data = text.trim().strip_prefix("data: ").expect("a data frame");
                return serde_json::from_str(data).unwrap();
            }
            let chunk = self.stream.next().await.expect("stream open").expect("stream ok");
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// Events up to and including the first that `stop` accepts, heartbeats left out.
    pub async fn until(&mut self, stop: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let e = self.next().await;
            if kind(&e) == "server.heartbeat" || kind(&e.get("payload").cloned().unwrap_or_default()) == "server.heartbeat" {
                continue;
            }
            let done = stop(&e);
            out.push(e);
            if done {
                return out;
            }
        }
    }
}

/// An event's type (`/event` shape).
pub fn kind(e: &Value) -> &str {
    e["type"].as_str().unwrap_or("")
}

/// Processes whose command line contains `needle` (read from /proc).
pub fn processes_with(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if pid == std::process::id() {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        if String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(needle) {
            out.push(pid);
        }
    }
    out
}

/// Kills processes a test left behind on purpose (e.g. after `kill -9` of the server).
pub fn kill_all(pids: &[u32]) {
    for &pid in pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    }
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A fixture from the reference captures (tests/fixtures/reference).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference").join(name)
}

/// The `data:` payloads of a captured SSE transcript.
pub fn captured_events(name: &str) -> Vec<Value> {
    std::fs::read_to_string(fixture(name)).unwrap().lines().filter_map(|l| l.strip_prefix("data: ")).map(|d| serde_json::from_str(d).unwrap()).collect()
}

/// A long-running command in a new session, started in the background: returns
/// the server, the session, the needle that finds its processes in /proc, the
/// event stream and the pending response, once the command printed `started`.
pub async fn long_run(dirs: &Dirs, sleep_in_background: bool) -> (Server, String, Reaper, Events, JoinHandle<(u16, Value)>) {
    let s = Server::start(dirs);
    let id = s.session("long run").await;
    let mut events = s.events("/event").await;
    let needle = format!("3{}", marker());
    let command = if sleep_in_background { format!("echo started; sleep {needle} & wait; echo never") } else { format!("echo started; sleep {needle}") };
    let request = s.http.post(s.at(&format!("/session/{id}/shell"))).json(&serde_json::json!({ "agent": "build", "command": command }));
    let run = tokio::spawn(send(request));
    events.until(|e| e["properties"]["part"]["state"]["metadata"]["output"] == "started\n").await;
    // The command reaches the shell on stdin, so only `sleep` carries the
    // needle, and it starts after the echo: wait for it to exist.
    let started = tokio::time::timeout(PATIENCE, async {
        while processes_with(&needle).is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(started.is_ok(), "the command's sleep never started");
    (s, id, Reaper(needle), events, run)
}

/// The needle of a test's long command; kills what is left of it when the
/// test ends, passed or failed, so no `sleep` outlives the test.
pub struct Reaper(pub String);

impl Drop for Reaper {
    fn drop(&mut self) {
        kill_all(&processes_with(&self.0));
    }
}

/// A unique marker for processes and titles of one test.
pub fn marker() -> String {
    format!("{}{}", std::process::id(), fastrand::u32(100_000..999_999))
}
