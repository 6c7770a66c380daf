//! The v2 (`/api/*`) view of stored sessions and messages. Burrow stores one
//! history, in OpenCode's v1 shape (messages with parts); the v2 routes show
//! the same records as OpenCode's projected `SessionMessage`s, so the two
//! APIs never disagree about what happened.

use serde_json::{json, Map, Value};

use crate::protocol::message::MessageWithParts;
use crate::protocol::session::Session;

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Copies `from[key]` into `to[key]` when it is there and not null.
fn copy(to: &mut Map<String, Value>, from: &Value, key: &str, as_key: &str) {
    if let Some(v) = from.get(key).filter(|v| !v.is_null()) {
        to.insert(as_key.into(), v.clone());
    }
}

/// A session as `SessionV2Info`.
pub fn session_info(s: &Session) -> Value {
    let mut v = json!({
        "id": s.id,
        "projectID": s.project_id,
        "cost": s.cost,
        "tokens": { "input": s.tokens.input, "output": s.tokens.output, "reasoning": s.tokens.reasoning,
            "cache": { "read": s.tokens.cache.read, "write": s.tokens.cache.write } },
        "time": { "created": s.time.created, "updated": s.time.updated },
        "title": s.title,
        "location": { "directory": s.directory },
    });
    let o = v.as_object_mut().expect("an object");
    if let Some(p) = &s.parent_id {
        o.insert("parentID".into(), json!(p));
    }
    if let Some(a) = &s.agent {
        o.insert("agent".into(), json!(a));
    }
    if let Some(m) = &s.model {
        let mut model = json!({ "id": m.id, "providerID": m.provider_id });
        if let Some(variant) = &m.variant {
            model["variant"] = json!(variant);
        }
        o.insert("model".into(), model);
    }
    if let Some(archived) = s.time.archived {
        v["time"]["archived"] = json!(archived);
    }
    if let Some(w) = &s.workspace_id {
        v["location"]["workspaceID"] = json!(w);
    }
    if let Some(path) = s.path.as_deref().filter(|p| !p.is_empty()) {
        v["subpath"] = json!(path);
    }
    if let Some(r) = &s.revert {
        let mut revert = json!({ "messageID": r.message_id });
        for (key, value) in [("partID", &r.part_id), ("snapshot", &r.snapshot), ("diff", &r.diff)] {
            if let Some(value) = value {
                revert[key] = json!(value);
            }
        }
        v["revert"] = revert;
    }
    v
}

/// A file part as a `PromptFileAttachment`.
fn attachment(part: &Value) -> Value {
    let mut a = json!({ "uri": str_of(part, "url"), "mime": str_of(part, "mime") });
    if let Some(name) = part.get("filename").and_then(Value::as_str) {
        a["name"] = json!(name);
    }
    a
}

fn parts_of<'a>(parts: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    parts.iter().filter(move |p| str_of(p, "type") == kind)
}

/// A tool part as `SessionMessageAssistantTool`.
fn tool(part: &Value, created: &Value) -> Value {
    let state = &part["state"];
    let input = state.get("input").cloned().unwrap_or_else(|| json!({}));
    let structured = state.get("metadata").filter(|m| m.is_object()).cloned().unwrap_or_else(|| json!({}));
    let status = str_of(state, "status");
    let v2_state = match status {
        "pending" => json!({ "status": "pending", "input": str_of(state, "raw") }),
        "running" => json!({ "status": "running", "input": input, "structured": structured, "content": [] }),
        "completed" => {
            let mut s = json!({ "status": "completed", "input": input, "structured": structured,
                "content": [{ "type": "text", "text": str_of(state, "output") }] });
            if let Some(files) = state.get("attachments").and_then(Value::as_array).filter(|a| !a.is_empty()) {
                s["attachments"] = Value::Array(files.iter().map(attachment).collect());
            }
            s
        }
        _ => json!({ "status": "error", "input": input, "structured": structured, "content": [],
            "error": { "type": "unknown", "message": str_of(state, "error") } }),
    };
    let mut time = json!({ "created": state.pointer("/time/start").unwrap_or(created) });
    if let Some(end) = state.pointer("/time/end") {
        time["completed"] = end.clone();
    }
    json!({ "type": "tool", "id": str_of(part, "callID"), "name": str_of(part, "tool"), "state": v2_state, "time": time })
}

