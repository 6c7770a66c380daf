//! `POST /log` (a client's log line, written to Burrow's log) and `GET
//! /question` (pending questions of the agent's `question` tool).

use std::collections::BTreeMap;

use axum::Json as JsonBody;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::DirectoryParams;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::server::extract::{Ctx, Json, Path};

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

/// Pending questions across sessions. Burrow's agents have no `question` tool
/// yet, so none is ever pending and the list is empty.
#[utoipa::path(get, path = "/question", tag = "question", operation_id = "question.list", params(DirectoryParams),
    responses((status = 200, description = "Pending questions", body = Vec<Object>), (status = 400, body = ErrorBody)))]
pub async fn questions(_ctx: Ctx) -> JsonBody<Vec<Value>> {
    JsonBody(Vec::new())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuestionReply {
    /// One list of chosen labels per question.
    #[allow(dead_code)]
    answers: Vec<Vec<String>>,
}

/// No question is ever pending (see [`questions`]), so every request id is unknown.
fn no_question(id: &str) -> ApiError {
    let message = format!("Question request not found: {id}");
    ApiError::not_found(message.clone()).with_field("_tag", "QuestionNotFoundError").with_field("requestID", id).with_field("message", message)
}

/// Always a 404 `QuestionNotFoundError`: Burrow's agents ask no questions.
#[utoipa::path(post, path = "/question/{requestID}/reply", tag = "question", operation_id = "question.reply",
    params(("requestID" = String, Path), DirectoryParams), request_body = QuestionReply,
    responses((status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn question_reply(_ctx: Ctx, Path(id): Path<String>, Json(_body): Json<QuestionReply>) -> ApiError {
    no_question(&id)
}

/// Always a 404 `QuestionNotFoundError`: Burrow's agents ask no questions.
#[utoipa::path(post, path = "/question/{requestID}/reject", tag = "question", operation_id = "question.reject",
    params(("requestID" = String, Path), DirectoryParams), responses((status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn question_reject(_ctx: Ctx, Path(id): Path<String>) -> ApiError {
    no_question(&id)
}
