//! v2 revert staging (`POST /api/session/{sessionID}/revert/stage|commit|clear`)
//! over the session's revert (`session/revert.rs`): `stage` is v1's revert
//! (or, with `files: false`, only moves the point), `commit` drops the hidden
//! messages at once instead of at the next prompt, `clear` is v1's unrevert.
//! Each publishes its `session.next.revert.*` event.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as JsonBody;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::api::{check, data, session, tagged, Data};
use super::session::where_it_runs;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::protocol::session::Session;
use crate::server::extract::{Ctx, Json, Path, Ws};
use crate::server::AppState;
use crate::session::events::{self, Scope};
use crate::session::revert;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevertStage {
    /// The message to go back to: it and every later one are hidden.
    #[serde(rename = "messageID")]
    #[schema(pattern = "^msg_")]
    message_id: String,
    /// Whether to put the files back as they were before it (the default).
    files: Option<bool>,
}

/// The session's revert in v2's `RevertState` shape, with the changed files
/// from the session's summary when the revert put files back.
fn revert_state(s: &Session) -> Value {
    let Some(r) = &s.revert else { return Value::Null };
    let mut v = json!({ "messageID": r.message_id });
    if let Some(p) = &r.part_id {
        v["partID"] = json!(p);
    }
    if let Some(snapshot) = &r.snapshot {
        v["snapshot"] = json!(snapshot);
    }
    if let Some(diff) = &r.diff {
        v["diff"] = json!(diff);
        let diffs = s.summary.as_ref().and_then(|sum| sum.diffs.as_ref()).map(Vec::as_slice).unwrap_or_default();
        let files: Vec<Value> = diffs
            .iter()
            .filter_map(|d| {
                Some(json!({ "path": d.file.as_ref()?, "status": d.status?, "additions": d.additions, "deletions": d.deletions,
                    "patch": d.patch.clone().unwrap_or_default() }))
            })
            .collect();
        v["files"] = Value::Array(files);
    }
    v
}

/// A 404 from the revert is the message that is not there (the session was checked first).
fn message_not_found(e: ApiError, message_id: &str) -> ApiError {
    match e.status {
        StatusCode::NOT_FOUND => tagged(StatusCode::NOT_FOUND, "MessageNotFoundError", e.message, &[("messageID", message_id)]),
        _ => e,
    }
}

#[utoipa::path(post, path = "/api/session/{sessionID}/revert/stage", tag = "v2", operation_id = "v2.session.revert.stage", summary = "Stage revert",
    description = "Stage or move a reversible session boundary and optionally apply its file changes.",
    params(("sessionID" = String, Path)), request_body = RevertStage,
    responses((status = 200, body = Data), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 501, body = ErrorBody)))]
pub async fn stage(
    State(st): State<Arc<AppState>>,
    Ws(ws): Ws,
    Ctx(inst): Ctx,
    Path(id): Path<String>,
    Json(body): Json<RevertStage>,
) -> ApiResult<JsonBody<Data>> {
    let s = session(&st, &id).await?;
    check(&body.message_id, "msg_", "messageID")?;
    let (rt, inst) = where_it_runs(&st, ws, inst, &s).await?;
    let scope = Scope::of(&inst);
    let staged = match body.files {
        Some(false) => revert::stage_boundary(&rt, &scope, &id, &body.message_id).await,
        _ => revert::revert(&rt, &scope, &id, &body.message_id, None).await,
    }
    .map_err(|e| message_not_found(e.into(), &body.message_id))?;
    let state = revert_state(&staged);
    events::transient(&rt.bus, &scope, "session.next.revert.staged", json!({ "timestamp": crate::now_ms(), "sessionID": id, "revert": state }));
    Ok(data(state))
}

#[utoipa::path(post, path = "/api/session/{sessionID}/revert/commit", tag = "v2", operation_id = "v2.session.revert.commit", summary = "Commit revert",
    description = "Drop the messages the staged revert hides, now; nothing to do without one.", params(("sessionID" = String, Path)),
    responses((status = 204, description = "Committed"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn commit(State(st): State<Arc<AppState>>, Ws(ws): Ws, Ctx(inst): Ctx, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let s = session(&st, &id).await?;
    let (rt, inst) = where_it_runs(&st, ws, inst, &s).await?;
    let scope = Scope::of(&inst);
    if let Some(message_id) = revert::commit(&rt, &scope, &id).await? {
        events::transient(&rt.bus, &scope, "session.next.revert.committed", json!({ "timestamp": crate::now_ms(), "sessionID": id, "messageID": message_id }));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/session/{sessionID}/revert/clear", tag = "v2", operation_id = "v2.session.revert.clear", summary = "Clear revert",
    description = "Put the files back as they were before the staged revert, and clear it; nothing to do without one.", params(("sessionID" = String, Path)),
    responses((status = 204, description = "Cleared"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn clear(State(st): State<Arc<AppState>>, Ws(ws): Ws, Ctx(inst): Ctx, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let s = session(&st, &id).await?;
    let staged = s.revert.is_some();
    let (rt, inst) = where_it_runs(&st, ws, inst, &s).await?;
    let scope = Scope::of(&inst);
    revert::unrevert(&rt, &scope, &id).await?;
    if staged {
        events::transient(&rt.bus, &scope, "session.next.revert.cleared", json!({ "timestamp": crate::now_ms(), "sessionID": id }));
    }
    Ok(StatusCode::NO_CONTENT)
}