fn user(info: &Value, parts: &[Value]) -> Value {
    let shown: Vec<&Value> = parts_of(parts, "text").filter(|p| p["ignored"] != json!(true)).collect();
    let typed: Vec<&str> = shown.iter().filter(|p| p["synthetic"] != json!(true)).map(|p| str_of(p, "text")).collect();
    let base = |kind: &str, text: String| json!({ "id": info["id"], "time": { "created": info["time"]["created"] }, "type": kind, "text": text });
    if typed.is_empty() && !shown.is_empty() {
        // Only text the server wrote (a shell command's preamble, a subtask's note).
        let mut v = base("synthetic", shown.iter().map(|p| str_of(p, "text")).collect::<Vec<_>>().join("\n"));
        v["sessionID"] = info["sessionID"].clone();
        return v;
    }
    let mut v = base("user", typed.join("\n"));
    let files: Vec<Value> = parts_of(parts, "file").map(attachment).collect();
    if !files.is_empty() {
        v["files"] = Value::Array(files);
    }
    let agents: Vec<Value> = parts_of(parts, "agent").map(|p| json!({ "name": str_of(p, "name") })).collect();
    if !agents.is_empty() {
        v["agents"] = Value::Array(agents);
    }
    v
}

fn assistant(info: &Value, parts: &[Value]) -> Value {
    let created = &info["time"]["created"];
    let content: Vec<Value> = parts
        .iter()
        .filter_map(|p| match str_of(p, "type") {
            "text" => Some(json!({ "type": "text", "id": p["id"], "text": str_of(p, "text") })),
            "reasoning" => {
                let mut r = json!({ "type": "reasoning", "id": p["id"], "text": str_of(p, "text") });
                if let Some(start) = p.pointer("/time/start") {
                    r["time"] = json!({ "created": start });
                    if let Some(end) = p.pointer("/time/end") {
                        r["time"]["completed"] = end.clone();
                    }
                }
                Some(r)
            }
            "tool" => Some(tool(p, created)),
            _ => None,
        })
        .collect();
    let mut time = json!({ "created": created });
    if let Some(done) = info.pointer("/time/completed").filter(|v| !v.is_null()) {
        time["completed"] = done.clone();
    }
    let mut v = json!({
        "id": info["id"], "time": time, "type": "assistant", "agent": str_of(info, "agent"),
        "model": { "id": str_of(info, "modelID"), "providerID": str_of(info, "providerID") },
        "content": content,
    });
    let o = v.as_object_mut().expect("an object");
    if let Some(variant) = info.get("variant").and_then(Value::as_str) {
        o["model"]["variant"] = json!(variant);
    }
    let snap = |kind: &str| parts_of(parts, kind).filter_map(|p| p.get("snapshot").and_then(Value::as_str)).map(str::to_string).collect::<Vec<_>>();
    let (starts, ends) = (snap("step-start"), snap("step-finish"));
    let files: Vec<Value> = parts_of(parts, "patch").flat_map(|p| p["files"].as_array().cloned().unwrap_or_default()).collect();
    if !starts.is_empty() || !ends.is_empty() || !files.is_empty() {
        let mut s = json!({});
        if let Some(first) = starts.first() {
            s["start"] = json!(first);
        }
        if let Some(last) = ends.last() {
            s["end"] = json!(last);
        }
        if !files.is_empty() {
            s["files"] = Value::Array(files);
        }
        o.insert("snapshot".into(), s);
    }
    copy(o, info, "finish", "finish");
    copy(o, info, "cost", "cost");
    if let Some(t) = info.get("tokens") {
        o.insert("tokens".into(), json!({ "input": t["input"], "output": t["output"], "reasoning": t["reasoning"], "cache": t["cache"] }));
    }
    if let Some(e) = info.get("error").filter(|e| !e.is_null()) {
        let message = e.pointer("/data/message").and_then(Value::as_str).unwrap_or_else(|| str_of(e, "name"));
        o.insert("error".into(), json!({ "type": "unknown", "message": message }));
    }
    v
}

