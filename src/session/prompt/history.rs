//! The stored conversation as the model reads it. After a compaction, the
//! summary stands in for everything before it: the history starts at the
//! last compaction whose summary finished without error. A compaction itself
//! reads the conversation as a transcript.

use serde_json::Value;

use crate::agent::compaction;
use crate::agent::input::user_text;
use crate::agent::provider::{ChatMessage, ToolCall};
use crate::protocol::message::{Message, MessageWithParts};

fn parts(m: &MessageWithParts) -> Vec<Value> {
    m.parts.iter().filter_map(|p| serde_json::to_value(p).ok()).collect()
}

fn is_compaction(m: &MessageWithParts) -> bool {
    matches!(m.info, Message::User(_)) && parts(m).iter().any(|p| p["type"] == "compaction")
}

/// The (user, summary) index pairs of the finished compactions, oldest first.
fn compactions(messages: &[MessageWithParts]) -> Vec<(usize, usize)> {
    messages
        .iter()
        .enumerate()
        .filter_map(|(i, m)| match &m.info {
            Message::Assistant(a) if a.summary == Some(true) && a.finish.is_some() && a.error.is_none() => {
                let user = messages.iter().position(|u| u.info.id() == a.parent_id && is_compaction(u))?;
                Some((user, i))
            }
            _ => None,
        })
        .collect()
}

fn text_of(parts: &[Value]) -> String {
    parts.iter().filter(|p| p["type"] == "text").filter_map(|p| p["text"].as_str()).collect()
}

/// The stored messages as the turn answering the oldest unanswered prompt
/// reads them: without the user messages still `waiting` in the session's
/// queue (their turns come later), and each assistant message right after the
/// user message it answers. Messages are stored in time order, so a prompt
/// queued while another turn ran sits between that turn's messages.
pub fn turn_order(messages: Vec<MessageWithParts>, waiting: &[String]) -> Vec<MessageWithParts> {
    let kept: Vec<MessageWithParts> = messages.into_iter().filter(|m| !waiting.iter().any(|w| w == m.info.id())).collect();
    let position = |id: &str, kept: &[MessageWithParts]| kept.iter().position(|m| matches!(m.info, Message::User(_)) && m.info.id() == id);
    let keys: Vec<(usize, bool)> = kept
        .iter()
        .enumerate()
        .map(|(i, m)| match &m.info {
            Message::Assistant(a) => (position(&a.parent_id, &kept).unwrap_or(i), true),
            Message::User(_) => (i, false),
        })
        .collect();
    let mut keyed: Vec<((usize, bool), MessageWithParts)> = keys.into_iter().zip(kept).collect();
    // Stable: the steps of one answer keep their order.
    keyed.sort_by_key(|(key, _)| *key);
    keyed.into_iter().map(|(_, m)| m).collect()
}

/// The conversation the next step sends, from the last finished compaction on.
pub fn chat(messages: &[MessageWithParts]) -> Vec<ChatMessage> {
    let start = compactions(messages).last().map(|(user, _)| *user).unwrap_or(0);
    let mut out = Vec::new();
    for m in &messages[start..] {
        let parts = parts(m);
        match m.info {
            Message::User(_) => {
                let text = user_text(&parts);
                if !text.is_empty() {
                    out.push(ChatMessage::User { text });
                }
            }
            Message::Assistant(_) => {
                let text = text_of(&parts);
                let mut calls = Vec::new();
                let mut results = Vec::new();
                for p in parts.iter().filter(|p| p["type"] == "tool") {
                    let (call_id, tool, state) = (p["callID"].as_str().unwrap_or(""), p["tool"].as_str().unwrap_or(""), &p["state"]);
                    let output = match state["status"].as_str() {
                        Some("completed") => state["output"].as_str().unwrap_or("").to_string(),
                        Some("error") => format!("Error: {}", state["error"].as_str().unwrap_or("")),
                        _ => "Error: the tool call was interrupted".into(),
                    };
                    calls.push(ToolCall { id: call_id.into(), name: tool.into(), input: state["input"].clone() });
                    results.push(ChatMessage::Tool { call_id: call_id.into(), name: tool.into(), output });
                }
                if !text.is_empty() || !calls.is_empty() {
                    out.push(ChatMessage::Assistant { text, tool_calls: calls });
                    out.extend(results);
                }
            }
        }
    }
    out
}

/// One message as a compaction's transcript shows it.
fn transcript_of(m: &MessageWithParts) -> String {
    let parts = parts(m);
    let s = |p: &Value, k: &str| p[k].as_str().unwrap_or("").to_string();
    let lines: Vec<String> = match m.info {
        Message::User(_) => {
            let texts: Vec<String> =
                parts.iter().filter(|p| p["type"] == "text" && p["ignored"] != true).map(|p| s(p, "text")).filter(|t| !t.is_empty()).collect();
            let files =
                parts.iter().filter(|p| p["type"] == "file").map(|p| format!("[Attached {}: {}]", s(p, "mime"), p["filename"].as_str().unwrap_or("file")));
            let user = (!texts.is_empty()).then(|| format!("[User]: {}", texts.join("\n")));
            user.into_iter().chain(files).collect()
        }
        Message::Assistant(_) => parts
            .iter()
            .flat_map(|p| match p["type"].as_str() {
                Some("text") if !s(p, "text").is_empty() => vec![format!("[Assistant]: {}", s(p, "text"))],
                Some("reasoning") if !s(p, "text").is_empty() => vec![format!("[Assistant reasoning]: {}", s(p, "text"))],
                Some("tool") => {
                    let state = &p["state"];
                    let call = format!("[Assistant tool call]: {}({})", s(p, "tool"), state["input"]);
                    match state["status"].as_str() {
                        Some("completed") => vec![call, format!("[Tool result]: {}", compaction::clip(&s(state, "output")))],
                        Some("error") => vec![call, format!("[Tool error]: {}", s(state, "error"))],
                        _ => vec![call],
                    }
                }
                _ => Vec::new(),
            })
            .collect(),
    };
    lines.join("\n")
}

/// What a compaction summarises: the latest summary so far (if any) and the
/// transcript of the conversation, earlier compactions and `current` (the
/// compaction being made) left out.
pub fn compaction_input(messages: &[MessageWithParts], current: &str) -> (Option<String>, String) {
    let pairs = compactions(messages);
    let previous = pairs.last().map(|(_, summary)| text_of(&parts(&messages[*summary])).trim().to_string()).filter(|t| !t.is_empty());
    let skip: Vec<usize> = pairs.iter().flat_map(|(u, a)| [*u, *a]).collect();
    let transcript: Vec<String> = messages
        .iter()
        .enumerate()
        .filter(|(i, m)| !skip.contains(i) && m.info.id() != current)
        .map(|(_, m)| transcript_of(m))
        .filter(|t| !t.is_empty())
        .collect();
    (previous, transcript.join("\n"))
}

#[cfg(test)]
pub(crate) mod tests;
