//! `PATCH /project/{projectID}`: what a client sets on a project (name, icon,
//! commands), kept in the session store, and shown wherever a project is;
//! and project copies (`/experimental/project/{projectID}/copy`): git
//! worktrees made in the environment, as OpenCode's `git_worktree` strategy.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json as JsonResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{DirectoryParams, LocationParams};
use crate::error::{ApiResult, ErrorBody};
use crate::instance::Instance;
use crate::protocol::project::{Project, ProjectCommands, ProjectIcon, ProjectSettings};
use crate::server::extract::{Ctx, Json, OptionalJson, Path, Ws};
use crate::server::AppState;
use crate::workspace::Scope;
use crate::worktree::{self, Failure, Repo, WorktreeError};

/// `project` with what clients set on it.
pub async fn shown(st: &AppState, project: Project) -> ApiResult<Project> {
    let settings = st.runtime.sessions.store.project_settings(&project.id).await?;
    Ok(project.with_settings(&settings))
}

/// The project's start command (`commands.start`), run in each new worktree.
pub async fn start_command(st: &AppState, project_id: &str) -> ApiResult<Option<String>> {
    let settings = st.runtime.sessions.store.project_settings(project_id).await?;
    Ok(settings.commands.and_then(|c| c.start).filter(|s| !s.trim().is_empty()))
}

/// The body of `PATCH /project/{projectID}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectUpdate {
    pub name: Option<String>,
    /// Read as JSON first: serde would take an array for a struct, and the document says an object.
    #[schema(value_type = Option<ProjectIcon>)]
    pub icon: Option<serde_json::Value>,
    #[schema(value_type = Option<ProjectCommands>)]
    pub commands: Option<serde_json::Value>,
}

/// `value` as a `T`, which must be written as a JSON object.
fn object<T: serde::de::DeserializeOwned>(field: &str, value: serde_json::Value) -> ApiResult<T> {
    if !value.is_object() {
        return Err(crate::error::ApiError::bad_request(format!("`{field}` must be an object, not {value}")));
    }
    serde_json::from_value(value).map_err(|e| crate::error::ApiError::bad_request(format!("`{field}`: {e}")))
}

/// OpenCode's `ProjectNotFoundError`, whose shape is its own.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectNotFoundError {
    /// Always `ProjectNotFoundError`.
    pub _tag: String,
    #[serde(rename = "projectID")]
    pub project_id: String,
    pub message: String,
}

/// Sets a project's name, icon or start command; what the body leaves out
/// stays (an icon's fields one by one). Answers the project and publishes
/// `project.updated`. A project the server has not seen is a 404.
#[utoipa::path(patch, path = "/project/{projectID}", tag = "project", operation_id = "project.update", params(("projectID" = String, Path), DirectoryParams),
    request_body = ProjectUpdate,
    responses((status = 200, description = "Updated project information", body = Project), (status = 400, body = ErrorBody),
        (status = 404, body = ProjectNotFoundError)))]
pub async fn update(State(st): State<Arc<AppState>>, Ws(ws): Ws, Ctx(inst): Ctx, Path(id): Path<String>, Json(b): Json<ProjectUpdate>) -> ApiResult<Response> {
    let project = if inst.project.id == id { Some(inst.project.clone()) } else { ws.instances.projects().await.into_iter().find(|p| p.id == id) };
    let Some(project) = project else {
        let body = ProjectNotFoundError { _tag: "ProjectNotFoundError".into(), project_id: id.clone(), message: format!("Project not found: {id}") };
        return Ok((StatusCode::NOT_FOUND, JsonResponse(body)).into_response());
    };
    let icon: Option<ProjectIcon> = b.icon.map(|v| object("icon", v)).transpose()?;
    let commands: Option<ProjectCommands> = b.commands.map(|v| object("commands", v)).transpose()?;
    let store = &st.runtime.sessions.store;
    let mut settings: ProjectSettings = store.project_settings(&id).await?;
    if let Some(name) = b.name {
        settings.name = Some(name);
    }
    if let Some(icon) = icon {
        let mut merged = settings.icon.take().unwrap_or_default();
        merged.url = icon.url.or(merged.url);
        merged.r#override = icon.r#override.or(merged.r#override);
        merged.color = icon.color.or(merged.color);
        settings.icon = Some(merged);
    }
    if let Some(commands) = commands {
        settings.commands = Some(commands);
    }
    store.put_project_settings(&id, &settings).await?;
    let project = project.with_settings(&settings);
    // Server-wide, as OpenCode sends it (for its "global" directory).
    st.runtime.bus.publish(None, Some(&id), "project.updated", &project);
    Ok(JsonResponse(project).into_response())
}

