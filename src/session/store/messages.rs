//! Messages and parts: upserts that publish `message.updated` and
//! `message.part.updated`, removals, todos, and the paged history.

use base64::Engine;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{bump, load_session, Store};
use crate::protocol::message::{Message, MessageWithParts, ModelRef};
use crate::protocol::part::Part;
use crate::protocol::session::Todo;
use crate::session::error::{StoreError, StoreResult};
use crate::session::events::{self, MessageInfo, MessageRemoved, PartDelta, PartInfo, PartRemoved, Scope, TodoUpdated};

/// Where a page of messages ends: OpenCode's `before` cursor, base64url of
/// `{"id": <message id>, "time": <created>}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub id: String,
    pub time: u64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// `None` for anything that is not a cursor this server made.
    pub fn decode(s: &str) -> Option<Self> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()?;
        let cursor: Cursor = serde_json::from_slice(&bytes).ok()?;
        cursor.id.starts_with("msg").then_some(cursor)
    }
}

/// Messages oldest first, and the cursor of the next (older) page if any.
pub struct MessagePage {
    pub messages: Vec<MessageWithParts>,
    pub next: Option<Cursor>,
}

impl Store {
    /// Saves a message (new or changed) and publishes `message.updated`.
    pub async fn put_message(&self, scope: &Scope, message: Message) -> StoreResult<()> {
        let (bus, scope) = (self.bus.clone(), scope.clone());
        self.db
            .write(move |conn| {
                let tx = conn.transaction()?;
                let session_id = message.session_id().to_string();
                let seq = bump(&tx, &session_id)?;
                tx.execute(
                    "INSERT INTO message (id, session_id, time_created, data) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(id) DO UPDATE SET time_created = excluded.time_created, data = excluded.data",
                    params![message.id(), session_id, message.created(), serde_json::to_string(&message)?],
                )?;
                let info = MessageInfo { session_id: &session_id, info: &message };
                let recorded = events::record(&tx, events::MESSAGE_UPDATED, info, &session_id, seq)?;
                tx.commit()?;
                recorded.publish(&bus, &scope);
                Ok(())
            })
            .await
    }

    /// Saves a part (new or changed) and publishes `message.part.updated`.
    pub async fn put_part(&self, scope: &Scope, part: Part) -> StoreResult<()> {
        let (bus, scope) = (self.bus.clone(), scope.clone());
        self.db
            .write(move |conn| {
                let tx = conn.transaction()?;
                let owner: Option<String> = tx.query_row("SELECT session_id FROM message WHERE id = ?1", [&part.message_id], |r| r.get(0)).optional()?;
                if owner.as_deref() != Some(part.session_id.as_str()) {
                    return Err(StoreError::message_not_found(&part.message_id));
                }
                let seq = bump(&tx, &part.session_id)?;
                tx.execute(
                    "INSERT INTO part (id, message_id, session_id, data) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                    params![part.id, part.message_id, part.session_id, serde_json::to_string(&part)?],
                )?;
                let info = PartInfo { session_id: &part.session_id, part: &part, time: crate::now_ms() };
                let recorded = events::record(&tx, events::PART_UPDATED, info, &part.session_id, seq)?;
                tx.commit()?;
                recorded.publish(&bus, &scope);
                Ok(())
            })
            .await
    }

    /// Publishes a streamed piece of a part (`message.part.delta`). Nothing is
    /// stored: the runner saves the whole part when the stream ends, as OpenCode does.
    pub fn publish_delta(&self, scope: &Scope, delta: &PartDelta) {
        events::transient(&self.bus, scope, events::PART_DELTA, delta);
    }

