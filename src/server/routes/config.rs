//! `GET /config`, `/global/config`, `/config/providers`, `/provider` and
//! `/provider/auth`, and the helper every config-backed endpoint uses.

use axum::Json;
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::DirectoryParams;
use crate::config::agent::AgentPaths;
use crate::config::provider::{self, Provider};
use crate::config::{self, secret, Config, SCHEMA_URL};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::server::extract::{Ctx, Ws};
use crate::server::instance::Instance;
use crate::workspace::Scope;

/// The merged config of the request's directory. A broken file is a 400 that
/// names it and says what is wrong, so the user can fix it.
pub async fn load(ws: &Scope, inst: &Instance) -> ApiResult<Config> {
    ws.runtime.config(inst).await.map_err(ApiError::from)
}

/// The folders the built-in agents' rules mention.
pub fn agent_paths(ws: &Scope, inst: &Instance) -> AgentPaths {
    ws.runtime.agent_paths(inst)
}

/// The config as OpenCode shows it: the merged layers with the keys clients
/// expect always present.
fn shown(data: &Map<String, Value>, vars: &config::Vars) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("$schema".into(), data.get("$schema").cloned().unwrap_or_else(|| json!(SCHEMA_URL)));
    out.insert("command".into(), data.get("command").cloned().unwrap_or_else(|| json!({})));
    out.insert("plugin".into(), data.get("plugin").cloned().unwrap_or_else(|| json!([])));
    for (k, v) in data {
        out.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let user = vars.get("USER").or_else(|| vars.get("LOGNAME")).cloned().unwrap_or_else(|| "unknown".into());
    out.entry("username").or_insert_with(|| json!(user));
    out.entry("mode").or_insert_with(|| json!({}));
    let agents = out.entry("agent").or_insert_with(|| json!({}));
    for entry in agents.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
        if let Some(e) = entry.as_object_mut() {
            e.entry("options").or_insert_with(|| json!({}));
            e.entry("permission").or_insert_with(|| json!({}));
        }
    }
    out
}

#[utoipa::path(get, path = "/config", tag = "config", operation_id = "config.get", params(DirectoryParams),
    responses((status = 200, description = "The merged configuration", body = Object), (status = 400, body = ErrorBody)))]
pub async fn get(Ws(ws): Ws, Ctx(inst): Ctx) -> ApiResult<Json<Map<String, Value>>> {
    let c = load(&ws, &inst).await?;
    let mut out = shown(&c.data, &c.vars);
    secret::redact_map(&mut out);
    Ok(Json(out))
}

#[utoipa::path(get, path = "/global/config", tag = "global", operation_id = "global.config.get",
    responses((status = 200, description = "The global configuration", body = Object), (status = 400, body = ErrorBody)))]
pub async fn global(Ws(ws): Ws, Ctx(inst): Ctx) -> ApiResult<Json<Map<String, Value>>> {
    let c = load(&ws, &inst).await?;
    let mut out = Map::new();
    out.insert("$schema".into(), c.global.get("$schema").cloned().unwrap_or_else(|| json!(SCHEMA_URL)));
    out.extend(c.global);
    secret::redact_map(&mut out);
    Ok(Json(out))
}

#[derive(Serialize, ToSchema)]
pub struct ConfigProviders {
    pub providers: Vec<Provider>,
    /// Provider id to its default model id.
    #[schema(value_type = Object)]
    pub default: Map<String, Value>,
}

#[utoipa::path(get, path = "/config/providers", tag = "config", operation_id = "config.providers", params(DirectoryParams),
    responses((status = 200, body = ConfigProviders), (status = 400, body = ErrorBody)))]
pub async fn providers(Ws(ws): Ws, Ctx(inst): Ctx) -> ApiResult<Json<ConfigProviders>> {
    let c = load(&ws, &inst).await?;
    let providers = provider::list(&c);
    Ok(Json(ConfigProviders { default: provider::defaults(&providers), providers }))
}

#[derive(Serialize, ToSchema)]
pub struct ProviderList {
    pub all: Vec<Provider>,
    #[schema(value_type = Object)]
    pub default: Map<String, Value>,
    /// The providers that can be used now.
    pub connected: Vec<String>,
}

#[utoipa::path(get, path = "/provider", tag = "provider", operation_id = "provider.list", params(DirectoryParams),
    responses((status = 200, body = ProviderList), (status = 400, body = ErrorBody)))]
pub async fn provider_list(Ws(ws): Ws, Ctx(inst): Ctx) -> ApiResult<Json<ProviderList>> {
    let c = load(&ws, &inst).await?;
    // No catalogue: every provider listed is configured, so all are connected.
    let all = provider::list(&c);
    Ok(Json(ProviderList { default: provider::defaults(&all), connected: all.iter().map(|p| p.id.clone()).collect(), all }))
}

#[utoipa::path(get, path = "/provider/auth", tag = "provider", operation_id = "provider.auth", params(DirectoryParams),
    responses((status = 200, description = "Provider auth methods", body = Object)))]
pub async fn provider_auth(_ctx: Ctx) -> Json<Map<String, Value>> {
    // Burrow takes keys from the config and the environment; it offers no
    // login flows, so there are no methods to list.
    Json(Map::new())
}
