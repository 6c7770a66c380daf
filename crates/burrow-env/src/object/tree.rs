//! The cached view of a bucket that searches run over: listings from the
//! listing index, bytes from the content cache, and a GET only for what the
//! cache does not hold for the object's current version.

use std::sync::atomic::Ordering;

use async_trait::async_trait;
use bytes::Bytes;

use super::env::Store;
use crate::env::{DirEntry, EnvError, EnvResult, WorkspacePath};
use crate::search::stream::Tree;

pub struct CachedTree<'a> {
    pub env: &'a Store,
}

#[async_trait]
impl Tree for CachedTree<'_> {
    async fn list(&self, dir: &WorkspacePath) -> EnvResult<Vec<DirEntry>> {
        self.env.index.read(|l| l.children(dir))
    }

    async fn read(&self, path: &WorkspacePath, max_bytes: u64) -> EnvResult<Bytes> {
        let meta = self.env.index.read(|l| l.file(path))?;
        if meta.size > max_bytes {
            return Err(EnvError::TooLarge { path: path.to_string(), size: meta.size, limit: max_bytes });
        }
        if let Some(bytes) = self.env.cache.get(path.as_str(), &meta).await {
            self.env.stats.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(bytes);
        }
        self.env.stats.fetches.fetch_add(1, Ordering::Relaxed);
        let bytes = self.env.fetch(path, max_bytes).await?;
        self.env.cache.put(path.as_str(), &meta, bytes.clone()).await;
        Ok(bytes)
    }
}
