//! The `/api/*` (v2) routes the v2 SDK and the TUI call: health, the file
//! system, sessions (prompt, wait, interrupt, compact, messages, history),
//! permissions, questions, providers and terminals. They are thin: the same
//! session service, runs, permissions and terminals as the v1 routes, shown
//! in the v2 shapes (`{"data": ...}`, `{"location": ..., "data": ...}`) and
//! with the v2 errors (`{"_tag": ...}`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json as JsonBody;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use super::api_message;
use super::config::load;
use super::pty::{self as v1_pty, PtyError};
use super::session::where_it_runs;
use super::{DirectoryParams, LocationParams};
use crate::agent::input::{ModelChoice, PromptBody};
use crate::agent::permission::Reply;
use crate::config::provider;
use crate::env::{EntryKind, EnvError};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::protocol::file::FileSystemEntry;
use crate::protocol::order;
use crate::protocol::project::LocationInfo;
use crate::protocol::session::{Session, SessionModel, SessionStatus};
use crate::server::extract::{Ctx, Json, OptionalJson, Path, Query, Ws};
use crate::server::AppState;
use crate::session::events::Scope;
use crate::session::prompt;
use crate::session::service::NewSession;
use crate::session::store::{InWorkspace, SessionFilter};

/// A v2 error: OpenCode's `{"_tag", "message", ...}`, next to Burrow's usual `{name, data}`.
pub(super) fn tagged(status: StatusCode, tag: &'static str, message: String, fields: &[(&'static str, &str)]) -> ApiError {
    let mut e = ApiError::new(status, tag, message.clone()).with_field("_tag", tag).with_field("message", message);
    for (k, v) in fields {
        e = e.with_field(k, *v);
    }
    e
}

pub(super) fn invalid(message: impl Into<String>) -> ApiError {
    tagged(StatusCode::BAD_REQUEST, "InvalidRequestError", message.into(), &[])
}

pub(super) fn check(value: &str, prefix: &str, field: &str) -> ApiResult<()> {
    if value.starts_with(prefix) {
        Ok(())
    } else {
        Err(invalid(format!("Expected a string starting with \"{prefix}\", got \"{value}\" at [\"{field}\"]")))
    }
}

/// The session a path names: a 400 for a malformed id, OpenCode's `SessionNotFoundError` for an unknown one.
pub(super) async fn session(st: &AppState, id: &str) -> ApiResult<Session> {
    check(id, "ses", "sessionID")?;
    st.runtime.sessions.store.session(id).await.map_err(|e| match e {
        crate::session::error::StoreError::NotFound(_) => {
            tagged(StatusCode::NOT_FOUND, "SessionNotFoundError", format!("Session not found: {id}"), &[("sessionID", id)])
        }
        other => other.into(),
    })
}

/// `{"data": ...}`, the v2 answer of session routes.
#[derive(Serialize, ToSchema)]
pub struct Data {
    #[schema(value_type = Object)]
    pub data: Value,
}

pub(super) fn data(v: Value) -> JsonBody<Data> {
    JsonBody(Data { data: v })
}

/// `{"data": [...]}`, the v2 answer of session routes that list.
#[derive(Serialize, ToSchema)]
pub struct DataList {
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<Value>,
}

fn data_list(v: Vec<Value>) -> JsonBody<DataList> {
    JsonBody(DataList { data: v })
}

/// `{"location": ..., "data": ...}`, the v2 answer of location-scoped routes.
#[derive(Serialize, ToSchema)]
pub struct Located {
    pub location: LocationInfo,
    #[schema(value_type = Object)]
    pub data: Value,
}

fn located(location: LocationInfo, v: Value) -> JsonBody<Located> {
    JsonBody(Located { location, data: v })
}

/// `{"location": ..., "data": [...]}`, the v2 answer of location-scoped lists.
#[derive(Serialize, ToSchema)]
pub struct LocatedList {
    pub location: LocationInfo,
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<Value>,
}

fn located_list(location: LocationInfo, v: Vec<Value>) -> JsonBody<LocatedList> {
    JsonBody(LocatedList { location, data: v })
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub healthy: bool,
}

#[utoipa::path(get, path = "/api/health", tag = "v2", operation_id = "v2.health.get", summary = "Check server health",
    responses((status = 200, body = Health)))]
