//! The saved `always` permission answers: one row per answer, the JSON of
//! `agent::permission::SavedRule`. The server reads them all at start; the
//! permission registry writes each change through [`SavedStore`].

use async_trait::async_trait;
use rusqlite::params;

use super::Store;
use crate::agent::permission::{SavedRule, SavedStore};
use crate::session::error::StoreResult;

impl Store {
    /// Every saved answer, oldest first (ids ascend with time).
    pub async fn saved_permissions(&self) -> StoreResult<Vec<SavedRule>> {
        self.db.json_rows("SELECT data FROM permission_saved ORDER BY id").await
    }

    /// Saves (or replaces) one answer.
    pub async fn put_saved_permission(&self, rule: &SavedRule) -> StoreResult<()> {
        let (id, project, data) = (rule.id.clone(), rule.project_id.clone(), serde_json::to_string(rule)?);
        self.db
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO permission_saved (id, project_id, data) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                    params![id, project, data],
                )?;
                Ok(())
            })
            .await
    }

    /// Forgets one answer; whether there was one.
    pub async fn delete_saved_permission(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_string();
        self.db.write(move |conn| Ok(conn.execute("DELETE FROM permission_saved WHERE id = ?1", params![id])? > 0)).await
    }
}

#[async_trait]
impl SavedStore for Store {
    async fn add_saved(&self, rule: &SavedRule) -> anyhow::Result<()> {
        Ok(self.put_saved_permission(rule).await?)
    }

    async fn remove_saved(&self, id: &str) -> anyhow::Result<()> {
        self.delete_saved_permission(id).await?;
        Ok(())
    }
}
