//! `GET /experimental/tool`: the agent's tools with their JSON Schemas,
//! the built-in ones and those of the directory's MCP servers.

use axum::Json as JsonBody;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::config::load;
use super::DirectoryParams;
use crate::agent::tools::Registry;
use crate::error::{ApiResult, ErrorBody};
use crate::server::extract::{Ctx, Query, Ws};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ToolQuery {
    /// The provider the tools are for. Burrow gives every model the same tools.
    provider: String,
    /// The model the tools are for.
    model: String,
}

/// One tool as OpenCode lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ToolListItem {
    pub id: String,
    pub description: String,
    /// The JSON Schema of the tool's input.
    #[schema(value_type = Object)]
    pub parameters: Value,
}

/// The tools an agent turn offers the model, as it sends them.
#[utoipa::path(get, path = "/experimental/tool", tag = "experimental", operation_id = "tool.list", params(DirectoryParams, ToolQuery),
    responses((status = 200, description = "Tools", body = Vec<ToolListItem>), (status = 400, body = ErrorBody)))]
pub async fn list(Ws(ws): Ws, Ctx(inst): Ctx, Query(_q): Query<ToolQuery>) -> ApiResult<JsonBody<Vec<ToolListItem>>> {
    let cfg = load(&ws, &inst).await?;
    let mcp = ws.runtime.mcp(&inst, &cfg).await.tools().await;
    let tools =
        Registry::builtin().with(mcp).specs().into_iter().map(|s| ToolListItem { id: s.name, description: s.description, parameters: s.parameters }).collect();
    Ok(JsonBody(tools))
}