/// The body of `POST /experimental/project/{projectID}/copy`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectCopyCreate {
    /// How to copy: `git_worktree` (the only one Burrow has, as OpenCode).
    pub strategy: String,
    /// The folder the copy goes in (absolute, or relative to the request's directory).
    pub directory: String,
    /// The copy's folder name; random when absent.
    pub name: Option<String>,
}

/// The body of `DELETE /experimental/project/{projectID}/copy`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectCopyRemove {
    pub directory: String,
    /// Remove it even with changes.
    pub force: bool,
}

/// OpenCode's `ProjectCopy.Copy`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectCopy {
    pub directory: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectCopyErrorData {
    pub message: String,
    /// Set when the copy holds changes and `force` would remove it.
    #[serde(rename = "forceRequired", skip_serializing_if = "Option::is_none")]
    pub force_required: Option<bool>,
}

/// OpenCode's `ProjectCopyError`: `{name, data: {message, forceRequired?}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectCopyError {
    /// Always `ProjectCopyError`.
    pub name: String,
    pub data: ProjectCopyErrorData,
}

fn copy_error(message: String, force_required: bool) -> Response {
    let data = ProjectCopyErrorData { message, force_required: force_required.then_some(true) };
    (StatusCode::BAD_REQUEST, JsonResponse(ProjectCopyError { name: "ProjectCopyError".into(), data })).into_response()
}

/// Any failure of a copy route as OpenCode reports it: a `ProjectCopyError`.
fn copy_failure(e: WorktreeError) -> ApiResult<Response> {
    match e {
        WorktreeError::Failed(kind, message) => Ok(copy_error(message, kind == Failure::CopyForceRequired)),
        WorktreeError::Env(e) => Err(e.into()),
    }
}

/// The repository of project `id`, which must be the request's own.
async fn copy_repo(ws: &Scope, inst: &Instance, id: &str) -> Result<Repo, Response> {
    if inst.project.id != id {
        return Err(copy_error(format!("Project {id} is not the project of {}", inst.directory), false));
    }
    if inst.project.vcs.is_none() {
        return Err(copy_error(format!("Project copies are made with git, and {} is not in a git repository", inst.directory), false));
    }
    match Repo::find(&*ws.runtime.env, &inst.dir).await {
        Ok((repo, _)) => Ok(repo),
        Err(WorktreeError::Failed(_, message)) => Err(copy_error(message, false)),
        Err(WorktreeError::Env(e)) => Err(crate::error::ApiError::from(e).into_response()),
    }
}

