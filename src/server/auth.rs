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

    /// Checks an `Authorization` header: `Basic <base64 of user:password>`, the
    /// scheme in any case, as OpenCode reads it (`/^Basic\s+(.+)$/i`).
    fn accepts_header(&self, header_value: &str) -> bool {
        let Some((scheme, token)) = header_value.split_once(char::is_whitespace) else { return false };
        scheme.eq_ignore_ascii_case("basic") && self.accepts_token(token.trim())
    }

    /// Checks the base64 of `user:password` (a header's token, or `?auth_token=`).
    fn accepts_token(&self, encoded: &str) -> bool {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else { return false };
        let Ok(pair) = String::from_utf8(decoded) else { return false };
        let Some((user, pass)) = pair.split_once(':') else { return false };
        constant_time_eq(user.as_bytes(), self.username.as_bytes()) & constant_time_eq(pass.as_bytes(), self.password.as_bytes())
    }

    /// Whether a request carries these credentials. Browsers cannot set headers
    /// on an EventSource or a WebSocket, so OpenCode also takes them from
    /// `?auth_token=`, which then wins over the header.
    fn accepts(&self, req: &Request) -> bool {
        let token = req
            .uri()
            .query()
            .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok()?.into_iter().find(|(k, v)| k == "auth_token" && !v.is_empty()));
        if let Some((_, token)) = token {
            return self.accepts_token(&token);
        }
        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).is_some_and(|v| self.accepts_header(v))
    }
}

/// A terminal's WebSocket may carry a one-use ticket from
/// `POST /pty/{id}/connect-token` instead of credentials: (terminal id, ticket).
fn pty_ticket(req: &Request) -> Option<(String, String)> {
    let id = crate::server::routes::pty_connect::connect_path_id(req.uri().path())?;
    let pairs = serde_urlencoded::from_str::<Vec<(String, String)>>(req.uri().query()?).ok()?;
    let (_, ticket) = pairs.into_iter().find(|(k, _)| k == "ticket")?;
    Some((id.to_string(), ticket))
}

/// A ticket that was good: the directory it was issued in, which the connect
/// handler compares with the request's once it has resolved it.
#[derive(Clone, Debug)]
pub struct TicketGrant {
    pub directory: String,
}

/// Compares without an early exit, so timing does not leak the password.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

pub async fn require_auth(State(st): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    // A ticket is checked (and used up) here, before any extractor resolves a
    // directory or runs `stat` and `git` for a caller who may be anonymous.
    if let Some((pty, ticket)) = pty_ticket(&req) {
        let Some(directory) = st.scope.ptys.tickets.take(&ticket, &pty) else {
            return ApiError::new(StatusCode::FORBIDDEN, "ForbiddenError", "the terminal ticket is unknown, used or expired").into_response();
        };
        req.extensions_mut().insert(TicketGrant { directory });
        return next.run(req).await;
    }
    let Some(creds) = &st.credentials else { return next.run(req).await };
    // CORS preflights carry no credentials by design.
    if req.method() == Method::OPTIONS {
        return next.run(req).await;
    }
    if creds.accepts(&req) {
        return next.run(req).await;
    }
    let mut res = ApiError::new(StatusCode::UNAUTHORIZED, "UnauthorizedError", "authentication required").into_response();
    res.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"Secure Area\""));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_basic_credentials() {
        let c = Credentials { username: "opencode".into(), password: "s3cret".into() };
        let encode = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let request = |uri: &str, auth: Option<&str>| {
            let mut b = Request::builder().uri(uri);
            if let Some(a) = auth {
                b = b.header(header::AUTHORIZATION, a);
            }
            b.body(axum::body::Body::empty()).unwrap()
        };
        let good = encode("opencode:s3cret");
        for auth in [format!("Basic {good}"), format!("basic {good}"), format!("BASIC  {good}")] {
            assert!(c.accepts(&request("/path", Some(&auth))), "{auth}");
        }
        assert!(c.accepts(&request(&format!("/event?auth_token={good}"), None)));
        for auth in [format!("Basic {}", encode("opencode:nope")), format!("Basic {}", encode("s3cret")), "Bearer s3cret".into(), "Basic garbage!!".into()] {
            assert!(!c.accepts(&request("/path", Some(&auth))), "{auth}");
        }
        assert!(!c.accepts(&request("/path", None)));
        assert!(!c.accepts(&request("/path?auth_token=s3cret", Some(&format!("Basic {good}")))), "a bad auth_token wins over a good header");
    }
}
