use serde_json::{json, Value};

use super::*;

fn user(id: &str, parts: Value) -> MessageWithParts {
    let info = json!({"role": "user", "id": id, "sessionID": "ses_1", "time": {"created": 1}, "agent": "build", "model": {"providerID": "p", "modelID": "m"}});
    with_parts(info, id, parts)
}

fn assistant(id: &str, parent: &str, summary: bool, parts: Value) -> MessageWithParts {
    let mut info = json!({
        "role": "assistant", "id": id, "sessionID": "ses_1", "time": {"created": 2, "completed": 3}, "parentID": parent,
        "modelID": "m", "providerID": "p", "mode": "build", "agent": "build", "path": {"cwd": "/w", "root": "/w"},
        "cost": 0, "tokens": {"input": 0, "output": 0, "reasoning": 0, "cache": {"read": 0, "write": 0}}, "finish": "stop",
    });
    if summary {
        info["summary"] = json!(true);
    }
    with_parts(info, id, parts)
}

/// A stored message from JSON: its parts get ids, the session and the message.
pub(crate) fn with_parts(info: Value, id: &str, parts: Value) -> MessageWithParts {
    let parts: Vec<Value> = parts
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut p = p.clone();
            p["id"] = json!(format!("prt_{id}_{i}"));
            p["sessionID"] = json!("ses_1");
            p["messageID"] = json!(id);
            p
        })
        .collect();
    serde_json::from_value(json!({"info": info, "parts": parts})).unwrap()
}

fn conversation() -> Vec<MessageWithParts> {
    let tool = json!({"type": "tool", "tool": "bash", "callID": "c1", "state": {"status": "completed", "input": {"command": "ls"}, "output": "a.txt", "title": "ls", "metadata": {}, "time": {"start": 1, "end": 2}}});
    vec![
        user("msg_1", json!([{"type": "text", "text": "list files"}])),
        assistant("msg_2", "msg_1", false, json!([{"type": "reasoning", "text": "easy", "time": {"start": 1}}, tool, {"type": "text", "text": "One file."}])),
    ]
}

#[test]
fn the_chat_replays_tool_calls_and_results() {
    let chat = chat(&conversation());
    assert_eq!(chat.len(), 3);
    assert_eq!(chat[0], ChatMessage::User { text: "list files".into() });
    assert!(matches!(&chat[1], ChatMessage::Assistant { text, tool_calls } if text == "One file." && tool_calls[0].name == "bash"));
    assert_eq!(chat[2], ChatMessage::Tool { call_id: "c1".into(), name: "bash".into(), output: "a.txt".into() });
}

#[test]
fn a_finished_compaction_replaces_what_came_before() {
    let mut msgs = conversation();
    msgs.push(user("msg_3", json!([{"type": "compaction", "auto": false}])));
    msgs.push(assistant("msg_4", "msg_3", true, json!([{"type": "text", "text": "## Objective\n- list files"}])));
    msgs.push(user("msg_5", json!([{"type": "text", "text": "and now?"}])));
    let chat = chat(&msgs);
    assert_eq!(
        chat,
        vec![
            ChatMessage::User { text: "What did we do so far?".into() },
            ChatMessage::Assistant { text: "## Objective\n- list files".into(), tool_calls: vec![] },
            ChatMessage::User { text: "and now?".into() },
        ]
    );
}

#[test]
fn an_unfinished_compaction_changes_nothing() {
    let mut msgs = conversation();
    msgs.push(user("msg_3", json!([{"type": "compaction", "auto": false}])));
    let mut failed = assistant("msg_4", "msg_3", true, json!([]));
    if let Message::Assistant(a) = &mut failed.info {
        a.finish = None;
    }
    msgs.push(failed);
    assert_eq!(chat(&msgs)[0], ChatMessage::User { text: "list files".into() });
}

#[test]
fn the_transcript_names_each_speaker_and_leaves_out_the_compaction() {
    let mut msgs = conversation();
    msgs.push(user("msg_3", json!([{"type": "compaction", "auto": false}])));
    let (previous, transcript) = compaction_input(&msgs, "msg_3");
    assert_eq!(previous, None);
    assert_eq!(
        transcript,
        "[User]: list files\n[Assistant reasoning]: easy\n[Assistant tool call]: bash({\"command\":\"ls\"})\n[Tool result]: a.txt\n[Assistant]: One file."
    );
    msgs.push(assistant("msg_4", "msg_3", true, json!([{"type": "text", "text": "SUMMARY"}])));
    msgs.push(user("msg_5", json!([{"type": "text", "text": "more"}])));
    msgs.push(user("msg_6", json!([{"type": "compaction", "auto": true}])));
    let (previous, transcript) = compaction_input(&msgs, "msg_6");
    assert_eq!(previous.as_deref(), Some("SUMMARY"));
    assert!(transcript.ends_with("[Assistant]: One file.\n[User]: more"), "{transcript}");
    assert!(!transcript.contains("SUMMARY"));
}

#[test]
fn a_queued_turn_reads_the_answers_after_their_prompts_and_not_the_prompts_queued_after_it() {
    let text = |t: &str| json!([{"type": "text", "text": t}]);
    // "second" and "third" were stored while the answer to "slow" was being written.
    let stored = vec![
        user("msg_1", text("slow")),
        assistant("msg_2", "msg_1", false, text("step one")),
        user("msg_3", text("second")),
        assistant("msg_4", "msg_1", false, text("step two")),
        user("msg_5", text("third")),
    ];
    let ids = |msgs: &[MessageWithParts]| msgs.iter().map(|m| m.info.id().to_string()).collect::<Vec<_>>();
    let second = turn_order(stored.clone(), &["msg_5".to_string()]);
    assert_eq!(ids(&second), ["msg_1", "msg_2", "msg_4", "msg_3"]);
    let chat = chat(&second);
    assert_eq!(chat.last(), Some(&ChatMessage::User { text: "second".into() }));
    // With nothing waiting, everything stays, answers still after their prompts.
    assert_eq!(ids(&turn_order(stored, &[])), ["msg_1", "msg_2", "msg_4", "msg_3", "msg_5"]);
}
