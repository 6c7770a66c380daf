//! Shared by the agent tests: an opencode.json that points Burrow at the
//! scripted LLM servers, a served fixture with that config, and small readers
//! of what the server stored and what the model was sent.

use reqwest::Method;
use serde_json::{json, Value};

use super::llm::unreachable_url;
use super::{Fixture, Server, TestEnv, Workspace};

/// A config with the scripted provider `fake/fake-model` as the model and
/// `small/tiny` (at `small`) for titles.
pub fn config(url: &str, small: &str) -> Value {
    json!({
        "provider": {
            "fake": {"npm": "@ai-sdk/openai-compatible", "options": {"baseURL": url}, "models": {"fake-model": {}}},
            "small": {"npm": "@ai-sdk/openai-compatible", "options": {"baseURL": small}, "models": {"tiny": {}}}
        },
        "model": "fake/fake-model",
        "small_model": "small/tiny",
    })
}

/// `POST path` with a JSON body, as (status, body); an empty body is `null`.
pub async fn post(srv: &Server, path: &str, body: Value) -> (u16, Value) {
    let reply = srv.send(srv.request(Method::POST, path).json(&body)).await;
    let v = if reply.text.is_empty() { Value::Null } else { reply.json() };
    (reply.status, v)
}

/// A fixture served in `env` with the scripted provider at `llm_url` and
/// `extra` config keys on top (titles go to a provider that is not there, so
/// they never take a scripted turn). Keep the whole value alive: the server
/// stops and the files go when it drops.
pub struct AgentServer {
    pub srv: Server,
    pub ws: Workspace,
    _keep: (Fixture, tempfile::TempDir),
    /// The server's environment variables, for [`AgentServer::restart`].
    vars: Vec<(String, String)>,
}

impl AgentServer {
    pub async fn local(llm_url: &str, extra: Value) -> Self {
        Self::start(TestEnv::from_name("local").unwrap(), llm_url, extra).await
    }

    pub async fn start(env: TestEnv, llm_url: &str, extra: Value) -> Self {
        Self::start_with(env, llm_url, extra, &[]).await
    }

    /// [`AgentServer::start`] with more environment variables for the server.
    pub async fn start_with(env: TestEnv, llm_url: &str, extra: Value, vars: &[(&str, &str)]) -> Self {
        let fx = Fixture::standard();
        let ws = env.place(&fx).await.unwrap_or_else(|e| panic!("[{}] {e:#}", env.name()));
        let mut cfg = config(llm_url, &unreachable_url().await);
        for (k, v) in extra.as_object().unwrap() {
            cfg[k] = v.clone();
        }
        let data = tempfile::tempdir().unwrap();
        let cfg = cfg.to_string();
        let mut all = vec![("OPENCODE_CONFIG_CONTENT", cfg.as_str()), ("BURROW_DATA_DIR", data.path().to_str().unwrap())];
        all.extend_from_slice(vars);
        let srv = Server::start_with(&ws, &all).await;
        let vars = all.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Self { srv, ws, _keep: (fx, data), vars }
    }

    /// Starts a new server on the same workspace, config and data folder,
    /// then kills the old one (as a crash would): what survives is what the
    /// server had stored.
    pub async fn restart(&mut self) {
        let vars: Vec<(&str, &str)> = self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let next = Server::start_with(&self.ws, &vars).await;
        drop(std::mem::replace(&mut self.srv, next));
    }

    /// The server's data folder.
    pub fn data_dir(&self) -> &std::path::Path {
        self._keep.1.path()
    }

    /// Creates a session; its id.
    pub async fn session(&self) -> String {
        let (status, session) = post(&self.srv, "/session", json!({})).await;
        assert_eq!(status, 200, "{session}");
        session["id"].as_str().unwrap().to_string()
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        post(&self.srv, path, body).await
    }

    /// The session's stored messages.
    pub async fn messages(&self, session: &str) -> Vec<Value> {
        let (status, list) = self.srv.get(&format!("/session/{session}/message")).await;
        assert_eq!(status, 200, "{list}");
        list.as_array().unwrap().clone()
    }
}

/// The `type`s of a message's parts.
pub fn part_types(message: &Value) -> Vec<String> {
    message["parts"].as_array().unwrap().iter().map(|p| p["type"].as_str().unwrap_or("").to_string()).collect()
}

/// The first part of `kind` in a message.
pub fn part<'a>(message: &'a Value, kind: &str) -> &'a Value {
    message["parts"].as_array().unwrap().iter().find(|p| p["type"] == kind).unwrap_or_else(|| panic!("no {kind} part in {message}"))
}

/// The names of the tools a request to the model offered.
pub fn tool_names(request: &Value) -> Vec<String> {
    request["tools"].as_array().map(|t| t.iter().filter_map(|t| t["function"]["name"].as_str().map(str::to_string)).collect()).unwrap_or_default()
}

/// The `content` of the request's messages with this role.
pub fn contents(request: &Value, role: &str) -> Vec<String> {
    request["messages"].as_array().unwrap().iter().filter(|m| m["role"] == role).map(|m| m["content"].as_str().unwrap_or("").to_string()).collect()
}
