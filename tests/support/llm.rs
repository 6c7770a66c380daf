//! Scripted LLM servers on 127.0.0.1: an OpenAI-compatible one
//! (`POST /v1/chat/completions`) and an Anthropic one (`POST /v1/messages`).
//! Each request takes the next [`Turn`] of the script and streams it in the
//! provider's wire format; requests are recorded so tests can check what the
//! agent sent. An exhausted script answers 500.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::watch;

/// One piece of a streamed answer.
#[derive(Clone, Debug)]
pub enum Step {
    Reasoning(String),
    Text(String),
    ToolCall { id: String, name: String, input: Value },
}

/// What the server does for one request.
#[derive(Clone, Debug)]
pub enum Turn {
    /// Streams the steps, then finishes with `finish` (OpenAI's words:
    /// `stop`, `tool_calls`) and the token counts.
    Stream { steps: Vec<Step>, finish: String, input_tokens: u64, output_tokens: u64 },
    /// Streams the steps, then keeps the connection open without finishing
    /// (until the client goes away): a model in the middle of an answer.
    Hang(Vec<Step>),
    /// Answers with an HTTP error.
    Fail { status: u16, message: String },
    /// Streams `text`, then holds the answer open until the test sets the
    /// gate to `true`, then finishes with `stop`: a slow model whose end the
    /// test decides.
    Held { text: String, gate: watch::Receiver<bool> },
}

impl Turn {
    pub fn text(text: &str) -> Self {
        Turn::Stream { steps: vec![Step::Text(text.into())], finish: "stop".into(), input_tokens: 10, output_tokens: 2 }
    }

    /// A turn that streams `text` and finishes once `gate` is `true`.
    pub fn held(text: &str, gate: watch::Receiver<bool>) -> Self {
        Turn::Held { text: text.into(), gate }
    }

    pub fn tool(id: &str, name: &str, input: Value) -> Self {
        Turn::Stream {
            steps: vec![Step::ToolCall { id: id.into(), name: name.into(), input }],
            finish: "tool_calls".into(),
            input_tokens: 100,
            output_tokens: 20,
        }
    }
}

pub fn text(s: &str) -> Step {
    Step::Text(s.into())
}

pub fn reasoning(s: &str) -> Step {
    Step::Reasoning(s.into())
}

pub fn call(id: &str, name: &str, input: Value) -> Step {
    Step::ToolCall { id: id.into(), name: name.into(), input }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wire {
    OpenAi,
    Anthropic,
}

struct Script {
    wire: Wire,
    turns: Mutex<VecDeque<Turn>>,
    requests: Mutex<Vec<Value>>,
    /// The `Authorization` and `x-api-key` headers of each request, in order.
    credentials: Mutex<Vec<Option<String>>>,
    /// Turns true when a hanging stream's client went away.
    hung_up: watch::Sender<bool>,
}

pub struct ScriptedLlm {
    /// The base URL up to `/v1`, as a provider's `baseURL`.
    pub url: String,
    script: Arc<Script>,
    _server: tokio::task::JoinHandle<()>,
}

impl ScriptedLlm {
    pub async fn openai(turns: Vec<Turn>) -> Self {
        Self::start(Wire::OpenAi, turns).await
    }

    pub async fn anthropic(turns: Vec<Turn>) -> Self {
        Self::start(Wire::Anthropic, turns).await
    }

    async fn start(wire: Wire, turns: Vec<Turn>) -> Self {
        let script = Arc::new(Script {
            wire,
            turns: Mutex::new(turns.into()),
            requests: Mutex::new(Vec::new()),
            credentials: Mutex::new(Vec::new()),
            hung_up: watch::Sender::new(false),
        });
        let app = Router::new().route("/v1/chat/completions", post(answer)).route("/v1/messages", post(answer)).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the scripted LLM");
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, script, _server: server }
    }

    /// Adds turns to the script.
    pub fn push(&self, turns: impl IntoIterator<Item = Turn>) {
        self.script.turns.lock().unwrap().extend(turns);
    }

    /// Every request body received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.script.requests.lock().unwrap().clone()
    }

    /// The credentials each request carried (`Authorization`, else
    /// `x-api-key`), in order; `None` for a request without any.
    pub fn credentials(&self) -> Vec<Option<String>> {
        self.script.credentials.lock().unwrap().clone()
    }

    /// Waits until a hanging stream's client disconnects (an abort reached the
    /// provider). Waits on the event itself; the long limit only turns a
    /// connection that never closes into a failure instead of a hung test.
    pub async fn hung_up(&self) {
        let mut rx = self.script.hung_up.subscribe();
        let closed = rx.wait_for(|hung_up| *hung_up);
        if tokio::time::timeout(std::time::Duration::from_secs(120), closed).await.is_err() {
            panic!("the provider connection stayed open: the client never hung up");
        }
    }
}

/// A base URL where nothing listens (connection refused).
pub async fn unreachable_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/v1")
}

