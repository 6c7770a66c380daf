//! `/mcp`: the MCP servers of a directory (see [`crate::mcp`]): their
//! status, adding one at run time, connecting and disconnecting.

use axum::Json as JsonBody;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::config::load;
use super::DirectoryParams;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::mcp::{config, NotFound};
use crate::server::extract::{Ctx, Json, Path, Ws};

/// `mcp.add`: a server's name and its config (`McpLocalConfig` | `McpRemoteConfig`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddBody {
    name: String,
    #[schema(value_type = Object)]
    config: Value,
}

/// OpenCode's `McpServerNotFoundError`.
fn not_found(e: NotFound) -> ApiError {
    let message = e.to_string();
    ApiError::not_found(message.clone()).with_field("_tag", "McpServerNotFoundError").with_field("name", e.0).with_field("message", message)
}

/// Every server of the directory's config (and those added since), by name:
/// `connected`, `disabled`, or `failed` with the error.
#[utoipa::path(get, path = "/mcp", tag = "mcp", operation_id = "mcp.status", params(DirectoryParams),
    responses((status = 200, description = "MCP server status", body = Object), (status = 400, body = ErrorBody)))]
pub async fn status(Ws(ws): Ws, Ctx(inst): Ctx) -> ApiResult<JsonBody<Map<String, Value>>> {
    let cfg = load(&ws, &inst).await?;
    Ok(JsonBody(ws.runtime.mcp(&inst, &cfg).await.status().await))
}

/// Adds a server (or replaces one of the same name) and connects it; answers every server's status.
#[utoipa::path(post, path = "/mcp", tag = "mcp", operation_id = "mcp.add", params(DirectoryParams), request_body = AddBody,
    responses((status = 200, description = "MCP server added successfully", body = Object), (status = 400, body = ErrorBody)))]
pub async fn add(Ws(ws): Ws, Ctx(inst): Ctx, Json(body): Json<AddBody>) -> ApiResult<JsonBody<Map<String, Value>>> {
    if body.config.get("type").is_none() {
        return Err(ApiError::bad_request("invalid MCP server config: `type` must be \"local\" or \"remote\""));
    }
    let server = config::parse(&body.config).map_err(ApiError::bad_request)?;
    let cfg = load(&ws, &inst).await?;
    Ok(JsonBody(ws.runtime.mcp(&inst, &cfg).await.add(&body.name, server).await))
}

/// Connects a server again (a disabled one too); `true` once it was tried:
/// whether it connected is in `GET /mcp`, as in OpenCode.
#[utoipa::path(post, path = "/mcp/{name}/connect", tag = "mcp", operation_id = "mcp.connect", params(("name" = String, Path), DirectoryParams),
    responses((status = 200, description = "MCP server connected successfully", body = bool), (status = 404, body = ErrorBody)))]
pub async fn connect(Ws(ws): Ws, Ctx(inst): Ctx, Path(name): Path<String>) -> ApiResult<JsonBody<bool>> {
    let cfg = load(&ws, &inst).await?;
    ws.runtime.mcp(&inst, &cfg).await.connect(&name).await.map_err(not_found)?;
    Ok(JsonBody(true))
}

/// Disconnects a server: its process ends and its tools leave the agent.
#[utoipa::path(post, path = "/mcp/{name}/disconnect", tag = "mcp", operation_id = "mcp.disconnect", params(("name" = String, Path), DirectoryParams),
    responses((status = 200, description = "MCP server disconnected successfully", body = bool), (status = 404, body = ErrorBody)))]
pub async fn disconnect(Ws(ws): Ws, Ctx(inst): Ctx, Path(name): Path<String>) -> ApiResult<JsonBody<bool>> {
    let cfg = load(&ws, &inst).await?;
    ws.runtime.mcp(&inst, &cfg).await.disconnect(&name).await.map_err(not_found)?;
    Ok(JsonBody(true))
}
