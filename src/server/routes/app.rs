//! What the TUI asks about at start-up: agents, commands, skills, and the
//! status of services Burrow does not run (LSP, formatters, workspaces,
//! the OpenCode console), which are answered truthfully as empty.

use axum::extract::Path;
use axum::Json;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::config::{agent_paths, load};
use super::DirectoryParams;
use crate::config::agent::{self, Agent};
use crate::config::command::{self, Command, Skill};
use crate::error::{ApiResult, ErrorBody};
use crate::server::extract::{Ctx, Ws};

#[utoipa::path(get, path = "/agent", tag = "app", operation_id = "app.agents", params(DirectoryParams),
    responses((status = 200, description = "List of agents", body = Vec<Agent>), (status = 400, body = ErrorBody)))]
pub async fn agents(Ws(ws): Ws, Ctx(inst): Ctx) -> ApiResult<Json<Vec<Agent>>> {
    let c = load(&ws, &inst).await?;
    Ok(Json(agent::list(&c, &agent_paths(&ws, &inst))))
}

#[utoipa::path(get, path = "/command", tag = "command", operation_id = "command.list", params(DirectoryParams),
    responses((status = 200, description = "List of commands", body = Vec<Command>), (status = 400, body = ErrorBody)))]
pub async fn commands(Ws(ws): Ws, Ctx(inst): Ctx) -> ApiResult<Json<Vec<Command>>> {
    let c = load(&ws, &inst).await?;
    Ok(Json(command::list(&c, &inst.project.worktree)))
}

#[utoipa::path(get, path = "/skill", tag = "app", operation_id = "app.skills", params(DirectoryParams),
    responses((status = 200, description = "List of skills", body = Vec<Skill>)))]
pub async fn skills(_ctx: Ctx) -> Json<Vec<Skill>> {
    Json(command::skills())
}

#[utoipa::path(get, path = "/lsp", tag = "lsp", operation_id = "lsp.status", params(DirectoryParams),
    responses((status = 200, description = "LSP server status", body = Vec<Object>)))]
pub async fn lsp(_ctx: Ctx) -> Json<Vec<Value>> {
    // Burrow runs no language servers.
    Json(Vec::new())
}

#[utoipa::path(get, path = "/formatter", tag = "formatter", operation_id = "formatter.status", params(DirectoryParams),
    responses((status = 200, description = "Formatter status", body = Vec<Object>)))]
pub async fn formatter(_ctx: Ctx) -> Json<Vec<Value>> {
    // Burrow runs no formatters.
    Json(Vec::new())
}

#[utoipa::path(get, path = "/experimental/resource", tag = "experimental", operation_id = "experimental.resource.list", params(DirectoryParams),
    responses((status = 200, description = "MCP resources", body = Object)))]
pub async fn resources(_ctx: Ctx) -> Json<Map<String, Value>> {
    Json(Map::new())
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentalCapabilities {
    pub background_subagents: bool,
}

#[utoipa::path(get, path = "/experimental/capabilities", tag = "experimental", operation_id = "experimental.capabilities.get", params(DirectoryParams),
    responses((status = 200, body = ExperimentalCapabilities)))]
pub async fn capabilities(_ctx: Ctx) -> Json<ExperimentalCapabilities> {
    Json(ExperimentalCapabilities { background_subagents: false })
}

/// Detaches the synchronous subagents blocking a session so they go on in
/// the background. Burrow has no background subagents (`backgroundSubagents:
/// false` above): a `task` call always runs to its end inside the turn, so,
/// as OpenCode does without that feature, nothing is detached and the answer
/// is `false`.
#[utoipa::path(post, path = "/experimental/session/{sessionID}/background", tag = "experimental", operation_id = "experimental.session.background",
    params(("sessionID" = String, Path), DirectoryParams),
    responses((status = 200, description = "Backgrounded subagents", body = bool), (status = 400, body = ErrorBody)))]
pub async fn session_background(_ctx: Ctx, Path(id): Path<String>) -> ApiResult<Json<bool>> {
    super::session::check_id(&id, "ses", "sessionID")?;
    Ok(Json(false))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsoleState {
    pub console_managed_providers: Vec<String>,
    pub switchable_org_count: u32,
}

#[utoipa::path(get, path = "/experimental/console", tag = "experimental", operation_id = "experimental.console.get", params(DirectoryParams),
    responses((status = 200, body = ConsoleState)))]
pub async fn console(_ctx: Ctx) -> Json<ConsoleState> {
    // Not signed in to the OpenCode console.
    Json(ConsoleState { console_managed_providers: Vec::new(), switchable_org_count: 0 })
}

#[utoipa::path(get, path = "/experimental/tool/ids", tag = "tool", operation_id = "tool.ids", params(DirectoryParams),
    responses((status = 200, description = "Tool ids", body = Vec<String>), (status = 400, body = ErrorBody)))]
pub async fn tool_ids(Ws(ws): Ws, Ctx(inst): Ctx) -> ApiResult<Json<Vec<String>>> {
    // The tools OpenCode's agents know by name (permission rules refer to
    // them), then those of the directory's connected MCP servers.
    let known = ["invalid", "question", "bash", "read", "glob", "grep", "edit", "write", "task", "webfetch", "todowrite", "websearch", "skill", "apply_patch"];
    let mut ids: Vec<String> = known.into_iter().map(str::to_string).collect();
    let c = load(&ws, &inst).await?;
    ids.extend(ws.runtime.mcp(&inst, &c).await.tools().await.iter().map(|t| t.name().to_string()));
    Ok(Json(ids))
}

#[derive(Serialize, ToSchema)]
pub struct ProjectDirectory {
    pub directory: String,
}

#[utoipa::path(get, path = "/project/{projectID}/directories", tag = "project", operation_id = "project.directories",
    params(DirectoryParams, ("projectID" = String, Path)),
    responses((status = 200, body = Vec<ProjectDirectory>)))]
pub async fn project_directories(Ws(ws): Ws, _ctx: Ctx, Path(id): Path<String>) -> Json<Vec<ProjectDirectory>> {
    // A git project's directory is its worktree; the global project has none.
    let dirs =
        ws.instances.projects().await.into_iter().filter(|p| p.id == id && p.vcs.is_some()).map(|p| ProjectDirectory { directory: p.worktree }).collect();
    Json(dirs)
}
