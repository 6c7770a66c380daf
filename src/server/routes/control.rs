//! `POST /log` (a client's log line, written to Burrow's log) and `GET
//! /question` (pending questions of the agent's `question` tool) with their reply
//! and reject.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::Json as JsonBody;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::DirectoryParams;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::server::extract::{Ctx, Json, Path};
use crate::server::AppState;

/// The level of a client's log entry.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Error,
    Warn,
}

/// `POST /log`'s body, as OpenCode's `app.log` sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogBody {
    /// Service name for the log entry.
    service: String,
    level: LogLevel,
    message: String,
    #[serde(default)]
    extra: Option<BTreeMap<String, Value>>,
}

/// Writes a client's log entry to the server's log (target `client`), so
/// plugins and SDK users see their lines next to Burrow's own.
#[utoipa::path(post, path = "/log", tag = "control", operation_id = "app.log", params(DirectoryParams), request_body = LogBody,
    responses((status = 200, description = "Log entry written", body = bool), (status = 400, body = ErrorBody)))]
pub async fn log(_ctx: Ctx, Json(body): Json<LogBody>) -> ApiResult<JsonBody<bool>> {
    let extra = body.extra.map(|e| serde_json::to_string(&e).unwrap_or_default()).unwrap_or_default();
    let (service, message) = (body.service.as_str(), body.message.as_str());
    match body.level {
        LogLevel::Debug => tracing::debug!(target: "client", service, extra, "{message}"),
        LogLevel::Info => tracing::info!(target: "client", service, extra, "{message}"),
        LogLevel::Warn => tracing::warn!(target: "client", service, extra, "{message}"),
        LogLevel::Error => tracing::error!(target: "client", service, extra, "{message}"),
    }
    Ok(JsonBody(true))
}

/// Pending questions of the agent's `question` tool across sessions, oldest first.
#[utoipa::path(get, path = "/question", tag = "question", operation_id = "question.list", params(DirectoryParams),
    responses((status = 200, description = "List of pending questions", body = Vec<Object>), (status = 400, body = ErrorBody)))]
pub async fn questions(State(st): State<Arc<AppState>>, _ctx: Ctx) -> JsonBody<Vec<Value>> {
    JsonBody(st.runtime.questions.list())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuestionReply {
    /// User answers in order of questions (each answer is an array of selected labels).
    answers: Vec<Vec<String>>,
}

/// OpenCode's 404 for a request that is not pending (any more).
pub fn no_question(id: &str) -> ApiError {
    let message = format!("Question request not found: {id}");
    ApiError::not_found(message.clone()).with_field("_tag", "QuestionNotFoundError").with_field("requestID", id).with_field("message", message)
}

/// Answers a pending question; the asking tool call goes on with the answers.
#[utoipa::path(post, path = "/question/{requestID}/reply", tag = "question", operation_id = "question.reply",
    params(("requestID" = String, Path), DirectoryParams), request_body = QuestionReply,
    responses((status = 200, description = "Question answered successfully", body = bool), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn question_reply(State(st): State<Arc<AppState>>, _ctx: Ctx, Path(id): Path<String>, Json(body): Json<QuestionReply>) -> ApiResult<JsonBody<bool>> {
    st.runtime.questions.reply(&id, body.answers).ok_or_else(|| no_question(&id))?;
    Ok(JsonBody(true))
}

/// Dismisses a pending question; the asking tool call fails with "The user dismissed this question".
#[utoipa::path(post, path = "/question/{requestID}/reject", tag = "question", operation_id = "question.reject",
    params(("requestID" = String, Path), DirectoryParams),
    responses((status = 200, description = "Question rejected successfully", body = bool), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn question_reject(State(st): State<Arc<AppState>>, _ctx: Ctx, Path(id): Path<String>) -> ApiResult<JsonBody<bool>> {
    st.runtime.questions.reject(&id).ok_or_else(|| no_question(&id))?;
    Ok(JsonBody(true))
}
