//! A session's messages: the paged history, one message, deleting one, and
//! the user's shell commands.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json as JsonBody;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::session::{check_id, require, where_it_runs};
use super::DirectoryParams;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::protocol::message::{MessageWithParts, ModelRef};
use crate::protocol::part::Part;
use crate::server::extract::{Ctx, Json, Path, Query, Ws};
use crate::server::AppState;
use crate::session::events::Scope;
use crate::session::shell::{self, ShellRequest};
use crate::session::store::Cursor;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct MessagesParams {
    directory: Option<String>,
    workspace: Option<String>,
    /// The newest this many messages; 0 or absent means all of them.
    #[serde(default, deserialize_with = "crate::protocol::num::safe")]
    #[param(maximum = 9007199254740991_u64)]
    limit: Option<u64>,
    /// The cursor of the next (older) page, from `X-Next-Cursor` or `Link`.
    before: Option<String>,
}

/// Messages oldest first. With a `limit` and older messages left, the
/// response carries the next page's cursor in `X-Next-Cursor` and `Link`.
#[utoipa::path(get, path = "/session/{sessionID}/message", tag = "session", operation_id = "session.messages",
    params(("sessionID" = String, Path), MessagesParams),
    responses((status = 200, body = Vec<MessageWithParts>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<MessagesParams>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    // The session first: a missing one is a 404 whatever the cursor says.
    require(&st, &id).await?;
    let before = match q.before.as_deref() {
        None => None,
        Some(_) if q.limit.is_none() => return Err(ApiError::bad_request("before needs a limit")),
        Some(raw) => Some(Cursor::decode(raw).ok_or_else(|| ApiError::bad_request("before is not a cursor from X-Next-Cursor"))?),
    };
    let limit = q.limit.filter(|&l| l > 0).map(|l| l as usize);
    let page = st.runtime.sessions.store.messages(&id, limit, before).await?;
    let (Some(next), Some(limit)) = (page.next, limit) else {
        return Ok(JsonBody(page.messages).into_response());
    };
    let cursor = next.encode();
    let link = format!("<{}>; rel=\"next\"", next_url(&uri, &headers, limit, &cursor));
    let mut res = JsonBody(page.messages).into_response();
    let h = res.headers_mut();
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Link, X-Next-Cursor"));
    if let Ok(v) = HeaderValue::from_str(&link) {
        h.insert(header::LINK, v);
    }
    if let Ok(v) = HeaderValue::from_str(&cursor) {
        h.insert("x-next-cursor", v);
    }
    Ok(res)
}

/// This request's URL with `limit` and `before` set to the next page.
fn next_url(uri: &Uri, headers: &HeaderMap, limit: usize, cursor: &str) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let mut pairs: Vec<(String, String)> = uri.query().and_then(|q| serde_urlencoded::from_str(q).ok()).unwrap_or_default();
    pairs.retain(|(k, _)| k != "limit" && k != "before");
    pairs.push(("limit".into(), limit.to_string()));
    pairs.push(("before".into(), cursor.to_string()));
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("http://{host}{}?{query}", uri.path())
}

