//! A real `burrow serve` process on a free loopback port, and a small HTTP
//! client for it.
//!
//! The server is killed when the handle drops. Its stderr is kept, and printed
//! when the handle drops during a panic, so a failing assertion shows what the
//! server said.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::env::Workspace;

/// How long a server may take to print its URL (a bound on a hang, not a
/// performance assertion).
const START_TIMEOUT: Duration = Duration::from_secs(60);
const URL_PREFIX: &str = "burrow server listening on ";

pub struct Server {
    pub url: String,
    /// `$HOME` of the server process.
    pub home: String,
    /// Where the server keeps its data (`BURROW_DATA_DIR`).
    pub data_dir: String,
    label: String,
    child: tokio::process::Child,
    stderr: Arc<Mutex<String>>,
    client: reqwest::Client,
    _data: tempfile::TempDir,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("body is not JSON ({e}), status {}: {:?}", self.status, self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Server {
    /// Serves `ws` with no credentials.
    pub async fn start(ws: &Workspace) -> Self {
        Self::start_with(ws, &[]).await
    }

    /// Serves `ws` with extra environment variables (e.g. `OPENCODE_SERVER_PASSWORD`).
    pub async fn start_with(ws: &Workspace, vars: &[(&str, &str)]) -> Self {
        let data = tempfile::Builder::new().prefix("burrow-server-").tempdir().expect("temp dir");
        let home = data.path().join("home");
        let data_dir = data.path().join("data");
        std::fs::create_dir_all(&home).unwrap();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_burrow"));
        cmd.args(["serve", "--port", "0", "--hostname", "127.0.0.1"])
            .args(&ws.args)
            .env("HOME", &home)
            .env("BURROW_DATA_DIR", &data_dir)
            .env("BURROW_LOG", "burrow=debug")
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("OPENCODE_SERVER_PASSWORD")
            .env_remove("OPENCODE_SERVER_USERNAME")
            .envs(ws.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("cannot start the burrow binary");
        let stderr = Arc::new(Mutex::new(String::new()));
        tokio::spawn(collect(child.stderr.take().unwrap(), stderr.clone()));
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let label = format!("{} {}", ws.env, ws.args.join(" "));

        let found = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = stdout.next_line().await {
                if let Some(url) = line.strip_prefix(URL_PREFIX) {
                    return Some(url.trim().to_string());
                }
            }
            None
        })
        .await;
        let url = match found {
            Ok(Some(url)) => url,
            other => {
                let why = if other.is_err() { "did not print its URL in time" } else { "exited before printing its URL" };
                let _ = child.start_kill();
                let _ = child.wait().await;
                panic!("burrow serve ({label}) {why}; stderr:\n{}", stderr.lock().unwrap());
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
        assert!(url.starts_with("http://127.0.0.1:"), "unexpected URL {url:?}");
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let shown = |p: std::path::PathBuf| p.to_str().expect("temp paths are UTF-8").to_string();
        Self { url, home: shown(home), data_dir: shown(data_dir), label, child, stderr, client, _data: data }
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn request(&self, method: Method, path_and_query: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{}", self.url, path_and_query))
    }

    pub async fn send(&self, req: RequestBuilder) -> Reply {
        let res = req.send().await.unwrap_or_else(|e| panic!("request to burrow ({}) failed: {e}", self.label));
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("reading the response body");
        Reply { status, headers, text }
    }

    /// `GET path_and_query` (already encoded), as (status, JSON body).
    pub async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let reply = self.send(self.request(Method::GET, path_and_query)).await;
        (reply.status, reply.json())
    }

    /// `GET path` with query parameters, encoded here.
    pub async fn get_q(&self, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
        self.get(&with_query(path, params)).await
    }
}

/// `path?k=v&...`, form-encoded.
pub fn with_query(path: &str, params: &[(&str, &str)]) -> String {
    if params.is_empty() {
        return path.to_string();
    }
    format!("{path}?{}", serde_urlencoded::to_string(params).unwrap())
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if std::thread::panicking() {
            eprintln!("--- burrow serve ({}) at {} stderr ---\n{}--- end ---", self.label, self.url, self.stderr());
        }
    }
}

async fn collect(pipe: impl AsyncRead + Unpin, into: Arc<Mutex<String>>) {
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut s = into.lock().unwrap();
        s.push_str(&line);
        s.push('\n');
    }
}
