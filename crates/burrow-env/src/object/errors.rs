//! opendal errors in terms a client can act on.

use opendal::ErrorKind as K;

use crate::env::EnvError;

/// Maps an error about `path` to the environment's error kinds: a missing
/// object is a 404, refused credentials a 403, an unreachable or misconfigured
/// service a 503 that says what the service answered.
pub fn env_error(err: opendal::Error, path: &str) -> EnvError {
    let detail = detail(&err);
    match err.kind() {
        K::NotFound => EnvError::NotFound(path.to_string()),
        K::PermissionDenied => EnvError::PermissionDenied(format!("{path}: the storage service refused access ({detail})")),
        K::IsADirectory => EnvError::IsADirectory(path.to_string()),
        K::NotADirectory => EnvError::NotADirectory(path.to_string()),
        K::AlreadyExists => EnvError::AlreadyExists(path.to_string()),
        K::Unsupported => EnvError::Unsupported(format!("do this on this storage service ({detail})")),
        K::ConfigInvalid | K::RateLimited => EnvError::Unavailable(detail),
        _ if err.is_temporary() || err.is_persistent() => EnvError::Unavailable(detail),
        _ => EnvError::Io(format!("{path}: {detail}")),
    }
}

/// The part of an opendal error that says what happened: the service's error
/// code and message when it sent one, else the message and its source,
/// without the request context (URLs with signatures, header dumps).
pub fn detail(err: &opendal::Error) -> String {
    let text = err.to_string();
    if let Some(code) = quoted_field(&text, "code") {
        let message = quoted_field(&text, "message").filter(|m| !m.is_empty());
        return match message {
            Some(m) => format!("{code}: {m}"),
            None => code,
        };
    }
    match text.split_once(" => ") {
        Some((_, rest)) => rest.to_string(),
        None => text.split(", context:").next().unwrap_or_default().to_string(),
    }
}

/// `name: "value"` inside a service error's debug form (`S3Error { code: "NoSuchBucket", ... }`).
fn quoted_field(text: &str, name: &str) -> Option<String> {
    let start = text.find(&format!("{name}: \""))? + name.len() + 3;
    let end = text[start..].find('"')?;
    Some(text[start..start + end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_keep_the_service_answer() {
        let e = opendal::Error::new(K::ConfigInvalid, "S3Error { code: \"NoSuchBucket\", message: \"\", resource: \"\" }")
            .with_context("uri", "http://x/?sig=secret");
        assert_eq!(detail(&e), "NoSuchBucket");
        assert!(matches!(env_error(e, "."), EnvError::Unavailable(m) if m == "NoSuchBucket"));
        let e = opendal::Error::new(K::PermissionDenied, "S3Error { code: \"InvalidAccessKeyId\", message: \"bad key\" }");
        assert!(matches!(env_error(e, "a.txt"), EnvError::PermissionDenied(m) if m.contains("InvalidAccessKeyId: bad key")));
        let e = opendal::Error::new(K::Unexpected, "send http request").set_temporary();
        assert!(matches!(env_error(e, "a"), EnvError::Unavailable(m) if m == "send http request"));
    }
}
