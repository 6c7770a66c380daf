//! v2's `GET /api/session/{sessionID}/event`: the session's durable history
//! (`session.next.*`, as `GET /api/session/{id}/history` derives it from the
//! stored messages) after the sequence `after`, then each new durable event as
//! the session changes. Frames are `id: <seq>`, `event: <type>`, `data: <event>`.
//!
//! New events are found by deriving the history again whenever the bus says
//! the session changed (each stored part is a durable change), so a lagging
//! subscription loses nothing and events go out as they happen: a step's
//! start, each text, reasoning and tool call as it starts and as it ends.
//! Only what could still change is held back, so that what is sent is what
//! `/history` answers for good: a part still being written (after its start
//! event), the parts after it, and a user message while its run is starting
//! (its parts are stored one by one after it) or while it has no part yet. A prompt stored without a run
//! (`resume: false`) with several parts can still be sent before its last
//! part is stored, so without that file or agent.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;

use super::api::{invalid, session};
use super::api_message;
use crate::error::{ApiResult, ErrorBody};
use crate::server::extract::{Path, Query};
use crate::server::AppState;

/// How often an idle stream sends an SSE comment, so proxies keep it open.
const KEEPALIVE: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Send only the events after this sequence number (`Last-Event-ID` works too).
    after: Option<String>,
}

/// The session's durable events that will not change any more: all of them
/// but the rest of an assistant message still being written at the end (of
/// which the events of its finished parts go out as they finish) and a user
/// message still being stored.
async fn settled(st: &AppState, id: &str) -> Option<Vec<Value>> {
    let s = st.runtime.sessions.store.session(id).await.ok()?;
    let stored = st.runtime.sessions.store.messages(id, None, None).await.ok()?.messages;
    let mut messages = api_message::messages(&stored);
    let busy = st.runtime.sessions.runs.is_busy(id);
    match messages.last() {
        Some(m) if m["type"] == "assistant" && m.pointer("/time/completed").is_none() && m.get("error").is_none() => {
            let parts: Vec<Value> = stored.last().map(|last| last.parts.iter().filter_map(|p| serde_json::to_value(p).ok()).collect()).unwrap_or_default();
            let before = api_message::history(&s, &messages[..messages.len() - 1]).len();
            let mut events = api_message::history(&s, &messages);
            events.truncate(before + finished_events(&parts));
            return Some(events);
        }
        Some(m) if m["type"] == "user" && (busy || stored.last().is_some_and(|last| last.parts.is_empty())) => {
            messages.pop();
        }
        _ => {}
    }
    Some(api_message::history(&s, &messages))
}

/// How many of an unfinished assistant message's events (in the order
/// `api_message::history` gives them) are final: its `step.started` (once its
/// step-start part, which holds the snapshot, is stored), then
/// each text, reasoning or tool part in order while it is done. A part still
/// being written gives only its start (a text's `started`, a running tool's
/// `called`, whose input is known) and stops the count, so the events sent
/// are always a prefix of the message's final history, with the same numbers.
fn finished_events(parts: &[Value]) -> usize {
    // `step.started` carries the snapshot of the step-start part: final once that is stored.
    if !parts.iter().any(|p| p["type"] == "step-start") {
        return 0;
    }
    let mut n = 1;
    for p in parts {
        match p["type"].as_str() {
            Some("text" | "reasoning") => {
                if p.pointer("/time/end").is_none() {
                    return n + 1;
                }
                n += 2;
            }
            Some("tool") => match p.pointer("/state/status").and_then(Value::as_str) {
                Some("completed" | "error") => n += 2,
                Some("running") => return n + 1,
                _ => return n,
            },
            _ => {}
        }
    }
    n
}

fn frame(event: &Value) -> Bytes {
    let seq = event["durable"]["seq"].as_u64().unwrap_or_default();
    let kind = event["type"].as_str().unwrap_or_default();
    Bytes::from(format!("id: {seq}\nevent: {kind}\ndata: {event}\n\n"))
}

#[utoipa::path(get, path = "/api/session/{sessionID}/event", tag = "v2", operation_id = "v2.session.events", summary = "Subscribe to session events",
    description = "Replay durable events after an aggregate sequence, then continue with new durable events.",
    params(("sessionID" = String, Path), EventParams),
    responses((status = 200, description = "Durable events", content_type = "text/event-stream"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn session_events(State(st): State<Arc<AppState>>, Path(id): Path<String>, Query(q): Query<EventParams>, headers: HeaderMap) -> ApiResult<Response> {
    session(&st, &id).await?;
    let after = q.after.or_else(|| headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_string));
    let mut sent = match after {
        Some(a) => a.trim().parse::<u64>().map_err(|_| invalid(format!("after must be a whole number (a sequence), not {a:?}")))?,
        None => 0,
    };
    // Subscribed before the first read, so no change falls between them.
    let mut rx = st.runtime.bus.subscribe();
    let bus = st.runtime.bus.clone();
    let (tx, out) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
        let mut changed = true;
        loop {
            if changed {
                changed = false;
                // A deleted session ends the stream.
                let Some(events) = settled(&st, &id).await else { return };
                for e in &events {
                    let Some(seq) = e["durable"]["seq"].as_u64().filter(|s| *s > sent) else { continue };
                    if tx.send(Ok(frame(e))).await.is_err() {
                        return;
                    }
                    sent = seq;
                }
            }
            tokio::select! {
                _ = bus.closed() => return,
                _ = tx.closed() => return,
                _ = beat.tick() => if tx.send(Ok(Bytes::from_static(b":\n\n"))).await.is_err() { return },
                got = rx.recv() => match got {
                    // A change to its history, or the end of its run (which settles a prompt no answer followed).
                    Ok(p) => changed = p.durable.as_ref().is_some_and(|d| d.aggregate == id)
                        || (matches!(p.event.kind.as_str(), "session.idle" | "session.status") && p.event.properties.get().contains(id.as_str())),
                    // Missed events are found again by deriving the history anew.
                    Err(RecvError::Lagged(_)) => changed = true,
                    Err(RecvError::Closed) => return,
                },
            }
        }
    });
    let mut res = Response::new(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(out)));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-transform"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::finished_events;

    #[test]
    fn only_finished_parts_and_the_start_of_the_next_count() {
        let text = |end: bool| if end { json!({"type": "text", "time": {"start": 1, "end": 2}}) } else { json!({"type": "text", "time": {"start": 1}}) };
        let tool = |status: &str| json!({"type": "tool", "state": {"status": status}});
        let step = || json!({"type": "step-start", "snapshot": "abc"});
        assert_eq!(finished_events(&[]), 0, "no step-start part yet: not even the start is final");
        assert_eq!(finished_events(&[step()]), 1, "the step's start");
        assert_eq!(finished_events(&[step(), text(false)]), 2, "a streaming text: its start only");
        assert_eq!(finished_events(&[step(), text(true), tool("pending")]), 3, "a pending tool has no input yet");
        assert_eq!(finished_events(&[step(), text(true), tool("running"), text(true)]), 4, "a running tool: called, and nothing after it");
        assert_eq!(finished_events(&[step(), text(true), tool("completed"), tool("error")]), 7);
    }
}
