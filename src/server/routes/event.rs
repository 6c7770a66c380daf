//! `GET /event` and `GET /global/event`: Server-Sent Events.
//!
//! Each connection starts with `server.connected` and gets `server.heartbeat`
//! every ten seconds, like the reference. Frames are `data: <json>\n\n` only.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;

use super::DirectoryParams;
use crate::event::{local_event, Event, GlobalEnvelope, Published};
use crate::server::extract::Ctx;
use crate::server::AppState;

pub const HEARTBEAT: Duration = Duration::from_secs(10);

#[utoipa::path(get, path = "/event", tag = "event", operation_id = "event.subscribe", params(DirectoryParams),
    responses((status = 200, description = "Event stream", content_type = "text/event-stream")))]
pub async fn subscribe(State(st): State<Arc<AppState>>, Ctx(inst): Ctx) -> Response {
    let directory = inst.directory.clone();
    sse(
        &st,
        move |p: &Published| {
            // Server-wide events, and those of this directory.
            if p.directory.as_deref().is_some_and(|d| d != directory) {
                return None;
            }
            Some(frame(&p.event))
        },
        frame,
    )
}

#[utoipa::path(get, path = "/global/event", tag = "global", operation_id = "global.event",
    responses((status = 200, description = "Event stream of every directory", content_type = "text/event-stream")))]
pub async fn global(State(st): State<Arc<AppState>>) -> Response {
    let wrap = |directory: Option<&str>, project: Option<&str>, e: &Event| frame(&GlobalEnvelope { directory, project, payload: e });
    sse(
        &st,
        move |p: &Published| {
            let (directory, project) = (p.directory.as_deref(), p.project.as_deref());
            let event = wrap(directory, project, &p.event);
            // A durable event is followed by its `sync` twin, as OpenCode sends it.
            Some(match p.sync_payload() {
                Some(sync) => [event, frame(&GlobalEnvelope { directory, project, payload: sync })].concat().into(),
                None => event,
            })
        },
        move |e| wrap(None, None, e),
    )
}

fn frame(value: &impl serde::Serialize) -> Bytes {
    let mut out = b"data: ".to_vec();
    serde_json::to_writer(&mut out, value).unwrap_or_default();
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// The stream: `server.connected`, then bus events through `filter`, with
/// heartbeats (made by `local`) in between. The task feeding it stops when the
/// client goes away, and disconnects a client that lags behind the bus.
fn sse(st: &AppState, filter: impl Fn(&Published) -> Option<Bytes> + Send + 'static, local: impl Fn(&Event) -> Bytes + Send + 'static) -> Response {
    let mut rx = st.bus.subscribe();
    let bus = st.bus.clone();
    // Small on purpose: a client that stops reading stalls only its own task.
    let (tx, out) = tokio::sync::mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        if tx.send(local(&local_event("server.connected"))).await.is_err() {
            return;
        }
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        loop {
            let chunk = tokio::select! {
                _ = bus.closed() => return,
                _ = beat.tick() => local(&local_event("server.heartbeat")),
                got = rx.recv() => match got {
                    Ok(p) => match filter(&p) { Some(b) => b, None => continue },
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "event subscriber fell behind; disconnecting it");
                        return;
                    }
                    Err(RecvError::Closed) => return,
                },
            };
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
    });
    let stream = futures::StreamExt::map(tokio_stream::wrappers::ReceiverStream::new(out), Ok::<_, std::convert::Infallible>);
    let mut res = Response::new(Body::from_stream(stream));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-transform"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}
