//! The content cache: file bytes fetched for searches, kept in memory or on
//! disk under a size cap, least recently used out first.
//!
//! Each entry carries the validator (ETag, else modification time and size)
//! that the listing gave when it was fetched. A lookup with a different
//! validator is a miss, so a changed object is fetched again and an unchanged
//! bucket is searched again without downloading anything.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::env::{EnvError, EnvResult};

pub struct ContentCache {
    /// The most bytes kept; 0 keeps nothing.
    cap: u64,
    /// Keeps caches of different workspaces apart in a shared folder.
    namespace: String,
    /// `Some` for a disk cache.
    dir: Option<PathBuf>,
    state: Mutex<Lru>,
}

#[derive(Default)]
struct Lru {
    slots: HashMap<String, Slot>,
    /// Use order: tick → key.
    order: BTreeMap<u64, String>,
    tick: u64,
    used: u64,
}

struct Slot {
    validator: String,
    size: u64,
    tick: u64,
    /// The bytes, for a memory cache.
    data: Option<Bytes>,
}

/// What a disk entry records beside its bytes, so a restarted server can trust them.
#[derive(Serialize, Deserialize)]
struct DiskMeta {
    key: String,
    validator: String,
}

impl ContentCache {
    pub fn memory(cap: u64, namespace: &str) -> Self {
        Self { cap, namespace: namespace.to_string(), dir: None, state: Mutex::default() }
    }

    /// A cache in `dir`, picking up what an earlier run left there for the same workspace.
    pub fn disk(cap: u64, namespace: &str, dir: &Path) -> EnvResult<Self> {
        std::fs::create_dir_all(dir).map_err(|e| EnvError::from_io(e, &dir.display().to_string()))?;
        let cache = Self { cap, namespace: namespace.to_string(), dir: Some(dir.to_path_buf()), state: Mutex::default() };
        let mut state = cache.lock();
        for entry in std::fs::read_dir(dir).map_err(|e| EnvError::from_io(e, &dir.display().to_string()))?.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let meta: Option<DiskMeta> = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
            let size = std::fs::metadata(path.with_extension("bin")).map(|m| m.len());
            match (meta, size) {
                (Some(meta), Ok(size)) if cache.file_stem(&meta.key) == path.file_stem().unwrap_or_default().to_string_lossy() => {
                    state.insert(meta.key, meta.validator, size, None);
                }
                // Another workspace's entry, or a half-written one: leave others', drop broken ones.
                (Some(_), Ok(_)) => {}
                _ => {
                    let _ = std::fs::remove_file(&path);
                    let _ = std::fs::remove_file(path.with_extension("bin"));
                }
            }
        }
        let evicted = state.evict(cap);
        drop(state);
        cache.remove_files(&evicted);
        Ok(cache)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The file name of a key: a hash, so any key is a safe name.
    fn file_stem(&self, key: &str) -> String {
        hex::encode(Sha256::digest(format!("{}\0{key}", self.namespace)))
    }

    fn files(&self, key: &str) -> Option<(PathBuf, PathBuf)> {
        let stem = self.file_stem(key);
        self.dir.as_ref().map(|d| (d.join(format!("{stem}.bin")), d.join(format!("{stem}.json"))))
    }

    /// The cached bytes of `key`, if they were fetched under `validator`.
    pub async fn get(&self, key: &str, validator: &str) -> Option<Bytes> {
        let data = {
            let mut state = self.lock();
            let slot = state.slots.get(key)?;
            if slot.validator != validator {
                return None;
            }
            let data = slot.data.clone();
            state.touch(key);
            data
        };
        if data.is_some() {
            return data;
        }
        let (bin, _) = self.files(key)?;
        match tokio::task::spawn_blocking(move || std::fs::read(bin)).await {
            Ok(Ok(bytes)) => Some(Bytes::from(bytes)),
            _ => {
                self.remove(key).await;
                None
            }
        }
    }

