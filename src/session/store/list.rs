//! `GET /session`'s filters, in OpenCode's semantics: a project's sessions,
//! most recently updated first, narrowed by directory, path, roots, start and
//! a title search.

use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;

use crate::protocol::session::Session;
use crate::session::error::StoreResult;

/// The default and largest page when the client names no limit.
pub const DEFAULT_LIMIT: usize = 100;

#[derive(Clone, Debug, Default)]
pub struct SessionFilter {
    /// Only the sessions of this project.
    pub project_id: Option<String>,
    /// Only sessions made in this directory (when the client named one and no `path`).
    pub directory: Option<String>,
    /// Only sessions at this path below the worktree, or below it. An empty
    /// path means no path filter.
    pub path: Option<String>,
    /// Only sessions without a parent.
    pub roots: bool,
    /// Only sessions updated at or after this time (ms).
    pub start: Option<u64>,
    /// Only sessions whose title contains this text (ASCII case-insensitive).
    pub search: Option<String>,
    pub limit: Option<usize>,
    /// Which workspace's sessions (`workspaceID`).
    pub workspace: InWorkspace,
}

/// A session belongs to the workspace its `workspaceID` names, or to the
/// server's own environment when it names none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum InWorkspace {
    /// Whatever workspace: OpenCode's `GET /session` without one.
    #[default]
    Any,
    /// Only the sessions of the server's own environment.
    Default,
    /// Only the sessions of this workspace.
    Named(String),
}

pub fn sessions(conn: &Connection, f: &SessionFilter) -> StoreResult<Vec<Session>> {
    let mut sql = String::from("SELECT data FROM session WHERE 1 = 1");
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(project) = &f.project_id {
        sql.push_str(" AND project_id = ?");
        args.push(project.clone().into());
    }
    match f.path.as_deref() {
        Some("") => {}
        Some(path) => {
            sql.push_str(" AND (path = ? OR path LIKE ? ESCAPE '\\'");
            args.push(path.to_string().into());
            args.push(format!("{}/%", escape_like(path)).into());
            if let Some(dir) = &f.directory {
                sql.push_str(" OR (path IS NULL AND directory = ?)");
                args.push(dir.clone().into());
            }
            sql.push(')');
        }
        None => {
            if let Some(dir) = &f.directory {
                sql.push_str(" AND directory = ?");
                args.push(dir.clone().into());
            }
        }
    }
    match &f.workspace {
        InWorkspace::Any => {}
        InWorkspace::Default => sql.push_str(" AND json_extract(data, '$.workspaceID') IS NULL"),
        InWorkspace::Named(id) => {
            sql.push_str(" AND json_extract(data, '$.workspaceID') = ?");
            args.push(id.clone().into());
        }
    }
    if f.roots {
        sql.push_str(" AND parent_id IS NULL");
    }
    if let Some(start) = f.start {
        sql.push_str(" AND time_updated >= ?");
        args.push((start as i64).into());
    }
    if let Some(search) = f.search.as_deref().filter(|s| !s.is_empty()) {
        sql.push_str(" AND title LIKE ? ESCAPE '\\'");
        args.push(format!("%{}%", escape_like(search)).into());
    }
    sql.push_str(" ORDER BY time_updated DESC, id ASC LIMIT ?");
    args.push((f.limit.unwrap_or(DEFAULT_LIMIT).min(i64::MAX as usize) as i64).into());
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0))?;
    rows.map(|data| Ok(serde_json::from_str(&data?)?)).collect()
}

/// Makes `%`, `_` and `\` match themselves in a LIKE pattern (OpenCode does
/// not, so a search for `50%` matches everything there).
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
