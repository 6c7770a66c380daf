//! `/experimental/worktree` (list, create, remove, reset) and `POST /vcs/apply`:
//! git run in the environment (see [`crate::worktree`] and [`crate::vcs`]).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json as JsonResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::DirectoryParams;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::instance::Instance;
use crate::server::extract::{Ctx, Json, OptionalJson, Ws};
use crate::server::AppState;
use crate::vcs;
use crate::workspace::Scope;
use crate::worktree::{self, Failure, Repo, Worktree, WorktreeError};

impl From<WorktreeError> for ApiError {
    fn from(e: WorktreeError) -> Self {
        match e {
            WorktreeError::Failed(kind, message) => ApiError::new(StatusCode::BAD_REQUEST, kind.name(), message),
            WorktreeError::Env(e) => e.into(),
        }
    }
}

/// OpenCode's `Worktree`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Worktree)]
pub struct WorktreeInfo {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    pub directory: String,
}

impl From<Worktree> for WorktreeInfo {
    fn from(w: Worktree) -> Self {
        Self { name: w.name, branch: w.branch, directory: w.directory }
    }
}

/// OpenCode's `WorktreeCreateInput`; the body may be left out.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorktreeCreateInput {
    /// Slugged (lower case, `-` between words); a random name when empty.
    pub name: Option<String>,
    /// Additional startup script to run after the project's start command
    #[serde(rename = "startCommand")]
    pub start_command: Option<String>,
}

/// OpenCode's `WorktreeRemoveInput` and `WorktreeResetInput`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorktreeDirectoryInput {
    /// The worktree's directory (absolute, or relative to the request's directory).
    pub directory: String,
}

async fn repo(ws: &Scope, inst: &Instance) -> ApiResult<(Repo, Vec<Worktree>)> {
    if inst.project.vcs.is_none() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, Failure::NotGit.name(), "Worktrees are only supported for git projects"));
    }
    Ok(Repo::find(&*ws.runtime.env, &inst.dir).await?)
}

