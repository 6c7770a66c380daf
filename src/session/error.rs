//! Errors of the session store and runners. They say what went wrong, not
//! how a client hears it: the HTTP mapping lives in the HTTP error module, which
//! only `server/` uses.

use crate::config::ConfigError;
use crate::env::EnvError;

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

/// Why a runner (a prompt, a command, a compaction, a shell command) failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Env(#[from] EnvError),
    /// A config file of the directory is broken; the message names it.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The request cannot run as asked: an unknown command, agent or model,
    /// or a part that does not parse. The message says which.
    #[error("{0}")]
    Invalid(String),
    /// A bug or a broken backend, not the client's doing: a task that
    /// panicked, a part the store cannot hold.
    #[error("{0}")]
    Internal(String),
}

impl RunError {
    pub fn invalid(message: impl Into<String>) -> Self {
        RunError::Invalid(message.into())
    }

    pub fn internal(message: impl Into<String>) -> Self {
        RunError::Internal(message.into())
    }

    /// The session is held by another run.
    pub fn busy(session_id: &str) -> Self {
        RunError::Store(StoreError::Busy(session_id.to_string()))
    }
}

pub type RunResult<T> = Result<T, RunError>;