    /// Deletes a message with its parts and publishes `message.removed`.
    pub async fn remove_message(&self, scope: &Scope, session_id: &str, message_id: &str) -> StoreResult<()> {
        let (bus, scope, session_id, message_id) = (self.bus.clone(), scope.clone(), session_id.to_string(), message_id.to_string());
        self.db
            .write(move |conn| {
                let tx = conn.transaction()?;
                if tx.execute("DELETE FROM message WHERE id = ?1 AND session_id = ?2", [&message_id, &session_id])? == 0 {
                    return Err(StoreError::message_not_found(&message_id));
                }
                let seq = bump(&tx, &session_id)?;
                let info = MessageRemoved { session_id: &session_id, message_id: &message_id };
                let recorded = events::record(&tx, events::MESSAGE_REMOVED, info, &session_id, seq)?;
                tx.commit()?;
                recorded.publish(&bus, &scope);
                Ok(())
            })
            .await
    }

    /// Deletes a part and publishes `message.part.removed`.
    pub async fn remove_part(&self, scope: &Scope, session_id: &str, message_id: &str, part_id: &str) -> StoreResult<()> {
        let (bus, scope) = (self.bus.clone(), scope.clone());
        let (session_id, message_id, part_id) = (session_id.to_string(), message_id.to_string(), part_id.to_string());
        self.db
            .write(move |conn| {
                let tx = conn.transaction()?;
                let sql = "DELETE FROM part WHERE id = ?1 AND message_id = ?2 AND session_id = ?3";
                if tx.execute(sql, [&part_id, &message_id, &session_id])? == 0 {
                    return Err(StoreError::NotFound(format!("Part not found: {part_id}")));
                }
                let seq = bump(&tx, &session_id)?;
                let info = PartRemoved { session_id: &session_id, message_id: &message_id, part_id: &part_id };
                let recorded = events::record(&tx, events::PART_REMOVED, info, &session_id, seq)?;
                tx.commit()?;
                recorded.publish(&bus, &scope);
                Ok(())
            })
            .await
    }

    /// A session's messages, oldest first. With a `limit`, the newest `limit`
    /// messages before `before` (or the end), and a cursor when older ones exist.
    pub async fn messages(&self, session_id: &str, limit: Option<usize>, before: Option<Cursor>) -> StoreResult<MessagePage> {
        let session_id = session_id.to_string();
        self.db
            .read(move |conn| {
                load_session(conn, &session_id)?;
                let Some(limit) = limit else {
                    let mut stmt = conn.prepare_cached("SELECT data FROM message WHERE session_id = ?1 ORDER BY time_created, id")?;
                    let rows = stmt.query_map([&session_id], |r| r.get::<_, String>(0))?;
                    let infos = rows.map(|d| Ok(serde_json::from_str(&d?)?)).collect::<StoreResult<Vec<Message>>>()?;
                    return Ok(MessagePage { messages: with_parts(conn, infos)?, next: None });
                };
                let (time, id) = before.map(|c| (c.time as i64, c.id)).unwrap_or((i64::MAX, String::new()));
                let mut stmt = conn.prepare_cached(
                    "SELECT data FROM message WHERE session_id = ?1
                       AND (time_created < ?2 OR (time_created = ?2 AND (?3 = '' OR id < ?3)))
                     ORDER BY time_created DESC, id DESC LIMIT ?4",
                )?;
                let rows = stmt.query_map(params![session_id, time, id, limit as i64 + 1], |r| r.get::<_, String>(0))?;
                let mut infos = rows.map(|d| Ok(serde_json::from_str(&d?)?)).collect::<StoreResult<Vec<Message>>>()?;
                let more = infos.len() > limit;
                infos.truncate(limit);
                infos.reverse();
                let next = more.then(|| infos.first().map(|m| Cursor { id: m.id().to_string(), time: m.created() })).flatten();
                Ok(MessagePage { messages: with_parts(conn, infos)?, next })
            })
            .await
    }

