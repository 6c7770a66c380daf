//! Sessions: list, create, read, change, delete, children, status, todos,
//! diffs, fork and abort.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::Json as JsonBody;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::DirectoryParams;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::protocol::message::Message;
use crate::protocol::session::{PermissionRule, Session, SessionModel, SessionStatus, SnapshotFileDiff, Todo};
use crate::server::extract::{Ctx, Json, OptionalJson, Path, Query, RequestWorkspace, Ws};
use crate::server::instance::Instance;
use crate::server::AppState;
use crate::session::error::StoreError;
use crate::session::events::Scope;
use crate::session::runtime::Runtime;
use crate::session::service::NewSession;
use crate::session::store::{InWorkspace, SessionFilter};
use crate::workspace::Scope as WsScope;

/// A path parameter must carry its kind's prefix (`ses`, `msg`, `prt`).
/// OpenCode answers a 500 for `garbage`; a bad id is the client's mistake.
pub fn check_id(value: &str, prefix: &str, field: &str) -> ApiResult<()> {
    if value.starts_with(prefix) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!("Expected a string starting with \"{prefix}\", got \"{value}\" at [\"{field}\"]")))
    }
}

/// The session a path names, or the 404 OpenCode gives.
pub async fn require(st: &AppState, id: &str) -> ApiResult<Session> {
    check_id(id, "ses", "sessionID")?;
    Ok(st.runtime.sessions.store.session(id).await?)
}

