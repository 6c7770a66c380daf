//! Prompting a session: `POST /session/{id}/message` (answers with the last
//! assistant message when the turn is over), `prompt_async` (204 at once).
//! A prompt sent while the session works waits its turn (see
//! `session::runs`); the routes' answers do not change. Also
//! slash commands, `init` and `summarize`, and the aliases other clients use
//! (CodeTether's `prompt` and `interrupt`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as JsonBody;
use serde::Deserialize;
use utoipa::ToSchema;

use super::session::{abort as abort_session, check_id, require, where_it_runs};
use super::DirectoryParams;
use crate::agent::input::{ModelChoice, PromptBody};
use crate::error::{ApiResult, ErrorBody};
use crate::protocol::message::MessageWithParts;
use crate::server::extract::{Ctx, Json, Path, Ws};
use crate::server::instance::Instance;
use crate::server::AppState;
use crate::session::prompt::{self, CommandBody};
use crate::session::runtime::Runtime;
use crate::workspace::Scope as WsScope;

/// The session a prompt goes to, with its ids checked, and where its turn
/// runs: the runtime and instance of the session's own workspace.
async fn admit(
    st: &Arc<AppState>,
    ctx: Ctx,
    ws: Arc<WsScope>,
    id: &str,
    body: &PromptBody,
) -> ApiResult<(Arc<Runtime>, Arc<Instance>, crate::protocol::session::Session)> {
    let session = require(st, id).await?;
    if let Some(m) = &body.message_id {
        check_id(m, "msg", "messageID")?;
    }
    let (rt, inst) = where_it_runs(st, ws, ctx.0, &session).await?;
    Ok((rt, inst, session))
}

