//! HTTP basic auth (`OPENCODE_SERVER_PASSWORD`, `OPENCODE_SERVER_USERNAME`)
//! and CORS, as `opencode serve` does them.

use base64::Engine;
use reqwest::{Method, RequestBuilder};

use crate::assert_error;
use crate::support::server::Reply;
use crate::support::{for_each_env, Fixture, Server, TestEnv, Workspace};

/// A server over the standard fixture with these environment variables
/// (not [`crate::support::Served`], which reads the capabilities unauthenticated).
async fn serve(env: TestEnv, vars: &[(&str, &str)]) -> (Server, (Workspace, Fixture)) {
    let fx = Fixture::standard();
    let ws = env.place(&fx).await.unwrap_or_else(|e| panic!("[{}] {e:#}", env.name()));
    let srv = Server::start_with(&ws, vars).await;
    (srv, (ws, fx))
}

fn basic(user_pass: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass))
}

/// A CORS preflight from a local page for a GET with these headers must be allowed.
async fn preflight(srv: &Server, path: &str, headers: &[&str]) {
    let req = srv
        .request(Method::OPTIONS, path)
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", headers.join(", "));
    let reply = srv.send(req).await;
    assert!((200..300).contains(&reply.status), "preflight {path}: {}", reply.status);
    assert_eq!(reply.header("access-control-allow-origin"), Some("http://localhost:3000"), "preflight {path}");
    assert!(reply.header("access-control-allow-methods").unwrap_or("").contains("GET"), "{:?}", reply.headers);
    let allowed = reply.header("access-control-allow-headers").unwrap_or("").to_ascii_lowercase();
    for h in headers {
        assert!(allowed.split(',').any(|a| a.trim() == *h), "preflight {path} allows {h}: {allowed:?}");
    }
}

#[track_caller]
fn assert_unauthorized(what: &str, reply: &Reply) {
    assert_eq!(reply.header("www-authenticate"), Some("Basic realm=\"Secure Area\""), "{what}");
    // OpenCode sends an empty body; Burrow's is the usual JSON error.
    assert_error(what, (reply.status, reply.json()), 401, "UnauthorizedError");
}

#[tokio::test]
async fn a_password_requires_basic_auth() {
    for_each_env(|env| async move {
        let (srv, _keep) = serve(env, &[("OPENCODE_SERVER_PASSWORD", "secret")]).await;
        let get = |path: &str| srv.request(Method::GET, path);
        let with = |path: &str, auth: &str| get(path).header("authorization", auth.to_string());

        let refused: Vec<(&str, RequestBuilder)> = vec![
            ("no credentials", get("/global/health")),
            ("no credentials, /doc", get("/doc")),
            ("no credentials, unknown route", get("/no/such/route")),
            ("no credentials, SSE", get("/event")),
            ("wrong password", with("/path", &basic("opencode:nope"))),
            ("wrong username", with("/path", &basic("alice:secret"))),
            ("username case differs", with("/path", &basic("OpenCode:secret"))),
            ("password with more after it", with("/path", &basic("opencode:secret:extra"))),
            ("empty username", with("/path", &basic(":secret"))),
            ("no colon", with("/path", &basic("secret"))),
            ("malformed base64", with("/path", "Basic garbage!!")),
            ("bearer token", with("/path", "Bearer secret")),
            ("auth_token that is not user:password", get("/path?auth_token=secret")),
        ];
        for (what, req) in refused {
            assert_unauthorized(what, &srv.send(req).await);
        }

        let token = base64::engine::general_purpose::STANDARD.encode("opencode:secret");
        let accepted: Vec<(&str, RequestBuilder)> = vec![
            ("right credentials", with("/path", &basic("opencode:secret"))),
            ("lowercase scheme", with("/path", &format!("basic {token}"))),
            ("uppercase scheme", with("/path", &format!("BASIC {token}"))),
            ("reqwest's basic_auth", get("/global/health").basic_auth("opencode", Some("secret"))),
            // Browsers cannot set headers on EventSource or WebSocket: OpenCode takes the
            // credentials from `?auth_token=base64(user:password)` too.
            ("auth_token query parameter", get(&format!("/path?auth_token={token}"))),
        ];
        for (what, req) in accepted {
            let reply = srv.send(req).await;
            assert_eq!(reply.status, 200, "{what}: {}", reply.text);
        }

        // A CORS preflight carries no credentials, by design; a browser may then send them.
        preflight(&srv, "/session", &["authorization"]).await;
    })
    .await;
}

#[tokio::test]
async fn the_username_can_be_changed_and_an_empty_password_means_no_auth() {
    for_each_env(|env| async move {
        let (srv, _keep) = serve(env, &[("OPENCODE_SERVER_PASSWORD", "secret"), ("OPENCODE_SERVER_USERNAME", "alice")]).await;
        let reply = srv.send(srv.request(Method::GET, "/global/health").basic_auth("alice", Some("secret"))).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let reply = srv.send(srv.request(Method::GET, "/global/health").basic_auth("opencode", Some("secret"))).await;
        assert_unauthorized("the default user is replaced", &reply);
        drop(srv);

        let (srv, _keep) = serve(env, &[("OPENCODE_SERVER_PASSWORD", "")]).await;
        assert_eq!(srv.get("/global/health").await.0, 200, "an empty password disables auth");
    })
    .await;
}

#[tokio::test]
async fn cors_allows_local_and_opencode_origins_only() {
    for_each_env(|env| async move {
        let (srv, _keep) = serve(env, &[]).await;
        let allowed = [
            "http://localhost:3000",
            "http://127.0.0.1:5173",
            "tauri://localhost",
            "http://tauri.localhost",
            "https://tauri.localhost",
            "https://opencode.ai",
            "https://app.opencode.ai",
            "https://foo.bar.opencode.ai",
        ];
        for origin in allowed {
            let reply = srv.send(srv.request(Method::GET, "/global/health").header("origin", origin)).await;
            assert_eq!(reply.status, 200);
            assert_eq!(reply.header("access-control-allow-origin"), Some(origin), "origin {origin}");
        }
        for origin in ["http://example.com", "http://opencode.ai", "https://evil-opencode.ai", "https://opencode.ai.evil.com", "http://localhost.evil.com"] {
            let reply = srv.send(srv.request(Method::GET, "/global/health").header("origin", origin)).await;
            assert_eq!(reply.status, 200, "the request itself is served");
            assert_eq!(reply.header("access-control-allow-origin"), None, "origin {origin} is not allowed");
        }
        preflight(&srv, "/file?path=.", &["content-type", "x-opencode-directory"]).await;
    })
    .await;
}
