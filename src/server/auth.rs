//! HTTP basic auth, as `opencode serve` does it: enabled by
//! `OPENCODE_SERVER_PASSWORD`, user `opencode` unless `OPENCODE_SERVER_USERNAME`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::AppState;
use crate::error::ApiError;

#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    /// The credentials from the environment, when a password is set.
    pub fn from_env() -> Option<Self> {
        let password = std::env::var("OPENCODE_SERVER_PASSWORD").ok().filter(|p| !p.is_empty())?;
        let username = std::env::var("OPENCODE_SERVER_USERNAME").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "opencode".into());
        Some(Self { username, password })
    }

    fn accepts(&self, header_value: &str) -> bool {
        let Some(encoded) = header_value.strip_prefix("Basic ").or_else(|| header_value.strip_prefix("basic ")) else { return false };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else { return false };
        let Ok(pair) = String::from_utf8(decoded) else { return false };
        let Some((user, pass)) = pair.split_once(':') else { return false };
        constant_time_eq(user.as_bytes(), self.username.as_bytes()) & constant_time_eq(pass.as_bytes(), self.password.as_bytes())
    }
}

/// Compares without an early exit, so timing does not leak the password.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

pub async fn require_auth(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(creds) = &st.credentials else { return next.run(req).await };
    // CORS preflights carry no credentials by design.
    if req.method() == Method::OPTIONS {
        return next.run(req).await;
    }
    let ok = authorized(creds, &req);
    if ok {
        return next.run(req).await;
    }
    let mut res = ApiError::new(StatusCode::UNAUTHORIZED, "UnauthorizedError", "authentication required").into_response();
    res.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"Secure Area\""));
    res
}

fn authorized(creds: &Credentials, req: &Request) -> bool {
    if req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).is_some_and(|v| creds.accepts(v)) {
        return true;
    }
    // Like the reference, `?auth_token=<base64 user:pass>` works where headers
    // cannot be set (WebSocket, EventSource).
    let Some(query) = req.uri().query() else { return false };
    let pairs = serde_urlencoded::from_str::<Vec<(String, String)>>(query).unwrap_or_default();
    if pairs.iter().any(|(k, token)| k == "auth_token" && creds.accepts(&format!("Basic {token}"))) {
        return true;
    }
    // A terminal's WebSocket may instead carry a one-use ticket from
    // `POST /pty/{id}/connect-token`; the connect handler checks it first.
    crate::server::routes::pty_connect::is_connect_path(req.uri().path()) && pairs.iter().any(|(k, _)| k == "ticket")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_basic_credentials() {
        let c = Credentials { username: "opencode".into(), password: "s3cret".into() };
        let good = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("opencode:s3cret"));
        let bad = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("opencode:nope"));
        assert!(c.accepts(&good));
        assert!(!c.accepts(&bad));
        assert!(!c.accepts("Bearer x"));
    }
}
