//! The `/api/*` (v2) listings the TUI loads at start-up. Each answer is
//! `{"location": ..., "data": [...]}`, built from the same config as the v1
//! endpoints.

use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::config::{agent_paths, load};
use super::DirectoryParams;
use crate::config::agent::{self, default_agent};
use crate::config::command::{self};
use crate::config::provider;
use crate::error::{ApiResult, ErrorBody};
use crate::protocol::project::LocationInfo;
use crate::server::extract::{Ctx, Ws};

#[derive(Serialize, ToSchema)]
pub struct Listing {
    pub location: LocationInfo,
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<Value>,
}

fn listing(location: LocationInfo, data: Vec<Value>) -> Json<Listing> {
    Json(Listing { location, data })
}

fn empty_request() -> Value {
    json!({ "headers": {}, "body": {} })
}

#[utoipa::path(get, path = "/api/location", tag = "v2", operation_id = "v2.location.get", params(DirectoryParams),
    responses((status = 200, body = LocationInfo)))]
pub async fn location(Ctx(inst): Ctx) -> Json<LocationInfo> {
    Json(inst.location())
}

#[utoipa::path(get, path = "/api/agent", tag = "v2", operation_id = "v2.agent.list", params(DirectoryParams),
    responses((status = 200, body = Listing), (status = 400, body = ErrorBody)))]
pub async fn agents(Ws(ws): Ws, Ctx(inst): Ctx) -> ApiResult<Json<Listing>> {
    let c = load(&ws, &inst).await?;
    let agents = agent::list(&c, &agent_paths(&ws, &inst));
    let default = default_agent(&c, &agents);
    let data = agents
        .into_iter()
        .map(|a| {
            let system = if a.name == default && a.prompt.is_none() {
                include_str!("../../config/builtin/agent_build_system.txt").to_string()
            } else {
                a.prompt.clone().unwrap_or_default()
            };
            let mut v = json!({ "id": a.name, "request": empty_request(), "system": system });
            let o = v.as_object_mut().expect("an object");
            if let Some(m) = &a.model {
                o.insert("model".into(), json!({ "id": m.model_id, "providerID": m.provider_id }));
            }
            if let Some(d) = &a.description {
                o.insert("description".into(), json!(d));
            }
            o.insert("mode".into(), json!(a.mode));
            o.insert("hidden".into(), json!(a.hidden.unwrap_or(false)));
            if let Some(color) = &a.color {
                o.insert("color".into(), json!(color));
            }
            if let Some(steps) = a.steps {
                o.insert("steps".into(), json!(steps));
            }
            let rules: Vec<Value> = a.permission.iter().map(|r| json!({ "action": r.permission, "resource": r.pattern, "effect": r.action })).collect();
            o.insert("permissions".into(), Value::Array(rules));
            v
        })
        .collect();
    Ok(listing(inst.location(), data))
}

#[utoipa::path(get, path = "/api/provider", tag = "v2", operation_id = "v2.provider.list", params(DirectoryParams),
    responses((status = 200, body = Listing), (status = 400, body = ErrorBody)))]
pub async fn providers(Ws(ws): Ws, Ctx(inst): Ctx) -> ApiResult<Json<Listing>> {
    let c = load(&ws, &inst).await?;
    let data = provider::list(&c).into_iter().map(|p| provider_value(&p)).collect();
    Ok(listing(inst.location(), data))
}

/// A provider as `ProviderV2Info`.
pub fn provider_value(p: &provider::Provider) -> Value {
    let package = p.models.values().next().and_then(|m| m.pointer("/api/npm")).cloned().unwrap_or_else(|| json!(provider::OPENAI_COMPATIBLE));
    let mut api = json!({ "type": "aisdk", "package": package });
    if let Some(url) = p.options.get("baseURL") {
        api["url"] = url.clone();
    }
    json!({ "id": p.id, "name": p.name, "api": api, "request": empty_request() })
}

/// Milliseconds since the epoch of a `YYYY-MM-DD` date; 0 when there is none.
fn released_ms(date: &str) -> i64 {
    let mut it = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (Some(Some(y)), Some(Some(m)), Some(Some(d))) = (it.next(), it.next(), it.next()) else { return 0 };
    // Days from 1970-01-01 (Howard Hinnant's civil-from-days, inverted).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * 86_400_000
}

