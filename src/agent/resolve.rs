//! Which agent, model and provider a prompt uses, from the request and the
//! OpenCode config: the request's model, else the agent's, else the config's
//! `model`, else the first configured provider's default; the agent named, else
//! the default agent. Titles use `small_model` when set.

use std::sync::Arc;

use serde_json::{json, Value};

use super::input::ModelChoice;
use super::provider::anthropic::Anthropic;
use super::provider::openai::OpenAiCompatible;
use super::provider::{ApiClient, Pricing, Provider};
use crate::config::agent::{self, Agent, AgentPaths};
use crate::config::provider::{self as providers, ApiKind, Endpoint};
use crate::config::Config;

/// Why a prompt cannot run, as OpenCode names it (the message's `info.error`).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ResolveError {
    #[error("Agent not found: {0}")]
    AgentNotFound(String),
    #[error("Model not found: {provider_id}/{model_id}")]
    ModelNotFound { provider_id: String, model_id: String },
    #[error("No model is configured: add a provider and a \"model\" to opencode.json")]
    NoModel,
}

impl ResolveError {
    /// The error object OpenCode stores in an assistant message.
    pub fn to_error_json(&self) -> Value {
        match self {
            ResolveError::ModelNotFound { provider_id, model_id } => {
                json!({"name": "ProviderModelNotFoundError", "data": {"providerID": provider_id, "modelID": model_id, "message": self.to_string()}})
            }
            other => json!({"name": "UnknownError", "data": {"message": other.to_string()}}),
        }
    }
}

/// Everything a turn needs to call the model.
pub struct Resolved {
    pub agent: Agent,
    pub provider_id: String,
    pub model_id: String,
    pub provider: Arc<dyn Provider>,
    /// The model id the API expects (a config model may map to another).
    pub api_model: String,
    pub pricing: Pricing,
}

/// The model's configured `cost` (normalised as `/config/providers` shows it).
fn pricing(model: Option<&Value>) -> Pricing {
    let n = |path: &str| model.and_then(|m| m.pointer(path)).and_then(Value::as_f64).unwrap_or(0.0);
    Pricing { input: n("/cost/input"), output: n("/cost/output"), cache_read: n("/cost/cache/read"), cache_write: n("/cost/cache/write") }
}

/// A provider client for an endpoint.
pub fn connect(provider_id: &str, ep: &Endpoint) -> Arc<dyn Provider> {
    let headers: Vec<(String, String)> = ep.headers.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect();
    let client = reqwest::Client::new();
    let api = ApiClient { id: provider_id.to_string(), base_url: ep.base_url.clone(), api_key: ep.api_key.clone(), headers, client };
    match ep.kind {
        ApiKind::AnthropicMessages => Arc::new(Anthropic(api)),
        ApiKind::OpenAiChat => Arc::new(OpenAiCompatible(api)),
    }
}

/// The model named `provider/model` in the config under `key` (`model`, `small_model`).
fn configured(config: &Config, key: &str) -> Option<ModelChoice> {
    ModelChoice::parse(config.str(key)?)
}

/// Resolves the agent and the model of a prompt.
pub fn resolve(config: &Config, paths: &AgentPaths, agent_name: Option<&str>, model: Option<&ModelChoice>) -> Result<Resolved, ResolveError> {
    let agents = agent::list(config, paths);
    let name = agent_name.map(str::to_string).unwrap_or_else(|| agent::default_agent(config, &agents));
    let agent = agents.into_iter().find(|a| a.name == name).ok_or(ResolveError::AgentNotFound(name))?;
    let all = providers::list(config);
    let choice = model
        .cloned()
        .or_else(|| agent.model.as_ref().map(|m| ModelChoice { provider_id: m.provider_id.clone(), model_id: m.model_id.clone() }))
        .or_else(|| configured(config, "model"))
        .or_else(|| all.iter().find_map(|p| Some(ModelChoice { provider_id: p.id.clone(), model_id: providers::default_model(p)? })))
        .ok_or(ResolveError::NoModel)?;
    let not_found = || ResolveError::ModelNotFound { provider_id: choice.provider_id.clone(), model_id: choice.model_id.clone() };
    let provider = all.iter().find(|p| p.id == choice.provider_id).ok_or_else(not_found)?;
    let ep = providers::endpoint(config, provider, &choice.model_id).ok_or_else(not_found)?;
    let pricing = pricing(provider.models.get(&choice.model_id));
    Ok(Resolved {
        agent,
        provider: connect(&provider.id, &ep),
        provider_id: choice.provider_id.clone(),
        model_id: choice.model_id.clone(),
        api_model: ep.model,
        pricing,
    })
}

