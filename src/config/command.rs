//! Slash commands: OpenCode's built-in `init` and `review`, the `command`
//! config, and skills (which the TUI also offers as commands).

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::Config;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Command {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `command`, `mcp` or `skill`.
    pub source: String,
    pub template: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtask: Option<bool>,
    /// The placeholders the template takes: `$1`, `$2`, ..., then `$ARGUMENTS`.
    pub hints: Vec<String>,
}

/// A skill: instructions an agent loads on demand.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Skill {
    pub name: String,
    pub description: String,
    pub location: String,
    pub content: String,
}

/// The placeholders in a template, as OpenCode lists them.
pub fn hints(template: &str) -> Vec<String> {
    let mut numbered: Vec<u32> = Vec::new();
    let bytes = template.as_bytes();
    for (i, _) in template.match_indices('$') {
        let digits: String = bytes[i + 1..].iter().take_while(|b| b.is_ascii_digit()).map(|&b| b as char).collect();
        if let Ok(n) = digits.parse::<u32>() {
            if !numbered.contains(&n) {
                numbered.push(n);
            }
        }
    }
    numbered.sort_unstable();
    let mut out: Vec<String> = numbered.into_iter().map(|n| format!("${n}")).collect();
    if template.contains("$ARGUMENTS") {
        out.push("$ARGUMENTS".into());
    }
    out
}

/// The built-in skills.
pub fn skills() -> Vec<Skill> {
    vec![Skill {
        name: "customize-opencode".into(),
        description: include_str!("builtin/skill_customize-opencode.description.txt").trim().into(),
        location: "<built-in>".into(),
        content: include_str!("builtin/skill_customize-opencode.md").into(),
    }]
}

/// Every command: built-ins, then the config's in file order, then skills.
/// `worktree` fills the `init` template.
pub fn list(config: &Config, worktree: &str) -> Vec<Command> {
    let builtin = |name: &str, description: &str, template: String, subtask: Option<bool>| Command {
        name: name.into(),
        description: Some(description.into()),
        agent: None,
        model: None,
        source: "command".into(),
        hints: hints(&template),
        template,
        subtask,
    };
    let mut out = vec![
        builtin("init", "guided AGENTS.md setup", include_str!("builtin/command_init.txt").replace("{{worktree}}", worktree), None),
        builtin("review", "review changes [commit|branch|pr], defaults to uncommitted", include_str!("builtin/command_review.txt").into(), Some(true)),
    ];
    for (name, v) in config.object("command").into_iter().flatten() {
        let Some(template) = v.get("template").and_then(Value::as_str) else { continue };
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let cmd = Command {
            name: name.clone(),
            description: s("description"),
            agent: s("agent"),
            model: s("model"),
            source: "command".into(),
            template: template.into(),
            subtask: v.get("subtask").and_then(Value::as_bool),
            hints: hints(template),
        };
        match out.iter_mut().find(|c| c.name == *name) {
            Some(existing) => *existing = cmd,
            None => out.push(cmd),
        }
    }
    out.extend(skills().into_iter().map(|s| Command {
        name: s.name,
        description: Some(s.description),
        agent: None,
        model: None,
        source: "skill".into(),
        template: s.content,
        subtask: None,
        hints: Vec::new(),
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_list_numbers_then_arguments() {
        assert_eq!(hints("do $2 and $1 with $ARGUMENTS, $1 again"), vec!["$1", "$2", "$ARGUMENTS"]);
        assert!(hints("plain").is_empty());
    }
}
