//! LLM providers: one streaming interface over the OpenAI-compatible chat
//! completions API (OpenAI, Ollama, vLLM, llama.cpp, OpenRouter, LM Studio)
//! and Anthropic's Messages API.
//!
//! A provider turns a [`ChatRequest`] into a stream of [`StreamEvent`]s; the
//! agent loop turns those into OpenCode parts and events. Providers know HTTP
//! and their wire format, nothing about sessions.

pub mod anthropic;
pub mod openai;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde_json::Value;

/// One turn of the conversation, in provider-neutral form.
#[derive(Clone, Debug, PartialEq)]
pub enum ChatMessage {
    User {
        text: String,
    },
    Assistant {
        text: String,
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call, sent back to the model.
    Tool {
        call_id: String,
        name: String,
        output: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub input: Value,
}

/// A tool the model may call, with its JSON Schema.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

#[derive(Clone, Debug, Default)]
pub struct ChatRequest {
    pub model: String,
    pub system: Vec<String>,
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolSpec>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
}

/// Token counts as OpenCode reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub reasoning: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

/// What a model costs, in US dollars per million tokens (the `cost` of a
/// config model: `{input, output, cache_read, cache_write}`). All zero when
/// none is configured: Burrow ships no price list.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pricing {
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
}

impl Pricing {
    /// The dollars a step's usage cost. Reasoning tokens are billed as
    /// output, as OpenCode does.
    pub fn cost(&self, u: &Usage) -> f64 {
        let micro = u.input as f64 * self.input
            + (u.output + u.reasoning) as f64 * self.output
            + u.cache_read as f64 * self.cache_read
            + u.cache_write as f64 * self.cache_write;
        micro / 1_000_000.0
    }
}

/// Why the model stopped, in OpenCode's words (`stop`, `tool-calls`, `length`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinishReason(pub String);

#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    ReasoningDelta(String),
    TextDelta(String),
    /// The model started a tool call; its input is still streaming.
    ToolCallStart {
        id: String,
        name: String,
    },
    /// A complete tool call.
    ToolCall(ToolCall),
    Finish {
        reason: FinishReason,
        usage: Usage,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The API answered with an error status.
    #[error("{provider} API error {status}: {message}")]
    Api { provider: String, status: u16, message: String },
    /// The request did not get through (connection refused, reset, timeout).
    #[error("cannot reach {provider}: {message}")]
    Network { provider: String, message: String },
    /// The stream said something we cannot read.
    #[error("unexpected {provider} response: {message}")]
    Decode { provider: String, message: String },
}

impl ProviderError {
    /// Worth retrying with backoff: network trouble, rate limits, overload, server errors.
    pub fn retryable(&self) -> bool {
        match self {
            ProviderError::Network { .. } => true,
            ProviderError::Api { status, .. } => *status == 408 || *status == 409 || *status == 429 || *status >= 500,
            ProviderError::Decode { .. } => false,
        }
    }
}

pub type EventStream = BoxStream<'static, Result<StreamEvent, ProviderError>>;

#[async_trait]
pub trait Provider: Send + Sync {
    /// Starts a streamed completion.
    async fn stream(&self, req: &ChatRequest) -> Result<EventStream, ProviderError>;
}

/// Where and how to reach one provider: what both wire formats share.
pub struct ApiClient {
    /// The provider id, for error messages (`openai`, `ollama`, `anthropic`, ...).
    pub id: String,
    /// Up to and including `/v1`, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub api_key: Option<String>,
    pub headers: Vec<(String, String)>,
    pub client: reqwest::Client,
}

impl ApiClient {
    /// POSTs `body` to `path` below the base URL, after `sign` adds the API's
    /// own headers (it gets the key, if any), and returns the response's
    /// server-sent events, or the API's error.
    async fn post_sse(
        &self,
        path: &str,
        body: &Value,
        sign: impl FnOnce(reqwest::RequestBuilder, Option<&str>) -> reqwest::RequestBuilder,
    ) -> Result<BoxStream<'static, Result<(String, String), ProviderError>>, ProviderError> {
        let url = format!("{}/{path}", self.base_url.trim_end_matches('/'));
        let mut http = sign(self.client.post(&url).json(body), self.api_key.as_deref());
        for (k, v) in &self.headers {
            http = http.header(k, v);
        }
        let res = http.send().await.map_err(|e| request_error(&self.id, e))?;
        if !res.status().is_success() {
            return Err(api_error(&self.id, res).await);
        }
        Ok(sse(&self.id, res))
    }
}

/// Maps a reqwest failure to a provider error.
fn request_error(provider: &str, e: reqwest::Error) -> ProviderError {
    ProviderError::Network { provider: provider.to_string(), message: e.to_string() }
}

/// Reads an error response body into a message, preferring the API's own words.
async fn api_error(provider: &str, res: reqwest::Response) -> ProviderError {
    let status = res.status().as_u16();
    let body = res.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.pointer("/error/message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| if body.is_empty() { format!("HTTP {status}") } else { body.chars().take(2000).collect() });
    ProviderError::Api { provider: provider.to_string(), status, message }
}

/// Server-sent events of a streaming response, as (event name, data) pairs.
fn sse(provider: &str, res: reqwest::Response) -> BoxStream<'static, Result<(String, String), ProviderError>> {
    use eventsource_stream::Eventsource;
    use futures::StreamExt;
    let provider = provider.to_string();
    res.bytes_stream()
        .eventsource()
        .map(move |ev| match ev {
            Ok(ev) => Ok((ev.event, ev.data)),
            Err(e) => Err(ProviderError::Network { provider: provider.clone(), message: format!("stream interrupted: {e}") }),
        })
        .boxed()
}

/// Runs `drive` in a task that feeds the returned stream. Dropping the stream
/// (an abort) stops the task and closes the HTTP connection.
fn channel_stream<F, Fut>(drive: F) -> EventStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<StreamEvent, ProviderError>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let watch = tx.clone();
    // The driver may wait on the network for a long time without sending;
    // stop it as soon as the reader is gone rather than at its next send.
    let driving = drive(tx);
    tokio::spawn(async move {
        tokio::select! {
            _ = driving => {}
            _ = watch.closed() => {}
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// Parses streamed tool-call arguments; a model that sent broken JSON gets it
/// back as a string, so the tool reports the problem instead of the loop dying.
fn parse_arguments(raw: &str) -> Value {
    if raw.trim().is_empty() {
        return Value::Object(Default::default());
    }
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_per_million_tokens_with_reasoning_as_output() {
        let p = Pricing { input: 3.0, output: 15.0, cache_read: 0.3, cache_write: 3.75 };
        let u = Usage { input: 1000, output: 200, reasoning: 100, cache_read: 10_000, cache_write: 2000 };
        // 1000*3 + 300*15 + 10000*0.3 + 2000*3.75 = 3000 + 4500 + 3000 + 7500 = 18000 micro-dollars.
        assert!((p.cost(&u) - 0.018).abs() < 1e-12, "{}", p.cost(&u));
        assert_eq!(Pricing::default().cost(&u), 0.0);
    }
}
