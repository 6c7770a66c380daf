//! Anthropic's Messages API, streamed (`POST {baseURL}/messages`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{json, Value};

use super::*;

pub const API_VERSION: &str = "2023-06-01";
/// The Messages API requires `max_tokens`; this is used when the model config has none.
pub const DEFAULT_MAX_TOKENS: u32 = 8192;

/// The Messages API at an endpoint (base URL e.g. `https://api.anthropic.com/v1`).
pub struct Anthropic(pub ApiClient);

/// Anthropic wants strictly alternating roles, with tool results inside user
/// turns: consecutive user-side blocks are merged into one message.
fn wire_messages(req: &ChatRequest) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut push = |role: &str, blocks: Vec<Value>| {
        if let Some(last) = out.last_mut().filter(|m| m["role"] == role) {
            if let Some(content) = last["content"].as_array_mut() {
                content.extend(blocks);
                return;
            }
        }
        out.push(json!({"role": role, "content": blocks}));
    };
    for m in &req.messages {
        match m {
            ChatMessage::User { text } => push("user", vec![json!({"type": "text", "text": text})]),
            ChatMessage::Assistant { text, tool_calls } => {
                let mut blocks = Vec::new();
                if !text.is_empty() {
                    blocks.push(json!({"type": "text", "text": text}));
                }
                blocks.extend(tool_calls.iter().map(|c| json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.input})));
                if !blocks.is_empty() {
                    push("assistant", blocks);
                }
            }
            ChatMessage::Tool { call_id, output, .. } => push("user", vec![json!({"type": "tool_result", "tool_use_id": call_id, "content": output})]),
        }
    }
    out
}

pub fn request_body(req: &ChatRequest) -> Value {
    let mut body = json!({
        "model": req.model,
        "max_tokens": req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "stream": true,
        "messages": wire_messages(req),
    });
    if !req.system.is_empty() {
        body["system"] = req.system.iter().map(|s| json!({"type": "text", "text": s})).collect();
    }
    if !req.tools.is_empty() {
        body["tools"] = req.tools.iter().map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters})).collect();
    }
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    body
}

fn finish_reason(raw: &str) -> FinishReason {
    FinishReason(match raw {
        "end_turn" | "stop_sequence" => "stop".into(),
        "tool_use" => "tool-calls".into(),
        "max_tokens" => "length".into(),
        other => other.replace('_', "-"),
    })
}

/// A content block being streamed.
enum Block {
    Text,
    Thinking,
    Tool { id: String, name: String, json: String },
    Other,
}

