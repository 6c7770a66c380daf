//! The snapshots sessions still reference, which a snapshot prune keeps
//! (`crate::session::snapshots`).

use super::Store;
use crate::session::error::StoreResult;

impl Store {
    /// Every snapshot id a stored part or revert state names: the `snapshot`
    /// of step-start, step-finish and snapshot parts, the `hash` of patch
    /// parts (what revert restores) and `revert.snapshot` (what redo restores).
    pub async fn snapshot_refs(&self) -> StoreResult<Vec<String>> {
        self.db
            .read(|conn| {
                let mut stmt = conn.prepare(
                    "SELECT DISTINCT id FROM (
                        SELECT json_extract(data, '$.snapshot') AS id FROM part
                         WHERE json_extract(data, '$.type') IN ('step-start', 'step-finish', 'snapshot')
                        UNION ALL
                        SELECT json_extract(data, '$.hash') FROM part WHERE json_extract(data, '$.type') = 'patch'
                        UNION ALL
                        SELECT json_extract(data, '$.revert.snapshot') FROM session
                     ) WHERE id IS NOT NULL",
                )?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }
}