#[utoipa::path(get, path = "/session/{sessionID}/message/{messageID}", tag = "session", operation_id = "session.message",
    params(("sessionID" = String, Path), ("messageID" = String, Path), DirectoryParams),
    responses((status = 200, body = MessageWithParts), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(State(st): State<Arc<AppState>>, Path((id, message_id)): Path<(String, String)>) -> ApiResult<JsonBody<MessageWithParts>> {
    check_id(&id, "ses", "sessionID")?;
    check_id(&message_id, "msg", "messageID")?;
    Ok(JsonBody(st.runtime.sessions.store.message(&id, &message_id).await?))
}

/// Deletes a message and its parts; refused while the session works.
#[utoipa::path(delete, path = "/session/{sessionID}/message/{messageID}", tag = "session", operation_id = "session.deleteMessage",
    params(("sessionID" = String, Path), ("messageID" = String, Path), DirectoryParams),
    responses((status = 200, body = bool), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(State(st): State<Arc<AppState>>, Ctx(inst): Ctx, Path((id, message_id)): Path<(String, String)>) -> ApiResult<JsonBody<bool>> {
    require(&st, &id).await?;
    check_id(&message_id, "msg", "messageID")?;
    if st.runtime.sessions.runs.is_busy(&id) {
        return Err(ApiError::busy(&id));
    }
    st.runtime.sessions.store.remove_message(&Scope::of(&inst), &id, &message_id).await?;
    Ok(JsonBody(true))
}

/// Deletes one part of a message; refused while the session works.
#[utoipa::path(delete, path = "/session/{sessionID}/message/{messageID}/part/{partID}", tag = "session", operation_id = "part.delete",
    params(("sessionID" = String, Path), ("messageID" = String, Path), ("partID" = String, Path), DirectoryParams),
    responses((status = 200, body = bool), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn part_delete(
    State(st): State<Arc<AppState>>,
    Ctx(inst): Ctx,
    Path((id, message_id, part_id)): Path<(String, String, String)>,
) -> ApiResult<JsonBody<bool>> {
    require(&st, &id).await?;
    check_id(&message_id, "msg", "messageID")?;
    check_id(&part_id, "prt", "partID")?;
    if st.runtime.sessions.runs.is_busy(&id) {
        return Err(ApiError::busy(&id));
    }
    st.runtime.sessions.store.remove_part(&Scope::of(&inst), &id, &message_id, &part_id).await?;
    Ok(JsonBody(true))
}

/// Replaces one part of a message with the part in the body; the path names
/// the part (ids in the body are replaced by the path's). Refused while the
/// session works. Publishes `message.part.updated`.
#[utoipa::path(patch, path = "/session/{sessionID}/message/{messageID}/part/{partID}", tag = "session", operation_id = "part.update",
    params(("sessionID" = String, Path), ("messageID" = String, Path), ("partID" = String, Path), DirectoryParams), request_body = Part,
    responses((status = 200, body = Part), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn part_update(
    State(st): State<Arc<AppState>>,
    Ctx(inst): Ctx,
    Path((id, message_id, part_id)): Path<(String, String, String)>,
    Json(mut part): Json<Part>,
) -> ApiResult<JsonBody<Part>> {
    require(&st, &id).await?;
    check_id(&message_id, "msg", "messageID")?;
    check_id(&part_id, "prt", "partID")?;
    (part.id, part.message_id, part.session_id) = (part_id.clone(), message_id.clone(), id.clone());
    let message = st.runtime.sessions.store.message(&id, &message_id).await?;
    if !message.parts.iter().any(|p| p.id == part_id) {
        return Err(ApiError::not_found(format!("Part not found: {part_id}")));
    }
    if st.runtime.sessions.runs.is_busy(&id) {
        return Err(ApiError::busy(&id));
    }
    st.runtime.sessions.store.put_part(&Scope::of(&inst), part.clone()).await?;
    Ok(JsonBody(part))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ShellModel {
    #[serde(rename = "providerID")]
    provider_id: String,
    #[serde(rename = "modelID")]
    model_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ShellBody {
    /// The id to give the user message.
    #[serde(rename = "messageID")]
    #[schema(pattern = "^msg")]
    message_id: Option<String>,
    /// An agent's name: not blank.
    #[schema(pattern = r"\S")]
    agent: String,
    model: Option<ShellModel>,
    /// A command line for the user's shell (no NUL byte).
    #[schema(pattern = r"^[^\u0000]*$")]
    command: String,
}

/// Runs a command in the request's directory with the user's shell and
/// records it in the session. Answers when the command has ended.
#[utoipa::path(post, path = "/session/{sessionID}/shell", tag = "session", operation_id = "session.shell",
    params(("sessionID" = String, Path), DirectoryParams), request_body = ShellBody,
    responses((status = 200, description = "The assistant message with the bash tool part", body = MessageWithParts),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 501, description = "The environment cannot run commands", body = ErrorBody)))]
pub async fn shell(
    State(st): State<Arc<AppState>>,
    Ctx(inst): Ctx,
    Ws(ws): Ws,
    Path(id): Path<String>,
    Json(body): Json<ShellBody>,
) -> ApiResult<JsonBody<MessageWithParts>> {
    let session = require(&st, &id).await?;
    if let Some(m) = &body.message_id {
        check_id(m, "msg", "messageID")?;
    }
    if body.agent.trim().is_empty() {
        return Err(ApiError::bad_request("agent must name an agent"));
    }
    let req = ShellRequest {
        agent: body.agent,
        command: body.command,
        model: body.model.map(|m| ModelRef { provider_id: m.provider_id, model_id: m.model_id, variant: None }),
        message_id: body.message_id,
    };
    let (rt, inst) = where_it_runs(&st, ws, inst, &session).await?;
    Ok(JsonBody(shell::run(&rt, inst, session, req).await?))
}
