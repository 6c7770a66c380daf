//! The agent runtime against scripted LLM servers and the real server:
//! providers streaming reasoning, text and tool calls; failures; aborts; and
//! the permission endpoints.

mod support;

use burrow::agent::provider::anthropic::Anthropic;
use burrow::agent::provider::openai::OpenAiCompatible;
use burrow::agent::provider::{ApiClient, ChatMessage, ChatRequest, Provider, ProviderError, StreamEvent, ToolCall, Usage};
use futures::StreamExt;
use serde_json::json;
use support::llm::{call, reasoning, text, unreachable_url, ScriptedLlm, Turn};
use support::{Fixture, Server, TestEnv};

fn openai(url: &str) -> OpenAiCompatible {
    OpenAiCompatible(ApiClient { id: "fake".into(), base_url: url.into(), api_key: Some("k".into()), headers: vec![], client: reqwest::Client::new() })
}

fn anthropic(url: &str) -> Anthropic {
    Anthropic(ApiClient { id: "anthropic".into(), base_url: url.into(), api_key: Some("k".into()), headers: vec![], client: reqwest::Client::new() })
}

fn request() -> ChatRequest {
    ChatRequest { model: "fake-model".into(), messages: vec![ChatMessage::User { text: "run echo hi please".into() }], ..Default::default() }
}

async fn collect(p: &dyn Provider) -> Vec<StreamEvent> {
    let mut stream = p.stream(&request()).await.expect("stream starts");
    let mut out = Vec::new();
    while let Some(ev) = stream.next().await {
        out.push(ev.expect("stream event"));
    }
    out
}

fn two_step_script() -> Vec<Turn> {
    vec![Turn::Stream {
        steps: vec![
            reasoning("I should "),
            reasoning("run echo."),
            text("Running it now."),
            call("call_fake1", "bash", json!({"command": "echo hi", "description": "Print hi"})),
        ],
        finish: "tool_calls".into(),
        input_tokens: 100,
        output_tokens: 20,
    }]
}

fn expected_turn() -> Vec<StreamEvent> {
    vec![
        StreamEvent::ReasoningDelta("I should ".into()),
        StreamEvent::ReasoningDelta("run echo.".into()),
        StreamEvent::TextDelta("Running it now.".into()),
        StreamEvent::ToolCallStart { id: "call_fake1".into(), name: "bash".into() },
        StreamEvent::ToolCall(ToolCall { id: "call_fake1".into(), name: "bash".into(), input: json!({"command": "echo hi", "description": "Print hi"}) }),
    ]
}

#[tokio::test]
async fn both_scripted_providers_stream_a_tool_turn() {
    for (name, llm) in [("openai", ScriptedLlm::openai(two_step_script()).await), ("anthropic", ScriptedLlm::anthropic(two_step_script()).await)] {
        let provider: Box<dyn Provider> = if name == "openai" { Box::new(openai(&llm.url)) } else { Box::new(anthropic(&llm.url)) };
        let events = collect(provider.as_ref()).await;
        let (last, rest) = events.split_last().unwrap();
        assert_eq!(rest, expected_turn().as_slice(), "{name}");
        match last {
            StreamEvent::Finish { reason, usage } => {
                assert_eq!(reason.0, "tool-calls", "{name}");
                assert_eq!(*usage, Usage { input: 100, output: 20, ..Default::default() }, "{name}");
            }
            other => panic!("{name}: expected finish, got {other:?}"),
        }
        let sent = llm.requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["model"], "fake-model");
        assert_eq!(sent[0]["stream"], true);
    }
}

#[tokio::test]
async fn failures_are_classified_for_retry() {
    let llm = ScriptedLlm::openai(vec![Turn::Fail { status: 500, message: "boom".into() }, Turn::Fail { status: 400, message: "bad model".into() }]).await;
    let p = openai(&llm.url);
    let err = p.stream(&request()).await.err().expect("a 500 fails");
    assert!(err.retryable(), "{err}");
    assert!(err.to_string().contains("boom"));
    let err = p.stream(&request()).await.err().expect("a 400 fails");
    assert!(!err.retryable(), "{err}");
    assert!(matches!(err, ProviderError::Api { status: 400, .. }));
    let err = openai(&unreachable_url().await).stream(&request()).await.err().expect("nothing listens");
    assert!(matches!(err, ProviderError::Network { .. }) && err.retryable(), "{err}");
}

#[tokio::test]
async fn dropping_a_stream_hangs_up_on_the_provider() {
    let llm = ScriptedLlm::anthropic(vec![Turn::Hang(vec![text("partial")])]).await;
    let p = anthropic(&llm.url);
    let mut stream = p.stream(&request()).await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap(), StreamEvent::TextDelta("partial".into()));
    drop(stream);
    // The provider's task notices the closed channel and drops the connection.
    llm.hung_up().await;
}

#[tokio::test]
async fn permission_endpoints_answer_like_opencode() {
    let env = TestEnv::from_name("local").unwrap();
    let fx = Fixture::standard();
    let ws = env.place(&fx).await.unwrap();
    let srv = Server::start(&ws).await;
    let (status, body) = srv.get("/permission").await;
    assert_eq!((status, body), (200, json!([])));
    let reply = srv.send(srv.request(reqwest::Method::POST, "/permission/per_missing/reply").json(&json!({"reply": "once"}))).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json(), json!({"_tag": "PermissionNotFoundError", "requestID": "per_missing", "message": "Permission request not found: per_missing"}));
    let reply = srv.send(srv.request(reqwest::Method::POST, "/session/ses_x/permissions/per_missing").json(&json!({"response": "reject"}))).await;
    assert_eq!(reply.status, 404);
    let reply = srv.send(srv.request(reqwest::Method::POST, "/permission/per_missing/reply").json(&json!({"reply": "sometimes"}))).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.json()["name"], "BadRequest");
}

#[tokio::test]
async fn titles_come_from_the_small_model() {
    let llm = ScriptedLlm::openai(vec![Turn::text("\"Fake title\"\n"), Turn::Fail { status: 500, message: "down".into() }]).await;
    let p = openai(&llm.url);
    let title = burrow::agent::prompt::title(&p, "small-model", "run echo hi please").await;
    assert_eq!(title.as_deref(), Some("Fake title"));
    let sent = &llm.requests()[0];
    assert_eq!(sent["model"], "small-model");
    assert!(sent["messages"][0]["content"].as_str().unwrap().contains("title generator"));
    assert!(sent["messages"][1]["content"].as_str().unwrap().contains("run echo hi please"));
    assert_eq!(burrow::agent::prompt::title(&p, "small-model", "again").await, None);
}
