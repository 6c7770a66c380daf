//! The saved `always` answers (v2 `GET /api/permission/saved`, `DELETE
//! /api/permission/saved/{id}`): each allows one permission for one pattern
//! in one project, kept in the session database across restarts. Removing one makes its calls
//! ask again.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as JsonBody;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::agent::permission::SavedRule;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::server::extract::{Path, Query};
use crate::server::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SavedParams {
    /// Only the answers saved in this project.
    #[serde(rename = "projectID")]
    #[param(rename = "projectID")]
    project_id: Option<String>,
}

/// `{data: [...]}`, oldest first.
#[derive(Serialize, ToSchema)]
pub struct SavedList {
    pub data: Vec<SavedRule>,
}

#[utoipa::path(get, path = "/api/permission/saved", tag = "v2", operation_id = "v2.permission.saved.list", summary = "List saved permissions",
    description = "Retrieve saved permissions, optionally filtered by project.", params(SavedParams),
    responses((status = 200, body = SavedList), (status = 400, body = ErrorBody)))]
pub async fn list(State(st): State<Arc<AppState>>, Query(q): Query<SavedParams>) -> JsonBody<SavedList> {
    JsonBody(SavedList { data: st.runtime.permissions.saved(q.project_id.as_deref()) })
}

#[utoipa::path(delete, path = "/api/permission/saved/{id}", tag = "v2", operation_id = "v2.permission.saved.remove", summary = "Remove saved permission",
    description = "Remove a saved permission by ID.", params(("id" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    if !st.runtime.permissions.remove_saved(&id) {
        return Err(ApiError::not_found(format!("saved permission not found: {id}")));
    }
    super::permission::saved(&st).await?;
    Ok(StatusCode::NO_CONTENT)
}
