//! Test support for object storage: the S3 test service's settings, uploads
//! that bypass Burrow, a counting proxy in front of the service, and a running
//! `burrow serve`.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// The variables of the services file that tests/support/services.sh writes.
fn services_env() -> HashMap<String, String> {
    let file = std::env::var("BURROW_TEST_SERVICES_ENV")
        .unwrap_or_else(|_| format!("{}/target/test-services.env", env!("CARGO_MANIFEST_DIR")));
    let mut vars = HashMap::new();
    if let Ok(text) = std::fs::read_to_string(&file) {
        for line in text.lines() {
            let line = line.trim().trim_start_matches("export ").trim();
            if let Some((k, v)) = line.split_once('=').filter(|_| !line.starts_with('#')) {
                vars.insert(k.to_string(), v.trim_matches(|c| c == '"' || c == '\'').to_string());
            }
        }
    }
    // Variables already set (a CI step that sourced the file) win.
    for (k, v) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("BURROW_TEST_") {
            vars.insert(k, v);
        }
    }
    vars
}

/// The S3 test service.
#[derive(Clone, Debug)]
pub struct S3 {
    pub endpoint: String,
    pub key: String,
    pub secret: String,
    pub region: String,
    pub bucket: String,
}

impl S3 {
    /// The service, or `None` (with a note) when it is not running; in CI a
    /// missing service fails the test instead.
    pub fn require() -> Option<Self> {
        let vars = services_env();
        let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
        match (get("AWS_ENDPOINT_URL"), get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY"), get("BURROW_TEST_S3_BUCKET")) {
            (Some(endpoint), Some(key), Some(secret), Some(bucket)) => {
                let region = get("AWS_REGION").unwrap_or_else(|| "us-east-1".into());
                Some(Self { endpoint, key, secret, region, bucket })
            }
            _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("the S3 test service is not running: start it with `bash tests/support/services.sh s3`")
            }
            _ => {
                eprintln!("skipping: no S3 test service (run `bash tests/support/services.sh s3`)");
                None
            }
        }
    }

    /// The variables a Burrow process needs to reach the service.
    pub fn env(&self) -> HashMap<String, String> {
        self.env_with_endpoint(&self.endpoint)
    }

    pub fn env_with_endpoint(&self, endpoint: &str) -> HashMap<String, String> {
        HashMap::from([
            ("AWS_ENDPOINT_URL".to_string(), endpoint.to_string()),
            ("AWS_ACCESS_KEY_ID".to_string(), self.key.clone()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), self.secret.clone()),
            ("AWS_REGION".to_string(), self.region.clone()),
        ])
    }

    /// A key prefix no other test (or run) uses.
    pub fn unique_prefix(&self, name: &str) -> String {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        format!("test-{name}-{}-{nanos}", std::process::id())
    }

    /// An operator on `prefix`, independent of Burrow's own code paths.
    pub fn operator(&self, prefix: &str) -> opendal::Operator {
        let b = opendal::services::S3::default()
            .bucket(&self.bucket)
            .root(&format!("/{prefix}"))
            .endpoint(&self.endpoint)
            .region(&self.region)
            .access_key_id(&self.key)
            .secret_access_key(&self.secret)
            .disable_config_load()
            .disable_ec2_metadata();
        // Retried like Burrow's own requests: a test server may drop an idle connection.
        opendal::Operator::new(b).unwrap().finish().layer(opendal::layers::RetryLayer::new())
    }

    pub async fn upload(&self, prefix: &str, files: &BTreeMap<&str, Vec<u8>>) {
        let op = self.operator(prefix);
        for (path, data) in files {
            op.write(path, data.clone()).await.unwrap_or_else(|e| panic!("upload {path}: {e}"));
        }
    }
}

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

    /// Object downloads (GETs that are not listings) below `prefix`.
    pub fn object_gets(&self, prefix: &str) -> usize {
        self.count(|m, u| m == "GET" && !u.contains("list-type") && u.contains(&format!("/{prefix}/")))
    }

    /// Distinct objects downloaded below `prefix`.
    pub fn distinct_object_gets(&self, prefix: &str) -> usize {
        let log = self.log.lock().unwrap();
        let paths: std::collections::HashSet<&str> =
            log.iter().filter(|(m, u)| m == "GET" && !u.contains("list-type") && u.contains(&format!("/{prefix}/"))).map(|(_, u)| u.as_str()).collect();
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
    child: Child,
    client: reqwest::Client,
    _data: tempfile::TempDir,
}

fn command(env_url: &str, vars: &HashMap<String, String>, args: &[&str], data: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_burrow"));
    cmd.args(["serve", "--port", "0", "--env", env_url]).args(args).arg("--data-dir").arg(data);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_") || k.starts_with("BURROW_")) {
        cmd.env_remove(k);
    }
    cmd.envs(vars).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    cmd
}

impl Burrow {
    pub async fn start(env_url: &str, vars: &HashMap<String, String>, args: &[&str]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut child = command(env_url, vars, args, data.path()).spawn().expect("start burrow");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = loop {
            match lines.next_line().await.unwrap() {
                Some(line) => {
                    if let Some(url) = line.strip_prefix("burrow server listening on ") {
                        break url.trim().to_string();
                    }
                }
                None => {
                    let mut err = String::new();
                    child.stderr.take().unwrap().read_to_string(&mut err).await.unwrap();
                    panic!("burrow serve --env {env_url} exited: {err}");
                }
            }
        };
        Self { url, child, client: reqwest::Client::new(), _data: data }
    }

    /// Runs `burrow serve` expecting it to refuse to start; returns what it printed on stderr.
    pub async fn fail_to_start(env_url: &str, vars: &HashMap<String, String>) -> String {
        let data = tempfile::tempdir().unwrap();
        let out = command(env_url, vars, &[], data.path()).output().await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success() && !stdout.contains("listening"), "burrow started: {stdout}");
        String::from_utf8_lossy(&out.stderr).into_owned()
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

    pub async fn post(&self, path: &str) -> Value {
        let resp = self.client.post(format!("{}{path}", self.url)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "POST {path}");
        resp.json().await.unwrap()
    }
}

impl Drop for Burrow {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