pub async fn health() -> JsonBody<Health> {
    JsonBody(Health { healthy: true })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct FsListParams {
    /// The directory to list, relative to the location (its own directory when absent).
    #[param(pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    path: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct FsListResponse {
    pub location: LocationInfo,
    pub data: Vec<FileSystemEntry>,
}

/// The direct children of one directory, directories first, each with its
/// path relative to the location.
#[utoipa::path(get, path = "/api/fs/list", tag = "v2", operation_id = "v2.fs.list", summary = "List directory", params(FsListParams, LocationParams),
    responses((status = 200, body = FsListResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn fs_list(Ws(ws): Ws, Ctx(inst): Ctx, Query(q): Query<FsListParams>) -> ApiResult<JsonBody<FsListResponse>> {
    let dir = match q.path.as_deref().filter(|p| !p.is_empty() && *p != ".") {
        Some(p) => inst.resolve(ws.runtime.env.root(), p)?,
        None => inst.dir.clone(),
    };
    let mut entries = ws.runtime.env.list(&dir).await.map_err(|e| match e {
        // No directory by that name: a 404, as for a missing one.
        EnvError::NotADirectory(p) => ApiError::not_found(format!("{p} is not a directory; read it with GET /api/fs/read/{{path}}")),
        other => other.into(),
    })?;
    order::sort_listing(&mut entries);
    let data = entries
        .into_iter()
        .filter(|e| matches!(e.kind, EntryKind::File | EntryKind::Directory))
        .map(|e| FileSystemEntry { path: inst.relative(&dir.join(&e.name)).to_string(), kind: e.kind })
        .collect();
    Ok(JsonBody(FsListResponse { location: inst.location(), data }))
}

/// One file's bytes, as `application/octet-stream`. The path follows
/// `/api/fs/read/`, relative to the location (`/doc` spells the catch-all `*`, as OpenCode does).
#[utoipa::path(get, path = "/api/fs/read/{*path}", tag = "v2", operation_id = "v2.fs.read", summary = "Read file",
    params(("path" = String, Path, description = "The file, relative to the location"), DirectoryParams),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn fs_read(Ws(ws): Ws, Ctx(inst): Ctx, Path(rest): Path<String>) -> ApiResult<Response> {
    let path = inst.resolve(ws.runtime.env.root(), &rest)?;
    let bytes = ws.runtime.env.read(&path, super::file::MAX_CONTENT_BYTES).await.map_err(|e| match e {
        EnvError::IsADirectory(p) => ApiError::bad_request(format!("{p} is a directory; list it with GET /api/fs/list")),
        other => other.into(),
    })?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SessionListParams {
    #[param(pattern = "^wrk")]
    workspace: Option<String>,
    /// At most this many (default 100).
    #[serde(default, deserialize_with = "crate::protocol::num::safe")]
    #[param(minimum = 1, maximum = 9007199254740991_u64)]
    limit: Option<u64>,
    /// By creation time: `desc` (newest first, the default) or `asc`.
    #[param(inline)]
    order: Option<Order>,
    /// Only sessions whose title contains this text.
    search: Option<String>,
    /// Only sessions of this directory.
    directory: Option<String>,
    /// Only sessions of this project (Burrow serves one).
    project: Option<String>,
    /// Only sessions at this path below the worktree, or below it.
    subpath: Option<String>,
    /// `cursor.next` or `cursor.previous` of an earlier page.
    #[param(pattern = "^[np]:[0-9]{1,9}$")]
    cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    Asc,
    Desc,
}

#[derive(Serialize, ToSchema, Default)]
pub struct Cursor {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Page {
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<Value>,
    pub cursor: Cursor,
}

/// One page of `items` (already in the requested order) of at most `limit`.
/// Cursors are positions: `n:K` is the page starting at item K, `p:K` the
/// page ending before it; a position past the end gives an empty page.
fn page(items: Vec<Value>, limit: usize, cursor: Option<&str>) -> ApiResult<Page> {
    let bad = || {
        tagged(StatusCode::BAD_REQUEST, "InvalidCursorError", "a cursor is n:<position> or p:<position>, as cursor.next and cursor.previous give".into(), &[])
    };
    let len = items.len();
    let (start, end) = match cursor {
        None => (0, limit.min(len)),
        Some(c) => {
            let (dir, at) = c.split_once(':').ok_or_else(bad)?;
            let at: usize = at.parse().map_err(|_| bad())?;
            match dir {
                "n" => (at.min(len), at.saturating_add(limit).min(len)),
                "p" => (at.min(len).saturating_sub(limit), at.min(len)),
                _ => return Err(bad()),
            }
        }
    };
    let mut cursor = Cursor::default();
    if start > 0 {
        cursor.previous = Some(format!("p:{start}"));
    }
    if end < len {
        cursor.next = Some(format!("n:{end}"));
    }
    Ok(Page { data: items[start..end].to_vec(), cursor })
}

fn limit_of(limit: Option<u64>, default: usize) -> ApiResult<usize> {
    match limit {
        Some(0) => Err(invalid("limit must be at least 1")),
        Some(l) => Ok(l.min(10_000) as usize),
        None => Ok(default),
    }
}

#[utoipa::path(get, path = "/api/session", tag = "v2", operation_id = "v2.session.list", summary = "List sessions", params(SessionListParams),
    responses((status = 200, body = Page), (status = 400, body = ErrorBody)))]
pub async fn session_list(State(st): State<Arc<AppState>>, Ctx(inst): Ctx, Query(q): Query<SessionListParams>) -> ApiResult<JsonBody<Page>> {
    if let Some(w) = &q.workspace {
        check(w, "wrk", "workspace")?;
    }
    let limit = limit_of(q.limit, 100)?;
    if q.project.as_ref().is_some_and(|p| *p != inst.project.id) {
        return Ok(JsonBody(Page { data: Vec::new(), cursor: Cursor::default() }));
    }
    let filter = SessionFilter {
        project_id: Some(inst.project.id.clone()),
        directory: q.directory.is_some().then(|| inst.directory.clone()),
        path: q.subpath,
        roots: false,
        start: None,
        search: q.search,
        limit: None,
        workspace: q.workspace.clone().map_or(InWorkspace::Any, InWorkspace::Named),
    };
    let mut sessions = st.runtime.sessions.store.sessions(filter).await?;
    sessions.sort_by(|a, b| b.time.created.cmp(&a.time.created).then_with(|| a.id.cmp(&b.id)));
    if q.order == Some(Order::Asc) {
        sessions.reverse();
    }
    let items = sessions.iter().map(api_message::session_info).collect();
    Ok(JsonBody(page(items, limit, q.cursor.as_deref())?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LocationRef {
    #[schema(pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub directory: String,
    #[serde(rename = "workspaceID")]
    #[schema(pattern = "^wrk")]
    pub workspace_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ModelRefV2 {
    #[schema(min_length = 1)]
    pub id: String,
    #[serde(rename = "providerID")]
    #[schema(min_length = 1)]
    pub provider_id: String,
    pub variant: Option<String>,
}

impl From<ModelRefV2> for SessionModel {
    fn from(m: ModelRefV2) -> Self {
        SessionModel { id: m.id, provider_id: m.provider_id, variant: m.variant }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionCreateV2 {
    /// The session's id, chosen by the client; creating again with the same
    /// id answers with the session made the first time.
    #[schema(pattern = "^ses")]
    id: Option<String>,
    agent: Option<String>,
    model: Option<ModelRefV2>,
    /// Where the session works; the request's location when absent.
    location: Option<LocationRef>,
}

/// Creates a session at the requested location, like `POST /session`.
#[utoipa::path(post, path = "/api/session", tag = "v2", operation_id = "v2.session.create", summary = "Create session",
    request_body(content = Option<SessionCreateV2>),
    responses((status = 200, body = Data), (status = 400, body = ErrorBody), (status = 403, description = "location.directory is outside the workspace", body = ErrorBody),
        (status = 404, description = "location.directory does not exist", body = ErrorBody)))]
pub async fn session_create(
    State(st): State<Arc<AppState>>,
    Ws(ws): Ws,
    Ctx(inst): Ctx,
    OptionalJson(body): OptionalJson<SessionCreateV2>,
) -> ApiResult<JsonBody<Data>> {
    if let Some(m) = &body.model {
        if m.id.is_empty() || m.provider_id.is_empty() {
            return Err(invalid("model.id and model.providerID must not be empty"));
        }
    }
    if let Some(id) = &body.id {
        check(id, "ses", "id")?;
        // Creating again with the same id (a retried request) gives the session made the first time.
        if let Ok(existing) = st.runtime.sessions.store.session(id).await {
            return Ok(data(api_message::session_info(&existing)));
        }
    }
    let inst = match body.location {
        Some(l) => {
            if let Some(w) = &l.workspace_id {
                check(w, "wrk", "location.workspaceID")?;
            }
            ws.instances.resolve(&*ws.runtime.env, st.started_ms, Some(&l.directory)).await?
        }
        None => inst,
    };
    let input = NewSession { id: body.id, agent: body.agent, model: body.model.map(Into::into), ..Default::default() };
    let created = st.runtime.sessions.create(&inst, input).await?;
    Ok(data(api_message::session_info(&created)))
}

/// The sessions that are working: their ids and statuses (idle ones are absent).
#[utoipa::path(get, path = "/api/session/active", tag = "v2", operation_id = "v2.session.active", summary = "List active sessions",
    responses((status = 200, body = Data)))]
pub async fn session_active(State(st): State<Arc<AppState>>) -> JsonBody<Data> {
    let statuses: BTreeMap<String, SessionStatus> = st.runtime.sessions.runs.statuses();
    data(json!(statuses))
}

#[utoipa::path(get, path = "/api/session/{sessionID}", tag = "v2", operation_id = "v2.session.get", summary = "Get session",
    params(("sessionID" = String, Path)), responses((status = 200, body = Data), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn session_get(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<JsonBody<Data>> {
    Ok(data(api_message::session_info(&session(&st, &id).await?)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchAgent {
    #[schema(min_length = 1)]
    agent: String,
}

/// The agent the session's next prompts use.
#[utoipa::path(post, path = "/api/session/{sessionID}/agent", tag = "v2", operation_id = "v2.session.switchAgent", summary = "Switch session agent",
    params(("sessionID" = String, Path)), request_body = SwitchAgent,
    responses((status = 204, description = "Switched"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn switch_agent(State(st): State<Arc<AppState>>, Ctx(inst): Ctx, Path(id): Path<String>, Json(body): Json<SwitchAgent>) -> ApiResult<StatusCode> {
    session(&st, &id).await?;
    if body.agent.trim().is_empty() {
        return Err(invalid("agent must not be empty"));
    }
    let agent = body.agent;
    st.runtime.sessions.store.update_session(&Scope::of(&inst), &id, move |s| s.agent = Some(agent)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchModel {
    model: ModelRefV2,
}

/// The model the session's next prompts use.
#[utoipa::path(post, path = "/api/session/{sessionID}/model", tag = "v2", operation_id = "v2.session.switchModel", summary = "Switch session model",
    params(("sessionID" = String, Path)), request_body = SwitchModel,
    responses((status = 204, description = "Switched"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn switch_model(State(st): State<Arc<AppState>>, Ctx(inst): Ctx, Path(id): Path<String>, Json(body): Json<SwitchModel>) -> ApiResult<StatusCode> {
    session(&st, &id).await?;
    if body.model.id.is_empty() || body.model.provider_id.is_empty() {
        return Err(invalid("model.id and model.providerID must not be empty"));
    }
    let model = SessionModel::from(body.model);
    st.runtime.sessions.store.update_session(&Scope::of(&inst), &id, move |s| s.model = Some(model)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptSource {
    start: f64,
    end: f64,
    text: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptFile {
    uri: String,
    name: Option<String>,
    description: Option<String>,
    source: Option<PromptSource>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptAgent {
    name: String,
    source: Option<PromptSource>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptInput {
    #[schema(min_length = 1)]
    text: String,
    #[serde(default)]
    files: Vec<PromptFile>,
    #[serde(default)]
    agents: Vec<PromptAgent>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// Burrow has no mid-turn steering: a steered prompt waits its turn like a queued one.
    Steer,
    #[default]
    Queue,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptV2 {
    /// The user message's id (`msg_...`), chosen by the client.
    #[schema(pattern = "^msg_")]
    id: Option<String>,
    prompt: PromptInput,
    delivery: Option<Delivery>,
    /// `false` stores the prompt without running the agent.
    resume: Option<bool>,
}

/// The stored form of a prompt's file: its `mime` from the name, as OpenCode does.
fn file_value(f: &PromptFile) -> Value {
    let name = f.name.clone().unwrap_or_else(|| f.uri.rsplit('/').next().unwrap_or("").to_string());
    let mime = mime_guess::from_path(&name).first_raw().unwrap_or("text/plain");
    let mut v = json!({ "uri": f.uri, "mime": mime, "name": name });
    if let Some(d) = &f.description {
        v["description"] = json!(d);
    }
    if let Some(src) = &f.source {
        v["source"] = json!({ "start": src.start, "end": src.end, "text": src.text });
    }
    v
}

/// Admits a prompt: the user message is stored and the agent runs in the
/// background (after the runs before it), as `prompt_async` does.
#[utoipa::path(post, path = "/api/session/{sessionID}/prompt", tag = "v2", operation_id = "v2.session.prompt", summary = "Send message",
    params(("sessionID" = String, Path)), request_body = PromptV2,
    responses((status = 200, body = Data), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn session_prompt(
    State(st): State<Arc<AppState>>,
    Ws(ws): Ws,
    Ctx(inst): Ctx,
    Path(id): Path<String>,
    Json(body): Json<PromptV2>,
) -> ApiResult<JsonBody<Data>> {
    let s = session(&st, &id).await?;
    if let Some(m) = &body.id {
        check(m, "msg", "id")?;
    }
    if body.prompt.text.is_empty() {
        return Err(invalid("prompt.text must not be empty"));
    }
    let mut parts = vec![json!({ "type": "text", "text": body.prompt.text })];
    let files: Vec<Value> = body.prompt.files.iter().map(file_value).collect();
    for f in &files {
        parts.push(json!({ "type": "file", "mime": f["mime"], "url": f["uri"], "filename": f["name"] }));
    }
    for a in &body.prompt.agents {
        let mut part = json!({ "type": "agent", "name": a.name });
        if let Some(src) = &a.source {
            part["source"] = json!({ "value": src.text, "start": src.start as u64, "end": src.end as u64 });
        }
        parts.push(part);
    }
    let mut request = json!({ "parts": parts, "noReply": body.resume == Some(false) });
    if let Some(m) = &body.id {
        request["messageID"] = json!(m);
    }
    let request: PromptBody = serde_json::from_value(request).map_err(|e| ApiError::internal(format!("building the prompt failed: {e}")))?;
    let (rt, inst) = where_it_runs(&st, ws, inst, &s).await?;
    let stored = prompt::start(rt, inst, s, request).await?;
    let info = serde_json::to_value(&stored.info).map_err(|e| ApiError::internal(format!("cannot show the stored message: {e}")))?;
    let seq = st.runtime.sessions.store.messages(&id, None, None).await?.messages.iter().position(|m| m.info.id() == stored.info.id()).map_or(0, |i| i + 1);
    let mut prompt = json!({ "text": body.prompt.text });
    if !files.is_empty() {
        prompt["files"] = Value::Array(files);
    }
    if !body.prompt.agents.is_empty() {
        prompt["agents"] = Value::Array(body.prompt.agents.iter().map(|a| json!({ "name": a.name })).collect());
    }
    Ok(data(json!({ "admittedSeq": seq, "id": info["id"], "sessionID": id, "prompt": prompt,
        "delivery": body.delivery.unwrap_or_default(), "timeCreated": info["time"]["created"] })))
}

/// Compacts the session with its model (the last one a prompt used): the
/// model summarises the history, and the summary stands in for it. 404
/// `ModelNotFoundError` when that model is not configured.
#[utoipa::path(post, path = "/api/session/{sessionID}/compact", tag = "v2", operation_id = "v2.session.compact", summary = "Compact session",
    params(("sessionID" = String, Path)),
    responses((status = 204, description = "Compacted"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn session_compact(State(st): State<Arc<AppState>>, Ws(ws): Ws, Ctx(inst): Ctx, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let s = session(&st, &id).await?;
    let model = st.runtime.sessions.model_for(&s).await?;
    let model = ModelChoice { provider_id: model.provider_id, model_id: model.model_id };
    // The session's model is not configured: the model is what is not found.
    let unavailable = |e: ApiError| match e.status {
        StatusCode::BAD_REQUEST => tagged(StatusCode::NOT_FOUND, "ModelNotFoundError", e.message, &[]),
        _ => e,
    };
    let (rt, inst) = where_it_runs(&st, ws, inst, &s).await?;
    prompt::summarize(rt, inst, s, model, false).await.map_err(|e| unavailable(e.into()))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Answers once the session is idle: its run and every prompt queued behind it are over.
#[utoipa::path(post, path = "/api/session/{sessionID}/wait", tag = "v2", operation_id = "v2.session.wait", summary = "Wait for session",
    params(("sessionID" = String, Path)),
    responses((status = 204, description = "The session is idle"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn session_wait(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    session(&st, &id).await?;
    st.runtime.sessions.runs.wait_idle(&id).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Stops the session's run and drops the prompts queued behind it, like
/// `POST /session/{id}/abort`; on an idle session it does nothing.
#[utoipa::path(post, path = "/api/session/{sessionID}/interrupt", tag = "v2", operation_id = "v2.session.interrupt", summary = "Interrupt session execution",
    params(("sessionID" = String, Path)),
    responses((status = 204, description = "Interrupted"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn session_interrupt(State(st): State<Arc<AppState>>, Ctx(inst): Ctx, Path(id): Path<String>) -> ApiResult<StatusCode> {
    session(&st, &id).await?;
    if st.runtime.sessions.runs.is_busy(&id) {
        st.runtime.sessions.runs.abort(&Scope::of(&inst), &id).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn v2_messages(st: &AppState, id: &str) -> ApiResult<Vec<Value>> {
    session(st, id).await?;
    let stored = st.runtime.sessions.store.messages(id, None, None).await?.messages;
    Ok(api_message::messages(&stored))
}

/// The messages the model reads next: those from the last compaction on.
#[utoipa::path(get, path = "/api/session/{sessionID}/context", tag = "v2", operation_id = "v2.session.context", summary = "Get session context",
    params(("sessionID" = String, Path)), responses((status = 200, body = DataList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn session_context(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<JsonBody<DataList>> {
    Ok(data_list(api_message::context(v2_messages(&st, &id).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesParams {
    /// At most this many (default 100).
    #[serde(default, deserialize_with = "crate::protocol::num::safe")]
    #[param(minimum = 1, maximum = 9007199254740991_u64)]
    limit: Option<u64>,
    /// `asc` (oldest first, the default) or `desc`.
    #[param(inline)]
    order: Option<Order>,
    /// `cursor.next` or `cursor.previous` of an earlier page.
    #[param(pattern = "^[np]:[0-9]{1,9}$")]
    cursor: Option<String>,
}

/// The session's messages in the v2 shape, paged.
#[utoipa::path(get, path = "/api/session/{sessionID}/message", tag = "v2", operation_id = "v2.session.messages", summary = "Get session messages",
    params(("sessionID" = String, Path), MessagesParams), responses((status = 200, body = Page), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn session_messages(State(st): State<Arc<AppState>>, Path(id): Path<String>, Query(q): Query<MessagesParams>) -> ApiResult<JsonBody<Page>> {
    let limit = limit_of(q.limit, 100)?;
    let mut all = v2_messages(&st, &id).await?;
    if q.order == Some(Order::Desc) {
        all.reverse();
    }
    Ok(JsonBody(page(all, limit, q.cursor.as_deref())?))
}

#[utoipa::path(get, path = "/api/session/{sessionID}/message/{messageID}", tag = "v2", operation_id = "v2.session.message", summary = "Get session message",
    params(("sessionID" = String, Path), ("messageID" = String, Path)),
    responses((status = 200, body = Data), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn session_message(State(st): State<Arc<AppState>>, Path((id, message_id)): Path<(String, String)>) -> ApiResult<JsonBody<Data>> {
    check(&message_id, "msg", "messageID")?;
    let all = v2_messages(&st, &id).await?;
    // A compaction's summary is shown inside the compaction message.
    let found = all.into_iter().find(|m| m["id"] == message_id.as_str());
    let not_found =
        || tagged(StatusCode::NOT_FOUND, "MessageNotFoundError", format!("Message not found: {message_id}"), &[("sessionID", &id), ("messageID", &message_id)]);
    Ok(data(found.ok_or_else(not_found)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// At most this many events (default 100).
    #[param(pattern = "^[1-9][0-9]{0,8}$")]
    limit: Option<String>,
    /// The sequence number after which to start (exclusive).
    #[param(pattern = "^[0-9]{1,15}$")]
    after: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct History {
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<Value>,
    #[serde(rename = "hasMore")]
    pub has_more: bool,
}

fn number(value: Option<&str>, field: &str) -> ApiResult<Option<u64>> {
    value.map(|v| v.parse::<u64>().map_err(|_| invalid(format!("{field} must be a whole number, not {v:?}")))).transpose()
}

/// The session's durable events (`session.next.*`), derived from its stored
/// messages in order, one page after `after`.
#[utoipa::path(get, path = "/api/session/{sessionID}/history", tag = "v2", operation_id = "v2.session.history", summary = "Get session history",
    params(("sessionID" = String, Path), HistoryParams),
    responses((status = 200, body = History), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn session_history(State(st): State<Arc<AppState>>, Path(id): Path<String>, Query(q): Query<HistoryParams>) -> ApiResult<JsonBody<History>> {
    let limit = limit_of(number(q.limit.as_deref(), "limit")?, 100)?;
    let after = number(q.after.as_deref(), "after")?.unwrap_or(0);
    let s = session(&st, &id).await?;
    let events = api_message::history(&s, &v2_messages(&st, &id).await?);
    let rest: Vec<Value> = events.into_iter().skip(after.min(usize::MAX as u64) as usize).collect();
    let has_more = rest.len() > limit;
    Ok(JsonBody(History { data: rest.into_iter().take(limit).collect(), has_more }))
}

/// A pending permission request (v1's shape) as `PermissionV2Request`.
fn permission_v2(p: &Value) -> Value {
    let mut v = json!({ "id": p["id"], "sessionID": p["sessionID"], "action": p["permission"], "resources": p["patterns"],
        "save": p["always"], "metadata": p.get("metadata").cloned().unwrap_or_else(|| json!({})) });
    if let Some(tool) = p.get("tool").filter(|t| t.is_object()) {
        v["source"] = json!({ "type": "tool", "messageID": tool["messageID"], "callID": tool["callID"] });
    }
    v
}

fn session_permissions(st: &AppState, id: &str) -> Vec<Value> {
    st.runtime.permissions.list().iter().filter(|p| p["sessionID"] == id).map(permission_v2).collect()
}

#[utoipa::path(get, path = "/api/permission/request", tag = "v2", operation_id = "v2.permission.request.list", summary = "List pending permission requests",
    params(DirectoryParams), responses((status = 200, body = LocatedList)))]
pub async fn permission_requests(State(st): State<Arc<AppState>>, Ctx(inst): Ctx) -> JsonBody<LocatedList> {
    located_list(inst.location(), st.runtime.permissions.list().iter().map(permission_v2).collect())
}

#[utoipa::path(get, path = "/api/session/{sessionID}/permission", tag = "v2", operation_id = "v2.session.permission.list",
    summary = "List session permission requests", params(("sessionID" = String, Path)),
    responses((status = 200, body = DataList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn session_permission_list(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<JsonBody<DataList>> {
    session(&st, &id).await?;
    Ok(data_list(session_permissions(&st, &id)))
}

fn permission_not_found(id: &str) -> ApiError {
    tagged(StatusCode::NOT_FOUND, "PermissionNotFoundError", format!("Permission request not found: {id}"), &[("requestID", id)])
}

#[utoipa::path(get, path = "/api/session/{sessionID}/permission/{requestID}", tag = "v2", operation_id = "v2.session.permission.get",
    summary = "Get permission request", params(("sessionID" = String, Path), ("requestID" = String, Path)),
    responses((status = 200, body = Data), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn session_permission_get(State(st): State<Arc<AppState>>, Path((id, request)): Path<(String, String)>) -> ApiResult<JsonBody<Data>> {
    session(&st, &id).await?;
    let found = session_permissions(&st, &id).into_iter().find(|p| p["id"] == request.as_str());
    Ok(data(found.ok_or_else(|| permission_not_found(&request))?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionReplyV2 {
    reply: Reply,
    /// With `reject`: what the model should do instead.
    message: Option<String>,
}

#[utoipa::path(post, path = "/api/session/{sessionID}/permission/{requestID}/reply", tag = "v2", operation_id = "v2.session.permission.reply",
    summary = "Reply to pending permission request", params(("sessionID" = String, Path), ("requestID" = String, Path)), request_body = PermissionReplyV2,
    responses((status = 204, description = "Answered"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn session_permission_reply(
    State(st): State<Arc<AppState>>,
    Path((id, request)): Path<(String, String)>,
    Json(body): Json<PermissionReplyV2>,
) -> ApiResult<StatusCode> {
    session(&st, &id).await?;
    if !session_permissions(&st, &id).iter().any(|p| p["id"] == request.as_str()) {
        return Err(permission_not_found(&request));
    }
    st.runtime.permissions.reply(&request, body.reply, body.message).ok_or_else(|| permission_not_found(&request))?;
    super::permission::saved(&st).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pending questions of the agent's `question` tool, oldest first.
#[utoipa::path(get, path = "/api/question/request", tag = "v2", operation_id = "v2.question.request.list", summary = "List pending question requests",
    params(DirectoryParams), responses((status = 200, body = LocatedList)))]
pub async fn question_requests(State(st): State<Arc<AppState>>, Ctx(inst): Ctx) -> JsonBody<LocatedList> {
    located_list(inst.location(), st.runtime.questions.list())
}

#[utoipa::path(get, path = "/api/session/{sessionID}/question", tag = "v2", operation_id = "v2.session.question.list",
    summary = "List session question requests", params(("sessionID" = String, Path)),
    responses((status = 200, body = DataList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn session_question_list(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<JsonBody<DataList>> {
    session(&st, &id).await?;
    Ok(data_list(st.runtime.questions.of_session(&id)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuestionReplyV2 {
    /// User answers in order of questions (each answer is an array of selected labels).
    answers: Vec<Vec<String>>,
}

/// The session exists and `request` is one of its pending questions.
async fn session_question(st: &AppState, id: &str, request: &str) -> ApiResult<()> {
    session(st, id).await?;
    if st.runtime.questions.of_session(id).iter().any(|q| q["id"] == request) {
        return Ok(());
    }
    Err(question_not_found(request))
}

fn question_not_found(request: &str) -> ApiError {
    tagged(StatusCode::NOT_FOUND, "QuestionNotFoundError", format!("Question request not found: {request}"), &[("requestID", request)])
}

/// Answers a pending question of the session; the asking call goes on with the answers.
#[utoipa::path(post, path = "/api/session/{sessionID}/question/{requestID}/reply", tag = "v2", operation_id = "v2.session.question.reply",
    summary = "Reply to pending question request", params(("sessionID" = String, Path), ("requestID" = String, Path)), request_body = QuestionReplyV2,
    responses((status = 204, description = "Answered"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn session_question_reply(
    State(st): State<Arc<AppState>>,
    Path((id, request)): Path<(String, String)>,
    Json(body): Json<QuestionReplyV2>,
) -> ApiResult<StatusCode> {
    session_question(&st, &id, &request).await?;
    st.runtime.questions.reply(&request, body.answers).ok_or_else(|| question_not_found(&request))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Dismisses a pending question of the session; the asking call fails with "The user dismissed this question".
#[utoipa::path(post, path = "/api/session/{sessionID}/question/{requestID}/reject", tag = "v2", operation_id = "v2.session.question.reject",
    summary = "Reject pending question request", params(("sessionID" = String, Path), ("requestID" = String, Path)),
    responses((status = 204, description = "Rejected"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn session_question_reject(State(st): State<Arc<AppState>>, Path((id, request)): Path<(String, String)>) -> ApiResult<StatusCode> {
    session_question(&st, &id, &request).await?;
    st.runtime.questions.reject(&request).ok_or_else(|| question_not_found(&request))?;
    Ok(StatusCode::NO_CONTENT)
}

/// One provider, as `GET /api/provider` lists it.
#[utoipa::path(get, path = "/api/provider/{providerID}", tag = "v2", operation_id = "v2.provider.get", summary = "Get provider",
    params(("providerID" = String, Path), DirectoryParams), responses((status = 200, body = Located), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn provider_get(Ws(ws): Ws, Ctx(inst): Ctx, Path(id): Path<String>) -> ApiResult<JsonBody<Located>> {
    let c = load(&ws, &inst).await?;
    let found = provider::list(&c).into_iter().find(|p| p.id == id).map(|p| super::v2::provider_value(&p));
    let not_found = || tagged(StatusCode::NOT_FOUND, "ProviderNotFoundError", format!("Provider not found: {id}"), &[("providerID", &id)]);
    Ok(located(inst.location(), found.ok_or_else(not_found)?))
}

fn pty_value(info: impl Serialize) -> Value {
    serde_json::to_value(info).unwrap_or(Value::Null)
}

#[utoipa::path(get, path = "/api/pty", tag = "v2", operation_id = "v2.pty.list", summary = "List PTY sessions", params(DirectoryParams),
    responses((status = 200, body = LocatedList)))]
pub async fn pty_list(ws: Ws, ctx: Ctx) -> JsonBody<LocatedList> {
    let location = ctx.0.location();
    let JsonBody(list) = v1_pty::list(ws, ctx).await;
    located_list(location, list.iter().map(pty_value).collect())
}

#[utoipa::path(post, path = "/api/pty", tag = "v2", operation_id = "v2.pty.create", summary = "Create PTY session", params(DirectoryParams),
    request_body = v1_pty::CreateBody,
    responses((status = 200, body = Located), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 501, body = ErrorBody)))]
pub async fn pty_create(ws: Ws, ctx: Ctx, body: Json<v1_pty::CreateBody>) -> Result<JsonBody<Located>, PtyError> {
    let location = ctx.0.location();
    let JsonBody(info) = v1_pty::create(ws, ctx, body).await?;
    Ok(located(location, pty_value(info)))
}

#[utoipa::path(get, path = "/api/pty/{ptyID}", tag = "v2", operation_id = "v2.pty.get", summary = "Get PTY session",
    params(("ptyID" = String, Path), DirectoryParams), responses((status = 200, body = Located), (status = 400, body = ErrorBody), (status = 404, body = v1_pty::PtyNotFound)))]
pub async fn pty_get(ws: Ws, ctx: Ctx, id: Path<String>) -> Result<JsonBody<Located>, PtyError> {
    let location = ctx.0.location();
    let JsonBody(info) = v1_pty::get(ws, ctx, axum::extract::Path(id.0)).await?;
    Ok(located(location, pty_value(info)))
}

#[utoipa::path(put, path = "/api/pty/{ptyID}", tag = "v2", operation_id = "v2.pty.update", summary = "Update PTY session",
    params(("ptyID" = String, Path), DirectoryParams), request_body = v1_pty::UpdateBody,
    responses((status = 200, body = Located), (status = 400, body = ErrorBody), (status = 404, body = v1_pty::PtyNotFound)))]
pub async fn pty_update(ws: Ws, ctx: Ctx, id: Path<String>, body: Json<v1_pty::UpdateBody>) -> Result<JsonBody<Located>, PtyError> {
    let location = ctx.0.location();
    let JsonBody(info) = v1_pty::update(ws, ctx, axum::extract::Path(id.0), body).await?;
    Ok(located(location, pty_value(info)))
}

#[utoipa::path(delete, path = "/api/pty/{ptyID}", tag = "v2", operation_id = "v2.pty.remove", summary = "Remove PTY session",
    params(("ptyID" = String, Path), DirectoryParams),
    responses((status = 204, description = "Removed"), (status = 400, body = ErrorBody), (status = 404, body = v1_pty::PtyNotFound)))]
pub async fn pty_remove(ws: Ws, ctx: Ctx, id: Path<String>) -> Result<StatusCode, PtyError> {
    let _removed = v1_pty::remove(ws, ctx, axum::extract::Path(id.0)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/pty/{ptyID}/connect-token", tag = "v2", operation_id = "v2.pty.connectToken", summary = "Create PTY WebSocket token",
    params(("ptyID" = String, Path), DirectoryParams),
    responses((status = 200, body = Located), (status = 403, body = v1_pty::PtyForbidden), (status = 404, body = v1_pty::PtyNotFound)))]
pub async fn pty_connect_token(st: State<Arc<AppState>>, ws: Ws, ctx: Ctx, id: Path<String>, headers: HeaderMap) -> Result<JsonBody<Located>, PtyError> {
    let location = ctx.0.location();
    let JsonBody(token) = v1_pty::connect_token(st, ws, ctx, axum::extract::Path(id.0), headers).await?;
    Ok(located(location, pty_value(token)))
}