/// The text of an assistant message (a compaction's summary).
fn text_of(parts: &[Value]) -> String {
    parts_of(parts, "text").map(|p| str_of(p, "text")).collect::<Vec<_>>().join("\n")
}

/// Stored messages, oldest first, as v2 `SessionMessage`s. A compaction (the
/// user message holding a `compaction` part and the summary the model wrote
/// for it) becomes one `compaction` message.
pub fn messages(stored: &[MessageWithParts]) -> Vec<Value> {
    let values: Vec<(Value, Vec<Value>)> = stored
        .iter()
        .map(|m| (serde_json::to_value(&m.info).unwrap_or(Value::Null), m.parts.iter().map(|p| serde_json::to_value(p).unwrap_or(Value::Null)).collect()))
        .collect();
    let mut out = Vec::with_capacity(values.len());
    let mut i = 0;
    while i < values.len() {
        let (info, parts) = &values[i];
        i += 1;
        if str_of(info, "role") == "assistant" {
            out.push(assistant(info, parts));
            continue;
        }
        let Some(compaction) = parts_of(parts, "compaction").next() else {
            out.push(user(info, parts));
            continue;
        };
        let summary = match values.get(i) {
            Some((next, next_parts)) if next["summary"] == json!(true) => {
                i += 1;
                text_of(next_parts)
            }
            _ => String::new(),
        };
        let reason = if compaction["auto"] == json!(true) { "auto" } else { "manual" };
        out.push(json!({ "type": "compaction", "reason": reason, "summary": summary, "recent": "", "id": info["id"],
            "time": { "created": info["time"]["created"] } }));
    }
    out
}

/// The messages the model reads next: from the last compaction on.
pub fn context(all: Vec<Value>) -> Vec<Value> {
    let start = all.iter().rposition(|m| m["type"] == "compaction").unwrap_or(0);
    all.into_iter().skip(start).collect()
}

