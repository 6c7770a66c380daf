//! `/pty`: terminals. Create, list, rename and resize, remove; the WebSocket
//! that streams one lives in `pty_connect`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json as JsonResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::DirectoryParams;
use crate::env::PtySize;
use crate::error::{ApiError, ErrorBody};
use crate::pty::shell::{self, ShellInfo};
use crate::pty::{CreateRequest, PtyInfo, Terminal};
use crate::server::extract::{Ctx, Json, Ws};
use crate::server::instance::Instance;
use crate::server::AppState;
use crate::workspace::Scope;

/// A `/pty` failure: an OpenCode error body, or the reference's tagged
/// `PtyNotFoundError` and `PtyForbiddenError`.
pub enum PtyError {
    Api(ApiError),
    NotFound(String),
    Forbidden,
}

/// The body of a 404 for a terminal that does not exist (or no longer runs).
#[derive(Serialize, ToSchema)]
pub struct PtyNotFound {
    #[serde(rename = "_tag")]
    pub tag: String,
    #[serde(rename = "ptyID")]
    pub pty_id: String,
    pub message: String,
}

/// The body of a 403 for a connect ticket asked for the wrong way.
#[derive(Serialize, ToSchema)]
pub struct PtyForbidden {
    #[serde(rename = "_tag")]
    pub tag: &'static str,
    pub message: &'static str,
}

impl IntoResponse for PtyError {
    fn into_response(self) -> Response {
        match self {
            PtyError::Api(e) => e.into_response(),
            PtyError::NotFound(id) => {
                let body = PtyNotFound { tag: "PtyNotFoundError".into(), message: format!("PTY session not found: {id}"), pty_id: id };
                (StatusCode::NOT_FOUND, JsonResponse(body)).into_response()
            }
            PtyError::Forbidden => {
                let body = PtyForbidden { tag: "PtyForbiddenError", message: "Invalid PTY connect token request" };
                (StatusCode::FORBIDDEN, JsonResponse(body)).into_response()
            }
        }
    }
}

impl From<ApiError> for PtyError {
    fn from(e: ApiError) -> Self {
        PtyError::Api(e)
    }
}

impl From<crate::env::EnvError> for PtyError {
    fn from(e: crate::env::EnvError) -> Self {
        PtyError::Api(e.into())
    }
}

/// Checks the id's shape (400) and finds the running terminal of this directory (404).
pub fn find(ws: &Scope, inst: &Instance, id: &str) -> Result<Arc<Terminal>, PtyError> {
    if !id.starts_with("pty") {
        return Err(ApiError::bad_request(format!("Expected a string starting with \"pty\", got {id:?}")).into());
    }
    ws.ptys.get(&inst.directory, id).ok_or_else(|| PtyError::NotFound(id.to_string()))
}

/// A program, argument or variable value as the document describes it: a process cannot take a NUL byte.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = r"^[^\u0000]*$")]
#[allow(dead_code)]
pub struct PtyArg(String);

/// `POST /pty`'s body (named apart from `POST /session`'s in the document).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = PtyCreateBody)]
pub struct CreateBody {
    /// The program to run; the user's shell by default.
    #[schema(value_type = Option<PtyArg>)]
    pub command: Option<String>,
    #[schema(value_type = Option<Vec<PtyArg>>)]
    pub args: Option<Vec<String>>,
    /// Where it starts (absolute inside the workspace, or relative to the directory).
    pub cwd: Option<String>,
    pub title: Option<String>,
    #[schema(value_type = Option<HashMap<String, PtyArg>>)]
    pub env: Option<HashMap<String, String>>,
}

#[utoipa::path(get, path = "/pty/shells", tag = "pty", operation_id = "pty.shells", params(DirectoryParams),
    responses((status = 200, description = "Shells installed where terminals run", body = Vec<ShellInfo>)))]
pub async fn shells(Ws(ws): Ws, _ctx: Ctx) -> JsonResponse<Vec<ShellInfo>> {
    JsonResponse(shell::list(&*ws.runtime.env).await)
}

#[utoipa::path(get, path = "/pty", tag = "pty", operation_id = "pty.list", params(DirectoryParams),
    responses((status = 200, description = "List of sessions", body = Vec<PtyInfo>)))]
pub async fn list(Ws(ws): Ws, Ctx(inst): Ctx) -> JsonResponse<Vec<PtyInfo>> {
    JsonResponse(ws.ptys.list(&inst.directory))
}

#[utoipa::path(post, path = "/pty", tag = "pty", operation_id = "pty.create", params(DirectoryParams),
    request_body = CreateBody,
    responses((status = 200, description = "Created session", body = PtyInfo), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 501, body = ErrorBody)))]