/// Sends a message and waits for the agent's answer. Provider failures do
/// not fail the request: they are in the answer's `info.error`. On a busy
/// session the message is stored at once and answered in its turn.
#[utoipa::path(post, path = "/session/{sessionID}/message", tag = "session", operation_id = "session.prompt",
    params(("sessionID" = String, Path), DirectoryParams), request_body(content = Object, description = "parts, model (object or \"provider/model\"), agent, system, noReply"),
    responses((status = 200, body = MessageWithParts), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn message(
    State(st): State<Arc<AppState>>,
    ctx: Ctx,
    Ws(ws): Ws,
    Path(id): Path<String>,
    Json(body): Json<PromptBody>,
) -> ApiResult<JsonBody<MessageWithParts>> {
    let (rt, inst, session) = admit(&st, ctx, ws, &id, &body).await?;
    Ok(JsonBody(prompt::run(rt, inst, session, body).await?))
}

/// Sends a message and answers once it is stored and queued; the turn goes on
/// in the background.
#[utoipa::path(post, path = "/session/{sessionID}/prompt_async", tag = "session", operation_id = "session.prompt_async",
    params(("sessionID" = String, Path), DirectoryParams), request_body(content = Object),
    responses((status = 204, description = "Prompt accepted"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn prompt_async(
    State(st): State<Arc<AppState>>,
    ctx: Ctx,
    Ws(ws): Ws,
    Path(id): Path<String>,
    Json(body): Json<PromptBody>,
) -> ApiResult<StatusCode> {
    let (rt, inst, session) = admit(&st, ctx, ws, &id, &body).await?;
    prompt::start(rt, inst, session, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// CodeTether's `prompt`: `prompt_async`, but a 200 with the stored user
/// message, since its bridge takes anything else for a failure. The session is
/// busy by the time this answers, so the bridge's wait on `GET /session/{id}`
/// sees the run.
#[utoipa::path(post, path = "/session/{sessionID}/prompt", tag = "session", operation_id = "session.prompt_alias",
    params(("sessionID" = String, Path), DirectoryParams), request_body(content = Object),
    responses((status = 200, description = "The stored user message; the answer follows in the background", body = MessageWithParts),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn prompt_alias(
    State(st): State<Arc<AppState>>,
    ctx: Ctx,
    Ws(ws): Ws,
    Path(id): Path<String>,
    Json(body): Json<PromptBody>,
) -> ApiResult<JsonBody<MessageWithParts>> {
    let (rt, inst, session) = admit(&st, ctx, ws, &id, &body).await?;
    Ok(JsonBody(prompt::start(rt, inst, session, body).await?))
}

/// CodeTether's name for `abort`.
#[utoipa::path(post, path = "/session/{sessionID}/interrupt", tag = "session", operation_id = "session.interrupt",
    params(("sessionID" = String, Path), DirectoryParams),
    responses((status = 200, body = bool), (status = 400, body = ErrorBody)))]
pub async fn interrupt(st: State<Arc<AppState>>, ctx: Ctx, id: Path<String>) -> ApiResult<JsonBody<bool>> {
    abort_session(st, ctx, id).await
}

/// Runs a slash command (a config `command` or a built-in one, as `GET
/// /command` lists them) and answers like `message` (queued like it too).
#[utoipa::path(post, path = "/session/{sessionID}/command", tag = "session", operation_id = "session.command",
    params(("sessionID" = String, Path), DirectoryParams), request_body = CommandBody,
    responses((status = 200, body = MessageWithParts), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn command(
    State(st): State<Arc<AppState>>,
    ctx: Ctx,
    Ws(ws): Ws,
    Path(id): Path<String>,
    Json(body): Json<CommandBody>,
) -> ApiResult<JsonBody<MessageWithParts>> {
    let session = require(&st, &id).await?;
    if let Some(m) = &body.message_id {
        check_id(m, "msg", "messageID")?;
    }
    let (rt, inst) = where_it_runs(&st, ws, ctx.0, &session).await?;
    Ok(JsonBody(prompt::command(rt, inst, session, body).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SummarizeBody {
    #[serde(rename = "providerID")]
    provider_id: String,
    #[serde(rename = "modelID")]
    model_id: String,
    /// Ask the model to carry on once the summary is made.
    #[serde(default)]
    auto: bool,
}

/// Compacts the session: the model summarises it, and the summary stands in
/// for the history before it. `true` once done.
#[utoipa::path(post, path = "/session/{sessionID}/summarize", tag = "session", operation_id = "session.summarize",
    params(("sessionID" = String, Path), DirectoryParams), request_body = SummarizeBody,
    responses((status = 200, body = bool), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn summarize(
    State(st): State<Arc<AppState>>,
    ctx: Ctx,
    Ws(ws): Ws,
    Path(id): Path<String>,
    Json(body): Json<SummarizeBody>,
) -> ApiResult<JsonBody<bool>> {
    let session = require(&st, &id).await?;
    let model = ModelChoice { provider_id: body.provider_id, model_id: body.model_id };
    let (rt, inst) = where_it_runs(&st, ws, ctx.0, &session).await?;
    Ok(JsonBody(prompt::summarize(rt, inst, session, model, body.auto).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct InitBody {
    #[serde(rename = "providerID")]
    provider_id: String,
    #[serde(rename = "modelID")]
    model_id: String,
    #[serde(rename = "messageID")]
    #[schema(pattern = "^msg")]
    message_id: String,
}

/// Runs the built-in `init` command: the model looks at the project and
/// writes `AGENTS.md`. `true` once done.
#[utoipa::path(post, path = "/session/{sessionID}/init", tag = "session", operation_id = "session.init",
    params(("sessionID" = String, Path), DirectoryParams), request_body = InitBody,
    responses((status = 200, body = bool), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn init(State(st): State<Arc<AppState>>, ctx: Ctx, Ws(ws): Ws, Path(id): Path<String>, Json(body): Json<InitBody>) -> ApiResult<JsonBody<bool>> {
    let session = require(&st, &id).await?;
    check_id(&body.message_id, "msg", "messageID")?;
    let model = ModelChoice { provider_id: body.provider_id, model_id: body.model_id };
    let (rt, inst) = where_it_runs(&st, ws, ctx.0, &session).await?;
    Ok(JsonBody(prompt::init(rt, inst, session, model, body.message_id).await?))
}
