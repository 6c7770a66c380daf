//! Pending permission requests: list them, answer them (`/permission/{id}/reply`
//! and the deprecated per-session form).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::DirectoryParams;
use crate::agent::permission::Reply;
use crate::error::ErrorBody;
use crate::server::extract::Json;
use crate::server::AppState;

/// OpenCode's answer for a request that is not pending (any more).
#[derive(Serialize, ToSchema)]
pub struct PermissionNotFound {
    #[serde(rename = "_tag")]
    pub tag: &'static str,
    #[serde(rename = "requestID")]
    pub request_id: String,
    pub message: String,
}

fn not_found(id: &str) -> Response {
    let body = PermissionNotFound { tag: "PermissionNotFoundError", request_id: id.to_string(), message: format!("Permission request not found: {id}") };
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

async fn answer(st: &AppState, id: &str, reply: Reply, message: Option<String>) -> Response {
    if st.runtime.permissions.reply(id, reply, message).is_none() {
        return not_found(id);
    }
    match saved(st).await {
        Ok(()) => axum::Json(true).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Writes what an `always` reply saved before the client hears it is saved.
pub async fn saved(st: &AppState) -> Result<(), crate::error::ApiError> {
    st.runtime.permissions.flush().await.map_err(|e| crate::error::ApiError::internal(format!("cannot store the saved permission answers: {e:#}")))
}

#[utoipa::path(get, path = "/permission", tag = "permission", operation_id = "permission.list", params(DirectoryParams),
    responses((status = 200, description = "List of pending permissions", body = Vec<Object>)))]
pub async fn list(State(st): State<Arc<AppState>>) -> axum::Json<Vec<Value>> {
    axum::Json(st.runtime.permissions.list())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyBody {
    pub reply: Reply,
    /// With `reject`: what the model should do instead.
    pub message: Option<String>,
}

#[utoipa::path(post, path = "/permission/{requestID}/reply", tag = "permission", operation_id = "permission.reply",
    params(("requestID" = String, Path), DirectoryParams), request_body = ReplyBody,
    responses((status = 200, description = "Permission processed successfully", body = bool),
        (status = 400, body = ErrorBody), (status = 404, body = PermissionNotFound)))]
pub async fn reply(State(st): State<Arc<AppState>>, Path(id): Path<String>, Json(body): Json<ReplyBody>) -> Response {
    answer(&st, &id, body.reply, body.message).await
}

#[derive(Deserialize, ToSchema)]
pub struct RespondBody {
    pub response: Reply,
}

#[utoipa::path(post, path = "/session/{sessionID}/permissions/{permissionID}", tag = "session", operation_id = "permission.respond",
    params(("sessionID" = String, Path), ("permissionID" = String, Path), DirectoryParams), request_body = RespondBody,
    responses((status = 200, description = "Permission processed successfully", body = bool),
        (status = 400, body = ErrorBody), (status = 404, body = PermissionNotFound)))]
pub async fn respond(State(st): State<Arc<AppState>>, Path((session, id)): Path<(String, String)>, Json(body): Json<RespondBody>) -> Response {
    if let Err(e) = super::session::check_id(&session, "ses", "sessionID") {
        return e.into_response();
    }
    answer(&st, &id, body.response, None).await
}
