//! Typed extractors whose rejections are OpenCode-shaped JSON errors, and the
//! request context: which directory of the workspace a request is about.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::instance::Instance;
use super::AppState;
use crate::error::ApiError;

/// Query parameters; a missing or malformed one is a 400 that names it.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(query).map(Query).map_err(|e| ApiError::bad_request(format!("invalid query parameters: {e}")))
    }
}

/// A body axum could not read: one over the size limit is a 413 (the client
/// must send less, not fix its syntax), anything else a 400 that says why.
fn body_rejection(status: axum::http::StatusCode, text: String) -> ApiError {
    if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(status, "PayloadTooLargeError", format!("the body is larger than {} bytes", BODY_LIMIT))
    } else {
        ApiError::bad_request(text)
    }
}

/// axum's default request body limit, which every JSON body is read under.
pub const BODY_LIMIT: usize = 2 << 20;

/// A JSON body; a malformed one is a 400 that says why, an oversized one a 413.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        axum::Json::<T>::from_request(req, state).await.map(|axum::Json(v)| Json(v)).map_err(|e| body_rejection(e.status(), e.body_text()))
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

/// A JSON body that may be empty or `null` (then `T::default()`), read whatever the
/// content type: OpenCode's `POST /session` accepts no body, `{}`, or JSON sent
/// as `application/x-www-form-urlencoded` by a bare `curl -d`.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let body = axum::body::Bytes::from_request(req, state).await.map_err(|e| body_rejection(e.status(), e.body_text()))?;
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
        state.instances.resolve(state, directory.as_deref()).await.map(Ctx)
    }
}