#[utoipa::path(get, path = "/api/model", tag = "v2", operation_id = "v2.model.list", params(DirectoryParams),
    responses((status = 200, body = Listing), (status = 400, body = ErrorBody)))]
pub async fn models(Ws(ws): Ws, Ctx(inst): Ctx) -> ApiResult<Json<Listing>> {
    let c = load(&ws, &inst).await?;
    let mut data = Vec::new();
    for p in provider::list(&c) {
        for m in p.models.values() {
            let modes = |dir: &str| -> Vec<String> {
                m["capabilities"][dir].as_object().map(|o| o.iter().filter(|(_, v)| v == &&json!(true)).map(|(k, _)| k.clone()).collect()).unwrap_or_default()
            };
            let mut api = json!({ "id": m["api"]["id"], "type": "aisdk", "package": m["api"]["npm"] });
            if let Some(url) = p.options.get("baseURL").or(m["api"]["url"].as_str().filter(|u| !u.is_empty()).map(|_| &m["api"]["url"])) {
                api["url"] = url.clone();
            }
            let mut v = json!({ "id": m["id"], "providerID": p.id });
            let o = v.as_object_mut().expect("an object");
            if m["family"].as_str().is_some_and(|f| !f.is_empty()) {
                o.insert("family".into(), m["family"].clone());
            }
            o.insert("name".into(), m["name"].clone());
            o.insert("api".into(), api);
            o.insert("capabilities".into(), json!({ "tools": m["capabilities"]["toolcall"], "input": modes("input"), "output": modes("output") }));
            o.insert("request".into(), empty_request());
            o.insert("variants".into(), json!([]));
            o.insert("time".into(), json!({ "released": released_ms(m["release_date"].as_str().unwrap_or("")) }));
            o.insert("cost".into(), json!([m["cost"]]));
            o.insert("status".into(), m["status"].clone());
            o.insert("enabled".into(), json!(true));
            o.insert("limit".into(), m["limit"].clone());
            data.push(v);
        }
    }
    Ok(listing(inst.location(), data))
}

#[utoipa::path(get, path = "/api/reference", tag = "v2", operation_id = "v2.reference.list", params(DirectoryParams),
    responses((status = 200, body = Listing)))]
pub async fn references(Ctx(inst): Ctx) -> Json<Listing> {
    listing(inst.location(), Vec::new())
}

#[utoipa::path(get, path = "/api/command", tag = "v2", operation_id = "v2.command.list", params(DirectoryParams),
    responses((status = 200, body = Listing), (status = 400, body = ErrorBody)))]
pub async fn commands(Ws(ws): Ws, Ctx(inst): Ctx) -> ApiResult<Json<Listing>> {
    let c = load(&ws, &inst).await?;
    let data = command::list(&c, &inst.project.worktree)
        .into_iter()
        .filter(|cmd| cmd.source == "command")
        .map(|cmd| {
            let mut v = json!({ "name": cmd.name, "template": cmd.template });
            let o = v.as_object_mut().expect("an object");
            if let Some(d) = cmd.description {
                o.insert("description".into(), json!(d));
            }
            if let Some(a) = cmd.agent {
                o.insert("agent".into(), json!(a));
            }
            if let Some(m) = cmd.model.as_deref().and_then(agent::ModelRef::parse) {
                o.insert("model".into(), json!({ "id": m.model_id, "providerID": m.provider_id }));
            }
            if let Some(s) = cmd.subtask {
                o.insert("subtask".into(), json!(s));
            }
            v
        })
        .collect();
    Ok(listing(inst.location(), data))
}

#[utoipa::path(get, path = "/api/skill", tag = "v2", operation_id = "v2.skill.list", params(DirectoryParams),
    responses((status = 200, body = Listing)))]
pub async fn skills(Ctx(inst): Ctx) -> Json<Listing> {
    let data = command::skills()
        .into_iter()
        .map(|s| json!({ "name": s.name, "description": s.description, "location": format!("/builtin/{}.md", s.name), "content": s.content }))
        .collect();
    listing(inst.location(), data)
}

#[cfg(test)]
mod tests {
    #[test]
    fn release_dates_become_milliseconds() {
        assert_eq!(super::released_ms("1970-01-02"), 86_400_000);
        assert_eq!(super::released_ms("2026-09-25"), 1_790_294_400_000);
        assert_eq!(super::released_ms(""), 0);
    }
}
