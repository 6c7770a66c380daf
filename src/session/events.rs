//! The session events, in OpenCode's names and shapes.
//!
//! Durable events (the ones that change what `GET /session/...` returns) are
//! published by the store right after their commit, with the session's next
//! sequence number; the rest (status, deltas) go straight to the bus.

use serde::Serialize;

use rusqlite::{params, Connection};

use crate::event::{Bus, Durable, Event};
use crate::instance::Instance;
use crate::protocol::message::Message;
use crate::protocol::part::Part;
use crate::protocol::session::{Session, SessionStatus, Todo};

pub const SESSION_CREATED: &str = "session.created";
pub const SESSION_UPDATED: &str = "session.updated";
pub const SESSION_DELETED: &str = "session.deleted";
pub const SESSION_STATUS: &str = "session.status";
pub const SESSION_IDLE: &str = "session.idle";
pub const MESSAGE_UPDATED: &str = "message.updated";
pub const MESSAGE_REMOVED: &str = "message.removed";
pub const PART_UPDATED: &str = "message.part.updated";
pub const PART_REMOVED: &str = "message.part.removed";
pub const PART_DELTA: &str = "message.part.delta";
pub const TODO_UPDATED: &str = "todo.updated";
/// `{sessionID, diff: [SnapshotFileDiff]}` after a turn that changed files.
pub const SESSION_DIFF: &str = "session.diff";
/// `{sessionID?, error}` when a turn fails.
pub const SESSION_ERROR: &str = "session.error";

/// The version of the durable events' schemas (their sync type is `<type>.1`).
pub const DURABLE_VERSION: u32 = 1;

/// The durable event kinds: the ones a session's sync history holds, and the
/// only ones `POST /sync/replay` applies.
pub const DURABLE_KINDS: &[&str] = &[SESSION_CREATED, SESSION_UPDATED, SESSION_DELETED, MESSAGE_UPDATED, MESSAGE_REMOVED, PART_UPDATED, PART_REMOVED];

/// The sync type of a durable event kind: `session.created` is `session.created.1`.
pub fn sync_type(kind: &str) -> String {
    format!("{kind}.{DURABLE_VERSION}")
}

/// Which instance an event is about: the directory and project of the request
/// that caused it, as OpenCode's `/global/event` envelope names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub directory: String,
    pub project: String,
}

impl Scope {
    pub fn of(inst: &Instance) -> Self {
        Self { directory: inst.directory.clone(), project: inst.project.id.clone() }
    }
}

#[derive(Serialize)]
pub struct SessionInfo<'a> {
    #[serde(rename = "sessionID")]
    pub session_id: &'a str,
    pub info: &'a Session,
}

#[derive(Serialize)]
pub struct MessageInfo<'a> {
    #[serde(rename = "sessionID")]
    pub session_id: &'a str,
    pub info: &'a Message,
}

#[derive(Serialize)]
pub struct PartInfo<'a> {
    #[serde(rename = "sessionID")]
    pub session_id: &'a str,
    pub part: &'a Part,
    /// When the part was published (ms).
    pub time: u64,
}

#[derive(Serialize)]
pub struct MessageRemoved<'a> {
    #[serde(rename = "sessionID")]
    pub session_id: &'a str,
    #[serde(rename = "messageID")]
    pub message_id: &'a str,
}

#[derive(Serialize)]
pub struct PartRemoved<'a> {
    #[serde(rename = "sessionID")]
    pub session_id: &'a str,
    #[serde(rename = "messageID")]
    pub message_id: &'a str,
    #[serde(rename = "partID")]
    pub part_id: &'a str,
}

/// A streamed piece of a part's field (`text` of a text or reasoning part).
#[derive(Clone, Debug, Serialize)]
pub struct PartDelta {
    #[serde(rename = "sessionID")]
    pub session_id: String,
    #[serde(rename = "messageID")]
    pub message_id: String,
    #[serde(rename = "partID")]
    pub part_id: String,
    pub field: String,
    pub delta: String,
}

#[derive(Serialize)]
pub struct StatusChanged<'a> {
    #[serde(rename = "sessionID")]
    pub session_id: &'a str,
    pub status: &'a SessionStatus,
}

#[derive(Serialize)]
pub struct Idle<'a> {
    #[serde(rename = "sessionID")]
    pub session_id: &'a str,
}

#[derive(Serialize)]
pub struct TodoUpdated<'a> {
    #[serde(rename = "sessionID")]
    pub session_id: &'a str,
    pub todos: &'a [Todo],
}

/// A durable event written to the session's sync history (`sync_event`) inside
/// the writer's transaction; [`Recorded::publish`] sends it after the commit,
/// under the same id, so `/global/event` and `POST /sync/history` agree.
pub struct Recorded {
    event: Event,
    durable: Durable,
}

/// Records a durable event of `session_id` with sequence number `seq` in `tx`.
pub fn record(tx: &Connection, kind: &str, properties: impl Serialize, session_id: &str, seq: u64) -> rusqlite::Result<Recorded> {
    let event = Event::new(kind, properties);
    tx.execute(
        "INSERT INTO sync_event (id, aggregate_id, seq, type, data) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![event.id, session_id, seq as i64, sync_type(kind), event.properties.get()],
    )?;
    Ok(Recorded { event, durable: Durable { aggregate: session_id.to_string(), seq, version: DURABLE_VERSION } })
}

impl Recorded {
    pub fn publish(self, bus: &Bus, scope: &Scope) {
        bus.publish_recorded(&scope.directory, &scope.project, self.event, self.durable);
    }
}

/// Publishes a durable event of `session_id` with sequence number `seq`
/// without recording it (a deleted session's history goes with it).
pub fn durable(bus: &Bus, scope: &Scope, kind: &str, properties: impl Serialize, session_id: &str, seq: u64) {
    let durable = Durable { aggregate: session_id.to_string(), seq, version: DURABLE_VERSION };
    bus.publish_durable(&scope.directory, &scope.project, kind, properties, durable);
}

/// Publishes a passing event (status, delta) of the scope's instance.
pub fn transient(bus: &Bus, scope: &Scope, kind: &str, properties: impl Serialize) {
    bus.publish(Some(&scope.directory), Some(&scope.project), kind, properties);
}
