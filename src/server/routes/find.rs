//! `GET /find` (text), `/find/file` (fuzzy), `/find/symbol` and the TUI's
//! `/api/fs/find`.

use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::DirectoryParams;
use crate::env::{EntryKind, GrepRequest};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::protocol::file::{FileSystemEntry, Symbol, TextMatch};
use crate::protocol::project::LocationInfo;
use crate::search::fuzzy::display_path;
use crate::server::extract::{Ctx, Query, Ws};
use crate::server::instance::Instance;
use crate::workspace::Scope;

/// OpenCode returns at most ten matching lines from `/find`.
pub const FIND_TEXT_LIMIT: usize = 10;
/// The largest `limit` Burrow accepts on `/find` (an extension).
pub const FIND_TEXT_MAX_LIMIT: usize = 1000;
pub const FIND_FILE_DEFAULT_LIMIT: usize = 10;
pub const FIND_FILE_MAX_LIMIT: usize = 200;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FindTextParams {
    /// A regular expression (Rust regex syntax, as ripgrep).
    pub pattern: String,
    /// Burrow extension: how many matching lines to return (default 10, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

#[utoipa::path(get, path = "/find", tag = "file", operation_id = "find.text",
    params(DirectoryParams, FindTextParams),
    responses((status = 200, description = "Matches", body = Vec<TextMatch>), (status = 400, body = ErrorBody),
        (status = 503, description = "Too many searches are running: retry after `Retry-After` seconds", body = ErrorBody)))]
pub async fn text(Ws(ws): Ws, Ctx(inst): Ctx, Query(q): Query<FindTextParams>) -> ApiResult<Json<Vec<TextMatch>>> {
    let limit = q.limit.unwrap_or(FIND_TEXT_LIMIT);
    if !(1..=FIND_TEXT_MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit must be between 1 and {FIND_TEXT_MAX_LIMIT}")));
    }
    let result = crate::search::gate::grep(&ws.runtime.env, GrepRequest::new(&inst.dir, q.pattern, limit)).await?;
    Ok(Json(result.matches.into_iter().map(TextMatch::from).collect()))
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KindParam {
    File,
    Directory,
}

impl From<KindParam> for EntryKind {
    fn from(k: KindParam) -> Self {
        match k {
            KindParam::File => EntryKind::File,
            KindParam::Directory => EntryKind::Directory,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FindFileParams {
    pub query: String,
    /// `"false"` leaves directories out.
    #[param(pattern = "^(true|false)$")]
    pub dirs: Option<String>,
    #[serde(rename = "type")]
    #[param(inline)]
    pub kind: Option<KindParam>,
    /// 1 to 200, default 10.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
}

fn check_limit(limit: Option<usize>) -> ApiResult<usize> {
    let limit = limit.unwrap_or(FIND_FILE_DEFAULT_LIMIT);
    if (1..=FIND_FILE_MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::bad_request(format!("limit must be between 1 and {FIND_FILE_MAX_LIMIT}")))
    }
}

/// Ranks the directory's file index for `query`.
async fn fuzzy(ws: &Scope, inst: &Instance, query: &str, kind: Option<EntryKind>, limit: usize) -> ApiResult<Vec<(String, EntryKind)>> {
    let snapshot = ws.indexes.get(&inst.dir).snapshot().await?;
    let query = query.to_string();
    tokio::task::spawn_blocking(move || snapshot.search(&query, kind, limit).into_iter().map(|e| (display_path(e), e.kind)).collect())
        .await
        .map_err(|e| ApiError::internal(format!("fuzzy search failed: {e}")))
}

#[utoipa::path(get, path = "/find/file", tag = "file", operation_id = "find.files",
    params(DirectoryParams, FindFileParams),
    responses((status = 200, description = "File paths", body = Vec<String>), (status = 400, body = ErrorBody)))]
pub async fn files(Ws(ws): Ws, Ctx(inst): Ctx, Query(q): Query<FindFileParams>) -> ApiResult<Json<Vec<String>>> {
    let limit = check_limit(q.limit)?;
    // `dirs` is checked even when `type` overrides it, as the document says.
    let dirs = match q.dirs.as_deref() {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => return Err(ApiError::bad_request(format!("dirs must be \"true\" or \"false\", not {other:?}"))),
    };
    let kind = match (q.kind, dirs) {
        (Some(k), _) => Some(k.into()),
        (None, false) => Some(EntryKind::File),
        (None, true) => None,
    };
    let hits = fuzzy(&ws, &inst, &q.query, kind, limit).await?;
    Ok(Json(hits.into_iter().map(|(p, _)| p).collect()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SymbolParams {
    pub query: String,
}

#[utoipa::path(get, path = "/find/symbol", tag = "file", operation_id = "find.symbols",
    params(DirectoryParams, SymbolParams),
    responses((status = 200, description = "Symbols", body = Vec<Symbol>)))]
pub async fn symbols(_ctx: Ctx, _query: Query<SymbolParams>) -> Json<Vec<Symbol>> {
    // No language servers run in Burrow yet; the reference answers [] too
    // when none is configured.
    Json(Vec::new())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FsFindParams {
    pub query: String,
    #[serde(rename = "type")]
    #[param(inline)]
    pub kind: Option<KindParam>,
    /// A number from 1 to 200, sent as a string by the TUI; empty means the default (10).
    #[param(pattern = r"^(\+?0*([1-9][0-9]?|1[0-9][0-9]|200))?$")]
    pub limit: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct FsFindResponse {
    pub location: LocationInfo,
    pub data: Vec<FileSystemEntry>,
}

#[utoipa::path(get, path = "/api/fs/find", tag = "v2", operation_id = "v2.fs.find",
    params(DirectoryParams, FsFindParams),
    responses((status = 200, body = FsFindResponse), (status = 400, body = ErrorBody)))]
pub async fn fs_find(Ws(ws): Ws, Ctx(inst): Ctx, Query(q): Query<FsFindParams>) -> ApiResult<Json<FsFindResponse>> {
    let limit = match q.limit.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(s.parse::<usize>().map_err(|_| ApiError::bad_request(format!("limit must be a number, not {s:?}")))?),
        None => None,
    };
    let limit = check_limit(limit)?;
    let hits = fuzzy(&ws, &inst, &q.query, q.kind.map(Into::into), limit).await?;
    let data = hits.into_iter().map(|(path, kind)| FileSystemEntry { path: path.trim_end_matches('/').to_string(), kind }).collect();
    Ok(Json(FsFindResponse { location: inst.location(), data }))
}
