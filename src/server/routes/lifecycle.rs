//! `POST /instance/dispose`, `POST /global/dispose`, `GET /vcs/status` and
//! `GET /vcs/diff` (and its raw form).

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::DirectoryParams;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::protocol::file::FileChange;
use crate::server::extract::{Ctx, Query, Ws};
use crate::vcs;

/// Forgets what the server resolved for the directory (its project, whether
/// it is a git repository); the next request finds it afresh. Sessions and
/// running work are untouched: they live in the session store, not the instance.
#[utoipa::path(post, path = "/instance/dispose", tag = "instance", operation_id = "instance.dispose", params(DirectoryParams),
    responses((status = 200, description = "Instance disposed", body = bool), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn instance_dispose(Ws(ws): Ws, Ctx(inst): Ctx) -> Json<bool> {
    ws.instances.dispose(&inst.dir);
    Json(true)
}

/// [`instance_dispose`] for every directory.
#[utoipa::path(post, path = "/global/dispose", tag = "global", operation_id = "global.dispose",
    responses((status = 200, description = "Global disposed", body = bool)))]
pub async fn global_dispose(Ws(ws): Ws) -> Json<bool> {
    ws.instances.dispose_all();
    Json(true)
}

/// One changed file of `GET /vcs/status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VcsFileStatus {
    pub file: String,
    pub additions: u64,
    pub deletions: u64,
    pub status: FileChange,
}

/// Changed files of the working tree against HEAD, without patches, computed
/// by git in the environment. Empty outside a repository and where nothing runs.
#[utoipa::path(get, path = "/vcs/status", tag = "vcs", operation_id = "vcs.status", params(DirectoryParams),
    responses((status = 200, description = "VCS status", body = Vec<VcsFileStatus>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn vcs_status(Ws(ws): Ws, Ctx(inst): Ctx) -> ApiResult<Json<Vec<VcsFileStatus>>> {
    if inst.project.vcs.is_none() {
        return Ok(Json(Vec::new()));
    }
    let files = vcs::status(&*ws.runtime.env, &inst.dir).await?;
    Ok(Json(files.into_iter().map(|f| VcsFileStatus { file: f.path, additions: f.added, deletions: f.removed, status: f.status }).collect()))
}

/// What `/vcs/diff` compares the working tree with.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DiffMode {
    /// The last commit: the uncommitted changes.
    Git,
    /// Where the branch left the default branch (`main`, `master` or the remote's HEAD).
    Branch,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffParams {
    #[param(inline)]
    mode: DiffMode,
    /// Lines of context around each change (default 3).
    #[param(minimum = 0, maximum = 100000)]
    context: Option<u32>,
}

/// One changed file of `GET /vcs/diff`, with its patch.
#[derive(Debug, Serialize, ToSchema)]
pub struct VcsFileDiff {
    pub file: String,
    pub patch: String,
    pub additions: u64,
    pub deletions: u64,
    pub status: FileChange,
}

fn base(mode: DiffMode) -> vcs::DiffBase {
    match mode {
        DiffMode::Git => vcs::DiffBase::Head,
        DiffMode::Branch => vcs::DiffBase::Branch,
    }
}

/// The changed files with their patches, computed by git in the environment;
/// untracked files count as added. Empty outside a repository.
#[utoipa::path(get, path = "/vcs/diff", tag = "vcs", operation_id = "vcs.diff", params(DirectoryParams, DiffParams),
    responses((status = 200, description = "VCS diff", body = Vec<VcsFileDiff>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn vcs_diff(Ws(ws): Ws, Ctx(inst): Ctx, Query(q): Query<DiffParams>) -> ApiResult<Json<Vec<VcsFileDiff>>> {
    let context = q.context.unwrap_or(3);
    if context > 100_000 {
        return Err(ApiError::bad_request("context must be at most 100000"));
    }
    if inst.project.vcs.is_none() {
        return Ok(Json(Vec::new()));
    }
    let files = vcs::diff(&*ws.runtime.env, &inst.dir, base(q.mode), context).await;
    Ok(Json(
        files.into_iter().map(|f| VcsFileDiff { file: f.path, patch: f.patch, additions: f.additions, deletions: f.deletions, status: f.status }).collect(),
    ))
}

/// The uncommitted changes as one unified diff (`git diff HEAD`, untracked
/// files as new ones). Empty outside a repository.
#[utoipa::path(get, path = "/vcs/diff/raw", tag = "vcs", operation_id = "vcs.diff.raw", params(DirectoryParams),
    responses((status = 200, description = "The diff", content_type = "text/x-diff; charset=utf-8", body = String), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn vcs_diff_raw(Ws(ws): Ws, Ctx(inst): Ctx) -> Response {
    let text = if inst.project.vcs.is_none() {
        String::new()
    } else {
        vcs::diff(&*ws.runtime.env, &inst.dir, vcs::DiffBase::Head, 3).await.into_iter().map(|f| f.patch).collect::<String>()
    };
    ([(header::CONTENT_TYPE, "text/x-diff; charset=utf-8")], text).into_response()
}
