//! Agent turns against the scripted LLM servers, with tools running in a
//! real local workspace: the order of reports, file changes, aborts, retries
//! and permission asks.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use burrow::agent::permission::{Action, AllowAll, Gate, Permissions, Reply, Rule, SessionGate};
use burrow::agent::provider::anthropic::Anthropic;
use burrow::agent::provider::openai::OpenAiCompatible;
use burrow::agent::provider::{ApiClient, ChatMessage, ChatRequest, Provider, ProviderError, Usage};
use burrow::agent::tools::{Registry, TodoStore, ToolContext, Truncator};
use burrow::agent::turn::{Outcome, Report, Sink, Turn};
use burrow::env::local::LocalEnv;
use burrow::env::WorkspacePath;
use burrow::event::Bus;
use serde_json::json;
use support::llm::{call, reasoning, text, unreachable_url, ScriptedLlm, Turn as Script};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Recorder(Mutex<Vec<Report>>);

impl Sink for Recorder {
    fn report(&self, report: Report) {
        self.0.lock().unwrap().push(report);
    }
}

impl Recorder {
    fn all(&self) -> Vec<Report> {
        self.0.lock().unwrap().clone()
    }
}

struct Setup {
    dir: tempfile::TempDir,
    sink: Arc<Recorder>,
    turn: Turn,
}

fn setup(provider: Arc<dyn Provider>, gate: Arc<dyn Gate>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let env = Arc::new(LocalEnv::new(dir.path()).unwrap());
    let sink = Arc::new(Recorder::default());
    let abort = CancellationToken::new();
    let tools = ToolContext {
        env,
        cwd: WorkspacePath::root(),
        session_id: "ses_test".into(),
        message_id: String::new(),
        call_id: String::new(),
        abort: abort.clone(),
        gate,
        todos: Arc::new(TodoStore::default()),
        truncator: Arc::new(Truncator::new(std::env::temp_dir().join("burrow-test-tool-output"))),
        metadata: None,
        subagents: None,
        changes: Default::default(),
        questions: None,
    };
    let turn = Turn { provider, registry: Registry::builtin(), tools, sink: sink.clone(), abort, retry_base: Duration::from_millis(1) };
    Setup { dir, sink, turn }
}

fn openai(url: &str) -> Arc<dyn Provider> {
    Arc::new(OpenAiCompatible(ApiClient { id: "fake".into(), base_url: url.into(), api_key: None, headers: vec![], client: reqwest::Client::new() }))
}

fn prompt(text: &str) -> ChatRequest {
    ChatRequest {
        model: "fake-model".into(),
        messages: vec![ChatMessage::User { text: text.into() }],
        tools: Registry::builtin().specs(),
        ..Default::default()
    }
}

/// A report as a short line, ids left out, so sequences compare readably.
fn line(r: &Report) -> String {
    match r {
        Report::StepStart { step, .. } => format!("step-start {step}"),
        Report::Open { kind, .. } => format!("open {kind:?}"),
        Report::Delta { kind, delta, .. } => format!("delta {kind:?} {delta}"),
        Report::Close { kind, text, .. } => format!("close {kind:?} {text}"),
        Report::ToolPending { tool, call_id, .. } => format!("pending {tool} {call_id}"),
        Report::ToolRunning { tool, metadata: None, input, .. } => format!("running {tool} {input}"),
        Report::ToolRunning { tool, metadata: Some(_), .. } => format!("metadata {tool}"),
        Report::ToolDone { tool, result: Ok(out), .. } => format!("completed {tool} {:?}", out.output),
        Report::ToolDone { tool, result: Err(e), .. } => format!("error {tool} {e}"),
        Report::StepFinish { reason, usage, .. } => format!("step-finish {reason} {}+{}", usage.input, usage.output),
        Report::Retry { attempt, .. } => format!("retry {attempt}"),
        Report::SnapshotFailed { message } => format!("snapshot-failed {message}"),
    }
}

