//! `POST /api/session/{sessionID}/permission` (v2 `session.permission.create`):
//! a client asks whether an action may happen in a session. The request is
//! evaluated as a tool call's would be (the agent's rules, the session's own,
//! the project's saved `always` answers); when it needs asking it becomes a
//! pending request like a tool's (`permission.asked`, listed, answered through
//! the usual replies), but nothing in the server waits for the answer.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as JsonBody;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::api::{check, data, session, Data};
use super::session::where_it_runs;
use crate::agent::permission::{Action, AskInput, Rule, SessionGate};
use crate::config::agent::{self as agents, default_agent};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::server::extract::{Ctx, Json, Path, Ws};
use crate::server::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Tool,
}

/// The tool call a request is for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionSource {
    #[serde(rename = "type")]
    #[allow(dead_code)]
    kind: SourceKind,
    #[serde(rename = "messageID")]
    message_id: String,
    #[serde(rename = "callID")]
    call_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionCreate {
    /// The request's id (`per...`); a new one when absent.
    #[schema(pattern = "^per")]
    id: Option<String>,
    /// The permission asked for (`bash`, `edit`, ...).
    action: String,
    /// The patterns it is asked for.
    resources: Vec<String>,
    /// The patterns an `always` reply approves from then on.
    #[serde(default)]
    save: Vec<String>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Map<String, Value>>,
    source: Option<PermissionSource>,
    /// The agent whose rules apply; the default agent when absent or unknown.
    agent: Option<String>,
}

/// Evaluates the request and, when approval is required, leaves it pending
/// for the session; answers its id and the effect (`allow`, `deny`, `ask`).
#[utoipa::path(post, path = "/api/session/{sessionID}/permission", tag = "v2", operation_id = "v2.session.permission.create",
    summary = "Create permission request", params(("sessionID" = String, Path)), request_body = PermissionCreate,
    responses((status = 200, body = Data), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(st): State<Arc<AppState>>,
    Ws(ws): Ws,
    Ctx(inst): Ctx,
    Path(id): Path<String>,
    Json(body): Json<PermissionCreate>,
) -> ApiResult<JsonBody<Data>> {
    let s = session(&st, &id).await?;
    if let Some(request) = &body.id {
        check(request, "per", "id")?;
    }
    let (rt, inst) = where_it_runs(&st, ws, inst, &s).await?;
    let cfg = rt.config(&inst).await?;
    let list = agents::list(&cfg, &rt.agent_paths(&inst));
    // An unknown agent gets the default agent's rules, as OpenCode falls back to its defaults.
    let default = default_agent(&cfg, &list);
    let named = body.agent.as_deref().filter(|n| list.iter().any(|a| a.name == *n)).unwrap_or(&default).to_string();
    let agent =
        list.into_iter().find(|a| a.name == named).ok_or_else(|| ApiError::internal(format!("the default agent {named:?} is not in the agent list")))?;
    let own: Vec<Rule> = s.permission.iter().flatten().filter_map(|p| serde_json::from_value(json!(p)).ok()).collect();
    let gate = SessionGate {
        permissions: rt.permissions.clone(),
        ruleset: agent.permission.into_iter().chain(own).collect(),
        directory: Some(s.directory.clone()),
        project: Some(s.project_id.clone()),
    };
    let input = AskInput {
        permission: body.action,
        patterns: body.resources,
        always: body.save,
        metadata: Value::Object(body.metadata.unwrap_or_default()),
        tool: body.source.map(|src| (src.message_id, src.call_id)),
    };
    let requested = body.id.clone();
    let (request, effect) = gate.create(&id, body.id, input).ok_or_else(|| {
        let message = format!("a permission request {} is already pending", requested.unwrap_or_default());
        ApiError::new(StatusCode::CONFLICT, "ConflictError", message)
    })?;
    let effect = match effect {
        Action::Allow => "allow",
        Action::Deny => "deny",
        Action::Ask => "ask",
    };
    Ok(data(json!({ "id": request, "effect": effect })))
}
