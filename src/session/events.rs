//! The session events, in OpenCode's names and shapes.
//!
//! Durable events (the ones that change what `GET /session/...` returns) are
//! published by the store right after their commit, with the session's next
//! sequence number; the rest (status, deltas) go straight to the bus.

use serde::Serialize;

use crate::event::{Bus, Durable};
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
const DURABLE_VERSION: u32 = 1;

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

/// Publishes a durable event of `session_id` with sequence number `seq`.
pub fn durable(bus: &Bus, scope: &Scope, kind: &str, properties: impl Serialize, session_id: &str, seq: u64) {
    let durable = Durable { aggregate: session_id.to_string(), seq, version: DURABLE_VERSION };
    bus.publish_durable(&scope.directory, &scope.project, kind, properties, durable);
}

/// Publishes a passing event (status, delta) of the scope's instance.
pub fn transient(bus: &Bus, scope: &Scope, kind: &str, properties: impl Serialize) {
    bus.publish(Some(&scope.directory), Some(&scope.project), kind, properties);
}
