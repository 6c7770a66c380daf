//! Prompts waiting for a busy session, on disk, so that a server that stops
//! before their turn comes does not forget them: the next start answers each
//! with the assistant message it left ready, which carries the error.

use rusqlite::params;

use super::{bump, Store};
use crate::protocol::message::{AssistantMessage, Message};
use crate::session::error::StoreResult;

impl Store {
    /// Records that the prompt of user message `answer.parent_id` waits; `answer`
    /// is what the next start stores if the prompt never ran.
    pub async fn mark_queued(&self, answer: &AssistantMessage) -> StoreResult<()> {
        let (message_id, session_id, data) = (answer.parent_id.clone(), answer.session_id.clone(), serde_json::to_string(answer)?);
        self.db
            .write(move |conn| {
                conn.execute("INSERT OR REPLACE INTO queued (message_id, session_id, data) VALUES (?1, ?2, ?3)", params![message_id, session_id, data])?;
                Ok(())
            })
            .await
    }

    /// The prompt of this user message runs now, or will never run.
    pub async fn unmark_queued(&self, message_id: &str) -> StoreResult<()> {
        let message_id = message_id.to_string();
        self.db
            .write(move |conn| {
                conn.execute("DELETE FROM queued WHERE message_id = ?1", [&message_id])?;
                Ok(())
            })
            .await
    }

    /// At start-up: stores the answer of every prompt that was still waiting
    /// when the last server stopped. Returns how many. Publishes nothing: no
    /// client is connected yet.
    pub(super) fn answer_queued(tx: &rusqlite::Transaction<'_>, now: u64) -> StoreResult<usize> {
        let rows: Vec<String> = {
            let mut stmt = tx.prepare("SELECT data FROM queued ORDER BY message_id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        for data in &rows {
            let mut answer: AssistantMessage = serde_json::from_str(data)?;
            answer.time.created = now;
            answer.time.completed = Some(now);
            let message = Message::Assistant(answer);
            tx.execute(
                "INSERT OR IGNORE INTO message (id, session_id, time_created, data) VALUES (?1, ?2, ?3, ?4)",
                params![message.id(), message.session_id(), now, serde_json::to_string(&message)?],
            )?;
            bump(tx, message.session_id())?;
        }
        tx.execute("DELETE FROM queued", [])?;
        Ok(rows.len())
    }
}
