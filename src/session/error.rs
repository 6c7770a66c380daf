//! Errors of the session store and runners, and how they reach clients.

use axum::http::StatusCode;

use crate::error::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The message is the client-facing one, e.g. `Session not found: ses_x`.
    #[error("{0}")]
    NotFound(String),
    /// Another run holds the session.
    #[error("Session is busy: {0}")]
    Busy(String),
    #[error("session store: {0}")]
    Db(String),
}

impl StoreError {
    pub fn db(context: impl std::fmt::Display, err: rusqlite::Error) -> Self {
        StoreError::Db(format!("{context}: {err}"))
    }

    pub fn session_not_found(id: &str) -> Self {
        StoreError::NotFound(format!("Session not found: {id}"))
    }

    pub fn message_not_found(id: &str) -> Self {
        StoreError::NotFound(format!("Message not found: {id}"))
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        StoreError::Db(err.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(err: serde_json::Error) -> Self {
        StoreError::Db(format!("stored JSON: {err}"))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Busy(id) => busy(&id),
            StoreError::Db(m) => ApiError::internal(m),
        }
    }
}

/// The 409 body. OpenCode answers `{"_tag":"SessionBusyError","sessionID","message"}`;
/// Burrow adds the usual `{name, data}` so clients of either shape read it.
pub fn busy(session_id: &str) -> ApiError {
    let message = format!("Session is busy: {session_id}");
    ApiError::new(StatusCode::CONFLICT, "SessionBusyError", message.clone())
        .with_field("_tag", "SessionBusyError")
        .with_field("sessionID", session_id)
        .with_field("message", message)
}
