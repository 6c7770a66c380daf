use thiserror::Error;

/// What can go wrong in an environment, in terms a client can act on.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EnvError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("path escapes the workspace root: {0}")]
    Escape(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("not a directory: {0}")]
    NotADirectory(String),
    #[error("is a directory: {0}")]
    IsADirectory(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("{path} is {size} bytes, more than the limit of {limit}")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("this environment cannot {0}")]
    Unsupported(String),
    #[error("environment unavailable: {0}")]
    Unavailable(String),
    /// Refused for now because too much of its kind is running (see
    /// `search::gate`); the client should retry shortly.
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Io(String),
}

impl EnvError {
    /// Maps an I/O error about `path` to the variant a client understands.
    pub fn from_io(err: std::io::Error, path: &str) -> Self {
        use std::io::ErrorKind as K;
        match err.kind() {
            K::NotFound => Self::NotFound(path.to_string()),
            K::PermissionDenied => Self::PermissionDenied(path.to_string()),
            K::AlreadyExists => Self::AlreadyExists(path.to_string()),
            K::NotADirectory => Self::NotADirectory(path.to_string()),
            K::IsADirectory => Self::IsADirectory(path.to_string()),
            K::InvalidInput | K::InvalidFilename => Self::InvalidInput(format!("{path}: {err}")),
            _ => Self::Io(format!("{path}: {err}")),
        }
    }
}

pub type EnvResult<T> = Result<T, EnvError>;