#[async_trait]
impl Provider for Anthropic {
    async fn stream(&self, req: &ChatRequest) -> Result<EventStream, ProviderError> {
        let mut events = self
            .0
            .post_sse("messages", &request_body(req), |http, key| {
                let http = http.header("anthropic-version", API_VERSION);
                match key {
                    Some(key) => http.header("x-api-key", key),
                    None => http,
                }
            })
            .await?;
        let id = self.0.id.clone();
        Ok(channel_stream(move |tx| async move {
            let mut blocks: BTreeMap<u64, Block> = BTreeMap::new();
            let mut used = Usage::default();
            let mut reason = FinishReason("stop".into());
            while let Some(item) = events.next().await {
                let data = match item {
                    Ok((_, data)) => data,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                let Ok(ev) = serde_json::from_str::<Value>(&data) else { continue };
                let n = |p: &str| ev.pointer(p).and_then(Value::as_u64);
                let index = n("/index").unwrap_or(0);
                let mut out = Vec::new();
                match ev.get("type").and_then(Value::as_str).unwrap_or("") {
                    "message_start" => {
                        used.input = n("/message/usage/input_tokens").unwrap_or(0);
                        used.cache_read = n("/message/usage/cache_read_input_tokens").unwrap_or(0);
                        used.cache_write = n("/message/usage/cache_creation_input_tokens").unwrap_or(0);
                    }
                    "content_block_start" => {
                        let b = &ev["content_block"];
                        let block = match b.get("type").and_then(Value::as_str) {
                            Some("text") => Block::Text,
                            Some("thinking") => Block::Thinking,
                            Some("tool_use") => {
                                let (cid, name) = (b["id"].as_str().unwrap_or("").to_string(), b["name"].as_str().unwrap_or("").to_string());
                                out.push(StreamEvent::ToolCallStart { id: cid.clone(), name: name.clone() });
                                Block::Tool { id: cid, name, json: String::new() }
                            }
                            _ => Block::Other,
                        };
                        blocks.insert(index, block);
                    }
                    "content_block_delta" => {
                        let d = &ev["delta"];
                        match (blocks.get_mut(&index), d.get("type").and_then(Value::as_str)) {
                            (Some(Block::Text), Some("text_delta")) => out.push(StreamEvent::TextDelta(d["text"].as_str().unwrap_or("").into())),
                            (Some(Block::Thinking), Some("thinking_delta")) => {
                                out.push(StreamEvent::ReasoningDelta(d["thinking"].as_str().unwrap_or("").into()))
                            }
                            (Some(Block::Tool { json, .. }), Some("input_json_delta")) => json.push_str(d["partial_json"].as_str().unwrap_or("")),
                            _ => {}
                        }
                    }
                    "content_block_stop" => {
                        if let Some(Block::Tool { id, name, json }) = blocks.remove(&index) {
                            out.push(StreamEvent::ToolCall(ToolCall { id, name, input: parse_arguments(&json) }));
                        }
                    }
                    "message_delta" => {
                        if let Some(r) = ev.pointer("/delta/stop_reason").and_then(Value::as_str) {
                            reason = finish_reason(r);
                        }
                        if let Some(o) = n("/usage/output_tokens") {
                            used.output = o;
                        }
                    }
                    "message_stop" => {
                        let _ = tx.send(Ok(StreamEvent::Finish { reason: reason.clone(), usage: used })).await;
                        return;
                    }
                    "error" => {
                        let message = ev.pointer("/error/message").and_then(Value::as_str).unwrap_or("stream error").to_string();
                        let status = if ev.pointer("/error/type").and_then(Value::as_str) == Some("overloaded_error") { 529 } else { 500 };
                        let _ = tx.send(Err(ProviderError::Api { provider: id.clone(), status, message })).await;
                        return;
                    }
                    _ => {}
                }
                for e in out {
                    if tx.send(Ok(e)).await.is_err() {
                        return;
                    }
                }
            }
            let _ = tx.send(Err(ProviderError::Network { provider: id.clone(), message: "stream ended before message_stop".into() })).await;
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_results_merge_into_user_turns() {
        let req = ChatRequest {
            model: "claude".into(),
            system: vec!["sys".into()],
            messages: vec![
                ChatMessage::User { text: "hi".into() },
                ChatMessage::Assistant {
                    text: "ok".into(),
                    tool_calls: vec![
                        ToolCall { id: "t1".into(), name: "read".into(), input: json!({"filePath": "a"}) },
                        ToolCall { id: "t2".into(), name: "read".into(), input: json!({"filePath": "b"}) },
                    ],
                },
                ChatMessage::Tool { call_id: "t1".into(), name: "read".into(), output: "A".into() },
                ChatMessage::Tool { call_id: "t2".into(), name: "read".into(), output: "B".into() },
            ],
            ..Default::default()
        };
        let body = request_body(&req);
        let msgs = body["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[2]["content"].as_array().unwrap().len(), 2);
        assert_eq!(msgs[1]["content"][1]["type"], json!("tool_use"));
        assert_eq!(body["system"][0]["text"], json!("sys"));
        assert_eq!(body["max_tokens"], json!(DEFAULT_MAX_TOKENS));
        assert_eq!(finish_reason("tool_use").0, "tool-calls");
    }
}
