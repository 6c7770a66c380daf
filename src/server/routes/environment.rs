//! `POST /burrow/env/recreate` (a Burrow extension): replace an environment
//! whose container died with a fresh one, without restarting the server.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiResult, ErrorBody};
use crate::server::extract::Ws;

#[derive(Debug, Serialize, ToSchema)]
pub struct Recreated {
    /// `docker`, ...
    pub env: String,
    /// What now serves the workspace, e.g. the new container's name.
    pub name: String,
}

/// For Docker: a new container from the same image (with `--copy` uploaded or
/// `--mount` bound again), or, with `--container`, the same container started
/// again. Environments that cannot answer 501.
#[utoipa::path(post, path = "/burrow/env/recreate", tag = "burrow",
    responses((status = 200, body = Recreated), (status = 501, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn recreate(Ws(ws): Ws) -> ApiResult<Json<Recreated>> {
    let name = ws.runtime.env.recreate().await?;
    Ok(Json(Recreated { env: ws.runtime.env.kind().to_string(), name }))
}
