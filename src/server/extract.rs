//! Typed extractors whose rejections are OpenCode-shaped JSON errors, and the
//! request context: which directory of the workspace a request is about.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::instance::Instance;
use super::AppState;
use crate::env::EnvError;
use crate::error::ApiError;
use crate::workspace::{Scope, WsError};

impl From<WsError> for ApiError {
    fn from(e: WsError) -> Self {
        use axum::http::StatusCode;
        let message = e.to_string();
        match e {
            WsError::NotFound(_) => ApiError::not_found(message),
            WsError::Create(_) => ApiError::new(StatusCode::BAD_REQUEST, "WorkspaceCreateError", message),
            WsError::Forbidden(_) => ApiError::new(StatusCode::FORBIDDEN, "ForbiddenError", message),
            WsError::Unavailable { .. } | WsError::Remove { .. } => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "WorkspaceUnavailableError", message),
            WsError::Store(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "UnknownError", message),
        }
    }
}

/// Query parameters; a missing or malformed one is a 400 that names it.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(query).map(Query).map_err(|e| ApiError::bad_request(format!("invalid query parameters: {e}")))
    }
}

/// Refuses a request whose `?directory=` (or `x-opencode-directory`) holds a
/// control character, by `WorkspacePath`'s own rule, on every route: the
/// document says so once for all of them, including routes that never resolve it.
pub async fn refuse_control_in_directory(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let from_query = req.uri().query().and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok()).unwrap_or_default();
    let from_header = req.headers().get("x-opencode-directory").and_then(|v| v.to_str().ok()).map(str::to_string);
    let values = from_query.into_iter().filter(|(k, _)| k == "directory").map(|(_, v)| v).chain(from_header);
    for value in values {
        if let Err(e) = crate::env::WorkspacePath::refuse_control("directory", &value) {
            return ApiError::from(e).into_response();
        }
    }
    next.run(req).await
}

/// The largest JSON body read; past it a request is a 413.
pub const BODY_LIMIT: usize = 2 << 20;

/// How much of an oversized body is read and thrown away before the 413 is
/// sent. A client writes its whole body before it reads the answer; if the
/// server closed the connection with bytes still unread, the kernel would
/// reset it and the client would see a broken pipe instead of the 413.
/// Past this much, the connection is dropped after the answer anyway.
const DRAIN_LIMIT: usize = 32 << 20;

fn too_large() -> ApiError {
    ApiError::new(axum::http::StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeError", format!("the body is larger than {BODY_LIMIT} bytes"))
}

/// The request body, at most [`BODY_LIMIT`] bytes. An oversized body is
/// drained (up to [`DRAIN_LIMIT`]) so that the client reliably reads the 413.
async fn read_body(req: Request) -> Result<bytes::Bytes, ApiError> {
    use futures::StreamExt;
    let declared = req.headers().get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let mut stream = req.into_body().into_data_stream();
    let mut body = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("cannot read the body: {e}")))?;
        seen = seen.saturating_add(chunk.len());
        if seen > BODY_LIMIT {
            if seen > DRAIN_LIMIT || declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
                break;
            }
            continue;
        }
        body.extend_from_slice(&chunk);
    }
    if seen > BODY_LIMIT {
        return Err(too_large());
    }
    Ok(body.freeze())
}

/// Whether the request says its body is JSON (`application/json` or `*+json`),
/// as axum's `Json` requires.
fn json_content_type(req: &Request) -> bool {
    let Some(ct) = req.headers().get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A JSON body; a malformed one is a 400 that says why, an oversized one a 413.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        if !json_content_type(&req) {
            return Err(ApiError::bad_request("Expected request with `Content-Type: application/json`"));
        }
        let body = read_body(req).await?;
        match axum::Json::<T>::from_bytes(&body) {
            Ok(axum::Json(v)) => Ok(Json(v)),
            // JSON (and JSON Schema) count `4013.0` as the integer 4013, serde's
            // integer types do not: retry with whole numbers written as integers.
            Err(e) => serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|mut v| whole_numbers_as_integers(&mut v).then_some(v))
                .and_then(|v| serde_json::from_value(v).ok())
                .map(Json)
                .ok_or_else(|| ApiError::bad_request(e.body_text())),
        }
    }
}

/// Rewrites every float with no fraction (within JavaScript's safe integers) as
/// an integer; whether anything changed.
fn whole_numbers_as_integers(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    const SAFE: f64 = crate::protocol::num::MAX_SAFE_INTEGER as f64;
    match value {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() <= SAFE => {
                *value = if f < 0.0 { Value::from(f as i64) } else { Value::from(f as u64) };
                true
            }
            _ => false,
        },
        Value::Array(items) => items.iter_mut().fold(false, |changed, v| whole_numbers_as_integers(v) | changed),
        Value::Object(map) => map.values_mut().fold(false, |changed, v| whole_numbers_as_integers(v) | changed),
        _ => false,
    }
}