    pub async fn message(&self, session_id: &str, message_id: &str) -> StoreResult<MessageWithParts> {
        let (session_id, message_id) = (session_id.to_string(), message_id.to_string());
        self.db
            .read(move |conn| {
                let sql = "SELECT data FROM message WHERE id = ?1 AND session_id = ?2";
                let data: Option<String> = conn.query_row(sql, [&message_id, &session_id], |r| r.get(0)).optional()?;
                let info: Message = serde_json::from_str(&data.ok_or_else(|| StoreError::message_not_found(&message_id))?)?;
                Ok(with_parts(conn, vec![info])?.remove(0))
            })
            .await
    }

    /// The model of the session's latest user message, if any.
    pub async fn last_user_model(&self, session_id: &str) -> StoreResult<Option<ModelRef>> {
        let session_id = session_id.to_string();
        self.db
            .read(move |conn| {
                let model: Option<String> = conn
                    .query_row(
                        "SELECT json_extract(data, '$.model') FROM message
                         WHERE session_id = ?1 AND json_extract(data, '$.role') = 'user'
                         ORDER BY time_created DESC, id DESC LIMIT 1",
                        [&session_id],
                        |r| r.get(0),
                    )
                    .optional()?
                    .flatten();
                Ok(model.and_then(|m| serde_json::from_str(&m).ok()))
            })
            .await
    }

    pub async fn todos(&self, session_id: &str) -> StoreResult<Vec<Todo>> {
        let session_id = session_id.to_string();
        self.db
            .read(move |conn| {
                load_session(conn, &session_id)?;
                let data: Option<String> = conn.query_row("SELECT data FROM todo WHERE session_id = ?1", [&session_id], |r| r.get(0)).optional()?;
                Ok(match data {
                    Some(d) => serde_json::from_str(&d)?,
                    None => Vec::new(),
                })
            })
            .await
    }

    /// Replaces a session's todo list and publishes `todo.updated`.
    pub async fn set_todos(&self, scope: &Scope, session_id: &str, todos: Vec<Todo>) -> StoreResult<()> {
        let (bus, scope, session_id) = (self.bus.clone(), scope.clone(), session_id.to_string());
        self.db
            .write(move |conn| {
                load_session(conn, &session_id)?;
                conn.execute(
                    "INSERT INTO todo (session_id, data) VALUES (?1, ?2) ON CONFLICT(session_id) DO UPDATE SET data = excluded.data",
                    params![session_id, serde_json::to_string(&todos)?],
                )?;
                events::transient(&bus, &scope, events::TODO_UPDATED, TodoUpdated { session_id: &session_id, todos: &todos });
                Ok(())
            })
            .await
    }
}

/// Attaches each message's parts (in id order, which is creation order).
fn with_parts(conn: &Connection, infos: Vec<Message>) -> StoreResult<Vec<MessageWithParts>> {
    let mut stmt = conn.prepare_cached("SELECT data FROM part WHERE message_id = ?1 ORDER BY id")?;
    infos
        .into_iter()
        .map(|info| {
            let rows = stmt.query_map([info.id()], |r| r.get::<_, String>(0))?;
            let parts = rows.map(|d| Ok(serde_json::from_str(&d?)?)).collect::<StoreResult<Vec<Part>>>()?;
            Ok(MessageWithParts { info, parts })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::Cursor;

    #[test]
    fn cursor_round_trips_and_reads_opencode_cursors() {
        // A cursor OpenCode 1.18.33 sent in its Link header.
        let theirs = "eyJpZCI6Im1zZ18xZmM5ZDY0ODYwMDE1aGszdThWWVVBYjRVZCIsInRpbWUiOjE3OTUyMzk1MzU3NTB9";
        let c = Cursor::decode(theirs).expect("decodes");
        assert_eq!(c, Cursor { id: "msg_1fc9d64860015hk3u8VYUAb4Ud".into(), time: 1795239535750 });
        assert_eq!(c.encode(), theirs);
        assert!(Cursor::decode("garbage").is_none());
        assert!(Cursor::decode("msg_1fc9c8315001IP5yG4LEmb7Cj2").is_none());
    }
}
