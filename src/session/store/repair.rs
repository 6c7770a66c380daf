//! Settling what a stopped server left unfinished.
//!
//! After a crash or `kill -9`, tool calls may still say "running" and
//! assistant messages may have no completion time; OpenCode leaves them so
//! forever, and clients show a spinner that never stops. At start-up Burrow
//! marks such tool calls as failed and completes their messages, and answers
//! the prompts that were still queued with an error (see `queued.rs`).

use rusqlite::params;

use super::{bump, Store};
use crate::protocol::message::{Message, MessageError};
use crate::protocol::part::{Part, PartBody, ToolError, ToolState, ToolTime};
use crate::session::error::StoreResult;

const INTERRUPTED: &str = "Interrupted: the server stopped before this finished";

impl Store {
    /// Returns how many tool parts were settled and how many queued prompts
    /// were answered. Publishes nothing: no client is connected yet.
    pub async fn settle_interrupted(&self) -> StoreResult<(usize, usize)> {
        self.db
            .write(|conn| {
                let tx = conn.transaction()?;
                let now = crate::now_ms();
                let parts: Vec<String> = {
                    let mut stmt = tx.prepare(
                        "SELECT data FROM part WHERE json_extract(data, '$.type') = 'tool'
                         AND json_extract(data, '$.state.status') IN ('pending', 'running')",
                    )?;
                    let rows = stmt.query_map([], |r| r.get(0))?;
                    rows.collect::<Result<_, _>>()?
                };
                let mut settled = 0;
                for data in parts {
                    let mut part: Part = serde_json::from_str(&data)?;
                    let PartBody::Tool(tool) = &mut part.body else { continue };
                    let (start, metadata) = match &tool.state {
                        ToolState::Running(r) => (r.time.start, r.metadata.clone()),
                        _ => (now, None),
                    };
                    let input = tool.state.input().clone();
                    let time = ToolTime { start, end: now, compacted: None };
                    tool.state = ToolState::Error(ToolError { time, input, error: INTERRUPTED.into(), metadata });
                    tx.execute("UPDATE part SET data = ?2 WHERE id = ?1", params![part.id, serde_json::to_string(&part)?])?;
                    bump(&tx, &part.session_id)?;
                    settled += 1;
                }
                let open: Vec<String> = {
                    let mut stmt = tx.prepare(
                        "SELECT data FROM message WHERE json_extract(data, '$.role') = 'assistant'
                         AND json_extract(data, '$.time.completed') IS NULL",
                    )?;
                    let rows = stmt.query_map([], |r| r.get(0))?;
                    rows.collect::<Result<_, _>>()?
                };
                for data in open {
                    let Message::Assistant(mut m) = serde_json::from_str(&data)? else { continue };
                    m.time.completed = Some(now);
                    m.error.get_or_insert(MessageError::MessageAbortedError { message: INTERRUPTED.into() });
                    let (id, session_id) = (m.id.clone(), m.session_id.clone());
                    tx.execute("UPDATE message SET data = ?2 WHERE id = ?1", params![id, serde_json::to_string(&Message::Assistant(m))?])?;
                    bump(&tx, &session_id)?;
                }
                let queued = Store::answer_queued(&tx, now)?;
                tx.commit()?;
                Ok((settled, queued))
            })
            .await
    }
}
