//! Commands and agents written as Markdown files, as OpenCode reads them from
//! a config folder: `command/` (or `commands/`), `agent/` (or `agents/`) and
//! `mode/` (or `modes/`), nested folders allowed (`git/commit.md` is the
//! command `git/commit`). YAML front matter holds the fields, the body is the
//! template or the prompt. The result is a config layer to merge.

use serde_json::{Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// The sections, the folder names that fill them, and the key the body goes to.
pub const SECTIONS: [(&str, [&str; 2], &str); 3] =
    [("command", ["command", "commands"], "template"), ("agent", ["agent", "agents"], "prompt"), ("mode", ["mode", "modes"], "prompt")];

/// Splits a file into its front matter (empty when there is none or it is
/// not a mapping) and its body.
pub fn parse(text: &str) -> (Map<String, Value>, String) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text.strip_prefix("---\n").or_else(|| text.strip_prefix("---\r\n")) else {
        return (Map::new(), text.trim().to_string());
    };
    let Some(end) = rest.find("\n---") else { return (Map::new(), text.trim().to_string()) };
    let front = &rest[..end];
    let body = rest[end + 4..].trim_start_matches(['-']).trim().to_string();
    let map = match YamlLoader::load_from_str(front).ok().and_then(|docs| docs.into_iter().next()).map(to_json) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    (map, body)
}

fn to_json(y: Yaml) -> Value {
    match y {
        Yaml::Real(s) => s.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number).unwrap_or(Value::String(s)),
        Yaml::Integer(i) => Value::from(i),
        Yaml::String(s) => Value::String(s),
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Array(a) => Value::Array(a.into_iter().map(to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.into_iter()
                .filter_map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) | Yaml::Real(s) => s,
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Boolean(b) => b.to_string(),
                        _ => return None,
                    };
                    Some((key, to_json(v)))
                })
                .collect(),
        ),
        Yaml::Null | Yaml::Alias(_) | Yaml::BadValue => Value::Null,
    }
}

/// Adds one file to a layer: `name` is its path below the section folder, without `.md`.
pub fn add(layer: &mut Map<String, Value>, section: &str, body_key: &str, name: &str, text: &str) {
    let (mut fields, body) = parse(text);
    fields.insert(body_key.to_string(), Value::String(body));
    let entries = layer.entry(section).or_insert_with(|| Value::Object(Map::new()));
    if let Some(map) = entries.as_object_mut() {
        map.insert(name.to_string(), Value::Object(fields));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn front_matter_and_body() {
        let (front, body) = parse("---\ndescription: Commit it\nsubtask: true\ntools:\n  bash: false\ntemperature: 0.2\n---\n\nWrite $1.\n");
        assert_eq!(Value::Object(front), json!({"description": "Commit it", "subtask": true, "tools": {"bash": false}, "temperature": 0.2}));
        assert_eq!(body, "Write $1.");
        assert_eq!(parse("just text\n"), (Map::new(), "just text".to_string()));
    }

    #[test]
    fn files_become_config_entries() {
        let mut layer = Map::new();
        add(&mut layer, "command", "template", "git/commit", "---\nagent: build\n---\nCommit.");
        add(&mut layer, "agent", "prompt", "docs", "---\nmode: subagent\n---\nYou write docs.");
        assert_eq!(
            Value::Object(layer),
            json!({"command": {"git/commit": {"agent": "build", "template": "Commit."}}, "agent": {"docs": {"mode": "subagent", "prompt": "You write docs."}}})
        );
    }
}