#[tokio::test]
async fn a_two_step_turn_reports_in_opencode_order() {
    let llm = ScriptedLlm::openai(vec![
        Script::Stream {
            steps: vec![
                reasoning("I should "),
                reasoning("run echo."),
                text("Running it now."),
                call("call_fake1", "bash", json!({"command": "echo hi", "description": "Print hi"})),
            ],
            finish: "tool_calls".into(),
            input_tokens: 100,
            output_tokens: 20,
        },
        Script::Stream { steps: vec![text("The "), text("command printed hi.")], finish: "stop".into(), input_tokens: 120, output_tokens: 4 },
    ])
    .await;
    let s = setup(openai(&llm.url), Arc::new(AllowAll));
    assert_eq!(s.turn.run(prompt("run echo hi please")).await, Outcome::Finished { reason: "stop".into() });
    let reports = s.sink.all();
    let lines: Vec<String> = reports.iter().map(line).filter(|l| !l.starts_with("metadata")).collect();
    let pos = |l: &str| lines.iter().position(|x| x == l).unwrap_or_else(|| panic!("no {l:?} in {lines:#?}"));
    // The stream's own order, exactly.
    let streamed: Vec<&String> = lines.iter().filter(|l| !l.starts_with("completed") && !l.starts_with("close Text")).collect();
    assert_eq!(
        streamed,
        [
            "step-start 0",
            "open Reasoning",
            "delta Reasoning I should ",
            "delta Reasoning run echo.",
            "close Reasoning I should run echo.",
            "open Text",
            "delta Text Running it now.",
            "pending bash call_fake1",
            "running bash {\"command\":\"echo hi\",\"description\":\"Print hi\"}",
            "step-finish tool-calls 100+20",
            "step-start 1",
            "open Text",
            "delta Text The ",
            "delta Text command printed hi.",
            "step-finish stop 120+4",
        ]
    );
    // The tool runs while the stream ends; both are over before the step finishes.
    assert!(pos("completed bash \"hi\\n\"") < pos("step-finish tool-calls 100+20"));
    assert!(pos("close Text Running it now.") < pos("step-finish tool-calls 100+20"));
    assert!(reports.iter().any(|r| matches!(r, Report::ToolRunning { metadata: Some(m), .. } if m["output"] == "hi\n")), "live output was reported");
    // Each step has its own message.
    let steps: Vec<&String> = reports.iter().filter_map(|r| if let Report::StepStart { message_id, .. } = r { Some(message_id) } else { None }).collect();
    assert_eq!(steps.len(), 2);
    assert_ne!(steps[0], steps[1]);
    // The second request carries the tool call and its result.
    let sent = llm.requests();
    assert_eq!(sent.len(), 2);
    let history = sent[1]["messages"].as_array().unwrap();
    assert_eq!(history[1]["tool_calls"][0]["id"], "call_fake1");
    assert_eq!(history[2], json!({"role": "tool", "tool_call_id": "call_fake1", "content": "hi\n"}));
    assert!(sent[0]["tools"].as_array().unwrap().iter().any(|t| t["function"]["name"] == "edit"));
}

#[tokio::test]
async fn write_and_edit_change_files_in_the_workspace() {
    for anthropic in [false, true] {
        let script = vec![
            Script::tool("call_w", "write", json!({"filePath": "hello.txt", "content": "hello from fake llm\n"})),
            Script::tool("call_e", "edit", json!({"filePath": "hello.txt", "oldString": "fake llm", "newString": "burrow"})),
            Script::text("Done."),
        ];
        let (llm, provider): (ScriptedLlm, Arc<dyn Provider>) = if anthropic {
            let llm = ScriptedLlm::anthropic(script).await;
            let p = Arc::new(Anthropic(ApiClient {
                id: "anthropic".into(),
                base_url: llm.url.clone(),
                api_key: None,
                headers: vec![],
                client: reqwest::Client::new(),
            }));
            (llm, p)
        } else {
            let llm = ScriptedLlm::openai(script).await;
            let p = openai(&llm.url);
            (llm, p)
        };
        let s = setup(provider, Arc::new(AllowAll));
        assert_eq!(s.turn.run(prompt("WRITEFILE please")).await, Outcome::Finished { reason: "stop".into() });
        assert_eq!(std::fs::read_to_string(s.dir.path().join("hello.txt")).unwrap(), "hello from burrow\n");
        let done: Vec<String> = s.sink.all().iter().map(line).filter(|l| l.starts_with("completed")).collect();
        assert_eq!(done, ["completed write \"Wrote file successfully.\"", "completed edit \"Edit applied successfully.\""], "anthropic={anthropic}");
        let edited: Vec<Vec<String>> =
            s.sink.all().iter().filter_map(|r| if let Report::ToolDone { result: Ok(o), .. } = r { Some(o.edited.clone()) } else { None }).collect();
        let abs = s.dir.path().join("hello.txt").to_string_lossy().into_owned();
        assert_eq!(edited, vec![vec![abs.clone()], vec![abs]]);
        assert_eq!(llm.requests().len(), 3);
    }
}

