//! The session store: sessions, messages, parts and todos in SQLite, with the
//! durable events published right after each commit.
//!
//! Every write takes the writer connection, commits, then publishes while it
//! still holds it, so the events a client sees come in commit order and their
//! sequence numbers (`seq`, per session) have no gaps or swaps.

mod list;
mod messages;
mod projects;
mod queued;
mod repair;
mod saved_permissions;
mod snapshots;
mod sync;
mod workspaces;

use rusqlite::{params, Connection, OptionalExtension};

pub use list::{InWorkspace, SessionFilter};
pub use messages::{Cursor, MessagePage};
pub use sync::{ReplayEvent, SyncEventRow};

use super::db::Db;
use super::error::{StoreError, StoreResult};
use super::events::{self, Scope, SessionInfo};
use crate::event::Bus;
use crate::protocol::session::Session;

#[derive(Clone)]
pub struct Store {
    db: Db,
    bus: Bus,
}

impl Store {
    pub fn new(db: Db, bus: Bus) -> Self {
        Self { db, bus }
    }

    /// Saves a new session and publishes `session.created` (its event number 0).
    pub async fn create_session(&self, scope: &Scope, session: Session) -> StoreResult<Session> {
        let (bus, scope) = (self.bus.clone(), scope.clone());
        self.db
            .write(move |conn| {
                let tx = conn.transaction()?;
                let data = serde_json::to_string(&session)?;
                insert_session_row(&tx, &session, &data, None)?;
                let info = SessionInfo { session_id: &session.id, info: &session };
                let recorded = events::record(&tx, events::SESSION_CREATED, info, &session.id, 0)?;
                tx.commit()?;
                recorded.publish(&bus, &scope);
                Ok(session)
            })
            .await
    }

    pub async fn session(&self, id: &str) -> StoreResult<Session> {
        let id = id.to_string();
        self.db.read(move |conn| load_session(conn, &id)).await
    }

    pub async fn sessions(&self, filter: SessionFilter) -> StoreResult<Vec<Session>> {
        self.db.read(move |conn| list::sessions(conn, &filter)).await
    }

    /// The direct children of a session, oldest first.
    pub async fn children(&self, id: &str) -> StoreResult<Vec<Session>> {
        let id = id.to_string();
        self.db
            .read(move |conn| {
                load_session(conn, &id)?;
                let mut stmt = conn.prepare_cached("SELECT data FROM session WHERE parent_id = ?1 ORDER BY rowid")?;
                let rows = stmt.query_map([&id], |r| r.get::<_, String>(0))?;
                rows.map(|data| Ok(serde_json::from_str(&data?)?)).collect()
            })
            .await
    }

    /// The ids of a session and all its descendants, children first.
    pub async fn tree(&self, id: &str) -> StoreResult<Vec<String>> {
        let id = id.to_string();
        self.db
            .read(move |conn| {
                let mut out = Vec::new();
                collect_tree(conn, load_session(conn, &id)?, &mut out)?;
                Ok(out.into_iter().map(|s| s.id).collect())
            })
            .await
    }

    /// Changes a session with `change` and publishes `session.updated`.
    pub async fn update_session(&self, scope: &Scope, id: &str, change: impl FnOnce(&mut Session) + Send + 'static) -> StoreResult<Session> {
        let (bus, scope, id) = (self.bus.clone(), scope.clone(), id.to_string());
        self.db
            .write(move |conn| {
                let tx = conn.transaction()?;
                let mut session = load_session(&tx, &id)?;
                change(&mut session);
                // Every column the lists filter on follows the change (a warp moves a session to another place).
                tx.execute(
                    "UPDATE session SET title = ?2, time_updated = ?3, time_archived = ?4, data = ?5, project_id = ?6, directory = ?7, path = ?8
                     WHERE id = ?1",
                    params![
                        id,
                        session.title,
                        session.time.updated,
                        session.time.archived,
                        serde_json::to_string(&session)?,
                        session.project_id,
                        session.directory,
                        session.path
                    ],
                )?;
                let seq = bump(&tx, &id)?;
                let recorded = events::record(&tx, events::SESSION_UPDATED, SessionInfo { session_id: &id, info: &session }, &id, seq)?;
                tx.commit()?;
                recorded.publish(&bus, &scope);
                Ok(session)
            })
            .await
    }

    /// Deletes a session with its children (deepest first, as OpenCode does),
    /// their messages, parts and todos. Returns the deleted sessions.
    pub async fn delete_session(&self, scope: &Scope, id: &str) -> StoreResult<Vec<Session>> {
        let (bus, scope, id) = (self.bus.clone(), scope.clone(), id.to_string());
        self.db
            .write(move |conn| {
                let tx = conn.transaction()?;
                let mut doomed = Vec::new();
                collect_tree(&tx, load_session(&tx, &id)?, &mut doomed)?;
                let mut numbered = Vec::with_capacity(doomed.len());
                for session in doomed {
                    let seq = bump(&tx, &session.id)?;
                    tx.execute("DELETE FROM session WHERE id = ?1", [&session.id])?;
                    tx.execute("DELETE FROM sync_event WHERE aggregate_id = ?1", [&session.id])?;
                    numbered.push((session, seq));
                }
                tx.commit()?;
                for (session, seq) in &numbered {
                    let info = SessionInfo { session_id: &session.id, info: session };
                    events::durable(&bus, &scope, events::SESSION_DELETED, info, &session.id, *seq);
                }
                Ok(numbered.into_iter().map(|(s, _)| s).collect())
            })
            .await
    }
}

/// Depth-first, children before their parent.
fn collect_tree(tx: &Connection, session: Session, out: &mut Vec<Session>) -> StoreResult<()> {
    let children: Vec<String> = {
        let mut stmt = tx.prepare_cached("SELECT data FROM session WHERE parent_id = ?1 ORDER BY rowid")?;
        let rows = stmt.query_map([&session.id], |r| r.get::<_, String>(0))?;
        rows.collect::<Result<_, _>>()?
    };
    for data in children {
        collect_tree(tx, serde_json::from_str(&data)?, out)?;
    }
    out.push(session);
    Ok(())
}

pub(super) fn load_session(conn: &Connection, id: &str) -> StoreResult<Session> {
    let data: Option<String> = conn.query_row("SELECT data FROM session WHERE id = ?1", [id], |r| r.get(0)).optional()?;
    match data {
        Some(data) => Ok(serde_json::from_str(&data)?),
        None => Err(StoreError::session_not_found(id)),
    }
}

/// Takes the session's next event number.
pub(super) fn bump(conn: &Connection, session_id: &str) -> StoreResult<u64> {
    conn.query_row("UPDATE session SET seq = seq + 1 WHERE id = ?1 RETURNING seq", [session_id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::session_not_found(session_id))
}

/// The row of a new session (event number 0), owned by `owner` when a
/// replayed history names one: what creating a session and replaying its
/// `session.created` both write.
pub(super) fn insert_session_row(conn: &rusqlite::Connection, session: &Session, data: &str, owner: Option<&str>) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO session (id, project_id, parent_id, directory, path, title, time_updated, time_archived, seq, data, sync_owner)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9, ?10)",
        params![
            session.id,
            session.project_id,
            session.parent_id,
            session.directory,
            session.path,
            session.title,
            session.time.updated,
            session.time.archived,
            data,
            owner
        ],
    )?;
    Ok(())
}
