//! The sessions' sync history: OpenCode's event sourcing, where each session
//! (an aggregate) is the sequence of its durable events. `history` lists it
//! for another server to catch up; `replay` applies a history that another
//! server sent, with OpenCode's checks (one aggregate, no gaps, the same
//! owner, an event seen before must be the same event), so that replaying a
//! history twice changes nothing and a diverged one is refused.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Store;
use crate::protocol::message::Message;
use crate::protocol::part::Part;
use crate::protocol::session::Session;
use crate::session::error::StoreResult;
use crate::session::events;

/// One event of the history, as `POST /sync/history` answers it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SyncEventRow {
    pub id: String,
    pub aggregate_id: String,
    pub seq: u64,
    #[serde(rename = "type")]
    pub kind: String,
    pub data: Value,
}

/// One event of a history to replay, as `POST /sync/replay` takes it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayEvent {
    pub id: String,
    #[serde(rename = "aggregateID")]
    pub aggregate_id: String,
    pub seq: u64,
    #[serde(rename = "type")]
    pub kind: String,
    pub data: serde_json::Map<String, Value>,
}

impl Store {
    /// Every durable event, oldest sequence first, except those of the
    /// aggregates in `known` up to the sequence given there.
    pub async fn sync_history(&self, known: HashMap<String, u64>) -> StoreResult<Vec<SyncEventRow>> {
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached("SELECT id, aggregate_id, seq, type, data FROM sync_event ORDER BY seq, rowid")?;
                let rows = stmt.query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, String>(3)?, r.get::<_, String>(4)?))
                })?;
                let mut out = Vec::new();
                for row in rows {
                    let (id, aggregate_id, seq, kind, data) = row?;
                    let seq = seq as u64;
                    if known.get(&aggregate_id).is_some_and(|&last| seq <= last) {
                        continue;
                    }
                    out.push(SyncEventRow { id, aggregate_id, seq, kind, data: serde_json::from_str(&data)? });
                }
                Ok(out)
            })
            .await
    }

    /// Applies `events` (one aggregate, consecutive sequence numbers) in one
    /// transaction, as owned by `owner` (the request's workspace). Events the
    /// store already holds, identical, are skipped. `Ok(Err(why))` is a history
    /// that does not fit, and nothing of it is applied. Nothing is published,
    /// as in OpenCode: the history is another server's, already seen there.
    pub async fn sync_replay(&self, events: Vec<ReplayEvent>, owner: Option<String>) -> StoreResult<Result<String, String>> {
        self.db
            .write(move |conn| {
                let tx = conn.transaction()?;
                let Some(first) = events.first() else { return Ok(Err("a replay needs at least one event".to_string())) };
                let aggregate = first.aggregate_id.clone();
                for event in &events {
                    if let Err(why) = replay_one(&tx, event, owner.as_deref())? {
                        return Ok(Err(why));
                    }
                }
                tx.commit()?;
                Ok(Ok(aggregate))
            })
            .await
    }

    /// Makes `owner` the owner of a session's history (`POST /sync/steal`),
    /// so that only that workspace's replays apply to it.
    pub async fn sync_claim(&self, session_id: &str, owner: &str) -> StoreResult<()> {
        let (session_id, owner) = (session_id.to_string(), owner.to_string());
        self.db
            .write(move |conn| {
                conn.execute("UPDATE session SET sync_owner = ?2 WHERE id = ?1", params![session_id, owner])?;
                Ok(())
            })
            .await
    }
}

/// The session's current sequence number and owner, if it exists.
fn head(conn: &Connection, session_id: &str) -> rusqlite::Result<Option<(u64, Option<String>)>> {
    conn.query_row("SELECT seq, sync_owner FROM session WHERE id = ?1", [session_id], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))).optional()
}

