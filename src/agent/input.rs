//! The body of `POST /session/{id}/message` (and `prompt_async`, `prompt`),
//! as OpenCode's clients send it and as others do: PocketPaw names the model
//! as a `"provider/model"` string, and some clients send a bare `text`.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// A model, however the client named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelChoice {
    pub provider_id: String,
    pub model_id: String,
}

impl ModelChoice {
    /// Parses `provider/model` (the model id may contain more slashes).
    pub fn parse(s: &str) -> Option<Self> {
        let (p, m) = s.split_once('/')?;
        (!p.is_empty() && !m.is_empty()).then(|| Self { provider_id: p.into(), model_id: m.into() })
    }
}

impl<'de> Deserialize<'de> for ModelChoice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Object {
                #[serde(rename = "providerID")]
                provider_id: String,
                #[serde(rename = "modelID")]
                model_id: String,
            },
        }
        match Raw::deserialize(d)? {
            Raw::Object { provider_id, model_id } => Ok(Self { provider_id, model_id }),
            Raw::Text(s) => {
                Self::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("model {s:?} must be \"provider/model\" or {{\"providerID\", \"modelID\"}}")))
            }
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptBody {
    #[serde(rename = "messageID")]
    pub message_id: Option<String>,
    pub model: Option<ModelChoice>,
    pub agent: Option<String>,
    #[serde(default)]
    pub no_reply: bool,
    /// Tools switched on or off for this message (`{"bash": false}`).
    pub tools: Option<Map<String, Value>>,
    /// Extra system prompt for this message.
    pub system: Option<String>,
    pub variant: Option<String>,
    pub format: Option<Value>,
    /// Text, file, agent and subtask parts, as the session layer stores them.
    #[serde(default)]
    pub parts: Vec<Value>,
    /// A bare prompt, for clients that send no parts.
    pub text: Option<String>,
}

impl PromptBody {
    /// The parts to store: the given ones, or one text part from `text`.
    pub fn input_parts(&self) -> Vec<Value> {
        if self.parts.is_empty() {
            if let Some(t) = self.text.as_ref().filter(|t| !t.is_empty()) {
                return vec![serde_json::json!({"type": "text", "text": t})];
            }
        }
        self.parts.clone()
    }
}

/// What the model reads of a user message's parts: its texts (ignored ones
/// left out), files named, agents mentioned, and OpenCode's stand-ins for a
/// subtask the user ran and a compaction.
pub fn user_text(parts: &[Value]) -> String {
    let s = |p: &Value, k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    parts
        .iter()
        .filter(|p| p.get("ignored").and_then(Value::as_bool) != Some(true))
        .filter_map(|p| match p.get("type").and_then(Value::as_str) {
            Some("text") => Some(s(p, "text")),
            Some("file") => Some(format!("[file: {}]", p.get("filename").and_then(Value::as_str).unwrap_or(&s(p, "url")))),
            Some("agent") => Some(format!("@{}", s(p, "name"))),
            Some("subtask") => Some("The following tool was executed by the user".to_string()),
            Some("compaction") => Some(super::compaction::QUESTION.to_string()),
            _ => None,
        })
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn models_as_strings_or_objects() {
        let b: PromptBody =
            serde_json::from_value(json!({"model": "fake/fake-model", "system": "be brief", "parts": [{"type": "text", "text": "hi"}]})).unwrap();
        assert_eq!(b.model, Some(ModelChoice { provider_id: "fake".into(), model_id: "fake-model".into() }));
        assert_eq!(b.system.as_deref(), Some("be brief"));
        let b: PromptBody = serde_json::from_value(json!({"model": {"providerID": "openrouter", "modelID": "a/b"}, "parts": []})).unwrap();
        assert_eq!(b.model.unwrap().model_id, "a/b");
        let b: PromptBody = serde_json::from_value(json!({"model": "openrouter/meta/llama"})).unwrap();
        assert_eq!(b.model.unwrap(), ModelChoice { provider_id: "openrouter".into(), model_id: "meta/llama".into() });
        assert!(serde_json::from_value::<PromptBody>(json!({"model": "nomodel"})).is_err());
    }

    #[test]
    fn text_of_parts() {
        let b: PromptBody = serde_json::from_value(json!({"text": "hello"})).unwrap();
        assert_eq!(b.input_parts(), vec![json!({"type": "text", "text": "hello"})]);
        let parts = vec![
            json!({"type": "text", "text": "look"}),
            json!({"type": "text", "text": "x", "ignored": true}),
            json!({"type": "file", "mime": "text/plain", "url": "file:///a", "filename": "a.rs"}),
        ];
        assert_eq!(user_text(&parts), "look\n\n[file: a.rs]");
    }
}
