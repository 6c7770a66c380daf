//! Keeping secrets out of answers. Config and provider answers go to any
//! client of the server (and, with `--cors`, to browser pages): API keys,
//! `Authorization` headers and the like are replaced before they leave.

use serde::Serializer;
use serde_json::{Map, Value};

/// What a secret's value becomes in an answer.
pub const REDACTED: &str = "[redacted]";

/// Whether a key or header name looks like it holds a secret: `apiKey`,
/// `api_key`, `Authorization`, `x-api-key`, `X-Auth-Token`, `client_secret`,
/// `password`, `cookie`, `accessKeyId`, ...
pub fn looks_secret(name: &str) -> bool {
    let n: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    n.ends_with("key")
        || n.ends_with("keyid")
        || ["secret", "password", "passwd", "token", "auth", "cookie", "credential", "signature", "bearer"].iter().any(|w| n.contains(w))
}

/// Replaces, anywhere in `value`, every string (or list of strings) held
/// under a name that [`looks_secret`]. Numbers and booleans stay (`maxTokens`
/// is a setting, not a secret); objects are searched further.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => redact_map(map),
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

pub fn redact_map(map: &mut Map<String, Value>) {
    for (k, v) in map.iter_mut() {
        if looks_secret(k) {
            hide(v);
        } else {
            redact(v);
        }
    }
}

/// Hides the strings of a secret's value, whatever its shape.
fn hide(v: &mut Value) {
    match v {
        Value::String(s) if !s.is_empty() => *s = REDACTED.into(),
        Value::Array(items) => items.iter_mut().for_each(hide),
        Value::Object(map) => map.values_mut().for_each(hide),
        _ => {}
    }
}

/// Serializes a map with its secrets hidden (`#[serde(serialize_with)]`).
pub fn serialize_redacted<S: Serializer>(map: &Map<String, Value>, s: S) -> Result<S::Ok, S::Error> {
    let mut shown = map.clone();
    redact_map(&mut shown);
    serde::Serialize::serialize(&shown, s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_that_hold_secrets() {
        for name in [
            "apiKey",
            "api_key",
            "Authorization",
            "x-api-key",
            "X-Auth-Token",
            "client_secret",
            "password",
            "Cookie",
            "accessKeyId",
            "AWS_SECRET_ACCESS_KEY",
            "key",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in ["baseURL", "model", "temperature", "HTTP-Referer", "timeout", "keybinds", "name"] {
            assert!(!looks_secret(name), "{name}");
        }
    }

    #[test]
    fn secrets_are_hidden_everywhere_and_settings_stay() {
        let mut v = json!({
            "provider": {"p": {"options": {"apiKey": "sk-1", "baseURL": "http://h", "headers": {"Authorization": "Bearer t", "HTTP-Referer": "app"},
                "maxTokens": 4096}, "models": {"m": {"headers": {"x-api-key": "k2"}}}}},
            "mcp": {"s": {"environment": {"GITHUB_TOKEN": "ghp"}, "headers": {"x-auth": ["a", "b"]}}},
            "model": "p/m",
        });
        redact(&mut v);
        let text = v.to_string();
        for secret in ["sk-1", "Bearer t", "k2", "ghp", "\"a\""] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(v["provider"]["p"]["options"]["baseURL"], "http://h");
        assert_eq!(v["provider"]["p"]["options"]["headers"]["HTTP-Referer"], "app");
        assert_eq!(v["provider"]["p"]["options"]["maxTokens"], 4096);
        assert_eq!(v["provider"]["p"]["options"]["apiKey"], REDACTED);
        assert_eq!(v["model"], "p/m");
    }
}