/// Makes a copy of the project to work on apart: a git worktree (detached at
/// HEAD) in `directory`, made by git in the environment. Publishes
/// `project.directories.updated`.
#[utoipa::path(post, path = "/experimental/project/{projectID}/copy", tag = "projectCopy", operation_id = "v2.projectCopy.create",
    params(("projectID" = String, Path), LocationParams), request_body = ProjectCopyCreate,
    responses((status = 200, description = "ProjectCopy.Copy", body = ProjectCopy), (status = 400, body = ProjectCopyError), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn copy_create(
    State(st): State<Arc<AppState>>,
    Ws(ws): Ws,
    Ctx(inst): Ctx,
    Path(id): Path<String>,
    Json(b): Json<ProjectCopyCreate>,
) -> ApiResult<Response> {
    if b.strategy.trim() != worktree::COPY_STRATEGY {
        return Ok(copy_error(format!("Project copy strategy unavailable: {}", b.strategy), false));
    }
    let repo = match copy_repo(&ws, &inst, &id).await {
        Ok(r) => r,
        Err(res) => return Ok(res),
    };
    let parent = inst.resolve(ws.runtime.env.root(), &b.directory)?;
    match repo.copy(&*ws.runtime.env, &parent, b.name.as_deref()).await {
        Ok(directory) => {
            st.runtime.bus.publish(None, Some(&id), "project.directories.updated", serde_json::json!({ "projectID": id }));
            Ok(JsonResponse(ProjectCopy { directory }).into_response())
        }
        Err(e) => copy_failure(e),
    }
}

/// Removes a copy of the project (any of its git worktrees but the main
/// one); one with changes needs `force: true`.
#[utoipa::path(delete, path = "/experimental/project/{projectID}/copy", tag = "projectCopy", operation_id = "v2.projectCopy.remove",
    params(("projectID" = String, Path), LocationParams), request_body = ProjectCopyRemove,
    responses((status = 204, description = "Removed"), (status = 400, body = ProjectCopyError), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn copy_remove(
    State(st): State<Arc<AppState>>,
    Ws(ws): Ws,
    Ctx(inst): Ctx,
    Path(id): Path<String>,
    Json(b): Json<ProjectCopyRemove>,
) -> ApiResult<Response> {
    let repo = match copy_repo(&ws, &inst, &id).await {
        Ok(r) => r,
        Err(res) => return Ok(res),
    };
    let dir = inst.resolve(ws.runtime.env.root(), &b.directory)?;
    match repo.remove_copy(&*ws.runtime.env, &dir, b.force).await {
        Ok(()) => {
            ws.instances.dispose(&dir);
            st.runtime.bus.publish(None, Some(&id), "project.directories.updated", serde_json::json!({ "projectID": id }));
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(e) => copy_failure(e),
    }
}

/// Brings the project's copies up to date with the disk: git forgets those
/// whose folders are gone (`git worktree prune`).
#[utoipa::path(post, path = "/experimental/project/{projectID}/copy/refresh", tag = "projectCopy", operation_id = "v2.projectCopy.refresh",
    params(("projectID" = String, Path), LocationParams),
    responses((status = 204, description = "Refreshed"), (status = 400, body = ProjectCopyError), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn copy_refresh(State(st): State<Arc<AppState>>, Ws(ws): Ws, Ctx(inst): Ctx, Path(id): Path<String>) -> ApiResult<Response> {
    let repo = match copy_repo(&ws, &inst, &id).await {
        Ok(r) => r,
        Err(res) => return Ok(res),
    };
    match repo.prune(&*ws.runtime.env).await {
        Ok(()) => {
            st.runtime.bus.publish(None, Some(&id), "project.directories.updated", serde_json::json!({ "projectID": id }));
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(e) => copy_failure(e),
    }
}

/// The body of `POST .../copy/generate-name`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateNameInput {
    /// What the task is about.
    pub context: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GeneratedName {
    pub name: String,
}

/// A short name for a copy, from the first words of `context` (OpenCode asks
/// a model; Burrow slugs the words), or a random one without any.
#[utoipa::path(post, path = "/experimental/project/{projectID}/copy/generate-name", tag = "projectCopy", operation_id = "experimental.projectCopy.generateName",
    params(("projectID" = String, Path), DirectoryParams), request_body(content = Option<GenerateNameInput>),
    responses((status = 200, description = "Success", body = GeneratedName), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn copy_generate_name(_ctx: Ctx, Path(_id): Path<String>, OptionalJson(b): OptionalJson<GenerateNameInput>) -> JsonResponse<GeneratedName> {
    JsonResponse(GeneratedName { name: worktree::copy_name(b.context.as_deref()) })
}
