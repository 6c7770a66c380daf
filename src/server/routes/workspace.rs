//! OpenCode's experimental workspace API: the environments a client can make
//! (`adapter`), making, listing and destroying workspaces, their status, and
//! moving a session from one to another (`warp`). The workspaces themselves
//! live in [`crate::workspace`]; every other route picks one by `?workspace=`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as JsonBody;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::session::{check_id, require};
use super::DirectoryParams;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::protocol::session::Session;
use crate::server::extract::{Json, Path};
use crate::server::AppState;
use crate::session::events::Scope;
use crate::session::service::place_in;
use crate::workspace::{Adapter, Info, StatusRow};

#[utoipa::path(get, path = "/experimental/workspace/adapter", tag = "experimental", operation_id = "experimental.workspace.adapter.list", params(DirectoryParams),
    responses((status = 200, description = "Workspace adapters: the environment kinds, then the named envs/ definitions", body = Vec<Object>)))]
pub async fn adapters(State(st): State<Arc<AppState>>) -> JsonBody<Vec<Adapter>> {
    JsonBody(st.workspaces.adapters())
}

#[utoipa::path(get, path = "/experimental/workspace", tag = "experimental", operation_id = "experimental.workspace.list", params(DirectoryParams),
    responses((status = 200, description = "Workspaces", body = Vec<Object>)))]
pub async fn list(State(st): State<Arc<AppState>>) -> JsonBody<Vec<Info>> {
    JsonBody(st.workspaces.list())
}

#[utoipa::path(get, path = "/experimental/workspace/status", tag = "experimental", operation_id = "experimental.workspace.status", params(DirectoryParams),
    responses((status = 200, description = "Workspace status", body = Vec<Object>)))]
pub async fn status(State(st): State<Arc<AppState>>) -> JsonBody<Vec<StatusRow>> {
    JsonBody(st.workspaces.statuses())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    #[schema(pattern = "^wrk")]
    id: Option<String>,
    /// An adapter: `local`, `docker`, `ssh`, `s3`, or the name of an envs/ definition.
    #[serde(rename = "type")]
    kind: String,
    branch: Option<String>,
    /// An inline definition (the fields of an envs/*.toml file), laid over the adapter's.
    #[schema(value_type = Option<Object>)]
    extra: Option<Value>,
}

/// Makes a workspace; its environment opens on its first request.
#[utoipa::path(post, path = "/experimental/workspace", tag = "experimental", operation_id = "experimental.workspace.create", params(DirectoryParams),
    request_body = CreateBody,
    responses((status = 200, description = "Workspace created", body = Object), (status = 400, description = "WorkspaceCreateError", body = ErrorBody),
        (status = 403, description = "This server does not let clients create workspaces", body = ErrorBody)))]
pub async fn create(State(st): State<Arc<AppState>>, Json(body): Json<CreateBody>) -> ApiResult<JsonBody<Info>> {
    Ok(JsonBody(st.workspaces.create(body.id, &body.kind, body.branch, body.extra).await?))
}

/// Destroys a workspace: its container is removed, its SSH connection closed, its caches dropped.
#[utoipa::path(delete, path = "/experimental/workspace/{id}", tag = "experimental", operation_id = "experimental.workspace.remove",
    params(("id" = String, Path, pattern = "^wrk"), DirectoryParams),
    responses((status = 200, description = "Workspace removed", body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<JsonBody<Info>> {
    check_id(&id, "wrk", "id")?;
    Ok(JsonBody(st.workspaces.remove(&id).await?))
}

/// Reads the stored workspaces again (another server sharing the data folder may have made some).
#[utoipa::path(post, path = "/experimental/workspace/sync-list", tag = "experimental", operation_id = "experimental.workspace.syncList", params(DirectoryParams),
    responses((status = 204, description = "Workspace list synced")))]
pub async fn sync_list(State(st): State<Arc<AppState>>) -> ApiResult<StatusCode> {
    st.workspaces.reload().await.map_err(|e| ApiError::internal(format!("cannot read the workspaces: {e:#}")))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WarpBody {
    /// The workspace to move to; `null` is the server's own environment.
    #[schema(pattern = "^wrk")]
    id: Option<String>,
    #[serde(rename = "sessionID")]
    #[schema(pattern = "^ses")]
    session_id: String,
    #[serde(rename = "copyChanges", default)]
    copy_changes: bool,
}

fn warp_error(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "WorkspaceWarpError", message)
}

/// Moves a session to another workspace: its next turns run there.
#[utoipa::path(post, path = "/experimental/workspace/warp", tag = "experimental", operation_id = "experimental.workspace.warp", params(DirectoryParams),
    request_body = WarpBody,
    responses((status = 204, description = "Session warped"), (status = 400, description = "WorkspaceWarpError", body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn warp(State(st): State<Arc<AppState>>, Json(body): Json<WarpBody>) -> ApiResult<StatusCode> {
    let session: Session = require(&st, &body.session_id).await?;
    if let Some(id) = &body.id {
        check_id(id, "wrk", "id")?;
        if !st.workspaces.exists(id) {
            return Err(ApiError::not_found(format!("no workspace {id}")));
        }
    }
    if body.copy_changes {
        return Err(warp_error("copyChanges is not supported: workspaces do not share a version-control history to move changes with"));
    }
    if st.runtime.sessions.runs.is_busy(&session.id) {
        return Err(warp_error(format!("session {} is working; abort it or wait before moving it", session.id)));
    }
    // The session moves to the target's folder (see `place_in`).
    let target = match &body.id {
        Some(id) => st.workspaces.scope(id).await?,
        None => st.scope.clone(),
    };
    let inst = target.instances.resolve(&*target.runtime.env, st.started_ms, None).await?;
    let scope = Scope { directory: session.directory.clone(), project: session.project_id.clone() };
    let to = body.id;
    st.runtime
        .sessions
        .store
        .update_session(&scope, &session.id, move |s| {
            s.workspace_id = to;
            place_in(s, &inst);
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
