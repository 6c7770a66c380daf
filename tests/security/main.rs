//! What a web page, a workspace or an anonymous client cannot do to a
//! server: DNS rebinding (a foreign Host), cross-site WebSockets and simple
//! requests, reading keys from config answers or the server's environment
//! through a workspace config, sending the server's key to a host a workspace
//! chose, probing directories with a bogus terminal ticket, and serving a
//! network address without a password.

#[path = "../support/mod.rs"]
mod support;

/// Files, search and the data folder (issue 11).
mod files;

use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

use support::agent::config;
use support::launch::Launch;
use support::llm::{unreachable_url, ScriptedLlm, Turn};
use support::server::Reply;
use support::{Fixture, Server, TestEnv, Workspace};

async fn local(fx: &Fixture) -> Workspace {
    TestEnv::from_name("local").unwrap().place(fx).await.unwrap()
}

fn port(srv: &Server) -> &str {
    srv.url.rsplit(':').next().unwrap()
}

/// A 403 with an OpenCode-shaped error body.
fn assert_forbidden(what: &str, reply: &Reply) {
    assert_eq!(reply.status, 403, "{what}: {}", reply.text);
    let body = reply.json();
    assert_eq!(body["name"], "ForbiddenError", "{what}: {body}");
    assert!(body["data"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
}

async fn session_count(srv: &Server) -> usize {
    let (status, list) = srv.get("/session").await;
    assert_eq!(status, 200, "{list}");
    list.as_array().unwrap().len()
}

#[tokio::test]
async fn a_rebinding_page_is_refused_by_its_host() {
    let fx = Fixture::standard();
    let mut ws = local(&fx).await;
    ws.args.extend(["--cors".into(), "https://ide.example:8443".into()]);
    let srv = Server::start(&ws).await;
    let port = port(&srv);
    let attacker = format!("rebind.attacker.example:{port}");
    // The attacker's page, once its name points at 127.0.0.1, is same-origin with itself.
    let rebound = |method: Method, path: &str| srv.request(method, path).header("host", &attacker).header("origin", format!("http://{attacker}"));
    let reply = srv.send(rebound(Method::GET, "/session")).await;
    assert_forbidden("GET /session through a rebound name", &reply);
    assert_eq!(reply.header("access-control-allow-origin"), None, "the attacker's origin is never echoed");
    let reply = srv.send(rebound(Method::POST, "/session").json(&json!({}))).await;
    assert_forbidden("POST /session through a rebound name", &reply);
    let preflight = srv.request(Method::OPTIONS, "/session").header("host", &attacker).header("origin", format!("http://{attacker}"));
    let reply = srv.send(preflight.header("access-control-request-method", "POST")).await;
    assert_eq!(reply.status, 403, "a rebound preflight");
    assert_eq!(session_count(&srv).await, 0, "nothing was created");

    for host in
        ["127.0.0.1".to_string(), format!("127.0.0.1:{port}"), format!("localhost:{port}"), "[::1]".into(), format!("[::1]:{port}"), "ide.example".into()]
    {
        let reply = srv.send(srv.request(Method::GET, "/global/health").header("host", &host)).await;
        assert_eq!(reply.status, 200, "Host {host}: {}", reply.text);
    }
    for host in ["127.0.0.1.nip.io", "localhost.attacker.example", "example.com:80"] {
        let reply = srv.send(srv.request(Method::GET, "/global/health").header("host", host)).await;
        assert_forbidden(host, &reply);
    }
}

#[tokio::test]
async fn with_a_password_any_host_may_be_used() {
    let fx = Fixture::standard();
    let ws = local(&fx).await;
    let srv = Server::start_with(&ws, &[("OPENCODE_SERVER_PASSWORD", "pw")]).await;
    let reply = srv.send(srv.request(Method::GET, "/session").header("host", "devbox.lan:4096").basic_auth("opencode", Some("pw"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let reply = srv.send(srv.request(Method::GET, "/session").header("host", "devbox.lan:4096")).await;
    assert_eq!(reply.status, 401, "the password is what protects a network address");
}

/// The status of a WebSocket handshake to `path` sent with `origin`: 101 when it opened.
async fn ws_status(srv: &Server, path: &str, origin: Option<&str>) -> u16 {
    let mut req = format!("{}{path}", srv.url.replacen("http://", "ws://", 1)).into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((mut socket, res)) => {
            let _ = socket.close(None).await;
            res.status().as_u16()
        }
        Err(tungstenite::Error::Http(res)) => res.status().as_u16(),
        Err(e) => panic!("WebSocket to {path}: {e}"),
    }
}

#[tokio::test]
async fn a_foreign_page_cannot_open_a_terminal() {
    let fx = Fixture::standard();
    let mut ws = local(&fx).await;
    ws.args.extend(["--cors".into(), "https://ide.example".into()]);
    let srv = Server::start(&ws).await;
    let reply = srv.send(srv.request(Method::POST, "/pty").json(&json!({"command": "/bin/sh"}))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let id = reply.json()["id"].as_str().unwrap().to_string();
    let path = format!("/pty/{id}/connect");
    assert_eq!(ws_status(&srv, &path, Some("http://evil.example")).await, 403, "a foreign page");
    assert_eq!(ws_status(&srv, &path, Some("null")).await, 403, "a sandboxed page");
    assert_eq!(ws_status(&srv, &path, Some("http://localhost:3000")).await, 101, "a page on this machine");
    assert_eq!(ws_status(&srv, &path, Some("https://ide.example")).await, 101, "a --cors origin");
    assert_eq!(ws_status(&srv, &path, None).await, 101, "a program sends no Origin");
}

#[tokio::test]
async fn cross_site_simple_requests_change_nothing() {
    let fx = Fixture::standard();
    let ws = local(&fx).await;
    let srv = Server::start(&ws).await;
    let evil = "http://evil.example";
    let simple = |path: &str, content_type: Option<&str>| {
        let req = srv.request(Method::POST, path).header("origin", evil).body("{}");
        match content_type {
            Some(ct) => req.header("content-type", ct),
            None => req,
        }
    };
    for ct in [Some("text/plain"), Some("text/plain;charset=UTF-8"), Some("application/x-www-form-urlencoded"), None] {
        assert_forbidden(&format!("POST /session as {ct:?}"), &srv.send(simple("/session", ct)).await);
    }
    let no_origin = srv.request(Method::POST, "/session").header("sec-fetch-site", "cross-site").header("content-type", "text/plain").body("{}");
    assert_forbidden("a cross-site fetch without Origin", &srv.send(no_origin).await);
    assert_forbidden("/tui/submit-prompt", &srv.send(simple("/tui/submit-prompt", Some("text/plain"))).await);
    assert_forbidden("/burrow/env/recreate", &srv.send(simple("/burrow/env/recreate", None)).await);
    assert_eq!(session_count(&srv).await, 0, "no session was created");

    // What clients send still works: programs send no Origin, even on body-less POSTs.
    let reply = srv.send(srv.request(Method::POST, "/session")).await;
    assert_eq!(reply.status, 200, "a body-less POST from a program: {}", reply.text);
    let id = reply.json()["id"].as_str().unwrap().to_string();
    let reply = srv.send(srv.request(Method::POST, &format!("/session/{id}/abort"))).await;
    assert_eq!(reply.status, 200, "abort with no body: {}", reply.text);
    // A browser page that a preflight vetted, or a trusted page.
    let reply = srv.send(srv.request(Method::POST, "/session").header("origin", "http://localhost:3000").header("content-type", "text/plain").body("{}")).await;
    assert_eq!(reply.status, 200, "a trusted page: {}", reply.text);
    let reply = srv.send(srv.request(Method::POST, "/session").header("origin", evil).json(&json!({}))).await;
    assert_eq!(reply.status, 200, "JSON is preflighted by browsers, so only a program sends this: {}", reply.text);
    assert_eq!(session_count(&srv).await, 3);
}

const SERVER_CONFIG: &str = r#"{
  "provider": {
    "keyed": {
      "npm": "@ai-sdk/openai-compatible",
      "options": { "baseURL": "http://127.0.0.1:9/v1", "apiKey": "{env:BURROW_TEST_SERVER_KEY}",
                   "headers": { "Authorization": "Bearer hdr-secret-1", "X-Api-Key": "hdr-secret-2", "HTTP-Referer": "https://app.example" } },
      "models": { "m": { "headers": { "x-auth-token": "model-secret-3" } } }
    }
  },
  "model": "keyed/m",
  "agent": { "build": { "options": { "apiKey": "agent-secret-4" } } }
}"#;

#[tokio::test]
async fn keys_are_absent_from_every_config_answer() {
    let fx = Fixture::standard();
    let ws = local(&fx).await;
    ws.write_behind("opencode.json", br#"{"provider": {"keyed": {"options": {"apiKey": "project-secret-5"}}}}"#).await.unwrap();
    let xdg = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(xdg.path().join("opencode")).unwrap();
    std::fs::write(xdg.path().join("opencode/opencode.json"), SERVER_CONFIG).unwrap();
    let srv = Server::start_with(&ws, &[("XDG_CONFIG_HOME", xdg.path().to_str().unwrap()), ("BURROW_TEST_SERVER_KEY", "server-secret-0")]).await;
    let secrets = ["server-secret-0", "hdr-secret-1", "hdr-secret-2", "model-secret-3", "agent-secret-4", "project-secret-5"];
    for path in ["/config", "/global/config", "/config/providers", "/provider", "/api/provider", "/api/model", "/agent", "/api/agent"] {
        let reply = srv.send(srv.request(Method::GET, path)).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        for secret in secrets {
            assert!(!reply.text.contains(secret), "{path} shows {secret}: {}", reply.text);
        }
    }
    let (_, config) = srv.get("/config").await;
    let options = &config["provider"]["keyed"]["options"];
    assert_eq!(options["apiKey"], "[redacted]", "the key is hidden, its presence shown");
    assert_eq!(options["headers"]["HTTP-Referer"], "https://app.example", "settings that are not secrets stay");
    assert_eq!(options["baseURL"], "http://127.0.0.1:9/v1");
    let (_, providers) = srv.get("/config/providers").await;
    assert_eq!(providers["providers"][0]["options"]["apiKey"], "[redacted]", "{providers}");
}

#[tokio::test]
async fn a_workspace_config_cannot_read_the_servers_environment() {
    let fx = Fixture::standard();
    let mut ws = local(&fx).await;
    ws.args.extend(["--config-env-allow".into(), "BURROW_TEST_SHARED".into()]);
    let project = r#"{"command": {
        "leak": {"template": "{env:BURROW_TEST_PRIVATE}"},
        "shared": {"template": "{env:BURROW_TEST_SHARED}"},
        "home": {"template": "{env:HOME}"}
    }}"#;
    ws.write_behind("opencode.json", project.as_bytes()).await.unwrap();
    let server_side = r#"{"command": {"server": {"template": "{env:BURROW_TEST_PRIVATE}"}}}"#;
    let srv =
        Server::start_with(&ws, &[("BURROW_TEST_PRIVATE", "private-value"), ("BURROW_TEST_SHARED", "shared-value"), ("OPENCODE_CONFIG_CONTENT", server_side)])
            .await;
    let (status, config) = srv.get("/config").await;
    assert_eq!(status, 200, "{config}");
    let template = |name: &str| config["command"][name]["template"].as_str().unwrap_or_else(|| panic!("command {name} in {config}")).to_string();
    assert_eq!(template("leak"), "{env:BURROW_TEST_PRIVATE}", "a workspace file's {{env:}} stays literal");
    assert_eq!(template("home"), "{env:HOME}");
    assert_eq!(template("shared"), "shared-value", "a variable the operator allowed");
    assert_eq!(template("server"), "private-value", "the server's own config may read its environment");
}

/// A prompt in a new session; the model's answer text.
async fn prompt(srv: &Server) -> Value {
    let (status, session) = support::agent::post(srv, "/session", json!({})).await;
    assert_eq!(status, 200, "{session}");
    let id = session["id"].as_str().unwrap();
    let (status, answer) = support::agent::post(srv, &format!("/session/{id}/message"), json!({"parts": [{"type": "text", "text": "hi"}]})).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

#[tokio::test]
async fn a_workspace_that_moves_a_providers_base_url_gets_no_server_key() {
    let trusted = ScriptedLlm::openai(vec![Turn::text("from the server's provider")]).await;
    let chosen = ScriptedLlm::openai(vec![Turn::text("from the workspace's host"), Turn::text("again")]).await;
    let fx = Fixture::standard();
    let ws = local(&fx).await;
    let mut cfg = config(&trusted.url, &unreachable_url().await);
    cfg["provider"]["fake"]["options"]["apiKey"] = json!("{env:BURROW_TEST_SERVER_KEY}");
    // The global file, which project files override (OPENCODE_CONFIG_CONTENT would override them).
    let xdg = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(xdg.path().join("opencode")).unwrap();
    std::fs::write(xdg.path().join("opencode/opencode.json"), cfg.to_string()).unwrap();
    let vars = [("XDG_CONFIG_HOME", xdg.path().to_str().unwrap()), ("BURROW_TEST_SERVER_KEY", "server-key"), ("BURROW_RETRY_BASE_MS", "1")];
    let srv = Server::start_with(&ws, &vars).await;

    prompt(&srv).await;
    assert_eq!(trusted.credentials(), [Some("Bearer server-key".to_string())], "the server's provider gets the server's key");

    let project = json!({"provider": {"fake": {"options": {"baseURL": chosen.url}}}});
    ws.write_behind("opencode.json", project.to_string().as_bytes()).await.unwrap();
    prompt(&srv).await;
    assert_eq!(chosen.credentials(), [None], "a host the workspace chose gets no key from the server");

    let project = json!({"provider": {"fake": {"options": {"baseURL": chosen.url, "apiKey": "workspace-key"}}}});
    ws.write_behind("opencode.json", project.to_string().as_bytes()).await.unwrap();
    prompt(&srv).await;
    assert_eq!(chosen.credentials()[1].as_deref(), Some("Bearer workspace-key"), "the workspace's own key is sent");
    assert_eq!(trusted.credentials().len(), 1);
}

#[tokio::test]
async fn a_terminal_ticket_is_checked_before_anything_runs() {
    let fx = Fixture::standard();
    let ws = local(&fx).await;
    let srv = Server::start_with(&ws, &[("OPENCODE_SERVER_PASSWORD", "pw")]).await;
    let missing = ws.abs("no-such-dir");
    for directory in [missing.as_str(), ws.root.as_str(), "/etc"] {
        let path = support::server::with_query("/pty/pty_x/connect", &[("ticket", "bogus"), ("directory", directory)]);
        let reply = srv.send(srv.request(Method::GET, &path)).await;
        assert_forbidden(&format!("a bogus ticket with directory {directory}"), &reply);
    }
}

#[tokio::test]
async fn a_network_address_needs_a_password() {
    let fx = Fixture::standard();
    let ws = local(&fx).await;
    let failed = Launch::serve().hostname("0.0.0.0").args(&ws.args).refused().await;
    let (out, err) = (failed.stdout, failed.stderr);
    assert_ne!(failed.code, Some(0), "refused: {err}");
    assert!(!out.contains("listening"), "never served: {out}");
    assert!(err.contains("OPENCODE_SERVER_PASSWORD") && err.contains("--insecure-no-auth"), "says how to fix it: {err}");
}
