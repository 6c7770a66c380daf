//! The project rows: what clients set on a project (`PATCH /project/{id}`),
//! one JSON record per project id. Git says everything else about a project.

use rusqlite::{params, OptionalExtension};

use super::Store;
use crate::protocol::project::ProjectSettings;
use crate::session::error::StoreResult;

impl Store {
    /// What was set on project `id`; nothing set reads as the default.
    pub async fn project_settings(&self, id: &str) -> StoreResult<ProjectSettings> {
        let id = id.to_string();
        let data: Option<String> =
            self.db.read(move |conn| Ok(conn.query_row("SELECT data FROM project WHERE id = ?1", params![id], |r| r.get(0)).optional()?)).await?;
        Ok(match data {
            Some(text) => serde_json::from_str(&text)?,
            None => ProjectSettings::default(),
        })
    }

    /// Saves (or replaces) what is set on project `id`.
    pub async fn put_project_settings(&self, id: &str, settings: &ProjectSettings) -> StoreResult<()> {
        let (id, data) = (id.to_string(), serde_json::to_string(settings)?);
        self.db
            .write(move |conn| {
                conn.execute("INSERT INTO project (id, data) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET data = excluded.data", params![id, data])?;
                Ok(())
            })
            .await
    }
}
