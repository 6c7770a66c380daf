//! OpenCode's sync routes: a session's history as event sourcing. Another
//! server (OpenCode's control plane warping a session into a workspace that
//! runs its own server) lists what it lacks with `history`, sends a session's
//! events with `replay`, then takes the session over with `steal`.
//!
//! Every workspace of a Burrow shares the server's one session store, so
//! between its own workspaces nothing needs replaying (`warp` just moves the
//! session); these routes are for histories that cross servers.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as JsonBody;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::session::{check_id, require};
use super::DirectoryParams;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::server::extract::{Ctx, Json, OptionalJson, RequestWorkspace};
use crate::server::AppState;
use crate::session::events::Scope;
use crate::session::store::{ReplayEvent, SyncEventRow};

fn replay_error(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "SyncReplayError", message)
}

/// The workspace a request names must exist; none is the server's own.
fn known_workspace(st: &AppState, workspace: &Option<String>) -> ApiResult<()> {
    match workspace {
        Some(id) if !st.workspaces.exists(id) => Err(ApiError::not_found(format!("no workspace {id}"))),
        _ => Ok(()),
    }
}

/// Starts the loops that pull the histories of remote workspaces. Burrow's
/// workspaces are environments of this server, whose sessions are already in
/// its store, so there is nothing to pull: it answers `true` once the
/// request's directory resolves, as OpenCode does after starting its loops.
#[utoipa::path(post, path = "/sync/start", tag = "sync", operation_id = "sync.start", params(DirectoryParams),
    responses((status = 200, description = "Workspace sync started", body = bool), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn start(_ctx: Ctx) -> JsonBody<bool> {
    JsonBody(true)
}

/// One event of a session's history.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncEventBody {
    #[schema(pattern = "^evt_")]
    id: String,
    /// The session the event belongs to.
    #[serde(rename = "aggregateID")]
    aggregate_id: String,
    /// The event's place in the session's history: 0 for `session.created`.
    #[schema(minimum = 0)]
    seq: u64,
    /// The sync type, `<event type>.<version>` (`message.updated.1`).
    #[serde(rename = "type")]
    kind: String,
    #[schema(value_type = Object)]
    data: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    /// The directory the history comes from (logged).
    directory: String,
    #[schema(min_items = 1)]
    events: Vec<SyncEventBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionRef {
    #[serde(rename = "sessionID")]
    session_id: String,
}

/// Applies a session's history, checked as OpenCode checks it: the events of
/// one session with consecutive sequence numbers, continuing what this server
/// holds; events it holds already must be the same events, and a session
/// another workspace owns is refused. Nothing applies unless all of it does.
#[utoipa::path(post, path = "/sync/replay", tag = "sync", operation_id = "sync.replay", params(DirectoryParams), request_body = ReplayBody,
    responses((status = 200, description = "Replayed sync events", body = SessionRef), (status = 400, description = "SyncReplayError", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn replay(
    State(st): State<Arc<AppState>>,
    RequestWorkspace(workspace): RequestWorkspace,
    Json(body): Json<ReplayBody>,
) -> ApiResult<JsonBody<SessionRef>> {
    known_workspace(&st, &workspace)?;
    let Some(first) = body.events.first() else { return Err(replay_error("events must hold at least one event")) };
    let (aggregate, start) = (first.aggregate_id.clone(), first.seq);
    for (i, event) in body.events.iter().enumerate() {
        check_id(&event.id, "evt_", "id")?;
        if event.aggregate_id != aggregate {
            return Err(replay_error("replay events must belong to the same aggregate"));
        }
        let Some(expected) = start.checked_add(i as u64) else { return Err(replay_error("replay sequence numbers overflow")) };
        if event.seq != expected {
            return Err(replay_error(format!("replay sequence mismatch at index {i}: expected {expected}, got {}", event.seq)));
        }
    }
    tracing::info!(session = %aggregate, events = body.events.len(), directory = %body.directory, "sync replay");
    let events = body.events.into_iter().map(|e| ReplayEvent { id: e.id, aggregate_id: e.aggregate_id, seq: e.seq, kind: e.kind, data: e.data }).collect();
    let session_id = st.runtime.sessions.store.sync_replay(events, workspace).await?.map_err(replay_error)?;
    Ok(JsonBody(SessionRef { session_id }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StealBody {
    #[serde(rename = "sessionID")]
    #[schema(pattern = "^ses")]
    session_id: String,
}

/// Makes a session belong to the request's workspace: its next turns run
/// there and only that workspace's replays apply to it. Needs a workspace.
#[utoipa::path(post, path = "/sync/steal", tag = "sync", operation_id = "sync.steal", params(DirectoryParams), request_body = StealBody,
    responses((status = 200, description = "Session stolen into workspace", body = SessionRef), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The session is working", body = ErrorBody)))]
pub async fn steal(
    State(st): State<Arc<AppState>>,
    RequestWorkspace(workspace): RequestWorkspace,
    Json(body): Json<StealBody>,
) -> ApiResult<JsonBody<SessionRef>> {
    let session = require(&st, &body.session_id).await?;
    let Some(workspace) = workspace else {
        return Err(ApiError::bad_request("sync.steal takes a session into the request's workspace: name one with ?workspace=wrk..."));
    };
    known_workspace(&st, &Some(workspace.clone()))?;
    if st.runtime.sessions.runs.is_busy(&session.id) {
        return Err(ApiError::busy(&session.id));
    }
    let scope = Scope { directory: session.directory.clone(), project: session.project_id.clone() };
    let to = Some(workspace.clone());
    let store = &st.runtime.sessions.store;
    store.update_session(&scope, &session.id, move |s| s.workspace_id = to).await?;
    store.sync_claim(&session.id, &workspace).await?;
    tracing::info!(session = %session.id, %workspace, "sync session stolen");
    Ok(JsonBody(SessionRef { session_id: session.id }))
}

/// Every session's history, except what the client already has: the body maps
/// session ids to the last sequence number the client holds of each.
#[utoipa::path(post, path = "/sync/history", tag = "sync", operation_id = "sync.history.list", params(DirectoryParams),
    request_body(content = Option<HashMap<String, u64>>, description = "The last sequence number known of each session; none is every history"),
    responses((status = 200, description = "Sync events", body = Vec<Object>), (status = 400, body = ErrorBody)))]
pub async fn history(State(st): State<Arc<AppState>>, OptionalJson(known): OptionalJson<HashMap<String, Value>>) -> ApiResult<JsonBody<Vec<SyncEventRow>>> {
    let known = known.into_iter().map(|(id, seq)| sequence(&id, &seq).map(|seq| (id, seq))).collect::<ApiResult<HashMap<_, _>>>()?;
    Ok(JsonBody(st.runtime.sessions.store.sync_history(known).await?))
}

/// A sequence number: a whole number from 0 up to `i64::MAX` (JSON's `3.0`
/// too). The bound is the documented `int64` one, and the store's: SQLite
/// keeps sequences as signed 64-bit integers.
fn sequence(id: &str, value: &Value) -> ApiResult<u64> {
    const MAX: u64 = i64::MAX as u64;
    let whole = value.as_u64().or_else(|| value.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < MAX as f64).map(|f| f as u64));
    whole.filter(|&n| n <= MAX).ok_or_else(|| ApiError::bad_request(format!("the sequence of {id:?} must be a whole number from 0 to {MAX}; got {value}")))
}
