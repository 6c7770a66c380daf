//! The content cache: file bytes fetched for searches, kept in memory or on
//! disk under a size cap, least recently used out first.
//!
//! Each entry carries the [`Version`] of the object its bytes were fetched
//! as. A lookup for another version is a miss, so a changed object is fetched
//! again and an unchanged bucket is searched again without downloading
//! anything.
//!
//! The version of one object is told by a HEAD (reading a file) and by a
//! listing (searching), and services describe it differently in each: s3s-fs
//! lists no ETag but a modification time in milliseconds, and answers a HEAD
//! with an ETag and a time in whole seconds. Compared as strings, the two
//! never matched, so a read and a search each fetched the object again and
//! replaced the other's entry. [`Version::same`] compares what both sides
//! know, and an entry keeps what every side told about it: one entry per
//! object version, whichever way it was reached.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::listing::ObjectMeta;
use crate::env::{EnvError, EnvResult};

/// What identifies one version of an object, as far as a HEAD or a listing tells it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// Without the quotes and the weak marker, which services add or leave out.
    etag: Option<String>,
    modified_ms: Option<i64>,
    size: u64,
}

impl Version {
    /// The version `meta` describes; None when it has neither an ETag nor a
    /// modification time (then nothing is served from the cache).
    pub fn of(meta: &ObjectMeta) -> Option<Self> {
        let etag = meta.etag.as_deref().map(|e| e.trim().trim_start_matches("W/").trim_matches('"').to_string()).filter(|e| !e.is_empty());
        (etag.is_some() || meta.modified_ms.is_some()).then_some(Self { etag, modified_ms: meta.modified_ms, size: meta.size })
    }