/// Where a session's runners work: in its own workspace (`workspaceID`),
/// whatever workspace the request names, so that its tools always run where
/// it lives; a session without one lives in the server's own environment.
/// `inst` is the request's directory in the request's workspace `ws`.
pub async fn where_it_runs(st: &AppState, ws: Arc<WsScope>, inst: Arc<Instance>, session: &Session) -> ApiResult<(Arc<Runtime>, Arc<Instance>)> {
    let scope = match session.workspace_id.as_deref().filter(|w| st.workspaces.exists(w)) {
        Some(w) => st.workspaces.scope(w).await?,
        None => st.scope.clone(),
    };
    if Arc::ptr_eq(&scope, &ws) {
        return Ok((scope.runtime.clone(), inst));
    }
    let inst = scope.instances.resolve(&*scope.runtime.env, st.started_ms, Some(&session.directory)).await?;
    Ok((scope.runtime.clone(), inst))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListParams {
    /// Only sessions of this directory (unless `scope=project` or `path` is given).
    directory: Option<String>,
    workspace: Option<String>,
    /// `project`: every session of the project, whatever its directory.
    scope: Option<String>,
    /// Only sessions at this path below the worktree, or below it.
    path: Option<String>,
    /// Only sessions without a parent.
    roots: Option<bool>,
    /// Only sessions updated at or after this time (ms).
    #[serde(default, deserialize_with = "crate::protocol::num::safe")]
    #[param(maximum = 9007199254740991_u64)]
    start: Option<u64>,
    /// Only sessions whose title contains this text.
    search: Option<String>,
    /// At most this many (default 100).
    #[serde(default, deserialize_with = "crate::protocol::num::safe")]
    #[param(maximum = 9007199254740991_u64)]
    limit: Option<u64>,
}

#[utoipa::path(get, path = "/session", tag = "session", operation_id = "session.list", params(ListParams),
    responses((status = 200, description = "List of sessions", body = Vec<Session>), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(st): State<Arc<AppState>>,
    Ctx(inst): Ctx,
    RequestWorkspace(workspace): RequestWorkspace,
    Query(q): Query<ListParams>,
) -> ApiResult<JsonBody<Vec<Session>>> {
    let project_scope = q.scope.as_deref() == Some("project");
    let filter = SessionFilter {
        // A workspace's sessions whatever their project: one warped there
        // keeps the project it was made in.
        project_id: workspace.is_none().then(|| inst.project.id.clone()),
        directory: (q.directory.is_some() && !project_scope).then(|| inst.directory.clone()),
        path: q.path,
        roots: q.roots.unwrap_or(false),
        start: q.start,
        search: q.search,
        limit: q.limit.map(|l| l as usize),
        // With a workspace (`?workspace=` or the header), only its sessions, as
        // OpenCode lists a workspace's; without, the project's, wherever they run.
        workspace: workspace.map_or(InWorkspace::Any, InWorkspace::Named),
    };
    Ok(JsonBody(st.runtime.sessions.store.sessions(filter).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct GlobalListParams {
    /// Only sessions of this directory.
    directory: Option<String>,
    workspace: Option<String>,
    /// Only sessions without a parent.
    #[param(pattern = "^(true|false)$")]
    roots: Option<String>,
    /// Only sessions updated at or after this time (ms).
    #[serde(default, deserialize_with = "crate::protocol::num::safe")]
    #[param(maximum = 9007199254740991_u64)]
    start: Option<u64>,
    /// Only sessions updated before this time (ms): `x-next-cursor` of the previous page.
    #[serde(default, deserialize_with = "crate::protocol::num::safe")]
    #[param(maximum = 9007199254740991_u64)]
    cursor: Option<u64>,
    /// Only sessions whose title contains this text.
    search: Option<String>,
    /// At most this many (default 100).
    #[serde(default, deserialize_with = "crate::protocol::num::safe")]
    #[param(minimum = 1, maximum = 9007199254740991_u64)]
    limit: Option<u64>,
    /// `true`: only archived sessions; `false`: only the others; absent: both.
    #[param(pattern = "^(true|false)$")]
    archived: Option<String>,
}

/// A session with the project it belongs to (`GlobalSession`).
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct GlobalSession {
    #[serde(flatten)]
    pub session: Session,
    #[schema(value_type = Option<Object>)]
    pub project: Option<serde_json::Value>,
}

fn flag(value: Option<&str>, name: &str) -> ApiResult<Option<bool>> {
    match value {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(ApiError::bad_request(format!("{name} must be true or false, not {other:?}"))),
    }
}

/// Sessions of every project the request's workspace has seen (the request's
/// and those resolved since it started) that live in that workspace (the
/// server's own environment when the request names none), most recently updated first, each with its
/// project. With more left than `limit`, `x-next-cursor` holds the cursor of
/// the next page.
#[utoipa::path(get, path = "/experimental/session", tag = "experimental", operation_id = "experimental.session.list", params(GlobalListParams),
    responses((status = 200, body = Vec<GlobalSession>), (status = 400, body = ErrorBody)))]
pub async fn experimental_list(
    State(st): State<Arc<AppState>>,
    Ws(ws): Ws,
    Ctx(inst): Ctx,
    RequestWorkspace(workspace): RequestWorkspace,
    Query(q): Query<GlobalListParams>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let roots = flag(q.roots.as_deref(), "roots")?.unwrap_or(false);
    let archived = flag(q.archived.as_deref(), "archived")?;
    let limit = match q.limit {
        Some(0) => return Err(ApiError::bad_request("limit must be at least 1")),
        Some(l) => l.min(10_000) as usize,
        None => 100,
    };
    let mut projects = ws.instances.projects().await;
    if !projects.iter().any(|p| p.id == inst.project.id) {
        projects.push(inst.project.clone());
    }
    let mut all: Vec<GlobalSession> = Vec::new();
    for p in &projects {
        let filter = SessionFilter {
            project_id: Some(p.id.clone()),
            directory: q.directory.is_some().then(|| inst.directory.clone()),
            path: None,
            roots,
            start: q.start,
            search: q.search.clone(),
            limit: Some(usize::MAX),
            // Two workspaces may hold the same project (a clone of one repository,
            // or folders outside git): only the request workspace's sessions.
            workspace: workspace.clone().map_or(InWorkspace::Default, InWorkspace::Named),
        };
        let summary = serde_json::json!({ "id": p.id, "worktree": p.worktree });
        let mut summary = summary;
        if let Some(name) = &p.name {
            summary["name"] = serde_json::json!(name);
        }
        for s in st.runtime.sessions.store.sessions(filter).await? {
            all.push(GlobalSession { session: s, project: Some(summary.clone()) });
        }
    }
    all.retain(|g| q.cursor.is_none_or(|c| g.session.time.updated < c) && archived.is_none_or(|a| g.session.time.archived.is_some() == a));
    all.sort_by(|a, b| b.session.time.updated.cmp(&a.session.time.updated).then_with(|| a.session.id.cmp(&b.session.id)));
    // The next page holds what was updated before the cursor, so a page never
    // ends inside a run of equal times: it ends before the run, or (a page of
    // one run) after it.
    let updated = |i: usize| all[i].session.time.updated;
    let end = if all.len() <= limit {
        all.len()
    } else {
        match (1..=limit).rev().find(|&k| updated(k - 1) != updated(k)) {
            Some(k) => k,
            None => (limit..all.len()).find(|&k| updated(k) != updated(limit - 1)).unwrap_or(all.len()),
        }
    };
    let next = (end < all.len()).then(|| updated(end - 1));
    all.truncate(end);
    let mut res = JsonBody(all).into_response();
    if let Some(next) = next.and_then(|n| axum::http::HeaderValue::from_str(&n.to_string()).ok()) {
        res.headers_mut().insert(axum::http::header::ACCESS_CONTROL_EXPOSE_HEADERS, axum::http::HeaderValue::from_static("X-Next-Cursor"));
        res.headers_mut().insert("x-next-cursor", next);
    }
    Ok(res)
}

/// `POST /session`'s body (named apart from `POST /pty`'s in the document).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = SessionCreateBody)]
pub struct CreateBody {
    #[serde(rename = "parentID")]
    #[schema(pattern = "^ses")]
    parent_id: Option<String>,
    title: Option<String>,
    agent: Option<String>,
    model: Option<SessionModel>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    permission: Option<Vec<PermissionRule>>,
    #[serde(rename = "workspaceID")]
    #[schema(pattern = "^wrk")]
    workspace_id: Option<String>,
}

#[utoipa::path(post, path = "/session", tag = "session", operation_id = "session.create", params(DirectoryParams),
    request_body(content = Option<CreateBody>, description = "Optional; an empty body creates a root session"),
    responses((status = 200, body = Session), (status = 400, body = ErrorBody)))]
