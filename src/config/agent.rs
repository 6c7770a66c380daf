//! Agents: OpenCode's built-in ones (build, plan, general, explore and the
//! hidden compaction, summary and title), with their permission rules, then
//! changed, added or disabled by the `agent` (and older `mode`) config.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::permission::{self, Action, Rule};
use super::Config;

/// An agent's model; named apart from the message's `ModelRef` (which has a variant).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AgentModelRef)]
pub struct ModelRef {
    #[serde(rename = "modelID")]
    pub model_id: String,
    #[serde(rename = "providerID")]
    pub provider_id: String,
}

impl ModelRef {
    /// Parses `provider/model` (the model id may contain more slashes).
    pub fn parse(s: &str) -> Option<Self> {
        let (p, m) = s.split_once('/')?;
        (!p.is_empty() && !m.is_empty()).then(|| Self { provider_id: p.into(), model_id: m.into() })
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `primary`, `subagent` or `all`.
    pub mode: String,
    pub native: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    pub permission: Vec<Rule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Sent with secrets hidden: an agent's options may carry a key.
    #[schema(value_type = Object)]
    #[serde(serialize_with = "super::secret::serialize_redacted")]
    pub options: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<u64>,
}

/// Folders the default rules let agents reach outside the workspace.
pub struct AgentPaths {
    /// Where long tool output is saved.
    pub tool_output: String,
    /// Scratch space for tools.
    pub scratch: String,
    /// Where plan mode writes plans, absolute and relative to the worktree.
    pub plans: String,
    pub plans_relative: String,
    pub home: String,
}

fn r(permission: &str, pattern: &str, action: Action) -> Rule {
    Rule::new(permission, pattern, action)
}

fn defaults(p: &AgentPaths) -> Vec<Rule> {
    use Action::*;
    vec![
        r("*", "*", Allow),
        r("doom_loop", "*", Ask),
        r("external_directory", "*", Ask),
        r("external_directory", &format!("{}/*", p.tool_output), Allow),
        r("external_directory", &format!("{}/*", p.scratch), Allow),
        r("question", "*", Deny),
        r("plan_enter", "*", Deny),
        r("plan_exit", "*", Deny),
        r("read", "*", Allow),
        r("read", "*.env", Ask),
        r("read", "*.env.*", Ask),
        r("read", "*.env.example", Allow),
    ]
}

fn native(name: &str, description: Option<&str>, mode: &str, hidden: bool, prompt: Option<&str>, own: Vec<Rule>) -> Agent {
    Agent {
        name: name.into(),
        description: description.map(Into::into),
        mode: mode.into(),
        native: true,
        hidden: hidden.then_some(true),
        top_p: None,
        temperature: None,
        color: None,
        permission: own,
        model: None,
        variant: None,
        prompt: prompt.map(Into::into),
        options: Map::new(),
        steps: None,
    }
}

/// The built-in agents, each with its own rules after the defaults.
fn builtins(p: &AgentPaths) -> Vec<Agent> {
    use Action::*;
    let with = |extra: Vec<Rule>| defaults(p).into_iter().chain(extra).collect::<Vec<_>>();
    let read_only = || with(vec![r("*", "*", Deny)]);
    let mut title = native("title", None, "primary", true, Some(include_str!("builtin/agent_title.txt")), read_only());
    title.temperature = Some(0.5);
    vec![
        native("build", Some("The default agent. Executes tools based on configured permissions."), "primary", false, None,
            with(vec![r("question", "*", Allow), r("plan_enter", "*", Allow)])),
        native("compaction", None, "primary", true, Some(include_str!("builtin/agent_compaction.txt")), read_only()),
        native("explore", Some(include_str!("builtin/agent_explore_description.txt")), "subagent", false,
            Some(include_str!("builtin/agent_explore.txt")),
            with(vec![
                r("*", "*", Deny), r("grep", "*", Allow), r("glob", "*", Allow), r("list", "*", Allow), r("bash", "*", Allow),
                r("webfetch", "*", Allow), r("websearch", "*", Allow), r("read", "*", Allow), r("external_directory", "*", Ask),
                r("external_directory", &format!("{}/*", p.tool_output), Allow),
                r("external_directory", &format!("{}/*", p.scratch), Allow),
            ])),
        native("general", Some("General-purpose agent for researching complex questions and executing multi-step tasks. Use this agent to execute multiple units of work in parallel."),
            "subagent", false, None, with(vec![r("todowrite", "*", Deny)])),
        native("plan", Some("Plan mode. Disallows all edit tools."), "primary", false, None,
            with(vec![
                r("question", "*", Allow), r("plan_exit", "*", Allow), r("task", "general", Deny),
                r("external_directory", &format!("{}/*", p.plans), Allow), r("edit", "*", Deny),
                r("edit", ".opencode/plans/*.md", Allow), r("edit", &format!("{}/*.md", p.plans_relative), Allow),
            ])),
        native("summary", None, "primary", true, Some(include_str!("builtin/agent_summary.txt")), read_only()),
        title,
    ]
}

/// Applies one `agent.<name>` config entry. Keys OpenCode does not know go to `options`.
fn apply(agent: &mut Agent, cfg: &Map<String, Value>, home: &str) {
    for (key, value) in cfg {
        match key.as_str() {
            "description" => agent.description = value.as_str().map(Into::into),
            "mode" => {
                if let Some(m) = value.as_str().filter(|m| ["primary", "subagent", "all"].contains(m)) {
                    agent.mode = m.into();
                }
            }
            "hidden" => agent.hidden = value.as_bool(),
            "top_p" | "topP" => agent.top_p = value.as_f64(),
            "temperature" => agent.temperature = value.as_f64(),
            "color" => agent.color = value.as_str().map(Into::into),
            "model" => agent.model = value.as_str().and_then(ModelRef::parse),
            "variant" => agent.variant = value.as_str().map(Into::into),
            "prompt" => agent.prompt = value.as_str().map(Into::into),
            "steps" | "maxSteps" => agent.steps = value.as_u64(),
            "permission" => agent.permission.extend(permission::from_config(value, home)),
            "tools" => agent.permission.extend(permission::from_tools(value)),
            "options" => {
                if let Some(o) = value.as_object() {
                    agent.options.extend(o.clone());
                }
            }
            "disable" | "name" => {}
            _ => {
                agent.options.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Every agent of this configuration: the default agent first, then by name.
pub fn list(config: &Config, paths: &AgentPaths) -> Vec<Agent> {
    let mut agents = builtins(paths);
    let user_rules = config.data.get("permission").map(|v| permission::from_config(v, &paths.home)).unwrap_or_default();
    let tail = r("external_directory", &format!("{}/*", paths.tool_output), Action::Allow);
    // `mode` is the older name for primary agents.
    let sections = [("mode", "primary"), ("agent", "all")];
    let mut configured: Vec<(String, Map<String, Value>, &str)> = Vec::new();
    for (section, default_mode) in sections {
        for (name, v) in config.object(section).into_iter().flatten() {
            configured.push((name.clone(), v.as_object().cloned().unwrap_or_default(), default_mode));
        }
    }
    for agent in &mut agents {
        agent.permission.extend(user_rules.iter().cloned());
    }
    for (name, cfg, default_mode) in configured {
        if cfg.get("disable").and_then(Value::as_bool) == Some(true) {
            agents.retain(|a| a.name != name);
            continue;
        }
        if !agents.iter().any(|a| a.name == name) {
            let mut fresh = native(&name, None, default_mode, false, None, defaults(paths));
            fresh.native = false;
            fresh.permission.extend(user_rules.iter().cloned());
            agents.push(fresh);
        }
        if let Some(agent) = agents.iter_mut().find(|a| a.name == name) {
            apply(agent, &cfg, &paths.home);
        }
    }
    for agent in &mut agents {
        agent.permission.push(tail.clone());
    }
    let default = default_agent(config, &agents);
    agents.sort_by(|a, b| (a.name != default).cmp(&(b.name != default)).then_with(|| a.name.cmp(&b.name)));
    agents
}

/// The agent a new prompt uses: `default_agent` when it names a visible
/// primary agent, else `build`, else the first primary one.
pub fn default_agent(config: &Config, agents: &[Agent]) -> String {
    let usable = |a: &&Agent| a.mode != "subagent" && a.hidden != Some(true);
    config
        .str("default_agent")
        .and_then(|n| agents.iter().filter(usable).find(|a| a.name == n))
        .or_else(|| agents.iter().filter(usable).find(|a| a.name == "build"))
        .or_else(|| agents.iter().find(usable))
        .map(|a| a.name.clone())
        .unwrap_or_else(|| "build".into())
}

/// The relative path from `from` to `to`, both absolute.
pub fn relative_path(from: &str, to: &str) -> String {
    let a: Vec<&str> = from.split('/').filter(|s| !s.is_empty()).collect();
    let b: Vec<&str> = to.split('/').filter(|s| !s.is_empty()).collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<&str> = std::iter::repeat_n("..", a.len() - common).collect();
    parts.extend(&b[common..]);
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(relative_path("/tmp/proj", "/tmp/home/.local/plans"), "../home/.local/plans");
        assert_eq!(relative_path("/a", "/a/b"), "b");
        assert_eq!(ModelRef::parse("openrouter/openai/gpt-4o").unwrap().model_id, "openai/gpt-4o");
        assert!(ModelRef::parse("nomodel").is_none());
    }
}