/// The directories of the project's worktrees. Empty outside a git project,
/// as in OpenCode.
#[utoipa::path(get, path = "/experimental/worktree", tag = "experimental", operation_id = "worktree.list", params(DirectoryParams),
    responses((status = 200, description = "List of worktree directories", body = Vec<String>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(Ws(ws): Ws, Ctx(inst): Ctx) -> ApiResult<JsonResponse<Vec<String>>> {
    if inst.project.vcs.is_none() {
        return Ok(JsonResponse(Vec::new()));
    }
    let (_, worktrees) = Repo::find(&*ws.runtime.env, &inst.dir).await?;
    Ok(JsonResponse(worktrees.into_iter().map(|w| w.directory).collect()))
}

/// Makes a worktree on a new branch `opencode/<name>` and answers at once;
/// its files are checked out after, then `worktree.ready` (or
/// `worktree.failed`) is published for its directory and the start commands
/// run there.
#[utoipa::path(post, path = "/experimental/worktree", tag = "experimental", operation_id = "worktree.create", params(DirectoryParams),
    request_body(content = Option<WorktreeCreateInput>),
    responses((status = 200, description = "Worktree created", body = WorktreeInfo), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create(
    State(st): State<Arc<AppState>>,
    Ws(ws): Ws,
    Ctx(inst): Ctx,
    OptionalJson(b): OptionalJson<WorktreeCreateInput>,
) -> ApiResult<JsonResponse<WorktreeInfo>> {
    let (repo, _) = repo(&ws, &inst).await?;
    let made = repo.create(&*ws.runtime.env, b.name.as_deref()).await?;
    let mut start: Vec<String> = Vec::new();
    if let Some(project_start) = super::project::start_command(&st, &inst.project.id).await? {
        start.push(project_start);
    }
    start.extend(b.start_command);
    tokio::spawn(worktree::populate(ws.runtime.env.clone(), ws.runtime.bus.clone(), inst.project.id.clone(), made.clone(), start));
    Ok(JsonResponse(made.into()))
}

/// Removes one of the project's worktrees and deletes its branch. A directory
/// that is not one of them is a 400 `WorktreeRemoveFailedError` (OpenCode
/// deletes whatever folder it is given; Burrow deletes only its worktrees).
#[utoipa::path(delete, path = "/experimental/worktree", tag = "experimental", operation_id = "worktree.remove", params(DirectoryParams),
    request_body(content = WorktreeDirectoryInput),
    responses((status = 200, description = "Worktree removed", body = bool), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove(Ws(ws): Ws, Ctx(inst): Ctx, Json(b): Json<WorktreeDirectoryInput>) -> ApiResult<JsonResponse<bool>> {
    let (repo, worktrees) = repo(&ws, &inst).await?;
    let dir = inst.resolve(ws.runtime.env.root(), &b.directory)?;
    repo.remove(&*ws.runtime.env, &worktrees, &dir).await?;
    ws.instances.dispose(&dir);
    Ok(JsonResponse(true))
}

/// Puts a worktree back at the default branch (fetched first when there is a
/// remote), with no changes and no untracked files, then runs the project's
/// start command there.
#[utoipa::path(post, path = "/experimental/worktree/reset", tag = "experimental", operation_id = "worktree.reset", params(DirectoryParams),
    request_body(content = WorktreeDirectoryInput),
    responses((status = 200, description = "Worktree reset", body = bool), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn reset(State(st): State<Arc<AppState>>, Ws(ws): Ws, Ctx(inst): Ctx, Json(b): Json<WorktreeDirectoryInput>) -> ApiResult<JsonResponse<bool>> {
    let (repo, worktrees) = repo(&ws, &inst).await?;
    let dir = inst.resolve(ws.runtime.env.root(), &b.directory)?;
    let wdir = repo.reset(&*ws.runtime.env, &worktrees, &dir).await?;
    if let Some(start) = super::project::start_command(&st, &inst.project.id).await? {
        let env = ws.runtime.env.clone();
        tokio::spawn(async move { worktree::run_start(&*env, &wdir, &[start]).await });
    }
    Ok(JsonResponse(true))
}

/// The body of `POST /vcs/apply`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VcsApplyInput {
    /// A unified patch, as `git diff` (and `/vcs/diff/raw`) writes one.
    pub patch: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VcsApplyResult {
    pub applied: bool,
}

/// Why a patch was not applied.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum VcsApplyReason {
    /// The directory is not in a git repository (or nothing runs there).
    NonGit,
    /// The patch does not apply to the working tree as it is.
    NotClean,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VcsApplyErrorData {
    pub message: String,
    pub reason: VcsApplyReason,
}

/// OpenCode's `VcsApplyError`: `{name, data: {message, reason}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VcsApplyError {
    /// Always `VcsApplyError`.
    pub name: String,
    pub data: VcsApplyErrorData,
}

fn apply_error(reason: VcsApplyReason, message: String) -> Response {
    (StatusCode::BAD_REQUEST, JsonResponse(VcsApplyError { name: "VcsApplyError".into(), data: VcsApplyErrorData { message, reason } })).into_response()
}

/// Applies a patch to the working tree with `git apply`, in the environment:
/// all of it, or nothing when a hunk does not fit (a 400 `VcsApplyError`
/// with reason `not-clean` and git's message). Outside a git repository (and
/// on object storage, which runs no git) a 400 with reason `non-git`.
#[utoipa::path(post, path = "/vcs/apply", tag = "vcs", operation_id = "vcs.apply", params(DirectoryParams),
    request_body(content = VcsApplyInput),
    responses((status = 200, description = "VCS patch applied", body = VcsApplyResult), (status = 400, body = VcsApplyError), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn vcs_apply(Ws(ws): Ws, Ctx(inst): Ctx, Json(b): Json<VcsApplyInput>) -> ApiResult<Response> {
    if inst.project.vcs.is_none() {
        return Ok(apply_error(VcsApplyReason::NonGit, "Patch can't be applied because the project is not git-based".into()));
    }
    match vcs::apply(&*ws.runtime.env, &inst.dir, &b.patch).await? {
        Ok(()) => Ok(JsonResponse(VcsApplyResult { applied: true }).into_response()),
        Err(why) => Ok(apply_error(VcsApplyReason::NotClean, format!("Patch can't be applied: {why}"))),
    }
}