pub async fn create(
    State(st): State<Arc<AppState>>,
    Ctx(inst): Ctx,
    workspace: RequestWorkspace,
    OptionalJson(mut body): OptionalJson<CreateBody>,
) -> ApiResult<JsonBody<Session>> {
    // A session made in a workspace belongs to it.
    body.workspace_id = body.workspace_id.or(workspace.0);
    if let Some(parent) = &body.parent_id {
        check_id(parent, "ses", "parentID")?;
    }
    if let Some(w) = &body.workspace_id {
        check_id(w, "wrk", "workspaceID")?;
        if !st.workspaces.exists(w) {
            return Err(ApiError::not_found(format!("no workspace {w}")));
        }
    }
    let input = NewSession {
        parent_id: body.parent_id,
        title: body.title,
        agent: body.agent,
        model: body.model,
        metadata: body.metadata,
        permission: body.permission,
        workspace_id: body.workspace_id,
        ..Default::default()
    };
    Ok(JsonBody(st.runtime.sessions.create(&inst, input).await?))
}

#[utoipa::path(get, path = "/session/status", tag = "session", operation_id = "session.status", params(DirectoryParams),
    responses((status = 200, description = "The status of every working session; idle ones are absent", body = BTreeMap<String, SessionStatus>)))]
pub async fn status(State(st): State<Arc<AppState>>) -> JsonBody<BTreeMap<String, SessionStatus>> {
    JsonBody(st.runtime.sessions.runs.statuses())
}

/// `GET /session/{id}`: the session, plus its run status (a Burrow extension
/// that bridges such as CodeTether read instead of polling `/session/status`).
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct SessionWithStatus {
    #[serde(flatten)]
    pub session: Session,
    pub status: RunStatus,
}

/// A session's [`SessionStatus`] (`type` and its fields, as `/session/status`
/// has them) with the two fields CodeTether's completion wait reads: it takes
/// a session for done when `idle` is true or `status` is `"idle"`.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct RunStatus {
    #[serde(flatten)]
    pub inner: SessionStatus,
    /// Whether no run holds the session and no prompt waits for it.
    pub idle: bool,
    /// `idle`, `busy` or `retry`: the `type` again, under the name the bridge reads.
    pub status: &'static str,
}

impl From<SessionStatus> for RunStatus {
    fn from(inner: SessionStatus) -> Self {
        let status = match inner {
            SessionStatus::Idle => "idle",
            SessionStatus::Busy => "busy",
            SessionStatus::Retry { .. } => "retry",
        };
        Self { idle: status == "idle", status, inner }
    }
}

