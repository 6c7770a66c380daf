//! The workspaces rows: one JSON record per workspace a client created. The
//! store does not read the records; `crate::workspace` owns their shape.

use rusqlite::params;

use super::Store;
use crate::session::error::StoreResult;

impl Store {
    /// Every stored workspace record, oldest first.
    pub async fn workspaces(&self) -> StoreResult<Vec<serde_json::Value>> {
        self.db.json_rows("SELECT data FROM workspace ORDER BY time_created, id").await
    }

    /// Saves (or replaces) one workspace record.
    pub async fn put_workspace(&self, id: &str, created_ms: u64, data: serde_json::Value) -> StoreResult<()> {
        let (id, data) = (id.to_string(), serde_json::to_string(&data)?);
        self.db
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO workspace (id, time_created, data) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                    params![id, created_ms as i64, data],
                )?;
                Ok(())
            })
            .await
    }

    /// Forgets one workspace record; whether there was one.
    pub async fn delete_workspace(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_string();
        self.db.write(move |conn| Ok(conn.execute("DELETE FROM workspace WHERE id = ?1", params![id])? > 0)).await
    }
}
