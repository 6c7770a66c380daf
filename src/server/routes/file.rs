//! `GET /file`, `/file/content` and `/file/status`.

use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::DirectoryParams;
use crate::env::{EntryKind, EnvError};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::protocol::file::{FileContent, FileNode, FileStatus};
use crate::protocol::order;
use crate::search::ignore_rules::IgnoreRules;
use crate::server::extract::{Ctx, Query, Ws};
use crate::{content, vcs};

/// Files larger than this are refused by `/file/content` with a 413.
pub const MAX_CONTENT_BYTES: u64 = 64 << 20;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PathParam {
    /// Relative to the directory, or absolute inside the workspace.
    pub path: String,
}

#[utoipa::path(get, path = "/file", tag = "file", operation_id = "file.list",
    params(DirectoryParams, PathParam),
    responses((status = 200, description = "Files and directories", body = Vec<FileNode>),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(Ws(ws): Ws, Ctx(inst): Ctx, Query(q): Query<PathParam>) -> ApiResult<Json<Vec<FileNode>>> {
    let dir = inst.resolve(ws.runtime.env.root(), &q.path)?;
    let mut entries = ws.runtime.env.list(&dir).await?;
    order::sort_listing(&mut entries);
    let rules = IgnoreRules::load(&*ws.runtime.env, &dir).await;
    let flags = rules.flags(&dir, &entries);
    let nodes = entries
        .into_iter()
        .zip(flags)
        .map(|(e, ignored)| {
            let path = dir.join(&e.name);
            let mut rel = inst.relative(&path).to_string();
            if e.kind == EntryKind::Directory {
                rel.push('/');
            }
            FileNode { absolute: path.absolute(ws.runtime.env.root()), name: e.name, path: rel, kind: e.kind, ignored }
        })
        .collect();
    Ok(Json(nodes))
}

#[utoipa::path(get, path = "/file/content", tag = "file", operation_id = "file.read",
    params(DirectoryParams, PathParam),
    responses((status = 200, body = FileContent), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn read(Ws(ws): Ws, Ctx(inst): Ctx, Query(q): Query<PathParam>) -> ApiResult<Json<FileContent>> {
    let path = inst.resolve(ws.runtime.env.root(), &q.path)?;
    let bytes = ws.runtime.env.read(&path, MAX_CONTENT_BYTES).await.map_err(|e| match e {
        EnvError::IsADirectory(p) => ApiError::bad_request(format!("{p} is a directory; list it with GET /file")),
        other => other.into(),
    })?;
    let name = path.file_name().to_string();
    let classified = tokio::task::spawn_blocking(move || content::classify(&name, bytes))
        .await
        .map_err(|e| ApiError::internal(format!("classifying content failed: {e}")))?;
    Ok(Json(classified))
}

#[utoipa::path(get, path = "/file/status", tag = "file", operation_id = "file.status",
    params(DirectoryParams),
    responses((status = 200, description = "File status", body = Vec<FileStatus>)))]
pub async fn status(Ws(ws): Ws, Ctx(inst): Ctx) -> ApiResult<Json<Vec<FileStatus>>> {
    if inst.project.vcs.is_none() {
        return Ok(Json(Vec::new()));
    }
    Ok(Json(vcs::status(&*ws.runtime.env, &inst.dir).await?))
}
