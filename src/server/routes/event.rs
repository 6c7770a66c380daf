//! `GET /event`, `GET /global/event` and v2's `GET /api/event`: Server-Sent Events.
//!
//! Each connection starts with `server.connected` and gets `server.heartbeat`
//! every ten seconds, like the reference. Frames are `data: <json>\n\n` only.
//! `/api/event` carries the same events in v2's shape (`data` for
//! `properties`, with `location` and, for durable ones, `durable`).

use std::collections::VecDeque;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::Extension;
use bytes::Bytes;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use super::DirectoryParams;
use crate::event::{local_event, Bus, Durable, Event, GlobalEnvelope, Published, BUS_CAPACITY};
use crate::server::extract::Ctx;
use crate::server::Disconnect;

pub const HEARTBEAT: Duration = Duration::from_secs(10);

#[utoipa::path(get, path = "/event", tag = "event", operation_id = "event.subscribe", params(DirectoryParams),
    responses((status = 200, description = "Event stream", content_type = "text/event-stream")))]
pub async fn subscribe(State(bus): State<Bus>, Ctx(inst): Ctx, disconnect: Option<Extension<Disconnect>>) -> Response {
    let directory = inst.directory.clone();
    sse(
        bus,
        disconnect,
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
pub async fn global(State(bus): State<Bus>, disconnect: Option<Extension<Disconnect>>) -> Response {
    let wrap = |directory: Option<&str>, project: Option<&str>, e: &Event| frame(&GlobalEnvelope { directory, project, payload: e });
    sse(
        bus,
        disconnect,
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

#[derive(Serialize)]
struct V2Durable<'a> {
    #[serde(rename = "aggregateID")]
    aggregate_id: &'a str,
    seq: u64,
    version: u32,
}

#[derive(Serialize)]
struct V2Location<'a> {
    directory: &'a str,
}

/// An event as v2's `V2Event` types it.
#[derive(Serialize)]
struct V2Event<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    durable: Option<V2Durable<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<V2Location<'a>>,
    data: &'a serde_json::value::RawValue,
}

fn v2_frame(e: &Event, directory: Option<&str>, durable: Option<&Durable>) -> Bytes {
    frame(&V2Event {
        id: &e.id,
        kind: &e.kind,
        durable: durable.map(|d| V2Durable { aggregate_id: &d.aggregate, seq: d.seq, version: d.version }),
        location: directory.map(|directory| V2Location { directory }),
        data: &e.properties,
    })
}

/// Every event of the server (all directories), in v2's shape.
#[utoipa::path(get, path = "/api/event", tag = "v2", operation_id = "v2.event.subscribe", summary = "Subscribe to events",
    description = "Subscribe to native event payloads for the server.",
    responses((status = 200, description = "Event stream", content_type = "text/event-stream")))]
pub async fn subscribe_v2(State(bus): State<Bus>, disconnect: Option<Extension<Disconnect>>) -> Response {
    sse(bus, disconnect, |p: &Published| Some(v2_frame(&p.event, p.directory.as_deref(), p.durable.as_ref())), |e| v2_frame(e, None, None))
}

/// A subscriber further behind than this many bytes of unread events is
/// disconnected too, so a few very large events cannot pile up in memory.
const BACKLOG_BYTES: usize = 16 << 20;

/// What a subscriber has not been handed yet.
#[derive(Default)]
struct Backlog {
    chunks: VecDeque<Bytes>,
    bytes: usize,
}

impl Backlog {
    fn push(&mut self, chunk: Bytes) {
        self.bytes += chunk.len();
        self.chunks.push_back(chunk);
    }

    /// The oldest chunk; only called when there is one.
    fn pop(&mut self) -> Bytes {
        let chunk = self.chunks.pop_front().unwrap_or_default();
        self.bytes -= chunk.len();
        chunk
    }
}

/// Ends a lagging client's response with an error (where the connection
/// cannot be dropped directly), so that it is not ended as if complete.
#[derive(Debug)]
struct Lagging(u64);

impl std::fmt::Display for Lagging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "event subscriber fell {} events behind", self.0)
    }
}

impl std::error::Error for Lagging {}

fn lagged(tx: &tokio::sync::mpsc::Sender<Result<Bytes, Lagging>>, disconnect: Option<Extension<Disconnect>>, behind: u64) {
    tracing::warn!(behind, "event subscriber fell behind; disconnecting it");
    // The channel may be full of what the client did not read: never wait for
    // room, and drop the connection, which is stuck writing to the client.
    let _ = tx.try_send(Err(Lagging(behind)));
    if let Some(Extension(d)) = disconnect {
        d.now();
    }
}

fn frame(value: &impl serde::Serialize) -> Bytes {
    let mut out = b"data: ".to_vec();
    serde_json::to_writer(&mut out, value).unwrap_or_default();
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// The stream: `server.connected`, then bus events through `filter`, with
/// heartbeats (made by `local`) in between.
///
/// The feeding task keeps receiving from the bus while the client reads
/// slowly, holding what it could not hand over yet; once a client is more
/// than [`BUS_CAPACITY`] events behind (in the bus or in that backlog), it is
/// disconnected rather than buffered without bound. It also watches shutdown
/// at every step, so a client that stops reading cannot hold the server.
fn sse(
    bus: Bus,
    disconnect: Option<Extension<Disconnect>>,
    filter: impl Fn(&Published) -> Option<Bytes> + Send + 'static,
    local: impl Fn(&Event) -> Bytes + Send + 'static,
) -> Response {
    let mut rx = bus.subscribe();
    // Small on purpose: what a slow client has not read waits in `backlog`,
    // where it is counted.
    let (tx, out) = tokio::sync::mpsc::channel::<Result<Bytes, Lagging>>(16);
    tokio::spawn(async move {
        let mut backlog = Backlog::default();
        backlog.push(local(&local_event("server.connected")));
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        loop {
            tokio::select! {
                _ = bus.closed() => return,
                permit = tx.reserve(), if !backlog.chunks.is_empty() => match permit {
                    Ok(permit) => permit.send(Ok(backlog.pop())),
                    Err(_) => return,
                },
                _ = tx.closed() => return,
                // A client that has not taken the last heartbeat needs no other.
                _ = beat.tick() => if backlog.chunks.is_empty() { backlog.push(local(&local_event("server.heartbeat"))) },
                got = rx.recv() => match got {
                    Ok(p) => if let Some(b) = filter(&p) { backlog.push(b) },
                    Err(RecvError::Lagged(n)) => return lagged(&tx, disconnect, n),
                    Err(RecvError::Closed) => return,
                },
            }
            if backlog.chunks.len() > BUS_CAPACITY || backlog.bytes > BACKLOG_BYTES {
                return lagged(&tx, disconnect, backlog.chunks.len() as u64);
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(out);
    let mut res = Response::new(Body::from_stream(stream));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-transform"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}
