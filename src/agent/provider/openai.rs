//! OpenAI-compatible chat completions, streamed (`POST {baseURL}/chat/completions`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{json, Value};

use super::*;

/// The chat completions API at an endpoint (base URL e.g. `https://api.openai.com/v1`).
pub struct OpenAiCompatible(pub ApiClient);

fn wire_messages(req: &ChatRequest) -> Vec<Value> {
    let mut out: Vec<Value> = req.system.iter().map(|s| json!({"role": "system", "content": s})).collect();
    for m in &req.messages {
        out.push(match m {
            ChatMessage::User { text } => json!({"role": "user", "content": text}),
            ChatMessage::Assistant { text, tool_calls } => {
                let mut msg = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }});
                if !tool_calls.is_empty() {
                    msg["tool_calls"] = tool_calls
                        .iter()
                        .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.input.to_string()}}))
                        .collect();
                }
                msg
            }
            ChatMessage::Tool { call_id, output, .. } => json!({"role": "tool", "tool_call_id": call_id, "content": output}),
        });
    }
    out
}

pub fn request_body(req: &ChatRequest) -> Value {
    let mut body = json!({
        "model": req.model,
        "stream": true,
        "stream_options": {"include_usage": true},
        "messages": wire_messages(req),
    });
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
            .collect();
    }
    if let Some(n) = req.max_tokens {
        body["max_tokens"] = json!(n);
    }
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    body
}

/// A tool call being assembled from deltas, keyed by its index.
#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
    announced: bool,
}

fn finish_reason(raw: &str) -> FinishReason {
    FinishReason(match raw {
        "tool_calls" | "function_call" => "tool-calls".into(),
        "content_filter" => "content-filter".into(),
        other => other.replace('_', "-"),
    })
}

fn usage(u: &Value) -> Usage {
    let n = |p: &str| u.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let cached = n("/prompt_tokens_details/cached_tokens");
    let reasoning = n("/completion_tokens_details/reasoning_tokens");
    Usage {
        input: n("/prompt_tokens").saturating_sub(cached),
        output: n("/completion_tokens").saturating_sub(reasoning),
        reasoning,
        cache_read: cached,
        cache_write: 0,
    }
}

#[async_trait]
impl Provider for OpenAiCompatible {
    async fn stream(&self, req: &ChatRequest) -> Result<EventStream, ProviderError> {
        let mut events = self
            .0
            .post_sse("chat/completions", &request_body(req), |http, key| match key {
                Some(key) => http.bearer_auth(key),
                None => http,
            })
            .await?;
        let id = self.0.id.clone();
        Ok(channel_stream(move |tx| async move {
            let mut calls: BTreeMap<u64, PartialCall> = BTreeMap::new();
            let mut reason = FinishReason("stop".into());
            let mut used = Usage::default();
            while let Some(item) = events.next().await {
                let data = match item {
                    Ok((_, data)) => data,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                if data.trim() == "[DONE]" {
                    break;
                }
                let chunk: Value = match serde_json::from_str(&data) {
                    Ok(v) => v,
                    Err(e) => {
                        let _ = tx.send(Err(ProviderError::Decode { provider: id.clone(), message: format!("{e}: {data}") })).await;
                        return;
                    }
                };
                if let Some(err) = chunk.get("error") {
                    let message = err.get("message").and_then(Value::as_str).unwrap_or("stream error").to_string();
                    let _ = tx.send(Err(ProviderError::Api { provider: id.clone(), status: 500, message })).await;
                    return;
                }
                if let Some(u) = chunk.get("usage").filter(|u| !u.is_null()) {
                    used = usage(u);
                }
                let Some(choice) = chunk.pointer("/choices/0") else { continue };
                let delta = choice.get("delta").cloned().unwrap_or(Value::Null);
                let mut out = Vec::new();
                for key in ["reasoning_content", "reasoning"] {
                    if let Some(t) = delta.get(key).and_then(Value::as_str).filter(|t| !t.is_empty()) {
                        out.push(StreamEvent::ReasoningDelta(t.to_string()));
                    }
                }
                if let Some(t) = delta.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::TextDelta(t.to_string()));
                }
                for tc in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                    let index = tc.get("index").and_then(Value::as_u64).unwrap_or(calls.len() as u64);
                    let call = calls.entry(index).or_default();
                    if let Some(v) = tc.get("id").and_then(Value::as_str) {
                        call.id = v.to_string();
                    }
                    if let Some(v) = tc.pointer("/function/name").and_then(Value::as_str) {
                        call.name.push_str(v);
                    }
                    if let Some(v) = tc.pointer("/function/arguments").and_then(Value::as_str) {
                        call.arguments.push_str(v);
                    }
                    if !call.announced && !call.id.is_empty() && !call.name.is_empty() {
                        call.announced = true;
                        out.push(StreamEvent::ToolCallStart { id: call.id.clone(), name: call.name.clone() });
                    }
                }
                if let Some(r) = choice.get("finish_reason").and_then(Value::as_str) {
                    reason = finish_reason(r);
                }
                for ev in out {
                    if tx.send(Ok(ev)).await.is_err() {
                        return;
                    }
                }
            }
            for (i, call) in calls {
                let id = if call.id.is_empty() { format!("call_{i}") } else { call.id };
                let ev = StreamEvent::ToolCall(ToolCall { id, name: call.name, input: parse_arguments(&call.arguments) });
                if tx.send(Ok(ev)).await.is_err() {
                    return;
                }
            }
            let _ = tx.send(Ok(StreamEvent::Finish { reason, usage: used })).await;
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_carries_tools_and_history() {
        let req = ChatRequest {
            model: "m".into(),
            system: vec!["be brief".into()],
            messages: vec![
                ChatMessage::User { text: "hi".into() },
                ChatMessage::Assistant {
                    text: String::new(),
                    tool_calls: vec![ToolCall { id: "c1".into(), name: "bash".into(), input: json!({"command": "ls"}) }],
                },
                ChatMessage::Tool { call_id: "c1".into(), name: "bash".into(), output: "a\n".into() },
            ],
            tools: vec![ToolSpec { name: "bash".into(), description: "run".into(), parameters: json!({"type": "object"}) }],
            ..Default::default()
        };
        let body = request_body(&req);
        assert_eq!(body["messages"][0], json!({"role": "system", "content": "be brief"}));
        assert_eq!(body["messages"][2]["tool_calls"][0]["function"]["arguments"], json!("{\"command\":\"ls\"}"));
        assert_eq!(body["messages"][3], json!({"role": "tool", "tool_call_id": "c1", "content": "a\n"}));
        assert_eq!(body["tools"][0]["function"]["name"], json!("bash"));
        assert_eq!(body["stream"], json!(true));
    }

    #[test]
    fn usage_splits_cache_and_reasoning() {
        let u = usage(
            &json!({"prompt_tokens": 100, "completion_tokens": 30, "prompt_tokens_details": {"cached_tokens": 40}, "completion_tokens_details": {"reasoning_tokens": 10}}),
        );
        assert_eq!(u, Usage { input: 60, output: 20, reasoning: 10, cache_read: 40, cache_write: 0 });
        assert_eq!(finish_reason("tool_calls").0, "tool-calls");
    }
}
