//! Providers and models: only the ones that are really configured.
//!
//! A provider comes from the `provider` config (any OpenAI-compatible or
//! Anthropic endpoint), or is a known one (OpenAI, Anthropic) whose API key is
//! in the environment or stored (`PUT /auth/{id}`, [`super::auth`]). Burrow ships no model catalogue: a provider's models are
//! the ones its config lists, plus any model that `model`, `small_model` or an
//! agent names, so nothing is listed that nobody asked for. A provider with no
//! models is left out, as OpenCode does. The model fields and their defaults
//! follow OpenCode's normalisation of config models.

use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::Config;

pub const OPENAI_COMPATIBLE: &str = "@ai-sdk/openai-compatible";
pub const ANTHROPIC_NPM: &str = "@ai-sdk/anthropic";

/// A provider Burrow knows without config: its API key may come from the environment.
struct Known {
    id: &'static str,
    name: &'static str,
    env: &'static str,
    npm: &'static str,
    base_url_env: &'static str,
    default_url: &'static str,
}

const KNOWN: &[Known] = &[
    Known {
        id: "anthropic",
        name: "Anthropic",
        env: "ANTHROPIC_API_KEY",
        npm: ANTHROPIC_NPM,
        base_url_env: "ANTHROPIC_BASE_URL",
        default_url: "https://api.anthropic.com/v1",
    },
    Known {
        id: "openai",
        name: "OpenAI",
        env: "OPENAI_API_KEY",
        npm: "@ai-sdk/openai",
        base_url_env: "OPENAI_BASE_URL",
        default_url: "https://api.openai.com/v1",
    },
];