    /// Keeps `bytes` for `key`, evicting the least recently used entries past the cap.
    pub async fn put(&self, key: &str, validator: &str, bytes: Bytes) {
        let size = bytes.len() as u64;
        if size > self.cap {
            return;
        }
        if let Some((bin, json)) = self.files(key) {
            let meta = serde_json::to_vec(&DiskMeta { key: key.to_string(), validator: validator.to_string() }).unwrap_or_default();
            let dir = self.dir.clone().unwrap_or_default();
            let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                // Bytes first, then the record that vouches for them, each renamed into place.
                write_atomic(&dir, &bin, &bytes)?;
                write_atomic(&dir, &json, &meta)
            })
            .await;
            if !matches!(written, Ok(Ok(()))) {
                tracing::debug!("content cache: cannot write {key} to disk");
                return;
            }
            let evicted = {
                let mut state = self.lock();
                state.insert(key.to_string(), validator.to_string(), size, None);
                state.evict(self.cap)
            };
            self.remove_files(&evicted);
        } else {
            let mut state = self.lock();
            state.insert(key.to_string(), validator.to_string(), size, Some(bytes));
            state.evict(self.cap);
        }
    }

    /// Forgets `key` (written, deleted or renamed through the environment).
    pub async fn remove(&self, key: &str) {
        let removed = self.lock().remove(key);
        if removed {
            self.remove_files(&[key.to_string()]);
        }
    }

    /// Bytes held now.
    pub fn used(&self) -> u64 {
        self.lock().used
    }

    fn remove_files(&self, keys: &[String]) {
        for key in keys {
            if let Some((bin, json)) = self.files(key) {
                let _ = std::fs::remove_file(json);
                let _ = std::fs::remove_file(bin);
            }
        }
    }
}

impl Lru {
    fn insert(&mut self, key: String, validator: String, size: u64, data: Option<Bytes>) {
        self.remove(&key);
        self.tick += 1;
        self.order.insert(self.tick, key.clone());
        self.used += size;
        self.slots.insert(key, Slot { validator, size, tick: self.tick, data });
    }

    fn touch(&mut self, key: &str) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(slot) = self.slots.get_mut(key) {
            self.order.remove(&slot.tick);
            slot.tick = tick;
            self.order.insert(tick, key.to_string());
        }
    }

    fn remove(&mut self, key: &str) -> bool {
        match self.slots.remove(key) {
            Some(slot) => {
                self.order.remove(&slot.tick);
                self.used -= slot.size;
                true
            }
            None => false,
        }
    }

    /// Drops the least recently used entries until `used <= cap`; returns their keys.
    fn evict(&mut self, cap: u64) -> Vec<String> {
        let mut out = Vec::new();
        while self.used > cap {
            let Some((_, key)) = self.order.pop_first() else { break };
            if let Some(slot) = self.slots.remove(&key) {
                self.used -= slot.size;
            }
            out.push(key);
        }
        out
    }
}

fn write_atomic(dir: &Path, to: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, data)?;
    tmp.persist(to).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_cache_validates_and_evicts() {
        let c = ContentCache::memory(10, "s3://b");
        c.put("a", "v1", Bytes::from_static(b"aaaa")).await;
        c.put("b", "v1", Bytes::from_static(b"bbbb")).await;
        assert_eq!(c.get("a", "v1").await.as_deref(), Some(&b"aaaa"[..]));
        assert_eq!(c.get("a", "v2").await, None, "another validator is a miss");
        // "a" was used last, so "b" goes when "c" needs room.
        c.put("c", "v1", Bytes::from_static(b"cccc")).await;
        assert_eq!(c.get("b", "v1").await, None);
        assert!(c.get("a", "v1").await.is_some() && c.get("c", "v1").await.is_some());
        assert_eq!(c.used(), 8);
        c.put("huge", "v1", Bytes::from(vec![0u8; 11])).await;
        assert_eq!(c.get("huge", "v1").await, None);
        c.remove("a").await;
        assert_eq!(c.used(), 4);
    }

    #[tokio::test]
    async fn disk_cache_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = ContentCache::disk(100, "s3://b", dir.path()).unwrap();
            c.put("src/a.rs", "etag:1", Bytes::from_static(b"fn a() {}")).await;
            c.put("src/b.rs", "etag:1", Bytes::from_static(b"fn b() {}")).await;
            c.remove("src/b.rs").await;
        }
        let c = ContentCache::disk(100, "s3://b", dir.path()).unwrap();
        assert_eq!(c.get("src/a.rs", "etag:1").await.as_deref(), Some(&b"fn a() {}"[..]));
        assert_eq!(c.get("src/b.rs", "etag:1").await, None);
        assert_eq!(c.get("src/a.rs", "etag:2").await, None);
        let other = ContentCache::disk(100, "s3://other", dir.path()).unwrap();
        assert_eq!(other.get("src/a.rs", "etag:1").await, None, "workspaces do not share entries");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "the other workspace's entry stays");
    }
}
