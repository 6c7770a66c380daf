//! The event bus: one broadcast channel with a bounded buffer.
//!
//! Publishing never waits. A subscriber that falls more than the buffer behind
//! is disconnected (its SSE stream ends) rather than slowing anyone down;
//! OpenCode clients reconnect and refetch state.

use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::broadcast;

use crate::id::{self, Prefix};

/// How many events a subscriber may fall behind before it is dropped.
pub const BUS_CAPACITY: usize = 4096;

/// An event as `GET /event` sends it.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Serialized once, when published, in the field order of its type.
    pub properties: Box<RawValue>,
}

impl Event {
    /// A new event with a fresh id; properties that do not serialize become `null`.
    pub fn new(kind: &str, properties: impl Serialize) -> Self {
        let properties = serde_json::value::to_raw_value(&properties).unwrap_or_else(|_| raw("null"));
        Event { id: id::ascending(Prefix::Event), kind: kind.to_string(), properties }
    }
}

/// An event with the instance it belongs to, as the bus carries it.
#[derive(Clone, Debug)]
pub struct Published {
    /// The instance's directory (absolute), or `None` for server-wide events.
    pub directory: Option<String>,
    pub project: Option<String>,
    pub event: Event,
    /// Set for OpenCode's durable ("sync") events: the changes that make up a
    /// session's history. `GET /global/event` repeats them as `sync` payloads.
    pub durable: Option<Durable>,
}

/// Where a durable event sits in its aggregate's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Durable {
    /// The session the event belongs to.
    pub aggregate: String,
    /// 0 for the event that creates the aggregate, then one more per event.
    pub seq: u64,
    /// The version of the event's schema; the sync type is `<type>.<version>`.
    pub version: u32,
}

/// The `GET /global/event` envelope.
#[derive(Serialize)]
pub struct GlobalEnvelope<'a, P: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<&'a str>,
    pub payload: P,
}

/// The payload that repeats a durable event on `GET /global/event`.
#[derive(Serialize)]
pub struct SyncPayload<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(rename = "syncEvent")]
    pub sync_event: SyncEvent<'a>,
    pub id: &'a str,
}

#[derive(Serialize)]
pub struct SyncEvent<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: String,
    pub seq: u64,
    #[serde(rename = "aggregateID")]
    pub aggregate_id: &'a str,
    pub data: &'a RawValue,
}

impl Published {
    /// The `sync` payload of a durable event.
    pub fn sync_payload(&self) -> Option<SyncPayload<'_>> {
        let d = self.durable.as_ref()?;
        Some(SyncPayload {
            kind: "sync",
            sync_event: SyncEvent {
                id: &self.event.id,
                kind: format!("{}.{}", self.event.kind, d.version),
                seq: d.seq,
                aggregate_id: &d.aggregate,
                data: &self.event.properties,
            },
            id: &self.event.id,
        })
    }
}

#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<Published>>,
    /// Cancelled at shutdown: event streams end so the server can exit.
    closed: tokio_util::sync::CancellationToken,
}

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}

impl Bus {
    pub fn new() -> Self {
        Self { tx: broadcast::channel(BUS_CAPACITY).0, closed: Default::default() }
    }

    /// Ends every event stream (at shutdown; clients reconnect to the next server).
    pub fn close(&self) {
        self.closed.cancel();
    }

    /// Completes once [`Bus::close`] was called.
    pub async fn closed(&self) {
        self.closed.cancelled().await
    }

    /// Publishes an event; returns it so callers can log or test it.
    pub fn publish(&self, directory: Option<&str>, project: Option<&str>, kind: &str, properties: impl Serialize) -> Arc<Published> {
        self.send(directory, project, kind, properties, None)
    }

    /// Publishes a durable event (see [`Published::durable`]).
    pub fn publish_durable(&self, directory: &str, project: &str, kind: &str, properties: impl Serialize, durable: Durable) -> Arc<Published> {
        self.send(Some(directory), Some(project), kind, properties, Some(durable))
    }

    /// Publishes a durable event made before its commit (the store records it
    /// in the session's sync history under the same id).
    pub fn publish_recorded(&self, directory: &str, project: &str, event: Event, durable: Durable) -> Arc<Published> {
        self.send_event(Some(directory), Some(project), event, Some(durable))
    }

    fn send(&self, directory: Option<&str>, project: Option<&str>, kind: &str, properties: impl Serialize, durable: Option<Durable>) -> Arc<Published> {
        self.send_event(directory, project, Event::new(kind, properties), durable)
    }

    fn send_event(&self, directory: Option<&str>, project: Option<&str>, event: Event, durable: Option<Durable>) -> Arc<Published> {
        let published = Arc::new(Published { directory: directory.map(str::to_owned), project: project.map(str::to_owned), event, durable });
        // No subscribers is fine: nobody is listening.
        let _ = self.tx.send(published.clone());
        published
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }
}

/// A fresh event that is not published on the bus (per-connection events
/// such as `server.connected` and `server.heartbeat`).
pub fn local_event(kind: &str) -> Event {
    Event { id: id::ascending(Prefix::Event), kind: kind.to_string(), properties: raw("{}") }
}

fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_string()).expect("valid JSON")
}