/// The known providers: (id, name, API key variable).
pub fn known() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    KNOWN.iter().map(|k| (k.id, k.name, k.env))
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ModelApi {
    /// The model id the provider's API expects.
    pub id: String,
    pub url: String,
    /// The AI SDK package: `@ai-sdk/anthropic` speaks Anthropic Messages,
    /// anything else OpenAI-compatible chat completions.
    pub npm: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Modalities {
    pub text: bool,
    pub audio: bool,
    pub image: bool,
    pub video: bool,
    pub pdf: bool,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ModelCapabilities {
    pub temperature: bool,
    pub reasoning: bool,
    pub attachment: bool,
    pub toolcall: bool,
    pub input: Modalities,
    pub output: Modalities,
    /// `false`, or `{"field": "reasoning_content"}` for reasoning sent back interleaved.
    #[schema(value_type = Object)]
    pub interleaved: Value,
}

/// Writes whole numbers without a fraction, as JavaScript does (`0`, not `0.0`).
fn js_number<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CacheCost {
    #[serde(serialize_with = "js_number")]
    pub read: f64,
    #[serde(serialize_with = "js_number")]
    pub write: f64,
}

/// Dollars per million tokens.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ModelCost {
    #[serde(serialize_with = "js_number")]
    pub input: f64,
    #[serde(serialize_with = "js_number")]
    pub output: f64,
    pub cache: CacheCost,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ModelLimit {
    pub context: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<u64>,
    pub output: u64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Model {
    pub id: String,
    #[serde(rename = "providerID")]
    pub provider_id: String,
    pub api: ModelApi,
    pub name: String,
    pub family: String,
    pub capabilities: ModelCapabilities,
    pub cost: ModelCost,
    pub limit: ModelLimit,
    pub status: String,
    #[schema(value_type = Object)]
    pub options: Map<String, Value>,
    #[schema(value_type = Object)]
    pub headers: Map<String, Value>,
    pub release_date: String,
    #[schema(value_type = Object)]
    pub variants: Map<String, Value>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Provider {
    pub id: String,
    pub name: String,
    /// `config`, or `env` for a known provider whose key is in the environment.
    pub source: String,
    pub env: Vec<String>,
    /// The API key found in the environment (never sent).
    #[serde(skip)]
    pub key: Option<String>,
    /// Sent with keys and secret headers hidden ([`super::secret`]).
    #[schema(value_type = Object)]
    #[serde(serialize_with = "super::secret::serialize_redacted")]
    pub options: Map<String, Value>,
    /// Sent with each model's secret options and headers hidden.
    #[schema(value_type = Object)]
    #[serde(serialize_with = "super::secret::serialize_redacted")]
    pub models: Map<String, Value>,
}

/// Which wire protocol a model speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiKind {
    OpenAiChat,
    AnthropicMessages,
}

/// Everything needed to call a model.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub kind: ApiKind,
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    pub headers: Map<String, Value>,
}

fn obj(v: Option<&Value>) -> Map<String, Value> {
    v.and_then(Value::as_object).cloned().unwrap_or_default()
}

/// Builds one model from its config entry, with OpenCode's defaults.
fn model(provider_id: &str, provider_cfg: &Map<String, Value>, key: &str, c: &Map<String, Value>, default_npm: &str) -> Model {
    let s = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
    let b = |k: &str, d: bool| c.get(k).and_then(Value::as_bool).unwrap_or(d);
    let sub = |k: &str| c.get(k).and_then(Value::as_object);
    let provider_sub = sub("provider");
    let api_id = s("id").unwrap_or_else(|| key.to_string());
    let npm = provider_sub
        .and_then(|p| p.get("npm"))
        .and_then(Value::as_str)
        .or_else(|| provider_cfg.get("npm").and_then(Value::as_str))
        .unwrap_or(default_npm)
        .to_string();
    let url =
        provider_sub.and_then(|p| p.get("api")).and_then(Value::as_str).or_else(|| provider_cfg.get("api").and_then(Value::as_str)).unwrap_or("").to_string();
    let name = s("name").unwrap_or_else(|| key.to_string());
    let has = |dir: &str, m: &str, d: bool| match sub("modalities").and_then(|x| x.get(dir)).and_then(Value::as_array) {
        Some(list) => list.iter().any(|v| v == m),
        None => d,
    };
    let modalities = |dir: &str| Modalities {
        text: has(dir, "text", true),
        audio: has(dir, "audio", false),
        image: has(dir, "image", false),
        video: has(dir, "video", false),
        pdf: has(dir, "pdf", false),
    };
    let interleaved = match c.get("interleaved") {
        Some(Value::String(field)) => json!({ "field": field }),
        Some(v @ (Value::Object(_) | Value::Bool(_))) => v.clone(),
        _ if npm == OPENAI_COMPATIBLE && api_id.contains("deepseek") => json!({ "field": "reasoning_content" }),
        _ => Value::Bool(false),
    };
    let cost = sub("cost");
    let num = |m: Option<&Map<String, Value>>, k: &str| m.and_then(|m| m.get(k)).and_then(Value::as_f64).unwrap_or(0.0);
    let limit = sub("limit");
    let int = |k: &str| limit.and_then(|l| l.get(k)).and_then(Value::as_u64);
    let variants = obj(c.get("variants"))
        .into_iter()
        .filter(|(_, v)| v.get("disabled").and_then(Value::as_bool) != Some(true))
        .map(|(k, mut v)| {
            if let Some(o) = v.as_object_mut() {
                o.remove("disabled");
            }
            (k, v)
        })
        .collect();
    Model {
        id: key.to_string(),
        provider_id: provider_id.to_string(),
        api: ModelApi { id: api_id, url, npm },
        name,
        family: s("family").unwrap_or_default(),
        capabilities: ModelCapabilities {
            temperature: b("temperature", false),
            reasoning: b("reasoning", false),
            attachment: b("attachment", false),
            toolcall: b("tool_call", true),
            input: modalities("input"),
            output: modalities("output"),
            interleaved,
        },
        cost: ModelCost {
            input: num(cost, "input"),
            output: num(cost, "output"),
            cache: CacheCost { read: num(cost, "cache_read"), write: num(cost, "cache_write") },
        },
        limit: ModelLimit { context: int("context").unwrap_or(0), input: int("input"), output: int("output").unwrap_or(0) },
        status: s("status").unwrap_or_else(|| "active".into()),
        options: obj(c.get("options")),
        headers: obj(c.get("headers")),
        release_date: s("release_date").unwrap_or_default(),
        variants,
    }
}

/// The models that the config names by `provider/model`.
fn named_models(config: &Config) -> Vec<(String, String)> {
    let mut names: Vec<&str> = ["model", "small_model"].iter().filter_map(|k| config.str(k)).collect();
    for section in ["agent", "mode"] {
        for v in config.object(section).into_iter().flat_map(|m| m.values()) {
            names.extend(v.get("model").and_then(Value::as_str));
        }
    }
    names.iter().filter_map(|n| n.split_once('/')).map(|(p, m)| (p.to_string(), m.to_string())).collect()
}

/// The configured providers, in config order, then the known ones found by
/// their environment key.
pub fn list(config: &Config) -> Vec<Provider> {
    let disabled: Vec<&str> =
        config.data.get("disabled_providers").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let enabled: Option<Vec<&str>> = config.data.get("enabled_providers").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect());
    let allowed = |id: &str| !disabled.contains(&id) && enabled.as_ref().is_none_or(|e| e.contains(&id));
    let env_key = |k: &Known| config.vars.get(k.env).filter(|v| !v.is_empty()).cloned();
    let named = named_models(config);
    let mut out: Vec<Provider> = Vec::new();
    let configured = config.object("provider").cloned().unwrap_or_default();
    let known_ids = KNOWN.iter().filter(|k| env_key(k).is_some() || config.stored_keys.get(k.id).is_some()).map(|k| k.id.to_string());
    let ids: Vec<String> = configured.keys().cloned().chain(known_ids.filter(|id| !configured.contains_key(id))).collect();
    for id in ids {
        if !allowed(&id) {
            continue;
        }
        let known = KNOWN.iter().find(|k| k.id == id);
        let cfg = obj(configured.get(&id));
        let default_npm = known.map(|k| k.npm).unwrap_or(OPENAI_COMPATIBLE);
        let mut models = Map::new();
        for (key, m) in obj(cfg.get("models")) {
            models.insert(key.clone(), serde_json::to_value(model(&id, &cfg, &key, &obj(Some(&m)), default_npm)).unwrap_or_default());
        }
        for (_, m) in named.iter().filter(|(p, _)| *p == id) {
            if !models.contains_key(m) {
                models.insert(m.clone(), serde_json::to_value(model(&id, &cfg, m, &Map::new(), default_npm)).unwrap_or_default());
            }
        }
        let list = |k: &str| cfg.get(k).and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect::<Vec<_>>());
        if let Some(white) = list("whitelist") {
            models.retain(|k, _| white.contains(k));
        }
        if let Some(black) = list("blacklist") {
            models.retain(|k, _| !black.contains(k));
        }
        models.retain(|_, m| !matches!(m.get("status").and_then(Value::as_str), Some("deprecated" | "alpha")));
        if models.is_empty() {
            continue;
        }
        let env: Vec<String> = match cfg.get("env").and_then(Value::as_array) {
            Some(a) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            None => known.map(|k| vec![k.env.to_string()]).unwrap_or_default(),
        };
        // A stored key wins over the environment's, as OpenCode's `auth.json` does.
        let stored = config.stored_keys.get(&id).map(str::to_string);
        let source = if configured.contains_key(&id) {
            "config"
        } else if stored.is_some() {
            "api"
        } else {
            "env"
        };
        let key = stored.or_else(|| env.iter().find_map(|e| config.vars.get(e).filter(|v| !v.is_empty()).cloned()));
        out.push(Provider {
            name: cfg.get("name").and_then(Value::as_str).map(str::to_string).or(known.map(|k| k.name.to_string())).unwrap_or_else(|| id.clone()),
            source: source.into(),
            env,
            key,
            options: obj(cfg.get("options")),
            models,
            id,
        });
    }
    out
}