async fn answer(State(script): State<Arc<Script>>, headers: axum::http::HeaderMap, Json(body): Json<Value>) -> Response {
    let credential = ["authorization", "x-api-key"].iter().find_map(|h| headers.get(*h)?.to_str().ok().map(str::to_string));
    script.credentials.lock().unwrap().push(credential);
    script.requests.lock().unwrap().push(body);
    let turn = script.turns.lock().unwrap().pop_front();
    let (steps, finish, tokens, hang) = match turn {
        None => return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": {"message": "the script has no more turns"}}))).into_response(),
        Some(Turn::Fail { status, message }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, Json(json!({"type": "error", "error": {"type": "api_error", "message": message}}))).into_response();
        }
        Some(Turn::Stream { steps, finish, input_tokens, output_tokens }) => (steps, finish, (input_tokens, output_tokens), false),
        Some(Turn::Hang(steps)) => (steps, String::new(), (0, 0), true),
        Some(Turn::Held { text, mut gate }) => {
            let steps = [Step::Text(text)];
            let mut head = wire_events(script.wire, &steps, Some((&"stop".to_string(), (10, 2))));
            let tail = head.split_off(wire_events(script.wire, &steps, None).len());
            let rest = futures::stream::once(async move {
                let _ = gate.wait_for(|open| *open).await;
            })
            .flat_map(move |_| futures::stream::iter(tail.clone().into_iter().map(|e| Ok::<_, Infallible>(Bytes::from(e)))));
            let body = Body::from_stream(futures::stream::iter(head.into_iter().map(|e| Ok::<_, Infallible>(Bytes::from(e)))).chain(rest));
            return Response::builder().header("content-type", "text/event-stream").body(body).unwrap();
        }
    };
    let events = wire_events(script.wire, &steps, (!hang).then_some((&finish, tokens)));
    let chunks = futures::stream::iter(events.into_iter().map(|e| Ok::<_, Infallible>(Bytes::from(e))));
    let body = if hang {
        let guard = HangUp(script.clone());
        let forever = futures::stream::pending::<Result<Bytes, Infallible>>().map(move |x| {
            let _ = &guard;
            x
        });
        Body::from_stream(chunks.chain(forever))
    } else {
        Body::from_stream(chunks)
    };
    Response::builder().header("content-type", "text/event-stream").body(body).unwrap()
}

/// Notes the disconnect when the hanging body is dropped.
struct HangUp(Arc<Script>);

impl Drop for HangUp {
    fn drop(&mut self) {
        self.0.hung_up.send_replace(true);
    }
}

fn wire_events(wire: Wire, steps: &[Step], end: Option<(&String, (u64, u64))>) -> Vec<String> {
    match wire {
        Wire::OpenAi => openai_events(steps, end),
        Wire::Anthropic => anthropic_events(steps, end),
    }
}

fn openai_events(steps: &[Step], end: Option<(&String, (u64, u64))>) -> Vec<String> {
    let chunk =
        |delta: Value| format!("data: {}\n\n", json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}));
    let mut out = vec![chunk(json!({"role": "assistant"}))];
    let mut tool_index = 0;
    for s in steps {
        out.push(match s {
            Step::Reasoning(t) => chunk(json!({"reasoning_content": t})),
            Step::Text(t) => chunk(json!({"content": t})),
            Step::ToolCall { id, name, input } => {
                tool_index += 1;
                chunk(json!({"tool_calls": [{"index": tool_index - 1, "id": id, "type": "function", "function": {"name": name, "arguments": input.to_string()}}]}))
            }
        });
    }
    if let Some((finish, (input, output))) = end {
        out.push(format!("data: {}\n\n", json!({"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})));
        out.push(format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output}})
        ));
        out.push("data: [DONE]\n\n".into());
    }
    out
}

fn anthropic_events(steps: &[Step], end: Option<(&String, (u64, u64))>) -> Vec<String> {
    let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let input = end.map(|(_, (i, _))| i).unwrap_or(0);
    let mut out = vec![ev(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_1", "role": "assistant", "usage": {"input_tokens": input, "output_tokens": 0}}}),
    )];
    for (index, s) in steps.iter().enumerate() {
        let (start, delta) = match s {
            Step::Reasoning(t) => (json!({"type": "thinking", "thinking": ""}), json!({"type": "thinking_delta", "thinking": t})),
            Step::Text(t) => (json!({"type": "text", "text": ""}), json!({"type": "text_delta", "text": t})),
            Step::ToolCall { id, name, input } => {
                (json!({"type": "tool_use", "id": id, "name": name, "input": {}}), json!({"type": "input_json_delta", "partial_json": input.to_string()}))
            }
        };
        out.push(ev("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": start})));
        out.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": delta})));
        out.push(ev("content_block_stop", json!({"type": "content_block_stop", "index": index})));
    }
    if let Some((finish, (_, output))) = end {
        let reason = match finish.as_str() {
            "tool_calls" => "tool_use",
            "length" => "max_tokens",
            _ => "end_turn",
        };
        out.push(ev("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": reason}, "usage": {"output_tokens": output}})));
        out.push(ev("message_stop", json!({"type": "message_stop"})));
    }
    out
}
