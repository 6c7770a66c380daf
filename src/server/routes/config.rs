//! `GET` and `PATCH /config` and `/global/config`, `/config/providers`,
//! `/provider` and `/provider/auth`, and the helper every config-backed
//! endpoint uses.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::DirectoryParams;
use crate::config::agent::AgentPaths;
use crate::config::provider::{self, Provider};
use crate::config::{self, secret, Config, SCHEMA_URL};
use crate::env::{EnvError, WorkspacePath};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::server::extract::{Ctx, Json as JsonBody, Ws};
use crate::server::instance::Instance;
use crate::server::AppState;
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

/// The file `PATCH /config` writes, as OpenCode does: `config.json` in the
/// request's directory (in the environment, next to the project's files).
pub const DIRECTORY_CONFIG: &str = "config.json";

/// A config file's text as an object, for merging a change into it; text
/// with comments or trailing commas is refused, since writing it back as
/// JSON would lose them.
fn existing(text: &str, name: &str) -> ApiResult<Map<String, Value>> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::conflict(format!("{name} does not hold a JSON object; fix it by hand before changing it here"))),
        Err(_) => match config::jsonc::parse(text, name) {
            Ok(_) => Err(ApiError::conflict(format!("{name} has comments or trailing commas, which rewriting it would lose; edit it by hand"))),
            Err(e) => Err(ApiError::from(e)),
        },
    }
}

fn pretty(data: &Map<String, Value>) -> ApiResult<bytes::Bytes> {
    let mut text = serde_json::to_string_pretty(data).map_err(|e| ApiError::internal(format!("cannot write the config: {e}")))?;
    text.push('\n');
    Ok(bytes::Bytes::from(text))
}

/// Merges the body into `config.json` of the request's directory (objects
/// key by key, anything else replaced), in the environment, and answers with
/// the body, as OpenCode does. The directory's instance is forgotten, so the
/// next request reads the config afresh.
#[utoipa::path(patch, path = "/config", tag = "config", operation_id = "config.update", params(DirectoryParams),
    request_body(content = Object, description = "Config keys to merge"),
    responses((status = 200, description = "The change", body = Object), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update(Ws(ws): Ws, Ctx(inst): Ctx, JsonBody(change): JsonBody<Map<String, Value>>) -> ApiResult<Json<Map<String, Value>>> {
    let path: WorkspacePath = inst.dir.join(DIRECTORY_CONFIG);
    let name = path.absolute(ws.runtime.env.root());
    let text = match ws.runtime.env.read(&path, config::MAX_CONFIG_BYTES).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(EnvError::NotFound(_)) => String::new(),
        Err(e) => return Err(e.into()),
    };
    let mut data = existing(&text, &name)?;
    merge(&mut data, change.clone());
    ws.runtime.env.write(&path, pretty(&data)?).await?;
    ws.instances.dispose(&inst.dir);
    Ok(Json(change))
}

/// Objects merged key by key, anything else replaced (OpenCode's `mergeDeep`).
fn merge(base: &mut Map<String, Value>, over: Map<String, Value>) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(Value::Object(b)), Value::Object(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// The global config file OpenCode writes: the first of `opencode.jsonc`,
/// `opencode.json` and `config.json` that exists in the global config folder,
/// else `opencode.jsonc`.
fn global_file(dir: &std::path::Path) -> std::path::PathBuf {
    let candidates = ["opencode.jsonc", "opencode.json", "config.json"].map(|n| dir.join(n));
    candidates.iter().find(|p| p.exists()).cloned().unwrap_or_else(|| candidates[0].clone())
}

/// Merges the body into the global config file on the server's host and
/// answers with the file's new content (secrets hidden, as `GET` shows them).
#[utoipa::path(patch, path = "/global/config", tag = "global", operation_id = "global.config.update",
    request_body(content = Object, description = "Config keys to merge"),
    responses((status = 200, description = "The global configuration after the change", body = Object), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn global_update(State(st): State<Arc<AppState>>, JsonBody(change): JsonBody<Map<String, Value>>) -> ApiResult<Json<Map<String, Value>>> {
    let dir = std::path::PathBuf::from(&st.runtime.dirs.config);
    let file = global_file(&dir);
    let name = file.display().to_string();
    let text = match tokio::fs::read_to_string(&file).await {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(ApiError::internal(format!("cannot read {name}: {e}"))),
    };
    let mut data = existing(&text, &name)?;
    merge(&mut data, change);
    tokio::fs::create_dir_all(&dir).await.map_err(|e| ApiError::internal(format!("cannot create {}: {e}", dir.display())))?;
    tokio::fs::write(&file, pretty(&data)?).await.map_err(|e| ApiError::internal(format!("cannot write {name}: {e}")))?;
    st.scope.instances.dispose_all();
    secret::redact_map(&mut data);
    Ok(Json(data))
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