    /// Whether both describe the same version: the ETags when both have one,
    /// else the size and the modification time. An HTTP date (a HEAD) has
    /// whole seconds where a listing has milliseconds, so a time of whole
    /// seconds is compared to the second.
    pub fn same(&self, other: &Version) -> bool {
        if self.size != other.size {
            return false;
        }
        match (&self.etag, &other.etag, self.modified_ms, other.modified_ms) {
            (Some(a), Some(b), _, _) => a == b,
            (_, _, Some(a), Some(b)) if a % 1000 == 0 || b % 1000 == 0 => a.div_euclid(1000) == b.div_euclid(1000),
            (_, _, Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    /// This version with what `other`, the same version, adds: an ETag, or
    /// milliseconds where this has whole seconds.
    fn merged(mut self, other: &Version) -> Self {
        if self.etag.is_none() {
            self.etag = other.etag.clone();
        }
        match (self.modified_ms, other.modified_ms) {
            (None, m) => self.modified_ms = m,
            (Some(a), Some(b)) if a % 1000 == 0 && b % 1000 != 0 => self.modified_ms = Some(b),
            _ => {}
        }
        self
    }
}

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
    version: Version,
    size: u64,
    tick: u64,
    /// The bytes, for a memory cache.
    data: Option<Bytes>,
}

/// What a disk entry records beside its bytes, so a restarted server can trust them.
#[derive(Serialize, Deserialize)]
struct DiskMeta {
    key: String,
    version: Version,
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
                    state.insert(meta.key, meta.version, size, None);
                }
                // Another workspace's entry, or a half-written one (or one of
                // an older format): leave others', drop broken ones.
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

    /// The cached bytes of `key`, if they are of the version `meta` describes.
    pub async fn get(&self, key: &str, meta: &ObjectMeta) -> Option<Bytes> {
        let version = Version::of(meta)?;
        let data = {
            let mut state = self.lock();
            let slot = state.slots.get_mut(key)?;
            if !slot.version.same(&version) {
                return None;
            }
            // Learn what this side tells (an ETag, milliseconds): later
            // lookups then compare ETags rather than times.
            let merged = slot.version.clone().merged(&version);
            let learned = (merged != slot.version).then(|| merged.clone());
            slot.version = merged;
            let data = slot.data.clone();
            state.touch(key);
            (data, learned)
        };
        let (data, learned) = data;
        if let (Some(version), Some((_, json))) = (learned, self.files(key)) {
            let meta = serde_json::to_vec(&DiskMeta { key: key.to_string(), version }).unwrap_or_default();
            let dir = self.dir.clone().unwrap_or_default();
            // Best effort: without it, a restarted server compares times again.
            let _ = tokio::task::spawn_blocking(move || write_atomic(&dir, &json, &meta)).await;
        }
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

    /// Keeps `bytes` for `key`, of the version `meta` describes (nothing
    /// without one), evicting the least recently used entries past the cap.
    pub async fn put(&self, key: &str, meta: &ObjectMeta, bytes: Bytes) {
        let size = bytes.len() as u64;
        let Some(mut version) = Version::of(meta) else { return };
        if size > self.cap {
            return;
        }
        if let Some(old) = self.lock().slots.get(key).filter(|s| s.version.same(&version)) {
            version = version.merged(&old.version);
        }
        if let Some((bin, json)) = self.files(key) {
            let meta = serde_json::to_vec(&DiskMeta { key: key.to_string(), version: version.clone() }).unwrap_or_default();
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
                state.insert(key.to_string(), version, size, None);
                state.evict(self.cap)
            };
            self.remove_files(&evicted);
        } else {
            let mut state = self.lock();
            state.insert(key.to_string(), version, size, Some(bytes));
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
    fn insert(&mut self, key: String, version: Version, size: u64, data: Option<Bytes>) {
        self.remove(&key);
        self.tick += 1;
        self.order.insert(self.tick, key.clone());
        self.used += size;
        self.slots.insert(key, Slot { version, size, tick: self.tick, data });
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

    fn etag(tag: &str, size: u64) -> ObjectMeta {
        ObjectMeta { size, etag: Some(tag.into()), modified_ms: None }
    }

    #[tokio::test]
    async fn memory_cache_validates_and_evicts() {
        let c = ContentCache::memory(10, "s3://b");
        c.put("a", &etag("v1", 4), Bytes::from_static(b"aaaa")).await;
        c.put("b", &etag("v1", 4), Bytes::from_static(b"bbbb")).await;
        assert_eq!(c.get("a", &etag("v1", 4)).await.as_deref(), Some(&b"aaaa"[..]));
        assert_eq!(c.get("a", &etag("v2", 4)).await, None, "another version is a miss");
        // "a" was used last, so "b" goes when "c" needs room.
        c.put("c", &etag("v1", 4), Bytes::from_static(b"cccc")).await;
        assert_eq!(c.get("b", &etag("v1", 4)).await, None);
        assert!(c.get("a", &etag("v1", 4)).await.is_some() && c.get("c", &etag("v1", 4)).await.is_some());
        assert_eq!(c.used(), 8);
        c.put("huge", &etag("v1", 11), Bytes::from(vec![0u8; 11])).await;
        assert_eq!(c.get("huge", &etag("v1", 11)).await, None);
        c.put("nameless", &ObjectMeta { size: 1, etag: None, modified_ms: None }, Bytes::from_static(b"n")).await;
        assert_eq!(c.used(), 8, "an object with no validator is not kept");
        c.remove("a").await;
        assert_eq!(c.used(), 4);
    }

    #[tokio::test]
    async fn disk_cache_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = ContentCache::disk(100, "s3://b", dir.path()).unwrap();
            c.put("src/a.rs", &etag("1", 9), Bytes::from_static(b"fn a() {}")).await;
            c.put("src/b.rs", &etag("1", 9), Bytes::from_static(b"fn b() {}")).await;
            c.remove("src/b.rs").await;
        }
        let c = ContentCache::disk(100, "s3://b", dir.path()).unwrap();
        assert_eq!(c.get("src/a.rs", &etag("1", 9)).await.as_deref(), Some(&b"fn a() {}"[..]));
        assert_eq!(c.get("src/b.rs", &etag("1", 9)).await, None);
        assert_eq!(c.get("src/a.rs", &etag("2", 9)).await, None);
        let other = ContentCache::disk(100, "s3://other", dir.path()).unwrap();
        assert_eq!(other.get("src/a.rs", &etag("1", 9)).await, None, "workspaces do not share entries");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "the other workspace's entry stays");
    }

    /// What s3s-fs answers for one object: the listing has no ETag and a time
    /// in milliseconds, a HEAD has a quoted ETag and an HTTP date (seconds).
    /// Both must find the entry the other put, after a restart too.
    #[tokio::test]
    async fn a_head_and_a_listing_of_one_version_share_one_entry() {
        let listed = ObjectMeta { size: 6, etag: None, modified_ms: Some(1_796_670_159_468) };
        let headed = ObjectMeta { size: 6, etag: Some("\"bf03baf4\"".into()), modified_ms: Some(1_796_670_159_000) };
        let dir = tempfile::tempdir().unwrap();
        {
            let c = ContentCache::disk(100, "s3://b", dir.path()).unwrap();
            c.put("a.txt", &listed, Bytes::from_static(b"search")).await;
            assert_eq!(c.get("a.txt", &headed).await.as_deref(), Some(&b"search"[..]), "a read finds what a search fetched");
            c.put("b.txt", &headed, Bytes::from_static(b"opened")).await;
            assert_eq!(c.get("b.txt", &listed).await.as_deref(), Some(&b"opened"[..]), "a search finds what a read fetched");
        }
        let c = ContentCache::disk(100, "s3://b", dir.path()).unwrap();
        for key in ["a.txt", "b.txt"] {
            assert!(c.get(key, &listed).await.is_some() && c.get(key, &headed).await.is_some(), "{key} after a restart");
        }
        assert_eq!(c.used(), 12, "one entry per object");
        // Another version: a new ETag, or a new time or size where no ETag is known.
        assert_eq!(c.get("a.txt", &ObjectMeta { etag: Some("W/\"other\"".into()), ..headed.clone() }).await, None);
        assert_eq!(c.get("a.txt", &ObjectMeta { modified_ms: Some(1_796_670_159_469), ..listed.clone() }).await, None);
        assert_eq!(c.get("a.txt", &ObjectMeta { modified_ms: Some(1_796_670_160_000), ..headed.clone() }).await.as_deref(), Some(&b"search"[..]));
        assert_eq!(c.get("a.txt", &ObjectMeta { size: 7, ..listed.clone() }).await, None);
    }

    #[test]
    fn versions_compare_etags_without_quotes_and_times_to_the_precision_both_have() {
        let v = |etag: Option<&str>, ms: Option<i64>| Version::of(&ObjectMeta { size: 1, etag: etag.map(str::to_string), modified_ms: ms }).unwrap();
        assert!(v(Some("\"x\""), None).same(&v(Some("x"), None)));
        assert!(v(Some("W/\"x\""), None).same(&v(Some("\"x\""), Some(5))));
        assert!(!v(Some("x"), Some(5)).same(&v(Some("y"), Some(5))), "ETags decide when both have one");
        assert!(v(None, Some(2_000)).same(&v(Some("x"), Some(2_999))));
        assert!(!v(None, Some(2_001)).same(&v(None, Some(2_002))));
        assert!(!v(Some("x"), None).same(&v(None, Some(2_000))), "nothing in common");
        assert!(Version::of(&ObjectMeta::default()).is_none());
    }
}