fn replay_one(tx: &Connection, event: &ReplayEvent, owner: Option<&str>) -> StoreResult<Result<(), String>> {
    let aggregate = event.aggregate_id.as_str();
    let Some(kind) = events::DURABLE_KINDS.iter().copied().find(|k| events::sync_type(k) == event.kind) else {
        let known: Vec<String> = events::DURABLE_KINDS.iter().map(|k| events::sync_type(k)).collect();
        return Ok(Err(format!("unknown durable event type {:?} (known: {})", event.kind, known.join(", "))));
    };
    if event.data.get("sessionID").and_then(Value::as_str) != Some(aggregate) {
        return Ok(Err(format!("event {}: data.sessionID must be the aggregate {aggregate}", event.id)));
    }
    let current = head(tx, aggregate)?;
    if let Some((_, Some(held))) = &current {
        if owner != Some(held.as_str()) {
            return Ok(Err(format!("replay owner mismatch for aggregate {aggregate}: owned by {held}, replayed by {}", owner.unwrap_or("no workspace"))));
        }
    }
    let next = current.as_ref().map_or(0, |(seq, _)| seq + 1);
    if current.is_some() && event.seq < next {
        let stored: Option<(String, String, String)> = tx
            .query_row("SELECT id, type, data FROM sync_event WHERE aggregate_id = ?1 AND seq = ?2", params![aggregate, event.seq as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let same = stored.is_some_and(|(id, kind, data)| {
            id == event.id && kind == event.kind && serde_json::from_str::<Value>(&data).ok() == Some(Value::Object(event.data.clone()))
        });
        if !same {
            return Ok(Err(format!("replay diverged at aggregate {aggregate} sequence {}", event.seq)));
        }
        if let (Some((_, None)), Some(owner)) = (&current, owner) {
            tx.execute("UPDATE session SET sync_owner = ?2 WHERE id = ?1", params![aggregate, owner])?;
        }
        return Ok(Ok(()));
    }
    if event.seq != next {
        return Ok(Err(format!("sequence mismatch for aggregate {aggregate}: expected {next}, got {}", event.seq)));
    }
    let taken: Option<(String, i64)> =
        tx.query_row("SELECT aggregate_id, seq FROM sync_event WHERE id = ?1", [&event.id], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
    if let Some((other, seq)) = taken {
        return Ok(Err(format!("event {} already exists at aggregate {other} sequence {seq}", event.id)));
    }
    if let Err(why) = project(tx, kind, event, owner)? {
        return Ok(Err(format!("event {} ({}): {why}", event.id, event.kind)));
    }
    if kind != events::SESSION_DELETED {
        tx.execute("UPDATE session SET seq = ?2 WHERE id = ?1", params![aggregate, event.seq as i64])?;
        let data = serde_json::to_string(&event.data)?;
        tx.execute(
            "INSERT INTO sync_event (id, aggregate_id, seq, type, data) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![event.id, aggregate, event.seq as i64, event.kind, data],
        )?;
    }
    Ok(Ok(()))
}

/// A field of the event's data, in its protocol type.
fn field<T: serde::de::DeserializeOwned>(event: &ReplayEvent, name: &str) -> Result<T, String> {
    let value = event.data.get(name).cloned().ok_or_else(|| format!("data.{name} is missing"))?;
    serde_json::from_value(value).map_err(|e| format!("data.{name}: {e}"))
}

fn text<'a>(event: &'a ReplayEvent, name: &str) -> Result<&'a str, String> {
    event.data.get(name).and_then(Value::as_str).ok_or_else(|| format!("data.{name} must be a string"))
}

/// Applies one event to the session's rows: what the store's own writes do.
fn project(tx: &Connection, kind: &str, event: &ReplayEvent, owner: Option<&str>) -> StoreResult<Result<(), String>> {
    let aggregate = event.aggregate_id.as_str();
    let exists = head(tx, aggregate)?.is_some();
    macro_rules! check {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(why) => return Ok(Err(why)),
            }
        };
    }
    if kind != events::SESSION_CREATED && !exists {
        return Ok(Err(format!("session {aggregate} does not exist here; its history must start with session.created")));
    }
    match kind {
        events::SESSION_CREATED | events::SESSION_UPDATED => {
            let session: Session = check!(field(event, "info"));
            if session.id != aggregate {
                return Ok(Err(format!("data.info.id {} is not the aggregate {aggregate}", session.id)));
            }
            let data = serde_json::to_string(&session)?;
            if kind == events::SESSION_CREATED {
                super::insert_session_row(tx, &session, &data, owner)?;
            } else {
                tx.execute(
                    "UPDATE session SET title = ?2, time_updated = ?3, time_archived = ?4, directory = ?5, path = ?6, data = ?7 WHERE id = ?1",
                    params![aggregate, session.title, session.time.updated, session.time.archived, session.directory, session.path, data],
                )?;
            }
        }
        events::SESSION_DELETED => {
            tx.execute("DELETE FROM session WHERE id = ?1", [aggregate])?;
            tx.execute("DELETE FROM sync_event WHERE aggregate_id = ?1", [aggregate])?;
        }
        events::MESSAGE_UPDATED => {
            let message: Message = check!(field(event, "info"));
            if message.session_id() != aggregate {
                return Ok(Err(format!("message {} belongs to session {}, not {aggregate}", message.id(), message.session_id())));
            }
            let owner: Option<String> = tx.query_row("SELECT session_id FROM message WHERE id = ?1", [message.id()], |r| r.get(0)).optional()?;
            if owner.as_deref().is_some_and(|s| s != aggregate) {
                return Ok(Err(format!("message {} belongs to another session", message.id())));
            }
            tx.execute(
                "INSERT INTO message (id, session_id, time_created, data) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO UPDATE SET time_created = excluded.time_created, data = excluded.data",
                params![message.id(), aggregate, message.created(), serde_json::to_string(&message)?],
            )?;
        }
        events::MESSAGE_REMOVED => {
            let message_id = check!(text(event, "messageID"));
            if tx.execute("DELETE FROM message WHERE id = ?1 AND session_id = ?2", [message_id, aggregate])? == 0 {
                return Ok(Err(format!("message {message_id} is not in session {aggregate}")));
            }
        }
        events::PART_UPDATED => {
            let part: Part = check!(field(event, "part"));
            if part.session_id != aggregate {
                return Ok(Err(format!("part {} belongs to session {}, not {aggregate}", part.id, part.session_id)));
            }
            let holder: Option<String> = tx.query_row("SELECT session_id FROM message WHERE id = ?1", [&part.message_id], |r| r.get(0)).optional()?;
            if holder.as_deref() != Some(aggregate) {
                return Ok(Err(format!("message {} of part {} is not in session {aggregate}", part.message_id, part.id)));
            }
            let stored: Option<String> = tx.query_row("SELECT session_id FROM part WHERE id = ?1", [&part.id], |r| r.get(0)).optional()?;
            if stored.as_deref().is_some_and(|s| s != aggregate) {
                return Ok(Err(format!("part {} belongs to another session", part.id)));
            }
            tx.execute(
                "INSERT INTO part (id, message_id, session_id, data) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                params![part.id, part.message_id, part.session_id, serde_json::to_string(&part)?],
            )?;
        }
        events::PART_REMOVED => {
            let (message_id, part_id) = (check!(text(event, "messageID")), check!(text(event, "partID")));
            let sql = "DELETE FROM part WHERE id = ?1 AND message_id = ?2 AND session_id = ?3";
            if tx.execute(sql, [part_id, message_id, aggregate])? == 0 {
                return Ok(Err(format!("part {part_id} is not in message {message_id} of session {aggregate}")));
            }
        }
        other => return Ok(Err(format!("{other} is not a durable event"))),
    }
    Ok(Ok(()))
}
