//! Test support for object storage: a counting proxy in front of the S3 test
//! service, and a `burrow serve` started with any `--env` (or expected to fail).

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::Value;

use crate::support::launch::{Launch, Running};

/// An HTTP proxy in front of the service that records every request, so a
/// test can count what Burrow asked for.
pub struct CountingProxy {
    pub url: String,
    log: Arc<Mutex<Vec<(String, String)>>>,
}

struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    log: Arc<Mutex<Vec<(String, String)>>>,
}

impl CountingProxy {
    pub async fn start(upstream: &str) -> Self {
        let log = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(ProxyState { upstream: upstream.trim_end_matches('/').to_string(), client: reqwest::Client::new(), log: log.clone() });
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, log }
    }

    fn count(&self, keep: impl Fn(&str, &str) -> bool) -> usize {
        self.log.lock().unwrap().iter().filter(|(m, u)| keep(m, u)).count()
    }

    /// Object downloads (GETs that are not listings) below `prefix`: the
    /// workspace's own objects, not those of the undo snapshot store that
    /// Burrow keeps beside it under `.burrow-snapshots/<prefix>/` (pruned at
    /// start, see `ObjectEnv::snapshot_prune`).
    pub fn object_gets(&self, prefix: &str) -> usize {
        self.count(|m, u| m == "GET" && is_object_below(u, prefix))
    }

    /// Distinct objects downloaded below `prefix`.
    pub fn distinct_object_gets(&self, prefix: &str) -> usize {
        let log = self.log.lock().unwrap();
        let paths: std::collections::HashSet<&str> = log.iter().filter(|(m, u)| m == "GET" && is_object_below(u, prefix)).map(|(_, u)| u.as_str()).collect();
        paths.len()
    }

    /// Downloads of one object.
    pub fn object_gets_of(&self, prefix: &str, path: &str) -> usize {
        self.count(|m, u| m == "GET" && u.split('?').next().is_some_and(|p| p.ends_with(&format!("/{prefix}/{path}"))))
    }

    /// Listings of `prefix`.
    pub fn listings(&self, prefix: &str) -> usize {
        self.count(|m, u| m == "GET" && u.contains("list-type") && u.contains(&format!("prefix={prefix}")))
    }
}

/// Whether `url` names an object of the workspace below `prefix` (not a
/// listing, not the snapshot store beside it).
fn is_object_below(url: &str, prefix: &str) -> bool {
    !url.contains("list-type") && url.contains(&format!("/{prefix}/")) && !url.contains("/.burrow-snapshots/")
}

async fn forward(State(st): State<Arc<ProxyState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    st.log.lock().unwrap().push((parts.method.to_string(), path.clone()));
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    // The Host header goes along unchanged: it is part of the request's signature.
    let upstream = st.client.request(parts.method, format!("{}{path}", st.upstream)).headers(parts.headers).body(body).send().await;
    let upstream = match upstream {
        Ok(r) => r,
        Err(e) => return Response::builder().status(502).body(Body::from(e.to_string())).unwrap(),
    };
    let mut out = Response::builder().status(upstream.status());
    for (k, v) in upstream.headers() {
        if k != "transfer-encoding" && k != "connection" {
            out = out.header(k, v);
        }
    }
    out.body(Body::from(upstream.bytes().await.unwrap_or_default())).unwrap()
}

/// A running `burrow serve`.
pub struct Burrow {
    pub url: String,
    _run: Running,
    client: reqwest::Client,
}

/// `burrow serve --env ENV_URL` with only `vars` for credentials and endpoints:
/// no `AWS_*` or `BURROW_*` setting of the test's own environment leaks in.
fn launch(env_url: &str, vars: &HashMap<String, String>, args: &[&str]) -> Launch {
    Launch::serve().args(["--env", env_url]).args(args).env_remove_prefix("AWS_").env_remove_prefix("BURROW_").envs(vars)
}

impl Burrow {
    pub async fn start(env_url: &str, vars: &HashMap<String, String>, args: &[&str]) -> Self {
        let run = launch(env_url, vars, args).start_async().await.unwrap_or_else(|f| panic!("burrow serve --env {env_url} exited: {}", f.stderr));
        Self { url: run.url.clone(), _run: run, client: reqwest::Client::new() }
    }

    /// Runs `burrow serve` expecting it to refuse to start; returns what it printed on stderr.
    pub async fn fail_to_start(env_url: &str, vars: &HashMap<String, String>) -> String {
        launch(env_url, vars, &[]).refused().await.stderr
    }

    pub async fn get_status(&self, path: &str) -> (u16, Value) {
        let resp = self.client.get(format!("{}{path}", self.url)).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.get_status(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// POSTs a JSON body; returns the status and the JSON answer.
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = self.client.post(format!("{}{path}", self.url)).json(body).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str) -> Value {
        let resp = self.client.post(format!("{}{path}", self.url)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "POST {path}");
        resp.json().await.unwrap()
    }
}
