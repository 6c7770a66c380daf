//! `POST /instance/dispose`, `POST /global/dispose` and `GET /vcs/status`.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::DirectoryParams;
use crate::error::{ApiResult, ErrorBody};
use crate::protocol::file::FileChange;
use crate::server::extract::{Ctx, Ws};
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