const PRIORITY: [&str; 4] = ["gpt-5", "claude-sonnet-4", "big-pickle", "gemini-3-pro"];

/// A provider's default model, ranked as OpenCode ranks them.
pub fn default_model(provider: &Provider) -> Option<String> {
    let rank = |id: &str| PRIORITY.iter().position(|p| id.contains(p)).map(|i| i as i64).unwrap_or(-1);
    let mut ids: Vec<&String> = provider.models.keys().collect();
    ids.sort_by(|a, b| rank(b).cmp(&rank(a)).then_with(|| b.contains("latest").cmp(&a.contains("latest"))).then_with(|| b.cmp(a)));
    ids.first().map(|s| s.to_string())
}

/// Provider id to default model id, for every provider.
pub fn defaults(providers: &[Provider]) -> Map<String, Value> {
    providers.iter().filter_map(|p| Some((p.id.clone(), Value::String(default_model(p)?)))).collect()
}

/// How to call `model` of `provider`: the base URL from `options.baseURL`, the
/// model's `api` URL, the provider's `*_BASE_URL` variable or its public URL;
/// the key from `options.apiKey` or the environment. When a workspace's config
/// chose the base URL, only the key and headers that workspace config gives
/// are sent: the server's own key must not go to a host a project picked.
pub fn endpoint(config: &Config, provider: &Provider, model_id: &str) -> Option<Endpoint> {
    let m = provider.models.get(model_id)?;
    let npm = m.pointer("/api/npm").and_then(Value::as_str).unwrap_or(OPENAI_COMPATIBLE);
    let known = KNOWN.iter().find(|k| k.id == provider.id);
    let base_url = provider
        .options
        .get("baseURL")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .or_else(|| m.pointer("/api/url").and_then(Value::as_str).filter(|u| !u.is_empty()).map(str::to_string))
        .or_else(|| known.and_then(|k| config.vars.get(k.base_url_env).filter(|u| !u.is_empty()).cloned()))
        .or_else(|| known.map(|k| k.default_url.to_string()))?;
    let (api_key, headers) = match config.project_endpoints.get(&provider.id) {
        Some(own) => {
            let api_key = own.pointer("/options/apiKey").and_then(Value::as_str).map(str::to_string);
            let mut headers = obj(own.pointer("/options/headers"));
            headers.extend(obj(own.get("models").and_then(|ms| ms.get(model_id)).and_then(|m| m.get("headers"))));
            (api_key, headers)
        }
        None => {
            let api_key = provider.options.get("apiKey").and_then(Value::as_str).map(str::to_string).or_else(|| provider.key.clone());
            let mut headers = obj(provider.options.get("headers"));
            headers.extend(obj(m.get("headers")));
            (api_key, headers)
        }
    };
    Some(Endpoint {
        kind: if npm == ANTHROPIC_NPM { ApiKind::AnthropicMessages } else { ApiKind::OpenAiChat },
        base_url: base_url.trim_end_matches('/').to_string(),
        api_key,
        model: m.pointer("/api/id").and_then(Value::as_str).unwrap_or(model_id).to_string(),
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(data: Value, vars: &[(&str, &str)]) -> Config {
        Config { data: data.as_object().cloned().unwrap(), vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), ..Default::default() }
    }

    #[test]
    fn config_models_get_opencode_defaults() {
        let c = config(
            json!({"provider": {"local": {"npm": OPENAI_COMPATIBLE, "options": {"baseURL": "http://h/v1"},
            "models": {"qwen": {"name": "Qwen", "limit": {"context": 32768, "output": 4096}}, "tiny": {}}}}, "model": "local/tiny"}),
            &[],
        );
        let ps = list(&c);
        assert_eq!(ps.len(), 1);
        let tiny = &ps[0].models["tiny"];
        assert_eq!(tiny["name"], "tiny");
        assert_eq!(tiny["capabilities"]["toolcall"], true);
        assert_eq!(tiny["capabilities"]["input"]["text"], true);
        assert_eq!(tiny["limit"], json!({"context": 0, "output": 0}));
        assert_eq!(ps[0].models["qwen"]["limit"]["context"], 32768);
        assert_eq!(default_model(&ps[0]).as_deref(), Some("tiny"));
        let ep = endpoint(&c, &ps[0], "qwen").unwrap();
        assert_eq!((ep.kind, ep.base_url.as_str(), ep.model.as_str()), (ApiKind::OpenAiChat, "http://h/v1", "qwen"));
    }

    #[test]
    fn env_keys_bring_known_providers_only_with_a_named_model() {
        assert!(list(&config(json!({}), &[("OPENAI_API_KEY", "k")])).is_empty());
        let c = config(json!({"model": "anthropic/claude-x"}), &[("ANTHROPIC_API_KEY", "k"), ("ANTHROPIC_BASE_URL", "http://a")]);
        let ps = list(&c);
        assert_eq!((ps[0].id.as_str(), ps[0].source.as_str()), ("anthropic", "env"));
        let ep = endpoint(&c, &ps[0], "claude-x").unwrap();
        assert_eq!((ep.kind, ep.base_url.as_str(), ep.api_key.as_deref()), (ApiKind::AnthropicMessages, "http://a", Some("k")));
    }

    #[test]
    fn an_endpoint_a_workspace_chose_gets_only_the_workspaces_key() {
        let data = json!({"provider": {"openai": {"options": {"baseURL": "http://chosen/v1", "apiKey": "server-key", "headers": {"Authorization": "Bearer s"}},
            "models": {"m": {}}}}});
        let mut c = config(data, &[("OPENAI_API_KEY", "env-key")]);
        let ps = list(&c);
        let ep = endpoint(&c, &ps[0], "m").unwrap();
        assert_eq!((ep.api_key.as_deref(), ep.headers.len()), (Some("server-key"), 1), "the server's own endpoint");
        c.project_endpoints.insert("openai".into(), json!({"options": {"baseURL": "http://chosen/v1"}}));
        let ep = endpoint(&c, &ps[0], "m").unwrap();
        assert_eq!((ep.base_url.as_str(), ep.api_key, ep.headers.len()), ("http://chosen/v1", None, 0));
        c.project_endpoints
            .insert("openai".into(), json!({"options": {"baseURL": "http://chosen/v1", "apiKey": "own"}, "models": {"m": {"headers": {"h": "v"}}}}));
        let ep = endpoint(&c, &ps[0], "m").unwrap();
        assert_eq!((ep.api_key.as_deref(), ep.headers.get("h")), (Some("own"), Some(&json!("v"))));
    }
}