#[tokio::test]
async fn abort_mid_stream_stops_the_provider_and_closes_parts() {
    let llm = ScriptedLlm::openai(vec![Script::Hang(vec![text("partial answer")])]).await;
    let s = setup(openai(&llm.url), Arc::new(AllowAll));
    let abort = s.turn.abort.clone();
    let sink = s.sink.clone();
    let run = tokio::spawn(async move { s.turn.run(prompt("hi")).await });
    while !sink.all().iter().any(|r| matches!(r, Report::Delta { .. })) {
        tokio::task::yield_now().await;
    }
    abort.cancel();
    assert_eq!(run.await.unwrap(), Outcome::Aborted);
    let lines: Vec<String> = sink.all().iter().map(line).collect();
    assert_eq!(lines, ["step-start 0", "open Text", "delta Text partial answer", "close Text partial answer"]);
    llm.hung_up().await;
}

#[tokio::test]
async fn an_unreachable_provider_is_retried_then_fails() {
    let s = setup(openai(&unreachable_url().await), Arc::new(AllowAll));
    let outcome = s.turn.run(prompt("hi")).await;
    assert!(matches!(outcome, Outcome::Failed(ProviderError::Network { .. })), "{outcome:?}");
    let lines: Vec<String> = s.sink.all().iter().map(line).collect();
    assert_eq!(lines, ["step-start 0", "retry 1", "retry 2", "retry 3"]);
    let nexts: Vec<u64> = s.sink.all().iter().filter_map(|r| if let Report::Retry { next, .. } = r { Some(*next) } else { None }).collect();
    assert!(nexts.windows(2).all(|w| w[0] <= w[1]));
}

#[tokio::test]
async fn a_permission_ask_waits_for_the_reply() {
    let llm = ScriptedLlm::openai(vec![
        Script::tool("call_w", "write", json!({"filePath": "a.txt", "content": "A"})),
        Script::tool("call_x", "write", json!({"filePath": "b.txt", "content": "B"})),
        Script::text("ok"),
    ])
    .await;
    let bus = Bus::new();
    let perms = Permissions::new(bus.clone());
    let rules = vec![Rule::new("*", "*", Action::Allow), Rule::new("edit", "*", Action::Ask)];
    let gate = Arc::new(SessionGate { permissions: perms.clone(), ruleset: rules, directory: None, project: None });
    let s = setup(openai(&llm.url), gate);
    let dir = s.dir.path().to_path_buf();
    let sink = s.sink.clone();
    let run = tokio::spawn(async move { s.turn.run(prompt("write two files")).await });
    let wait_for = |n: usize| {
        let perms = perms.clone();
        async move {
            loop {
                let list = perms.list();
                if list.len() == n {
                    return list;
                }
                tokio::task::yield_now().await;
            }
        }
    };
    let asked = wait_for(1).await;
    assert_eq!(asked[0]["permission"], "edit");
    assert_eq!(asked[0]["patterns"], json!(["a.txt"]));
    assert_eq!(asked[0]["tool"]["callID"], "call_w");
    assert!(!dir.join("a.txt").exists(), "nothing is written before the reply");
    perms.reply(asked[0]["id"].as_str().unwrap(), Reply::Once, None).unwrap();
    let asked = wait_for(1).await;
    assert_eq!(asked[0]["patterns"], json!(["b.txt"]));
    perms.reply(asked[0]["id"].as_str().unwrap(), Reply::Reject, Some("not b".into())).unwrap();
    assert_eq!(run.await.unwrap(), Outcome::Finished { reason: "stop".into() });
    assert_eq!(std::fs::read_to_string(dir.join("a.txt")).unwrap(), "A");
    assert!(!dir.join("b.txt").exists());
    let errors: Vec<String> = sink.all().iter().map(line).filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors, ["error write The user rejected permission to use this specific tool call with the following feedback: not b"]);
    let usage: Vec<Usage> = sink.all().iter().filter_map(|r| if let Report::StepFinish { usage, .. } = r { Some(*usage) } else { None }).collect();
    assert_eq!(usage.len(), 3);
}
