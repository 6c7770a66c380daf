//! Permission rules: what an agent may do without asking. A ruleset is an
//! ordered list; for a given permission and pattern the last matching rule
//! wins, so later layers (the user's config, the agent's own) override the
//! built-in defaults by coming after them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Ask,
    Deny,
}

impl Action {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "allow" => Some(Action::Allow),
            "ask" => Some(Action::Ask),
            "deny" => Some(Action::Deny),
            _ => None,
        }
    }
}

/// One rule: `permission` (a tool or a capability such as `external_directory`;
/// `*` for any) on `pattern` (a path or command glob) gets `action`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Rule {
    pub permission: String,
    pub pattern: String,
    pub action: Action,
}

impl Rule {
    pub fn new(permission: &str, pattern: &str, action: Action) -> Self {
        Self { permission: permission.into(), pattern: pattern.into(), action }
    }
}

/// Rules from a config `permission` value: `"allow"` for everything,
/// `{"bash": "ask"}` per permission, or `{"edit": {"*.md": "allow"}}` per
/// pattern, in the order written. `~/` in patterns means the home folder.
/// Values that are not actions are skipped.
pub fn from_config(value: &Value, home: &str) -> Vec<Rule> {
    let expand = |p: &str| match p.strip_prefix("~/") {
        Some(rest) => format!("{}/{rest}", home.trim_end_matches('/')),
        None => p.to_string(),
    };
    match value {
        Value::String(s) => Action::parse(s).map(|a| vec![Rule::new("*", "*", a)]).unwrap_or_default(),
        Value::Object(map) => map
            .iter()
            .flat_map(|(permission, v)| match v {
                Value::String(s) => Action::parse(s).map(|a| Rule::new(permission, "*", a)).into_iter().collect::<Vec<_>>(),
                Value::Object(patterns) => {
                    patterns.iter().filter_map(|(pattern, a)| Some(Rule::new(permission, &expand(pattern), Action::parse(a.as_str()?)?))).collect()
                }
                _ => Vec::new(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Rules from the older `tools` map: `{"bash": false}` denies a tool.
pub fn from_tools(value: &Value) -> Vec<Rule> {
    let Some(map) = value.as_object() else { return Vec::new() };
    map.iter()
        .filter_map(|(tool, enabled)| {
            let action = if enabled.as_bool()? { Action::Allow } else { Action::Deny };
            Some(Rule::new(tool, "*", action))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_every_config_form_in_order() {
        let rules = from_config(&json!({"bash": "ask", "edit": {"*.md": "allow", "*": "ask"}, "x": 5, "external_directory": {"~/p/*": "allow"}}), "/home/u");
        assert_eq!(
            rules,
            vec![
                Rule::new("bash", "*", Action::Ask),
                Rule::new("edit", "*.md", Action::Allow),
                Rule::new("edit", "*", Action::Ask),
                Rule::new("external_directory", "/home/u/p/*", Action::Allow),
            ]
        );
        assert_eq!(from_config(&json!("deny"), "/"), vec![Rule::new("*", "*", Action::Deny)]);
        // The order written is the order that decides (the last match wins), not the sorted one.
        let parsed: Value = serde_json::from_str(r#"{"edit": {"src/*": "allow", "*": "deny"}}"#).unwrap();
        assert_eq!(from_config(&parsed, "/"), vec![Rule::new("edit", "src/*", Action::Allow), Rule::new("edit", "*", Action::Deny)]);
        assert_eq!(from_tools(&json!({"bash": false})), vec![Rule::new("bash", "*", Action::Deny)]);
    }
}
