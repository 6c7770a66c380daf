//! Talking to the Docker daemon: connecting, and turning its errors into
//! errors a client can act on.

use anyhow::Context;
use bollard::errors::Error as DockerError;
use bollard::Docker;

use crate::env::EnvError;

/// Connects to `DOCKER_HOST` (unix, tcp or https) or the local socket, and
/// settles on the newest API version both sides speak.
pub async fn connect() -> anyhow::Result<Docker> {
    let where_ = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let docker = Docker::connect_with_defaults().with_context(|| format!("cannot use the Docker daemon at {where_}"))?;
    let docker =
        docker.negotiate_version().await.with_context(|| format!("cannot reach the Docker daemon at {where_} (is it running? is DOCKER_HOST right?)"))?;
    tracing::debug!(api = %docker.client_version(), "connected to docker at {where_}");
    Ok(docker)
}

/// What went wrong, from the daemon's answer.
pub enum Failure {
    /// The container is gone (404) or not running (409).
    ContainerDown(String),
    /// The daemon cannot be reached.
    DaemonDown(String),
    Other(String),
}

pub fn classify(err: &DockerError) -> Failure {
    match err {
        DockerError::DockerResponseServerError { status_code: 404 | 409, message } => Failure::ContainerDown(message.clone()),
        DockerError::IOError { .. } | DockerError::HyperResponseError { .. } | DockerError::SocketNotFoundError(_) | DockerError::RequestTimeoutError => {
            Failure::DaemonDown(err.to_string())
        }
        other => Failure::Other(other.to_string()),
    }
}

/// An error that is not about the container's state.
pub fn other(what: &str, err: DockerError) -> EnvError {
    match classify(&err) {
        Failure::DaemonDown(m) => EnvError::Unavailable(format!("{what}: the Docker daemon does not answer: {m}")),
        Failure::ContainerDown(m) | Failure::Other(m) => EnvError::Io(format!("{what}: {m}")),
    }
}
