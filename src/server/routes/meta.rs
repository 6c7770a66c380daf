//! Health, paths, projects (and `git init`), VCS and Burrow's capability report.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::DirectoryParams;
use crate::env::{Capabilities, TextIndexStatus, WatchEvent};
use crate::error::{ApiError, ApiResult, ErrorBody};
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
pub async fn projects(State(st): State<Arc<AppState>>, Ws(ws): Ws, _ctx: Ctx) -> ApiResult<Json<Vec<Project>>> {
    let mut out = Vec::new();
    for project in ws.instances.projects().await {
        out.push(super::project::shown(&st, project).await?);
    }
    Ok(Json(out))
}

#[utoipa::path(get, path = "/project/current", tag = "project", operation_id = "project.current", params(DirectoryParams),
    responses((status = 200, body = Project), (status = 403, body = ErrorBody)))]
pub async fn current_project(State(st): State<Arc<AppState>>, Ctx(inst): Ctx) -> ApiResult<Json<Project>> {
    Ok(Json(super::project::shown(&st, inst.project.clone()).await?))
}

/// Makes the request's directory a git repository (`git init`, in the
/// environment) and answers with its project as the server now sees it: a
/// repository is named by its root commit, so until the first commit it is
/// still the global project. Where nothing runs (object storage) or git is
/// not installed: 501; a failing `git init` (a read-only folder): 500.
#[utoipa::path(post, path = "/project/git/init", tag = "project", operation_id = "project.initGit", params(DirectoryParams),
    responses((status = 200, body = Project), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 500, body = ErrorBody),
        (status = 501, body = ErrorBody)))]
pub async fn git_init(State(st): State<Arc<AppState>>, Ws(ws): Ws, Ctx(inst): Ctx) -> ApiResult<Json<Project>> {
    if !ws.runtime.env.capabilities().exec {
        return Err(ApiError::new(StatusCode::NOT_IMPLEMENTED, "UnsupportedError", format!("the {} environment runs no git", ws.runtime.env.kind())));
    }
    if inst.project.vcs.is_none() {
        if vcs::git(&*ws.runtime.env, &inst.dir, &["--version"]).await.is_none() {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "UnsupportedError",
                format!("git is not installed in the {} environment", ws.runtime.env.kind()),
            ));
        }
        vcs::git(&*ws.runtime.env, &inst.dir, &["init", "-q"]).await.ok_or_else(|| ApiError::internal(format!("git init failed in {}", inst.directory)))?;
        ws.instances.dispose(&inst.dir);
    }
    let now = ws.instances.resolve(&*ws.runtime.env, st.started_ms, Some(&inst.directory)).await?;
    Ok(Json(super::project::shown(&st, now.project.clone()).await?))
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
    /// The state of the indexed text search, when the environment keeps an index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_index: Option<TextIndexStatus>,
    pub undo: Undo,
}

/// Whether revert and unrevert work here, and how snapshots are kept.
#[derive(Serialize, ToSchema)]
pub struct Undo {
    pub enabled: bool,
    /// How the environment keeps snapshots: `store` (Burrow's own, in the
    /// server or in the helper next to the data), `git` (the environment's git).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Why undo is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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
        text_index: ws.runtime.env.text_index().await,
        undo: match ws.runtime.env.snapshots() {
            Ok(method) => Undo { enabled: true, method: Some(method.to_string()), reason: None },
            Err(reason) => Undo { enabled: false, method: None, reason: Some(reason) },
        },
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
/// It also rebuilds the text index in the background (the current one answers
/// meanwhile). A Burrow extension; environments that watch for changes need no
/// refresh to stay fresh.
#[utoipa::path(post, path = "/burrow/refresh", tag = "burrow",
    responses((status = 200, body = bool), (status = 503, body = ErrorBody)))]
pub async fn refresh(Ws(ws): Ws) -> ApiResult<Json<bool>> {
    ws.runtime.env.refresh().await?;
    ws.indexes.dispatch(&WatchEvent::Rescan);
    Ok(Json(true))
}
