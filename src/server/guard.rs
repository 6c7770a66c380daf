//! What a web page may not do to a server on this machine. Three checks run
//! before anything else, on every request:
//!
//! 1. **Host** (only without a password): the `Host` must name this machine
//!    (`127.0.0.1`, `localhost`, `[::1]`), the `--hostname` value or the host
//!    of a `--cors` origin. A page whose own name rebinds to 127.0.0.1 sends
//!    its own name as the Host, so DNS rebinding ends here with a 403.
//! 2. **WebSocket Origin:** browsers may open a WebSocket to any site without
//!    CORS, and send the page's Origin with it; a foreign Origin gets a 403.
//!    No Origin means a program, not a page, and passes.
//! 3. **Cross-site simple requests:** a page may send a "simple" request
//!    (no custom header; a body typed `text/plain`, a form or nothing) to any
//!    site without a preflight. The response stays hidden from the page, but
//!    the side effect happens. A state-changing request from a foreign page
//!    that a preflight did not vet is refused. Programs (the SDKs, the TUI)
//!    send no Origin, so their body-less POSTs keep working.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{cors, AppState};
use crate::error::ApiError;

/// What the operator allowed on the command line.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// The address given with `--hostname`.
    pub hostname: String,
    /// `--cors` origins.
    pub cors: Vec<String>,
    /// Server variables a workspace's config may read with `{env:NAME}`
    /// (`--config-env-allow`).
    pub config_env_allow: Vec<String>,
}

impl Policy {
    /// Whether a `Host` header (with or without its port) names this server.
    pub fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host).to_ascii_lowercase();
        if ["127.0.0.1", "localhost", "[::1]"].contains(&name.as_str()) {
            return true;
        }
        let own = bracketed(&self.hostname).to_ascii_lowercase();
        if name == own {
            return true;
        }
        // Bound to every address: any of the machine's addresses may be typed.
        // An IP literal cannot be rebound, so this does not reopen rebinding.
        if own.trim_matches(['[', ']']).parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified()) && name.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
            return true;
        }
        self.cors.iter().any(|origin| origin.split_once("://").is_some_and(|(_, rest)| host_name(rest).eq_ignore_ascii_case(&name)))
    }

    /// Whether a page from `origin` is trusted.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        cors::allowed(origin, &self.cors)
    }

    /// Whether a request comes from a browser page this server does not
    /// trust: a foreign `Origin`, or a cross-site fetch without one.
    pub fn foreign_page(&self, headers: &HeaderMap) -> bool {
        match headers.get(header::ORIGIN) {
            Some(origin) => !origin.to_str().is_ok_and(|o| self.origin_allowed(o)),
            None => headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site")),
        }
    }
}

/// The host part of a `Host` value: `[::1]:4096` → `[::1]`, `localhost:80` → `localhost`.
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// An IPv6 address as it appears in a Host header.
fn bracketed(hostname: &str) -> String {
    if hostname.contains(':') && !hostname.starts_with('[') {
        format!("[{hostname}]")
    } else {
        hostname.to_string()
    }
}

/// Whether a browser would have sent this request only after a preflight:
/// a body that is not one of the three form types, or a custom header
/// OpenCode's clients send.
fn preflighted(headers: &HeaderMap) -> bool {
    let essence = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(|ct| ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    let simple_body = essence.as_deref().is_none_or(|ct| ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""].contains(&ct));
    !simple_body || headers.keys().any(|k| k.as_str().starts_with("x-opencode-") || k.as_str().starts_with("x-burrow-"))
}

fn forbidden(message: impl Into<String>) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, "ForbiddenError", message).into_response()
}

pub async fn check(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let policy = &st.policy;
    let headers = req.headers();
    if st.credentials.is_none() {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string).or_else(|| req.uri().authority().map(|a| a.to_string()));
        if let Some(host) = host.filter(|h| !policy.host_allowed(h)) {
            return forbidden(format!(
                "the Host {host:?} does not name this server; without a password only 127.0.0.1, localhost, [::1], --hostname and the hosts of --cors origins are served"
            ));
        }
    }
    let upgrade = headers.get(header::UPGRADE).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if upgrade && headers.contains_key(header::ORIGIN) && policy.foreign_page(headers) {
        return forbidden("WebSockets are not opened for pages from this origin; allow it with --cors");
    }
    let changes_state = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
    if changes_state && policy.foreign_page(headers) && !preflighted(headers) {
        return forbidden(
            "a cross-site request that changes state must send Content-Type: application/json (so the browser asks first); allow the page with --cors",
        );
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hostname: &str, cors: &[&str]) -> Policy {
        Policy { hostname: hostname.into(), cors: cors.iter().map(|s| s.to_string()).collect(), config_env_allow: vec![] }
    }

    #[test]
    fn hosts_that_name_this_server() {
        let p = policy("127.0.0.1", &["https://ide.example:8443"]);
        for ok in ["127.0.0.1", "127.0.0.1:4096", "localhost", "LOCALHOST:1", "[::1]", "[::1]:4096", "ide.example", "ide.example:4096"] {
            assert!(p.host_allowed(ok), "{ok}");
        }
        for bad in ["rebind.attacker.example:4096", "127.0.0.1.nip.io", "localhost.evil.com", "[::2]:4096", "10.0.0.5:4096", ""] {
            assert!(!p.host_allowed(bad), "{bad}");
        }
        assert!(policy("devbox", &[]).host_allowed("devbox:4096"));
        assert!(policy("::1", &[]).host_allowed("[::1]:80"));
        let any = policy("0.0.0.0", &[]);
        assert!(any.host_allowed("192.168.1.5:4096") && any.host_allowed("[fe80::1]:4096"));
        assert!(!any.host_allowed("rebind.attacker.example:4096"), "a name can rebind, an address cannot");
    }

    #[test]
    fn foreign_pages_and_preflights() {
        let p = policy("127.0.0.1", &["https://ide.example"]);
        let h = |pairs: &[(&str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
            }
            m
        };
        assert!(!p.foreign_page(&h(&[])), "a program sends no Origin");
        assert!(!p.foreign_page(&h(&[("origin", "http://localhost:3000")])));
        assert!(!p.foreign_page(&h(&[("origin", "https://ide.example")])));
        assert!(p.foreign_page(&h(&[("origin", "http://evil.example")])));
        assert!(p.foreign_page(&h(&[("origin", "null")])));
        assert!(p.foreign_page(&h(&[("sec-fetch-site", "cross-site")])));
        assert!(!p.foreign_page(&h(&[("sec-fetch-site", "same-origin")])));

        assert!(!preflighted(&h(&[])));
        assert!(!preflighted(&h(&[("content-type", "text/plain;charset=UTF-8")])));
        assert!(!preflighted(&h(&[("content-type", "application/x-www-form-urlencoded")])));
        assert!(preflighted(&h(&[("content-type", "application/json")])));
        assert!(preflighted(&h(&[("x-opencode-directory", "/w")])));
    }
}
