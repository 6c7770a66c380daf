//! `PATCH /project/{projectID}`: what a client sets on a project (name, icon,
//! commands), kept in the session store, and shown wherever a project is.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json as JsonResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::DirectoryParams;
use crate::error::{ApiResult, ErrorBody};
use crate::protocol::project::{Project, ProjectCommands, ProjectIcon, ProjectSettings};
use crate::server::extract::{Ctx, Json, Path, Ws};
use crate::server::AppState;

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
    pub icon: Option<ProjectIcon>,
    pub commands: Option<ProjectCommands>,
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
    let store = &st.runtime.sessions.store;
    let mut settings: ProjectSettings = store.project_settings(&id).await?;
    if let Some(name) = b.name {
        settings.name = Some(name);
    }
    if let Some(icon) = b.icon {
        let mut merged = settings.icon.take().unwrap_or_default();
        merged.url = icon.url.or(merged.url);
        merged.r#override = icon.r#override.or(merged.r#override);
        merged.color = icon.color.or(merged.color);
        settings.icon = Some(merged);
    }
    if let Some(commands) = b.commands {
        settings.commands = Some(commands);
    }
    store.put_project_settings(&id, &settings).await?;
    let project = project.with_settings(&settings);
    // Server-wide, as OpenCode sends it (for its "global" directory).
    st.runtime.bus.publish(None, Some(&id), "project.updated", &project);
    Ok(JsonResponse(project).into_response())
}
