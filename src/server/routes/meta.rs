//! Health, paths, projects, VCS and Burrow's capability report.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::DirectoryParams;
use crate::env::{Capabilities, WatchEvent};
use crate::error::{ApiResult, ErrorBody};
use crate::protocol::project::{Health, PathInfo, Project, VcsInfo};
use crate::server::extract::{Ctx, Ws};
use crate::server::AppState;
use crate::vcs;

#[utoipa::path(get, path = "/global/health", tag = "global", operation_id = "global.health",
    responses((status = 200, description = "Health information", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { healthy: true, version: crate::OPENCODE_VERSION.to_string() })
}

#[utoipa::path(get, path = "/path", tag = "path", operation_id = "path.get", params(DirectoryParams),
    responses((status = 200, body = PathInfo), (status = 403, body = ErrorBody)))]
pub async fn path(State(st): State<Arc<AppState>>, Ctx(inst): Ctx) -> Json<PathInfo> {
    Json(PathInfo {
        home: st.runtime.dirs.home.clone(),
        state: st.runtime.dirs.state.clone(),
        config: st.runtime.dirs.config.clone(),
        worktree: inst.project.worktree.clone(),
        directory: inst.directory.clone(),
    })
}

#[utoipa::path(get, path = "/project", tag = "project", operation_id = "project.list", params(DirectoryParams),
    responses((status = 200, description = "List of projects", body = Vec<Project>)))]
pub async fn projects(Ws(ws): Ws, _ctx: Ctx) -> Json<Vec<Project>> {
    Json(ws.instances.projects().await)
}

#[utoipa::path(get, path = "/project/current", tag = "project", operation_id = "project.current", params(DirectoryParams),
    responses((status = 200, body = Project), (status = 403, body = ErrorBody)))]
pub async fn current_project(Ctx(inst): Ctx) -> Json<Project> {
    Json(inst.project.clone())
}

#[utoipa::path(get, path = "/vcs", tag = "vcs", operation_id = "vcs.get", params(DirectoryParams),
    responses((status = 200, body = VcsInfo)))]
pub async fn vcs_info(Ws(ws): Ws, Ctx(inst): Ctx) -> ApiResult<Json<VcsInfo>> {
    if inst.project.vcs.is_none() {
        return Ok(Json(VcsInfo::default()));
    }
    let (branch, default_branch) = tokio::join!(vcs::branch(&*ws.runtime.env, &inst.dir), vcs::default_branch(&*ws.runtime.env, &inst.dir));
    Ok(Json(VcsInfo { branch, default_branch }))
}

/// What Burrow's environment is and can do (a Burrow extension).
#[derive(Serialize, ToSchema)]
pub struct BurrowInfo {
    /// Burrow's own version.
    pub version: String,
    /// The OpenCode server version whose protocol Burrow speaks.
    pub protocol: String,
    /// `local`, `docker`, `ssh` or `object`.
    pub env: String,
    pub root: String,
    pub capabilities: Capabilities,
}

#[utoipa::path(get, path = "/burrow/capabilities", tag = "burrow", operation_id = "burrow.capabilities",
    responses((status = 200, body = BurrowInfo)))]
pub async fn capabilities(Ws(ws): Ws) -> Json<BurrowInfo> {
    Json(BurrowInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        protocol: crate::OPENCODE_VERSION.to_string(),
        env: ws.runtime.env.kind().to_string(),
        root: ws.runtime.env.root().to_string(),
        capabilities: ws.runtime.env.capabilities(),
    })
}

/// The root answers, so clients that probe `GET /` before connecting
/// (PocketPaw) find a live server. OpenCode serves its web app here.
#[utoipa::path(get, path = "/", tag = "global", operation_id = "burrow.root",
    responses((status = 200, description = "The server is up", body = Health)))]
pub async fn root() -> Json<Health> {
    health().await
}

/// Forgets what Burrow cached about the workspace (an object store's listing
/// index), so the next search and file find see changes made by others at once.
/// A Burrow extension; environments that watch for changes need no refresh.
#[utoipa::path(post, path = "/burrow/refresh", tag = "burrow",
    responses((status = 200, body = bool), (status = 503, body = ErrorBody)))]
pub async fn refresh(Ws(ws): Ws) -> ApiResult<Json<bool>> {
    ws.runtime.env.refresh().await?;
    ws.indexes.dispatch(&WatchEvent::Rescan);
    Ok(Json(true))
}