/// The durable `session.next.*` events of a session, derived from its v2
/// messages in order; each carries its place (`durable.seq`, from 1).
pub fn history(session: &Session, messages: &[Value]) -> Vec<Value> {
    let mut events: Vec<(String, Value)> = Vec::new();
    let sid = json!(session.id);
    for m in messages {
        let (id, at) = (&m["id"], &m["time"]["created"]);
        let mut push = |kind: &str, mut data: Value| {
            data["timestamp"] = at.clone();
            data["sessionID"] = sid.clone();
            events.push((kind.to_string(), data));
        };
        match str_of(m, "type") {
            "user" => {
                let mut prompt = json!({ "text": m["text"] });
                for key in ["files", "agents"] {
                    if let Some(v) = m.get(key) {
                        prompt[key] = v.clone();
                    }
                }
                push("session.next.prompted", json!({ "messageID": id, "prompt": prompt, "delivery": "queue" }));
            }
            "synthetic" => push("session.next.synthetic", json!({ "messageID": id, "text": m["text"] })),
            "compaction" => {
                push("session.next.compaction.started", json!({ "messageID": id, "reason": m["reason"] }));
                push("session.next.compaction.ended", json!({ "messageID": id, "reason": m["reason"], "text": m["summary"], "recent": m["recent"] }));
            }
            "assistant" => {
                let mut started = json!({ "assistantMessageID": id, "agent": m["agent"], "model": m["model"] });
                if let Some(snap) = m.pointer("/snapshot/start") {
                    started["snapshot"] = snap.clone();
                }
                push("session.next.step.started", started);
                for c in m["content"].as_array().into_iter().flatten() {
                    let cid = &c["id"];
                    match str_of(c, "type") {
                        "text" => {
                            push("session.next.text.started", json!({ "assistantMessageID": id, "textID": cid }));
                            push("session.next.text.ended", json!({ "assistantMessageID": id, "textID": cid, "text": c["text"] }));
                        }
                        "reasoning" => {
                            push("session.next.reasoning.started", json!({ "assistantMessageID": id, "reasoningID": cid }));
                            push("session.next.reasoning.ended", json!({ "assistantMessageID": id, "reasoningID": cid, "text": c["text"] }));
                        }
                        _ => {
                            let state = &c["state"];
                            let provider = json!({ "executed": false });
                            let input = if state["input"].is_object() { state["input"].clone() } else { json!({}) };
                            push(
                                "session.next.tool.called",
                                json!({ "assistantMessageID": id, "callID": cid, "tool": c["name"], "input": input, "provider": provider }),
                            );
                            match str_of(state, "status") {
                                "completed" => push(
                                    "session.next.tool.success",
                                    json!({ "assistantMessageID": id, "callID": cid,
                                    "structured": state["structured"], "content": state["content"], "provider": provider }),
                                ),
                                "error" => push(
                                    "session.next.tool.failed",
                                    json!({ "assistantMessageID": id, "callID": cid,
                                    "error": state["error"], "provider": provider }),
                                ),
                                _ => {}
                            }
                        }
                    }
                }
                if let Some(error) = m.get("error") {
                    push("session.next.step.failed", json!({ "assistantMessageID": id, "error": error }));
                } else if m.pointer("/time/completed").is_some() {
                    let zero = json!({ "input": 0, "output": 0, "reasoning": 0, "cache": { "read": 0, "write": 0 } });
                    let mut ended = json!({ "assistantMessageID": id, "finish": m.get("finish").cloned().unwrap_or_else(|| json!("stop")),
                        "cost": m.get("cost").cloned().unwrap_or_else(|| json!(0)), "tokens": m.get("tokens").cloned().unwrap_or(zero) });
                    if let Some(snap) = m.pointer("/snapshot/end") {
                        ended["snapshot"] = snap.clone();
                    }
                    push("session.next.step.ended", ended);
                }
            }
            _ => {}
        }
    }
    let suffix = session.id.trim_start_matches("ses_");
    events
        .into_iter()
        .enumerate()
        .map(|(i, (kind, data))| {
            let seq = i + 1;
            json!({ "id": format!("evt_{suffix}{seq:08}"), "type": kind, "durable": { "aggregateID": session.id, "seq": seq, "version": 1 },
                "location": { "directory": session.directory }, "data": data })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(v: Value) -> Vec<MessageWithParts> {
        serde_json::from_value(v).expect("stored messages")
    }

    fn user_msg(id: &str, parts: Value) -> Value {
        json!({ "info": { "id": id, "sessionID": "ses_1", "role": "user", "time": { "created": 1 }, "agent": "build",
            "model": { "providerID": "p", "modelID": "m" } }, "parts": parts })
    }

    fn assistant_msg(id: &str, summary: bool, parts: Value) -> Value {
        json!({ "info": { "id": id, "sessionID": "ses_1", "role": "assistant", "time": { "created": 2, "completed": 3 },
            "parentID": "msg_1", "modelID": "m", "providerID": "p", "mode": "build", "agent": "build",
            "path": { "cwd": "/w", "root": "/w" }, "summary": summary, "cost": 0.5,
            "tokens": { "input": 1, "output": 2, "reasoning": 0, "cache": { "read": 0, "write": 0 } }, "finish": "stop" }, "parts": parts })
    }

    fn part(id: &str, msg: &str, body: Value) -> Value {
        let mut p = json!({ "id": id, "sessionID": "ses_1", "messageID": msg });
        p.as_object_mut().unwrap().extend(body.as_object().unwrap().clone());
        p
    }

    #[test]
    fn a_turn_becomes_a_user_and_an_assistant_message() {
        let list = stored(json!([
            user_msg(
                "msg_1",
                json!([
                    part("prt_1", "msg_1", json!({ "type": "text", "text": "hi" })),
                    part("prt_2", "msg_1", json!({ "type": "file", "mime": "text/plain", "url": "file:///w/a.txt", "filename": "a.txt" }))
                ])
            ),
            assistant_msg(
                "msg_2",
                false,
                json!([
                    part("prt_3", "msg_2", json!({ "type": "step-start", "snapshot": "abc" })),
                    part("prt_4", "msg_2", json!({ "type": "text", "text": "hello" })),
                    part(
                        "prt_5",
                        "msg_2",
                        json!({ "type": "tool", "callID": "call_1", "tool": "bash", "state": { "status": "completed",
                    "input": { "command": "ls" }, "output": "a.txt\n", "title": "ls", "metadata": { "exit": 0 }, "time": { "start": 5, "end": 6 } } })
                    ),
                ])
            ),
        ]));
        let v2 = messages(&list);
        assert_eq!(v2.len(), 2);
        assert_eq!(
            v2[0],
            json!({ "id": "msg_1", "time": { "created": 1 }, "type": "user", "text": "hi",
            "files": [{ "uri": "file:///w/a.txt", "mime": "text/plain", "name": "a.txt" }] })
        );
        let a = &v2[1];
        assert_eq!(a["type"], "assistant");
        assert_eq!(a["model"], json!({ "id": "m", "providerID": "p" }));
        assert_eq!(a["content"][0], json!({ "type": "text", "id": "prt_4", "text": "hello" }));
        assert_eq!(a["content"][1]["id"], "call_1");
        assert_eq!(a["content"][1]["state"]["content"], json!([{ "type": "text", "text": "a.txt\n" }]));
        assert_eq!(a["content"][1]["time"], json!({ "created": 5, "completed": 6 }));
        assert_eq!(a["snapshot"], json!({ "start": "abc" }));
        assert_eq!(a["finish"], "stop");
    }

    #[test]
    fn a_compaction_and_its_summary_are_one_message_and_start_the_context() {
        let list = stored(json!([
            user_msg("msg_1", json!([part("prt_1", "msg_1", json!({ "type": "text", "text": "old" }))])),
            user_msg("msg_2", json!([part("prt_2", "msg_2", json!({ "type": "compaction", "auto": false }))])),
            assistant_msg("msg_3", true, json!([part("prt_3", "msg_3", json!({ "type": "text", "text": "the summary" }))])),
            user_msg("msg_4", json!([part("prt_4", "msg_4", json!({ "type": "text", "text": "note", "synthetic": true }))])),
        ]));
        let v2 = messages(&list);
        assert_eq!(v2.len(), 3);
        assert_eq!(v2[1]["type"], "compaction");
        assert_eq!(v2[1]["summary"], "the summary");
        assert_eq!(v2[1]["reason"], "manual");
        assert_eq!(v2[2]["type"], "synthetic");
        assert_eq!(v2[2]["sessionID"], "ses_1");
        let ctx = context(v2.clone());
        assert_eq!(ctx.iter().map(|m| m["id"].as_str().unwrap()).collect::<Vec<_>>(), ["msg_2", "msg_4"]);
    }

    #[test]
    fn history_numbers_the_events_of_each_message_in_order() {
        let session: Session = serde_json::from_value(json!({ "id": "ses_1", "slug": "s", "projectID": "p", "directory": "/w", "cost": 0,
            "tokens": { "input": 0, "output": 0, "reasoning": 0, "cache": { "read": 0, "write": 0 } }, "title": "t", "version": "1",
            "time": { "created": 1, "updated": 1 } }))
        .expect("a session");
        let list = stored(json!([
            user_msg("msg_1", json!([part("prt_1", "msg_1", json!({ "type": "text", "text": "hi" }))])),
            assistant_msg("msg_2", false, json!([part("prt_2", "msg_2", json!({ "type": "text", "text": "hello" }))])),
        ]));
        let events = history(&session, &messages(&list));
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            ["session.next.prompted", "session.next.step.started", "session.next.text.started", "session.next.text.ended", "session.next.step.ended"]
        );
        assert_eq!(events[0]["data"]["prompt"], json!({ "text": "hi" }));
        assert_eq!(events[4]["durable"], json!({ "aggregateID": "ses_1", "seq": 5, "version": 1 }));
        assert!(events.iter().all(|e| e["id"].as_str().unwrap().starts_with("evt_")));
    }
}
