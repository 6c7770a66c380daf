//! CORS, as `opencode serve` answers it: browser pages on this machine, the
//! desktop app, OpenCode's own web app (`https://*.opencode.ai`), and any
//! origin given with `--cors`. Nothing else: the request's own `Host` never
//! makes an origin trusted, since a DNS-rebinding page controls both.

use std::time::Duration;

use axum::http::{HeaderValue, Method};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

/// How long a browser may cache a preflight answer, as OpenCode says.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(86_400);

pub fn layer(extra: &[String]) -> CorsLayer {
    let extra: Vec<String> = extra.to_vec();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| origin.to_str().is_ok_and(|o| allowed(o, &extra))))
        .allow_methods([Method::GET, Method::HEAD, Method::PUT, Method::PATCH, Method::POST, Method::DELETE])
        // Mirror what the page asks for: a wildcard would not cover `authorization`,
        // which a page sends when the server has a password.
        .allow_headers(AllowHeaders::mirror_request())
        .max_age(PREFLIGHT_MAX_AGE)
}

/// Whether a page from `origin` may call the server.
pub fn allowed(origin: &str, extra: &[String]) -> bool {
    let local = ["http://localhost", "http://127.0.0.1", "https://localhost", "https://127.0.0.1"]
        .iter()
        .any(|p| origin == *p || origin.strip_prefix(p).is_some_and(|rest| rest.starts_with(':')));
    let app = ["tauri://localhost", "http://tauri.localhost", "https://tauri.localhost"].contains(&origin) || origin.starts_with("oc://renderer");
    local || app || opencode_web(origin) || extra.iter().any(|o| o == origin)
}

/// `https://opencode.ai` and its subdomains (OpenCode's `^https://([a-z0-9-]+\.)*opencode\.ai$`).
fn opencode_web(origin: &str) -> bool {
    let Some(host) = origin.strip_prefix("https://") else { return false };
    let Some(subdomains) = host.strip_suffix("opencode.ai") else { return false };
    subdomains.is_empty()
        || subdomains
            .strip_suffix('.')
            .is_some_and(|labels| labels.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_what_opencode_allows() {
        let extra = vec!["https://my.example".to_string()];
        for ok in [
            "http://localhost:3000",
            "http://127.0.0.1:5173",
            "tauri://localhost",
            "https://tauri.localhost",
            "oc://renderer",
            "https://opencode.ai",
            "https://app.opencode.ai",
            "https://a-b.c1.opencode.ai",
            "https://my.example",
        ] {
            assert!(allowed(ok, &extra), "{ok}");
        }
        for bad in [
            "http://example.com",
            "http://opencode.ai",
            "https://evil-opencode.ai",
            "https://x..opencode.ai",
            "https://opencode.ai.evil.com",
            "http://localhost.evil.com",
        ] {
            assert!(!allowed(bad, &extra), "{bad}");
        }
        assert!(!allowed("http://devbox:4096", &extra), "the server's own host is not trusted by itself");
    }
}