/// The provider and API model for titles: `small_model`, else the prompt's own.
pub fn small(config: &Config, fallback: &Resolved) -> (Arc<dyn Provider>, String) {
    let found = configured(config, "small_model").and_then(|c| {
        let all = providers::list(config);
        let p = all.iter().find(|p| p.id == c.provider_id)?;
        let ep = providers::endpoint(config, p, &c.model_id)?;
        Some((connect(&p.id, &ep), ep.model))
    });
    found.unwrap_or_else(|| (fallback.provider.clone(), fallback.api_model.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn config(data: Value) -> Config {
        Config { data: data.as_object().cloned().unwrap(), global: Map::new(), ..Default::default() }
    }

    fn paths() -> AgentPaths {
        AgentPaths {
            tool_output: "/s/tool-output".into(),
            scratch: "/tmp/b".into(),
            plans: "/s/plans".into(),
            plans_relative: "../s/plans".into(),
            home: "/h".into(),
        }
    }

    fn sample() -> Config {
        config(json!({
            "provider": {
                "local": {"npm": "@ai-sdk/openai-compatible", "options": {"baseURL": "http://127.0.0.1:1/v1"}, "models": {"qwen": {"cost": {"input": 0.5, "output": 2, "cache_read": 0.05}}, "tiny": {}}},
                "claude": {"npm": "@ai-sdk/anthropic", "options": {"baseURL": "http://127.0.0.1:2/v1", "apiKey": "k"}, "models": {"sonnet": {}}}
            },
            "model": "local/qwen",
            "small_model": "local/tiny",
            "permission": {"bash": "ask"}
        }))
    }

    #[test]
    fn request_model_then_config_model() {
        let c = sample();
        let r = resolve(&c, &paths(), None, None).unwrap();
        assert_eq!((r.agent.name.as_str(), r.provider_id.as_str(), r.model_id.as_str()), ("build", "local", "qwen"));
        assert!(r.agent.permission.iter().any(|rule| rule.permission == "bash" && rule.action == crate::config::permission::Action::Ask));
        assert_eq!(r.pricing, Pricing { input: 0.5, output: 2.0, cache_read: 0.05, cache_write: 0.0 });
        let pick = ModelChoice { provider_id: "claude".into(), model_id: "sonnet".into() };
        let r = resolve(&c, &paths(), Some("plan"), Some(&pick)).unwrap();
        assert_eq!((r.agent.name.as_str(), r.api_model.as_str()), ("plan", "sonnet"));
        assert_eq!(r.pricing, Pricing::default(), "no cost configured");
        assert_eq!(small(&c, &r).1, "tiny");
    }

    #[test]
    fn unknown_models_and_agents_are_errors() {
        let c = sample();
        let bad = ModelChoice { provider_id: "local".into(), model_id: "nope".into() };
        let err = resolve(&c, &paths(), None, Some(&bad)).err().unwrap();
        assert_eq!(err.to_error_json()["name"], "ProviderModelNotFoundError");
        assert_eq!(resolve(&c, &paths(), Some("ghost"), None).err(), Some(ResolveError::AgentNotFound("ghost".into())));
        assert_eq!(resolve(&config(json!({})), &paths(), None, None).err(), Some(ResolveError::NoModel));
    }
}
