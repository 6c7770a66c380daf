//! Reading one config file: OpenCode's `{env:NAME}` and `{file:path}`
//! substitutions, then JSON with comments and trailing commas; and the deep
//! merge that layers files.

use serde_json::{Map, Value};

/// A config file that could not be read or parsed, with where and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid config {source_name}: {message}")]
pub struct ConfigError {
    pub source_name: String,
    pub message: String,
}

/// The `{file:...}` references in `text`, in order.
pub fn file_refs(text: &str) -> Vec<String> {
    tokens(text, "{file:").into_iter().map(|(_, _, arg)| arg.to_string()).collect()
}

/// Every `open..}` token: (start, end, argument).
fn tokens<'a>(text: &'a str, open: &str) -> Vec<(usize, usize, &'a str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find(open) {
        let start = from + i;
        let arg_start = start + open.len();
        let Some(len) = text[arg_start..].find('}') else { break };
        out.push((start, arg_start + len + 1, &text[arg_start..arg_start + len]));
        from = arg_start + len + 1;
    }
    out
}

/// Replaces `{env:NAME}` with what `env` gives (the token stays as written
/// when it gives `None`: a variable this file may not read) and `{file:path}`
/// with the file's text, escaped to sit inside a JSON string, as OpenCode
/// does. `files` answers for each path of [`file_refs`].
pub fn substitute(text: &str, env: &dyn Fn(&str) -> Option<String>, files: &dyn Fn(&str) -> Option<String>) -> String {
    let replace = |text: &str, open: &str, value: &dyn Fn(&str) -> String| {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (start, end, arg) in tokens(text, open) {
            out.push_str(&text[last..start]);
            out.push_str(&value(arg));
            last = end;
        }
        out.push_str(&text[last..]);
        out
    };
    let text = replace(text, "{env:", &|name| env(name.trim()).unwrap_or_else(|| format!("{{env:{name}}}")));
    replace(&text, "{file:", &|path| {
        let content = files(path.trim()).unwrap_or_default();
        let quoted = serde_json::to_string(content.trim_end()).unwrap_or_default();
        quoted[1..quoted.len() - 1].to_string()
    })
}

/// Parses JSONC (comments, trailing commas) into an object.
pub fn parse(text: &str, source_name: &str) -> Result<Map<String, Value>, ConfigError> {
    let err = |message: String| ConfigError { source_name: source_name.to_string(), message };
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    let value: Value = jsonc_parser::parse_to_serde_value(text, &Default::default()).map_err(|e| err(e.to_string()))?;
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        other => Err(err(format!("expected an object at the top, found {}", kind(&other)))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Layers `over` onto `base`: objects merge key by key, everything else is
/// replaced, except `instructions`, whose lists are joined without repeats.
pub fn merge(base: &mut Map<String, Value>, over: Map<String, Value>) {
    for (key, value) in over {
        if key == "instructions" {
            if let (Some(Value::Array(old)), Value::Array(new)) = (base.get_mut(&key), &value) {
                for item in new {
                    if !old.contains(item) {
                        old.push(item.clone());
                    }
                }
                continue;
            }
        }
        merge_value(base.entry(key).or_insert(Value::Null), value);
    }
}

fn merge_value(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge_value(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_comments_and_trailing_commas() {
        let map = parse("{\n // a comment\n \"model\": \"a/b\", /* more */ \"x\": [1,2,],\n}", "t").unwrap();
        assert_eq!(Value::Object(map), json!({"model": "a/b", "x": [1, 2]}));
        assert!(parse("{\"a\": }", "bad.json").unwrap_err().to_string().contains("bad.json"));
        assert!(parse("[1]", "t").is_err());
    }

    #[test]
    fn substitutes_env_and_files() {
        let env = |n: &str| match n {
            "KEY" => Some("sekrit".to_string()),
            "NOPE" => Some(String::new()),
            _ => None,
        };
        let files = |p: &str| (p == "./prompt.txt").then(|| "line \"one\"\n".to_string());
        let out = substitute(r#"{"k": "{env:KEY}", "m": "{env:NOPE}", "p": "{file:./prompt.txt}", "x": "{env:HIDDEN}"}"#, &env, &files);
        assert_eq!(out, r#"{"k": "sekrit", "m": "", "p": "line \"one\"", "x": "{env:HIDDEN}"}"#);
        assert_eq!(file_refs("{file:a} {file:b}"), vec!["a", "b"]);
    }

    #[test]
    fn merges_deeply_and_joins_instructions() {
        let mut base = json!({"provider": {"p": {"name": "P", "options": {"a": 1}}}, "model": "x", "instructions": ["a"]});
        let over = json!({"provider": {"p": {"options": {"b": 2}}}, "model": "y", "instructions": ["a", "b"]});
        let (Value::Object(b), Value::Object(o)) = (&mut base, over) else { unreachable!() };
        merge(b, o);
        assert_eq!(base, json!({"provider": {"p": {"name": "P", "options": {"a": 1, "b": 2}}}, "model": "y", "instructions": ["a", "b"]}));
    }
}
