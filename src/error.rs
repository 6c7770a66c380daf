//! Errors as the OpenCode protocol shows them: `{"name": ..., "data": {"message": ...}}`
//! with a status code that says what went wrong. Nothing that a client can cause
//! maps to a 500; a 500 means a bug or a broken backend, and its message says which.
//!
//! This is the HTTP layer's error module: only `server/` uses it. The layers
//! below return their own errors (`EnvError`, `StoreError`, `RunError`,
//! `ConfigError`), mapped to statuses here.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::ConfigError;
use crate::env::EnvError;
use crate::session::error::{RunError, StoreError};

/// The error body every endpoint answers with.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// OpenCode's error name, e.g. `BadRequest` or `NotFoundError`.
    pub name: String,
    pub data: ErrorData,
    /// Extra top-level fields some OpenCode errors carry (e.g. `_tag`).
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: std::collections::BTreeMap<&'static str, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorData {
    pub message: String,
}

/// An error on its way to becoming an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub name: &'static str,
    pub message: String,
    pub extra: std::collections::BTreeMap<&'static str, String>,
    /// Seconds for a `Retry-After` header (503 for a full search queue).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, name: &'static str, message: impl Into<String>) -> Self {
        Self { status, name, message: message.into(), extra: Default::default(), retry_after: None }
    }
    /// Adds a top-level string field to the body, next to `name` and `data`.
    pub fn with_field(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.extra.insert(key, value.into());
        self
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFoundError", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "ForbiddenError", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "BusyError", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "UnknownError", message)
    }
    /// The 409 of a busy session. OpenCode answers `{"_tag":"SessionBusyError","sessionID","message"}`;
    /// Burrow adds the usual `{name, data}` so clients of either shape read it.
    pub fn busy(session_id: &str) -> Self {
        let message = format!("Session is busy: {session_id}");
        Self::new(StatusCode::CONFLICT, "SessionBusyError", message.clone())
            .with_field("_tag", "SessionBusyError")
            .with_field("sessionID", session_id)
            .with_field("message", message)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(m) => Self::not_found(m),
            StoreError::Busy(id) => Self::busy(&id),
            StoreError::Db(m) => Self::internal(m),
        }
    }
}

/// A broken config file is a 400 that names it and says what is wrong, so the user can fix it.
impl From<ConfigError> for ApiError {
    fn from(err: ConfigError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ConfigJsonError", err.to_string())
    }
}

impl From<RunError> for ApiError {
    fn from(err: RunError) -> Self {
        match err {
            RunError::Store(e) => e.into(),
            RunError::Env(e) => e.into(),
            RunError::Config(e) => e.into(),
            RunError::Invalid(m) => Self::bad_request(m),
            RunError::Internal(m) => Self::internal(m),
        }
    }
}

impl From<EnvError> for ApiError {
    fn from(err: EnvError) -> Self {
        let message = err.to_string();
        match err {
            EnvError::NotFound(_) => Self::not_found(message),
            EnvError::Escape(_) | EnvError::PermissionDenied(_) => Self::forbidden(message),
            EnvError::InvalidInput(_) => Self::bad_request(message),
            EnvError::NotADirectory(_) | EnvError::IsADirectory(_) => Self::bad_request(message),
            EnvError::AlreadyExists(_) => Self::new(StatusCode::CONFLICT, "AlreadyExistsError", message),
            EnvError::TooLarge { .. } => Self::new(StatusCode::PAYLOAD_TOO_LARGE, "FileTooLargeError", message),
            EnvError::Unsupported(_) => Self::new(StatusCode::NOT_IMPLEMENTED, "UnsupportedError", message),
            EnvError::Unavailable(_) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "EnvironmentUnavailableError", message),
            EnvError::Busy(_) => {
                Self { retry_after: Some(crate::search::gate::RETRY_AFTER_SECS), ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "BusyError", message) }
            }
            EnvError::Io(_) => Self::internal(message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, name = self.name, "{}", self.message);
        }
        let body = ErrorBody { name: self.name.to_string(), data: ErrorData { message: self.message }, extra: self.extra };
        let mut res = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        res
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
