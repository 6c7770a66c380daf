//! A real `burrow serve` process on a free loopback port, and a small HTTP
//! client for it.
//!
//! Started by the one launcher ([`super::launch`]): the server is killed when
//! the handle drops, and its stderr is printed when that happens during a
//! panic, so a failing assertion shows what the server said.

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::Value;

use super::env::Workspace;
use super::launch::{Launch, Running};

pub struct Server {
    pub url: String,
    /// `$HOME` of the server process.
    pub home: String,
    /// Where the server keeps its data (`BURROW_DATA_DIR`).
    pub data_dir: String,
    label: String,
    run: Running,
    client: reqwest::Client,
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
        let label = format!("{} {}", ws.env, ws.args.join(" "));
        let launch = Launch::serve().args(&ws.args).envs(ws.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))).envs(vars.iter().copied());
        let run = launch.start_async().await.unwrap_or_else(|f| panic!("burrow serve ({label}) did not start ({:?}); stderr:\n{}", f.code, f.stderr));
        let url = run.url.clone();
        assert!(url.starts_with("http://127.0.0.1:"), "unexpected URL {url:?}");
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let shown = |p: &std::path::Path| p.to_str().expect("temp paths are UTF-8").to_string();
        Self { url, home: shown(&run.home), data_dir: shown(&run.data_dir), label, run, client }
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.run.stderr()
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
