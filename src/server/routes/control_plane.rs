//! `POST /experimental/control-plane/move-session`: a session moves to another
//! folder of its project (another worktree, or a folder below one), in the
//! workspace it lives in; with `moveChanges`, its uncommitted changes go with it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::session::check_id;
use super::DirectoryParams;
use crate::env::{EnvError, WorkspacePath};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::server::extract::Json;
use crate::server::AppState;
use crate::session::error::StoreError;
use crate::session::events::Scope;
use crate::session::moving;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    /// The folder to move to: absolute, or relative to the workspace root.
    directory: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveBody {
    #[serde(rename = "sessionID")]
    #[schema(pattern = "^ses")]
    session_id: String,
    destination: Destination,
    /// Carry the source folder's uncommitted changes (untracked files too) to the
    /// destination's worktree, and take them out of the source.
    #[serde(rename = "moveChanges", default)]
    move_changes: bool,
}

fn move_error(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "MoveSessionError", message)
}

/// Moves a session, as OpenCode does: nothing to do when it is there already;
/// the destination must belong to the session's project; changes move only
/// between different worktrees, and leave the source only once the
/// destination took them. The session's `directory` and `path` change (a
/// `session.updated`); its next turns work in the destination.
#[utoipa::path(post, path = "/experimental/control-plane/move-session", tag = "controlPlane", operation_id = "experimental.controlPlane.moveSession",
    params(DirectoryParams), request_body = MoveBody,
    responses((status = 204, description = "Session moved"), (status = 400, description = "MoveSessionError", body = ErrorBody),
        (status = 403, description = "The destination is outside the session's workspace", body = ErrorBody),
        (status = 409, description = "The session is working", body = ErrorBody)))]
pub async fn move_session(State(st): State<Arc<AppState>>, Json(body): Json<MoveBody>) -> ApiResult<StatusCode> {
    check_id(&body.session_id, "ses", "sessionID")?;
    let session = match st.runtime.sessions.store.session(&body.session_id).await {
        Err(StoreError::NotFound(_)) => return Err(move_error(format!("Session not found: {}", body.session_id))),
        other => other?,
    };
    let scope = match session.workspace_id.as_deref().filter(|w| st.workspaces.exists(w)) {
        Some(w) => st.workspaces.scope(w).await?,
        None => st.scope.clone(),
    };
    let env = &*scope.runtime.env;
    let wanted = body.destination.directory.trim();
    if wanted.is_empty() {
        return Err(move_error("destination.directory is empty"));
    }
    let dest_path = if WorkspacePath::is_absolute(wanted) { WorkspacePath::parse(env.root(), wanted) } else { WorkspacePath::root().join_checked(wanted) }
        .map_err(|e| match e {
            EnvError::Escape(_) => ApiError::forbidden(format!("destination {wanted} is outside the session's workspace")),
            other => move_error(format!("destination {wanted}: {other}")),
        })?;
    let destination = dest_path.absolute(env.root());
    if destination == session.directory {
        return Ok(StatusCode::NO_CONTENT);
    }
    if st.runtime.sessions.runs.is_busy(&session.id) {
        return Err(ApiError::busy(&session.id));
    }
    let to = scope.instances.resolve(env, st.started_ms, Some(&destination)).await.map_err(|e| move_error(format!("destination {destination}: {e}")))?;
    if to.project.id != session.project_id {
        return Err(move_error("Destination directory belongs to another project"));
    }
    let from = scope
        .instances
        .resolve(env, st.started_ms, Some(&session.directory))
        .await
        .map_err(|e| move_error(format!("the session's folder {}: {e}", session.directory)))?;

    let patch = if body.move_changes && from.project.worktree != to.project.worktree {
        if !moving::is_repository(env, &from.dir).await {
            return Err(move_error("Source is not a Git repository"));
        }
        let patch = moving::capture(env, &from.dir).await.map_err(|e| move_error(format!("cannot capture the session's changes: {e}")))?;
        if !patch.is_empty() {
            if !moving::is_repository(env, &to.dir).await {
                return Err(move_error("Destination is not a Git repository"));
            }
            moving::apply(env, &to.dir, &patch).await.map_err(|e| {
                move_error(format!("Unable to apply your changes in the destination directory. The files may conflict with existing changes. ({e})"))
            })?;
        }
        patch
    } else {
        Vec::new()
    };

    let path = crate::session::service::relative(&to.project.worktree, &to.directory);
    let event_scope = Scope::of(&to);
    let directory = to.directory.clone();
    st.runtime.sessions.store.update_session(&event_scope, &session.id, move |s| (s.directory, s.path) = (directory, Some(path))).await?;
    if !patch.is_empty() {
        moving::discard(env, &from.dir, &patch)
            .await
            .map_err(|e| move_error(format!("the changes are in {} now, but could not be taken out of {}: {e}", to.directory, from.directory)))?;
    }
    Ok(StatusCode::NO_CONTENT)
}
