//! Burrow's protocol types read and write every session, message and part the
//! reference server produced (a prompt with reasoning, text, tool calls, steps
//! and a patch; a shell run) without losing or adding a field.

use burrow::protocol::message::{Message, MessageWithParts};
use burrow::protocol::part::{Part, PartBody};
use burrow::protocol::session::Session;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::support::{captured_events, fixture, read_json};

fn round_trip<T: DeserializeOwned + Serialize>(value: &Value) -> T {
    let typed: T = serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{e}: {value}"));
    assert_eq!(&serde_json::to_value(&typed).unwrap(), value);
    typed
}

#[test]
fn every_captured_shape_round_trips() {
    let mut kinds = std::collections::BTreeSet::new();
    for file in ["sse_event.txt", "sse_llm_turn.txt", "sse_llm_write.txt"] {
        for e in captured_events(file) {
            let p = &e["properties"];
            match e["type"].as_str().unwrap() {
                "session.created" | "session.updated" | "session.deleted" => {
                    round_trip::<Session>(&p["info"]);
                }
                "message.updated" => {
                    round_trip::<Message>(&p["info"]);
                }
                "message.part.updated" => {
                    let part: Part = round_trip(&p["part"]);
                    let kind = match &part.body {
                        PartBody::Tool(t) => format!("tool/{}", serde_json::to_value(&t.state).unwrap()["status"].as_str().unwrap()),
                        other => serde_json::to_value(other).unwrap()["type"].as_str().unwrap().to_string(),
                    };
                    kinds.insert(kind);
                }
                _ => {}
            }
        }
    }
    let seen: Vec<&str> = kinds.iter().map(String::as_str).collect();
    for expected in ["patch", "reasoning", "step-finish", "step-start", "text", "tool/completed", "tool/pending", "tool/running"] {
        assert!(seen.contains(&expected), "{expected} not in {seen:?}");
    }
    round_trip::<Session>(&read_json(&fixture("session_create.json")));
    round_trip::<MessageWithParts>(&read_json(&fixture("shell_resp.json")));
    round_trip::<MessageWithParts>(&read_json(&fixture("llm_message_resp.json")));
    round_trip::<Vec<MessageWithParts>>(&read_json(&fixture("messages_after_prompt.json")));
}

#[test]
fn every_part_kind_of_the_spec_round_trips() {
    let ids = r#""id":"prt_1","sessionID":"ses_1","messageID":"msg_1""#;
    let bodies = [
        r#""type":"subtask","prompt":"p","description":"d","agent":"general","model":{"providerID":"a","modelID":"b"},"command":"c""#,
        r#""type":"file","mime":"text/plain","filename":"a.txt","url":"file:///a.txt","source":{"text":{"value":"@a.txt","start":0,"end":6},"type":"file","path":"a.txt"}"#,
        r#""type":"file","mime":"text/plain","url":"file:///a.rs","source":{"text":{"value":"x","start":0,"end":1},"type":"symbol","path":"a.rs","range":{"start":{"line":1,"character":0},"end":{"line":2,"character":3}},"name":"main","kind":12}"#,
        r#""type":"snapshot","snapshot":"abc""#,
        r#""type":"agent","name":"general","source":{"value":"@general","start":0,"end":8}"#,
        r#""type":"retry","attempt":2,"error":{"name":"APIError","data":{"message":"overloaded","statusCode":529,"isRetryable":true}},"time":{"created":5}"#,
        r#""type":"compaction","auto":true,"overflow":false,"tail_start_id":"msg_2""#,
        r#""type":"tool","callID":"c1","tool":"bash","state":{"status":"error","time":{"start":1,"end":2},"input":{"command":"x"},"error":"boom"}"#,
    ];
    for body in bodies {
        let value: Value = serde_json::from_str(&format!("{{{ids},{body}}}")).unwrap();
        round_trip::<Part>(&value);
    }
    let errors = [
        r#"{"name":"MessageAbortedError","data":{"message":"stopped"}}"#,
        r#"{"name":"MessageOutputLengthError","data":{}}"#,
        r#"{"name":"ProviderAuthError","data":{"providerID":"x","message":"no key"}}"#,
        r#"{"name":"UnknownError","data":{"message":"?","ref":"err_1"}}"#,
    ];
    for error in errors {
        let info = format!(
            r#"{{"id":"msg_1","sessionID":"ses_1","role":"assistant","time":{{"created":1,"completed":2}},"error":{error},"parentID":"msg_0","modelID":"m","providerID":"p","mode":"build","agent":"build","path":{{"cwd":"/w","root":"/w"}},"cost":0.25,"tokens":{{"input":1,"output":2,"reasoning":0,"cache":{{"read":0,"write":0}}}},"finish":"stop"}}"#
        );
        round_trip::<Message>(&serde_json::from_str(&info).unwrap());
    }
}