/// A JSON body that may be empty or `null` (then `T::default()`), read whatever the
/// content type: OpenCode's `POST /session` accepts no body, `{}`, or JSON sent
/// as `application/x-www-form-urlencoded` by a bare `curl -d`.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        let body = read_body(req).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
        // `null` is "no body" too: the document says the body is optional (nullable).
        if value.is_null() {
            return Ok(OptionalJson(T::default()));
        }
        if !value.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        serde_json::from_value(value).map(OptionalJson).map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))
    }
}

/// The workspace a request names: `?workspace=`, `?location[workspace]=`, or
/// the `x-opencode-workspace` header (what OpenCode's SDK sends); none (or
/// empty) is the server's own environment.
pub fn workspace_id(parts: &Parts) -> Option<String> {
    let from_query = parts.uri.query().and_then(|q| {
        let pairs = serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok()?;
        ["workspace", "location[workspace]"].into_iter().find_map(|key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
    });
    let from_header = || parts.headers.get("x-opencode-workspace")?.to_str().ok().map(str::to_string);
    from_query.or_else(from_header).filter(|w| !w.is_empty())
}

/// The scope of the request's workspace, opened if needed; kept in the
/// request's extensions so that [`Ctx`] and [`Ws`] open it once.
async fn scope_of(parts: &mut Parts, state: &Arc<AppState>) -> Result<Arc<Scope>, ApiError> {
    if let Some(scope) = parts.extensions.get::<Arc<Scope>>() {
        return Ok(scope.clone());
    }
    let scope = match workspace_id(parts) {
        None => state.scope.clone(),
        Some(id) => state.workspaces.scope(&id).await?,
    };
    parts.extensions.insert(scope.clone());
    Ok(scope)
}

/// The workspace id a request names, if any (not opened).
pub struct RequestWorkspace(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for RequestWorkspace {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(RequestWorkspace(workspace_id(parts)))
    }
}

/// The workspace a request works in: its environment and the caches over it.
/// An unknown workspace is a 404.
pub struct Ws(pub Arc<Scope>);

impl FromRequestParts<Arc<AppState>> for Ws {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        scope_of(parts, state).await.map(Ws)
    }
}

/// The directory a request works in: `?directory=`, `?location[directory]=`
/// (how `/api` routes spell it), or the `x-opencode-directory` header, else
/// the workspace root.
pub struct Ctx(pub Arc<Instance>);

impl FromRequestParts<Arc<AppState>> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let from_query = parts.uri.query().and_then(|q| {
            let pairs = serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok()?;
            ["directory", "location[directory]"].into_iter().find_map(|key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
        });
        let from_header = || {
            let raw = parts.headers.get("x-opencode-directory")?.to_str().ok()?;
            Some(percent_encoding::percent_decode_str(raw).decode_utf8_lossy().into_owned())
        };
        let directory = from_query.or_else(from_header).filter(|d| !d.is_empty());
        let scope = scope_of(parts, state).await?;
        // OpenCode answers a workspace's requests in the workspace's own folder.
        // A client that names a workspace may send the directory it knows from
        // the server's own environment (the TUI does, in `session.create`),
        // which lies outside the workspace: that one means the workspace root.
        let root = scope.runtime.env.root();
        let elsewhere = |d: &str| crate::env::WorkspacePath::is_absolute(d) && matches!(crate::env::WorkspacePath::parse(root, d), Err(EnvError::Escape(_)));
        let directory = directory.filter(|d| workspace_id(parts).is_none() || !elsewhere(d));
        Ok(Ctx(scope.instances.resolve(&*scope.runtime.env, state.started_ms, directory.as_deref()).await?))
    }
}

/// Path parameters; a malformed one is a 400 that says why.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state).await.map(|axum::extract::Path(v)| Path(v)).map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

#[cfg(test)]
mod whole_number_tests {
    use super::whole_numbers_as_integers;
    use serde_json::json;

    #[test]
    fn whole_floats_become_integers_and_nothing_else_changes() {
        let mut v = json!({"time": {"start": 4013.0, "end": -2.0}, "cost": 0.5, "list": [1.0, "x", 7]});
        assert!(whole_numbers_as_integers(&mut v));
        assert_eq!(v, json!({"time": {"start": 4013, "end": -2}, "cost": 0.5, "list": [1, "x", 7]}));
        assert!(v["time"]["start"].is_u64() && v["time"]["end"].is_i64());
        let mut plain = json!({"a": 1, "b": 0.25, "c": 1e300});
        assert!(!whole_numbers_as_integers(&mut plain), "{plain}");
    }
}