pub async fn create(Ws(ws): Ws, Ctx(inst): Ctx, Json(body): Json<CreateBody>) -> Result<JsonResponse<PtyInfo>, PtyError> {
    if !ws.runtime.env.capabilities().pty {
        return Err(
            ApiError::new(StatusCode::NOT_IMPLEMENTED, "UnsupportedError", format!("the {} environment has no terminals", ws.runtime.env.kind())).into()
        );
    }
    let cwd = match body.cwd.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => inst.resolve(ws.runtime.env.root(), c)?,
        None => inst.dir.clone(),
    };
    ws.runtime.env.confine(&cwd).await?;
    let req = CreateRequest {
        command: body.command,
        args: body.args,
        cwd,
        title: body.title,
        env: body.env.unwrap_or_default(),
        directory: inst.directory.clone(),
        project: inst.project.id.clone(),
    };
    let info = ws.ptys.create(req).await.map_err(|e| match e {
        // The program or the folder is missing: the request named something wrong.
        crate::env::EnvError::NotFound(what) | crate::env::EnvError::Io(what) => ApiError::bad_request(format!("cannot start the terminal: {what}")),
        other => other.into(),
    })?;
    Ok(JsonResponse(info))
}

#[utoipa::path(get, path = "/pty/{ptyID}", tag = "pty", operation_id = "pty.get", params(DirectoryParams, ("ptyID" = String, Path)),
    responses((status = 200, body = PtyInfo), (status = 400, body = ErrorBody), (status = 404, body = PtyNotFound)))]
pub async fn get(Ws(ws): Ws, Ctx(inst): Ctx, Path(id): Path<String>) -> Result<JsonResponse<PtyInfo>, PtyError> {
    Ok(JsonResponse(find(&ws, &inst, &id)?.info()))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SizeBody {
    #[schema(minimum = 1, maximum = 65535)]
    #[serde(deserialize_with = "crate::protocol::num::whole_u16")]
    pub rows: u16,
    #[schema(minimum = 1, maximum = 65535)]
    #[serde(deserialize_with = "crate::protocol::num::whole_u16")]
    pub cols: u16,
}

/// `PUT /pty/{ptyID}`'s body (named apart from `PATCH /session/{sessionID}`'s).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = PtyUpdateBody)]
pub struct UpdateBody {
    /// A new title; an empty one is ignored.
    pub title: Option<String>,
    pub size: Option<SizeBody>,
}

#[utoipa::path(put, path = "/pty/{ptyID}", tag = "pty", operation_id = "pty.update", params(DirectoryParams, ("ptyID" = String, Path)),
    request_body = UpdateBody,
    responses((status = 200, body = PtyInfo), (status = 400, body = ErrorBody), (status = 404, body = PtyNotFound)))]
pub async fn update(Ws(ws): Ws, Ctx(inst): Ctx, Path(id): Path<String>, Json(body): Json<UpdateBody>) -> Result<JsonResponse<PtyInfo>, PtyError> {
    let terminal = find(&ws, &inst, &id)?;
    let size = match body.size {
        Some(SizeBody { rows: 0, .. }) => return Err(ApiError::bad_request("size.rows must be greater than 0").into()),
        Some(SizeBody { cols: 0, .. }) => return Err(ApiError::bad_request("size.cols must be greater than 0").into()),
        Some(s) => Some(PtySize { rows: s.rows, cols: s.cols }),
        None => None,
    };
    Ok(JsonResponse(ws.ptys.update(&terminal, body.title, size).await))
}

#[utoipa::path(delete, path = "/pty/{ptyID}", tag = "pty", operation_id = "pty.remove", params(DirectoryParams, ("ptyID" = String, Path)),
    responses((status = 200, description = "Session removed", body = bool), (status = 400, body = ErrorBody), (status = 404, body = PtyNotFound)))]
pub async fn remove(Ws(ws): Ws, Ctx(inst): Ctx, Path(id): Path<String>) -> Result<JsonResponse<bool>, PtyError> {
    let terminal = find(&ws, &inst, &id)?;
    ws.ptys.remove(&terminal).await;
    Ok(JsonResponse(true))
}

#[derive(Serialize, ToSchema)]
pub struct ConnectToken {
    pub ticket: String,
    /// Seconds the ticket stays good.
    pub expires_in: u64,
}

#[utoipa::path(post, path = "/pty/{ptyID}/connect-token", tag = "pty", operation_id = "pty.connectToken",
    params(DirectoryParams, ("ptyID" = String, Path)),
    responses((status = 200, body = ConnectToken), (status = 403, description = "Not asked for with x-opencode-ticket: 1, or from a foreign page", body = PtyForbidden),
        (status = 404, body = PtyNotFound)))]
pub async fn connect_token(
    State(st): State<Arc<AppState>>,
    Ws(ws): Ws,
    Ctx(inst): Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<JsonResponse<ConnectToken>, PtyError> {
    if headers.get("x-opencode-ticket").and_then(|v| v.to_str().ok()) != Some("1") || st.policy.foreign_page(&headers) {
        return Err(PtyError::Forbidden);
    }
    find(&ws, &inst, &id)?;
    let ticket = ws.ptys.tickets.issue(&id, &inst.directory);
    Ok(JsonResponse(ConnectToken { ticket, expires_in: crate::pty::ticket::TICKET_TTL.as_secs() }))
}