#[utoipa::path(get, path = "/session/{sessionID}", tag = "session", operation_id = "session.get", params(("sessionID" = String, Path), DirectoryParams),
    responses((status = 200, body = SessionWithStatus), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<JsonBody<SessionWithStatus>> {
    let session = require(&st, &id).await?;
    let status = st.runtime.sessions.runs.statuses().remove(&session.id).unwrap_or(SessionStatus::Idle);
    Ok(JsonBody(SessionWithStatus { session, status: status.into() }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpdateTime {
    archived: Option<f64>,
}

/// `PATCH /session/{sessionID}`'s body (named apart from `PUT /pty/{ptyID}`'s).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = SessionUpdateBody)]
pub struct UpdateBody {
    title: Option<String>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Rules added after the session's own (later rules win).
    permission: Option<Vec<PermissionRule>>,
    time: Option<UpdateTime>,
}

/// Each field changes the session on its own and publishes its own
/// `session.updated`, in this order, as OpenCode does.
#[utoipa::path(patch, path = "/session/{sessionID}", tag = "session", operation_id = "session.update", params(("sessionID" = String, Path), DirectoryParams),
    request_body = UpdateBody,
    responses((status = 200, body = Session), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(State(st): State<Arc<AppState>>, Ctx(inst): Ctx, Path(id): Path<String>, Json(body): Json<UpdateBody>) -> ApiResult<JsonBody<Session>> {
    require(&st, &id).await?;
    let (store, scope) = (&st.runtime.sessions.store, Scope::of(&inst));
    let mut session = None;
    if let Some(title) = body.title {
        session = Some(store.update_session(&scope, &id, move |s| s.title = title).await?);
    }
    if let Some(metadata) = body.metadata {
        let change = move |s: &mut Session| {
            s.metadata = Some(metadata);
            s.time.updated = crate::now_ms();
        };
        session = Some(store.update_session(&scope, &id, change).await?);
    }
    if let Some(rules) = body.permission {
        let change = move |s: &mut Session| {
            s.permission.get_or_insert_with(Vec::new).extend(rules);
            s.time.updated = crate::now_ms();
        };
        session = Some(store.update_session(&scope, &id, change).await?);
    }
    if let Some(archived) = body.time.and_then(|t| t.archived) {
        session = Some(store.update_session(&scope, &id, move |s| s.time.archived = Some(archived)).await?);
    }
    match session {
        Some(s) => Ok(JsonBody(s)),
        None => Ok(JsonBody(store.session(&id).await?)),
    }
}

/// Deletes the session and its children, stopping whatever runs in them.
#[utoipa::path(delete, path = "/session/{sessionID}", tag = "session", operation_id = "session.delete", params(("sessionID" = String, Path), DirectoryParams),
    responses((status = 200, body = bool), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(State(st): State<Arc<AppState>>, Ctx(inst): Ctx, Path(id): Path<String>) -> ApiResult<JsonBody<bool>> {
    require(&st, &id).await?;
    st.runtime.sessions.delete(&Scope::of(&inst), &id).await?;
    Ok(JsonBody(true))
}

#[utoipa::path(get, path = "/session/{sessionID}/children", tag = "session", operation_id = "session.children", params(("sessionID" = String, Path), DirectoryParams),
    responses((status = 200, body = Vec<Session>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn children(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<JsonBody<Vec<Session>>> {
    check_id(&id, "ses", "sessionID")?;
    Ok(JsonBody(st.runtime.sessions.store.children(&id).await?))
}

#[utoipa::path(get, path = "/session/{sessionID}/todo", tag = "session", operation_id = "session.todo", params(("sessionID" = String, Path), DirectoryParams),
    responses((status = 200, body = Vec<Todo>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn todo(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<JsonBody<Vec<Todo>>> {
    check_id(&id, "ses", "sessionID")?;
    Ok(JsonBody(st.runtime.sessions.store.todos(&id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct DiffParams {
    directory: Option<String>,
    workspace: Option<String>,
    /// The diff of one user message's turn instead of the whole session's.
    #[serde(rename = "messageID")]
    message_id: Option<String>,
}

/// The files the session (or one turn of it) changed. A missing session is a
/// 404 like every other sub-resource of a session (OpenCode answers `[]`,
/// which a client cannot tell from "nothing changed"); an unknown message of
/// an existing session has no changes.
#[utoipa::path(get, path = "/session/{sessionID}/diff", tag = "session", operation_id = "session.diff", params(("sessionID" = String, Path), DiffParams),
    responses((status = 200, body = Vec<SnapshotFileDiff>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn diff(State(st): State<Arc<AppState>>, Path(id): Path<String>, Query(q): Query<DiffParams>) -> ApiResult<JsonBody<Vec<SnapshotFileDiff>>> {
    if let Some(m) = &q.message_id {
        check_id(m, "msg", "messageID")?;
    }
    let session = require(&st, &id).await?;
    let diffs = match q.message_id {
        Some(message_id) => match st.runtime.sessions.store.message(&id, &message_id).await {
            Ok(m) => match m.info {
                Message::User(u) => u.summary.map(|s| s.diffs),
                Message::Assistant(_) => None,
            },
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        },
        None => session.summary.and_then(|s| s.diffs),
    };
    Ok(JsonBody(diffs.unwrap_or_default()))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForkBody {
    /// Copy only the messages before this one (all of them without it).
    #[serde(rename = "messageID")]
    #[schema(pattern = "^msg")]
    message_id: Option<String>,
}

/// Creates a new session with the messages of this one up to (not including)
/// `messageID`, titled "... (fork #N)", as OpenCode does.
#[utoipa::path(post, path = "/session/{sessionID}/fork", tag = "session", operation_id = "session.fork", params(("sessionID" = String, Path), DirectoryParams),
    request_body(content = Option<ForkBody>, description = "Optional; without messageID the whole session is copied"),
    responses((status = 200, body = Session), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn fork(
    State(st): State<Arc<AppState>>,
    Ctx(inst): Ctx,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<ForkBody>,
) -> ApiResult<JsonBody<Session>> {
    check_id(&id, "ses", "sessionID")?;
    if let Some(m) = &body.message_id {
        check_id(m, "msg", "messageID")?;
    }
    Ok(JsonBody(st.runtime.sessions.fork(&inst, &id, body.message_id.as_deref()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RevertBody {
    #[serde(rename = "messageID")]
    #[schema(pattern = "^msg")]
    message_id: String,
    #[serde(rename = "partID", default)]
    #[schema(pattern = "^prt")]
    part_id: Option<String>,
}

/// Undoes the file changes made after a message (or a part of it) and hides
/// the messages after it (`session.revert`), as OpenCode does. A busy session
/// is a 409; an unknown message or part a 404; an environment that keeps no
/// snapshots a 501 (`GET /burrow/capabilities` says why under `undo`).
#[utoipa::path(post, path = "/session/{sessionID}/revert", tag = "session", operation_id = "session.revert", params(("sessionID" = String, Path), DirectoryParams),
    request_body = RevertBody,
    responses((status = 200, body = Session), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 501, body = ErrorBody)))]
pub async fn revert(State(st): State<Arc<AppState>>, Ctx(inst): Ctx, Path(id): Path<String>, Json(body): Json<RevertBody>) -> ApiResult<JsonBody<Session>> {
    check_id(&id, "ses", "sessionID")?;
    check_id(&body.message_id, "msg", "messageID")?;
    if let Some(p) = &body.part_id {
        check_id(p, "prt", "partID")?;
    }
    let session = crate::session::revert::revert(&st.runtime, &Scope::of(&inst), &id, &body.message_id, body.part_id.as_deref()).await?;
    Ok(JsonBody(session))
}

/// Puts back the files as they were before the session's revert, and clears it.
#[utoipa::path(post, path = "/session/{sessionID}/unrevert", tag = "session", operation_id = "session.unrevert", params(("sessionID" = String, Path), DirectoryParams),
    responses((status = 200, body = Session), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn unrevert(State(st): State<Arc<AppState>>, Ctx(inst): Ctx, Path(id): Path<String>) -> ApiResult<JsonBody<Session>> {
    check_id(&id, "ses", "sessionID")?;
    Ok(JsonBody(crate::session::revert::unrevert(&st.runtime, &Scope::of(&inst), &id).await?))
}

/// Stops the session's shell command (or agent turn) and answers once it has
/// wound down. Like OpenCode, an idle or unknown session still answers `true`.
#[utoipa::path(post, path = "/session/{sessionID}/abort", tag = "session", operation_id = "session.abort", params(("sessionID" = String, Path), DirectoryParams),
    responses((status = 200, body = bool), (status = 400, body = ErrorBody)))]
pub async fn abort(State(st): State<Arc<AppState>>, Ctx(inst): Ctx, Path(id): Path<String>) -> ApiResult<JsonBody<bool>> {
    check_id(&id, "ses", "sessionID")?;
    st.runtime.sessions.runs.abort(&Scope::of(&inst), &id).await;
    Ok(JsonBody(true))
}
