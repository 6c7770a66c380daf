//! The SQLite file behind the session store: opening, schema migrations and
//! the connections.
//!
//! One writer connection behind a mutex serialises writes (SQLite allows one
//! writer at a time anyway, and holding our own lock keeps the order of commits
//! and of the events published after them the same). A few reader connections
//! serve queries concurrently thanks to WAL. Every call runs on the blocking
//! pool, never on the async runtime.
//!
//! Durability: WAL with `synchronous=NORMAL`. A committed transaction is in
//! the WAL file before the commit returns, so a crash or `kill -9` of the
//! server loses nothing that was committed; only a power cut can lose the last
//! commits (and never corrupts the file).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

use super::error::{StoreError, StoreResult};

/// Schema changes, oldest first. `PRAGMA user_version` records how many ran;
/// a new Burrow appends here and never edits an entry that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: sessions, messages, parts and todos. Rows keep the protocol JSON in
    // `data`; the other columns exist for filtering and ordering.
    "CREATE TABLE session (
        id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL,
        parent_id TEXT,
        directory TEXT NOT NULL,
        path TEXT,
        title TEXT NOT NULL,
        time_updated INTEGER NOT NULL,
        time_archived REAL,
        seq INTEGER NOT NULL DEFAULT 0,
        data TEXT NOT NULL
    );
    CREATE INDEX session_project_updated ON session(project_id, time_updated);
    CREATE INDEX session_parent ON session(parent_id);
    CREATE TABLE message (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES session(id) ON DELETE CASCADE,
        time_created INTEGER NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX message_session ON message(session_id, time_created, id);
    CREATE TABLE part (
        id TEXT PRIMARY KEY,
        message_id TEXT NOT NULL REFERENCES message(id) ON DELETE CASCADE,
        session_id TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX part_message ON part(message_id, id);
    CREATE INDEX part_session ON part(session_id);
    CREATE TABLE todo (
        session_id TEXT PRIMARY KEY REFERENCES session(id) ON DELETE CASCADE,
        data TEXT NOT NULL
    );",
    // 2: prompts waiting for a busy session. Each row holds the assistant
    // message (with its error) to store if the server stops before the prompt
    // runs; the prompt deletes its row when its turn comes or an abort drops it.
    "CREATE TABLE queued (
        message_id TEXT PRIMARY KEY REFERENCES message(id) ON DELETE CASCADE,
        session_id TEXT NOT NULL,
        data TEXT NOT NULL
    );",
    // 3: the workspaces a client created (`POST /experimental/workspace`),
    // so that they and their containers are found again after a restart.
    "CREATE TABLE workspace (
        id TEXT PRIMARY KEY,
        time_created INTEGER NOT NULL,
        data TEXT NOT NULL
    );",
    // 4: each session's sync history (OpenCode's event table: what `POST
    // /sync/history` lists and `/sync/replay` appends to), one row per durable
    // event, and the workspace that owns a replayed or stolen session.
    "CREATE TABLE sync_event (
        id TEXT PRIMARY KEY,
        aggregate_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        type TEXT NOT NULL,
        data TEXT NOT NULL,
        UNIQUE (aggregate_id, seq)
    );
    CREATE INDEX sync_event_seq ON sync_event(seq);
    ALTER TABLE session ADD COLUMN sync_owner TEXT;",
    // 5: what clients set on projects (`PATCH /project/{id}`: name, icon,
    // commands), keyed by the project id; git says the rest.
    "CREATE TABLE project (
        id TEXT PRIMARY KEY,
        data TEXT NOT NULL
    );",
    // 6: saved `always` permission answers (`/api/permission/saved`), per
    // project, so a restart does not ask again what the user allowed for good.
    "CREATE TABLE permission_saved (
        id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL,
        data TEXT NOT NULL
    );",
];

const READERS: usize = 4;

#[derive(Clone)]
pub struct Db {
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Vec<Mutex<Connection>>>,
    next_reader: Arc<AtomicUsize>,
}

impl Db {
    /// Opens (creating if needed) and migrates the database. Blocking.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let mut writer = Connection::open(path).map_err(|e| StoreError::db(format!("cannot open {}", path.display()), e))?;
        configure(&writer)?;
        migrate(&mut writer)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
            let conn = Connection::open_with_flags(path, flags).map_err(|e| StoreError::db("cannot open a reader", e))?;
            conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| StoreError::db("busy_timeout", e))?;
            readers.push(Mutex::new(conn));
        }
        Ok(Self { writer: Arc::new(Mutex::new(writer)), readers: Arc::new(readers), next_reader: Arc::default() })
    }

    /// Runs `f` with the writer connection on the blocking pool. Callers open
    /// their own transaction, and publish events before returning so that
    /// events leave in commit order.
    pub async fn write<T: Send + 'static>(&self, f: impl FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static) -> StoreResult<T> {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = writer.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Db(format!("store task failed: {e}")))?
    }

    /// Every row of `sql` (one TEXT column of JSON records, no parameters),
    /// each parsed as a `T`: how the stores of whole records read them back.
    pub async fn json_rows<T: serde::de::DeserializeOwned + Send + 'static>(&self, sql: &'static str) -> StoreResult<Vec<T>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(sql)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for row in rows {
                out.push(serde_json::from_str(&row?)?);
            }
            Ok(out)
        })
        .await
    }

    /// Runs a query on one of the reader connections.
    pub async fn read<T: Send + 'static>(&self, f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static) -> StoreResult<T> {
        let readers = self.readers.clone();
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % readers.len();
        tokio::task::spawn_blocking(move || {
            let conn = readers[i].lock().unwrap_or_else(|e| e.into_inner());
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Db(format!("store task failed: {e}")))?
    }
}

fn configure(conn: &Connection) -> StoreResult<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| StoreError::db("busy_timeout", e))?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .map_err(|e| StoreError::db("cannot configure the database", e))
}

/// Brings the schema up to date in one transaction per step.
fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| StoreError::db("user_version", e))?;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Db(format!(
            "the session database has schema version {version}, newer than this Burrow knows ({}); upgrade Burrow",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction().map_err(|e| StoreError::db("migration", e))?;
        tx.execute_batch(sql).map_err(|e| StoreError::db(format!("migration {}", i + 1), e))?;
        tx.pragma_update(None, "user_version", i + 1).map_err(|e| StoreError::db("user_version", e))?;
        tx.commit().map_err(|e| StoreError::db("migration commit", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer_schemas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(Db::open(&path).unwrap());
        // Reopening keeps the schema (no migration runs twice).
        drop(Db::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        let v: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(v, MIGRATIONS.len());
        let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Db::open(&path).err().expect("a newer schema is refused");
        assert!(err.to_string().contains("newer"), "{err}");
    }
}
