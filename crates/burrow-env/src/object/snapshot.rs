//! Undo snapshots for object storage: the same git objects as the local store
//! (`crate::snapshot`: loose blobs and trees, git's tree hashes), written as
//! objects under a snapshot prefix instead of files.
//!
//! Why this way: a bucket has no compute next to it, so the server does the
//! work, and what it pays for is transfers. A snapshot lists the workspace
//! (the listing index, usually cached) and reads only the objects whose ETag
//! (else modification time and size) it has not seen at that path before,
//! through the content cache; everything else is a lookup in the validator
//! map. So an unchanged bucket costs a listing, and a changed object one
//! download and one upload. The validator map is kept as the object
//! `burrow-validators` under the prefix, so a restarted server does not
//! download the bucket again.
//!
//! The prefix is `BURROW_OBJECT_SNAPSHOTS` (a URL of the same service), else
//! `.burrow-snapshots/<workspace prefix>` in the same bucket (for `fs://`, the
//! folder `<workspace>.burrow-snapshots` beside it). When the workspace is the
//! whole bucket that default lies inside it, and snapshots leave it out.
//! A restore writes and removes objects one by one: each is atomic, the set is not.
//!
//! Pruning ([`ObjectSnapshots::prune`]) has the local store's policy
//! (`crate::snapshot::prune`): a copy under `objects/` goes only when no
//! referenced snapshot reaches it **and** its `Last-Modified` is older than
//! the age (at least [`MIN_PRUNE_AGE`]). What stays: what the referenced
//! snapshots reach, every young copy and all that a young tree reaches, and
//! the blobs the validator maps name (this server's and the bucket's), which a
//! track reuses without looking. Why a concurrent track never loses a copy:
//! - a copy a track just wrote is young by its own `Last-Modified`, and only
//!   copies the listing showed old are deleted;
//! - within one server, a prune holds the lock a track holds from its listing
//!   to its last write (`seen`), so no track of it reuses a copy while the
//!   prune decides; the prune then forgets what it deleted (`stored`), so a
//!   later track uploads such a copy again instead of trusting it is there;
//! - a track freshens the root tree it answers (rewrites it when this server
//!   has not written it in the last half of the least age), so a snapshot
//!   just taken is young and keeps all it reaches, however old, until a
//!   session has recorded it.
//!
//! Not covered: two servers sharing one snapshot prefix, one pruning while the
//! other's track reuses an old copy it knows is stored at that same moment
//! (a bucket has no lock to take); prune such a prefix from one server.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use opendal::Operator;

use super::env::ObjectEnv;
use super::location::{Location, Service};
use crate::env::{Env, EnvError, EnvResult, SnapshotChange, SnapshotPruned, WorkspacePath};
use crate::snapshot::{self, Entry, TreeMode, MAX_FILE, MIN_PRUNE_AGE};

const VALIDATORS: &str = "burrow-validators";

pub struct ObjectSnapshots {
    op: Operator,
    /// Where the snapshots are, for messages.
    pub url: String,
    /// A workspace-relative prefix to leave out: the store, when it lies inside.
    skip: Option<String>,
    /// path → (validator, blob id), loaded once from [`VALIDATORS`].
    seen: tokio::sync::Mutex<Option<HashMap<String, (String, String)>>>,
    /// Objects known to be stored.
    stored: Mutex<HashSet<String>>,
    /// Root trees this server wrote or freshened, and when.
    fresh: Mutex<HashMap<String, Instant>>,
}

impl ObjectSnapshots {
    /// The snapshot location of the workspace at `ws`: `configured` (a URL), else the default.
    pub fn location(ws: &Location, configured: Option<String>) -> anyhow::Result<(Location, Option<String>)> {
        if let Some(url) = configured.filter(|u| !u.trim().is_empty()) {
            let loc = Location::parse(url.trim())?;
            let skip = (loc.service == ws.service && loc.authority == ws.authority).then(|| inside(&ws.prefix, &loc.prefix)).flatten();
            return Ok((loc, skip));
        }
        let prefix = match ws.service {
            Service::Fs => format!("{}.burrow-snapshots", ws.prefix),
            _ if ws.prefix.is_empty() => ".burrow-snapshots".to_string(),
            _ => format!(".burrow-snapshots/{}", ws.prefix),
        };
        let skip = inside(&ws.prefix, &prefix);
        Ok((Location { service: ws.service, authority: ws.authority.clone(), prefix }, skip))
    }

    pub fn new(op: Operator, url: String, skip: Option<String>) -> Self {
        Self { op, url, skip, seen: tokio::sync::Mutex::new(None), stored: Mutex::new(HashSet::new()), fresh: Mutex::new(HashMap::new()) }
    }

    pub async fn track(&self, env: &ObjectEnv) -> EnvResult<String> {
        let files = env.all_files().await?;
        let mut seen_guard = self.seen.lock().await;
        // The bucket's map, read once: it also fills this server's when empty.
        let bucket_map = self.load_validators().await;
        if seen_guard.is_none() {
            *seen_guard = Some(bucket_map.clone());
        }
        let seen = seen_guard.as_mut().unwrap_or_else(|| unreachable!("loaded above"));
        let before = seen.len();
        let mut changed = false;
        let mut tree: BTreeMap<String, Entry> = BTreeMap::new();
        for (path, size, validator) in files {
            if size > MAX_FILE || self.skip.as_ref().is_some_and(|s| path == *s || path.starts_with(&format!("{s}/"))) {
                continue;
            }
            let known = validator.as_ref().and_then(|v| seen.get(&path).filter(|(sv, _)| sv == v)).map(|(_, blob)| blob.clone());
            let blob = match known {
                Some(b) => b,
                None => {
                    let data = match env.read(&WorkspacePath::from_relative(&path)?, MAX_FILE).await {
                        Ok(d) => d,
                        // Gone since the listing: not part of this snapshot.
                        Err(EnvError::NotFound(_)) => continue,
                        Err(e) => return Err(e),
                    };
                    let id = snapshot::object_id("blob", &data);
                    self.put(&id, "blob", &data).await?;
                    if let Some(v) = validator {
                        seen.insert(path.clone(), (v, id.clone()));
                        changed = true;
                    }
                    id
                }
            };
            tree.insert(path, Entry { mode: "100644", blob });
        }
        let (root, trees) = snapshot::tree_objects(&tree)?;
        let mut root_body = None;
        for (id, body) in trees {
            let wrote = self.put(&id, "tree", &body).await?;
            if id == root {
                root_body = Some((body, wrote));
            }
        }
        if let Some((body, wrote)) = root_body {
            self.freshen(&root, &body, wrote).await?;
        }
        if changed || seen.len() != before {
            self.save_validators(seen).await?;
        }
        Ok(root)
    }

    pub async fn files(&self, hash: &str) -> EnvResult<BTreeMap<String, Entry>> {
        let mut out = BTreeMap::new();
        let mut todo = vec![(hash.to_string(), String::new())];
        while let Some((tree, prefix)) = todo.pop() {
            let body = self.object(&tree, "tree").await?;
            for (mode, name, id) in snapshot::parse_tree(&tree, &body)? {
                let path = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
                match mode {
                    TreeMode::Dir => todo.push((id, path)),
                    TreeMode::File(mode) => drop(out.insert(path, Entry { mode, blob: id })),
                }
            }
        }
        Ok(out)
    }

    pub async fn changes(&self, from: &str, to: &str) -> EnvResult<Vec<SnapshotChange>> {
        let (a, b) = (self.files(from).await?, self.files(to).await?);
        Ok(snapshot::compare(&a, &b))
    }

    pub async fn blob(&self, id: &str) -> EnvResult<Bytes> {
        self.object(id, "blob").await.map(Bytes::from)
    }

    /// Writes each file back as the snapshot holds it, or removes it when the snapshot does not.
    pub async fn restore(&self, env: &ObjectEnv, hash: &str, files: Option<Vec<String>>) -> EnvResult<()> {
        let snap = self.files(hash).await?;
        let targets = files.unwrap_or_else(|| snap.keys().cloned().collect());
        for rel in targets {
            let path = WorkspacePath::from_relative(&rel)?;
            match snap.get(&rel) {
                Some(entry) => env.write(&path, self.blob(&entry.blob).await?).await?,
                None => match env.remove(&path).await {
                    Ok(()) | Err(EnvError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                },
            }
        }
        Ok(())
    }

    /// Stores an object (encoded only now: most are stored already) unless it
    /// is known to be there; answers whether it wrote it.
    async fn put(&self, id: &str, kind: &str, body: &[u8]) -> EnvResult<bool> {
        if self.stored.lock().unwrap_or_else(|e| e.into_inner()).contains(id) {
            return Ok(false);
        }
        let key = format!("objects/{}", snapshot::object_key(id)?);
        let there = self.op.exists(&key).await.map_err(|e| self.err("check a snapshot object in", e))?;
        if !there {
            let (_, packed) = snapshot::encode_object(kind, body)?;
            self.op.write(&key, packed).await.map_err(|e| self.err("write a snapshot object to", e))?;
        }
        self.stored.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_string());
        Ok(!there)
    }

    /// Rewrites the root tree `id` unless this track (`wrote`) or, in the last
    /// half of [`MIN_PRUNE_AGE`], this server wrote it, so its `Last-Modified`
    /// says the snapshot is young (a bucket has no cheaper way to touch an
    /// object). An unchanged workspace pays one small upload per half hour.
    async fn freshen(&self, id: &str, body: &[u8], wrote: bool) -> EnvResult<()> {
        let recent = |at: &Instant| at.elapsed() < MIN_PRUNE_AGE / 2;
        if !wrote && self.fresh.lock().unwrap_or_else(|e| e.into_inner()).get(id).is_some_and(recent) {
            return Ok(());
        }
        if !wrote {
            let key = format!("objects/{}", snapshot::object_key(id)?);
            let (_, packed) = snapshot::encode_object("tree", body)?;
            self.op.write(&key, packed).await.map_err(|e| self.err("write a snapshot object to", e))?;
        }
        let mut fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
        fresh.retain(|_, at| recent(at));
        fresh.insert(id.to_string(), Instant::now());
        Ok(())
    }

    /// Deletes the copies that no snapshot in `keep` reaches and that are
    /// older than `age` (raised to [`MIN_PRUNE_AGE`]); see the module's notes
    /// for what stays and why a concurrent track is safe. It reads every tree
    /// the referenced snapshots reach (each once) and the young copies no
    /// referenced snapshot reaches, to tell their trees; ids of other stores
    /// in `keep` cost nothing (only listed copies are read).
    pub async fn prune(&self, keep: &[String], age: Duration) -> EnvResult<SnapshotPruned> {
        // This server's tracks wait: they hold this lock from listing to last write.
        let mut seen_guard = self.seen.lock().await;
        // The bucket's map, read once: it also fills this server's when empty.
        let bucket_map = self.load_validators().await;
        if seen_guard.is_none() {
            *seen_guard = Some(bucket_map.clone());
        }
        let cutoff = SystemTime::now().checked_sub(age.max(MIN_PRUNE_AGE)).unwrap_or(SystemTime::UNIX_EPOCH);
        let cutoff_ms = cutoff.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let listed = self.op.list_with("objects/").recursive(true).await.map_err(|e| self.err("list the snapshot objects in", e))?;
        // id → (key, young, size)
        let mut all: HashMap<String, (String, bool, u64)> = HashMap::new();
        for entry in listed {
            let key = entry.path().to_string();
            let Some(id) = key.strip_prefix("objects/").and_then(copy_id) else { continue };
            let meta = match entry.metadata().last_modified() {
                Some(_) => entry.metadata().clone(),
                // Some services list names only.
                None => self.op.stat(&key).await.map_err(|e| self.err("read a snapshot object's age in", e))?,
            };
            let young = meta.last_modified().is_none_or(|t| t.timestamp_millis() > cutoff_ms);
            all.insert(id, (key, young, meta.content_length()));
        }
        let mut live: HashSet<String> = HashSet::new();
        let ours = seen_guard.as_ref().map(|m| m.values().map(|(_, b)| b.clone()).collect::<Vec<_>>()).unwrap_or_default();
        live.extend(bucket_map.into_values().map(|(_, blob)| blob).chain(ours));
        for root in keep {
            self.mark(&root.to_ascii_lowercase(), &all, &mut live).await?;
        }
        // A young copy stays; a young tree also keeps what it reaches.
        let young: Vec<String> = all.iter().filter(|(id, (_, young, _))| *young && !live.contains(*id)).map(|(id, _)| id.clone()).collect();
        for id in young {
            self.mark(&id, &all, &mut live).await?;
        }
        let mut out = SnapshotPruned::default();
        let mut removed = Vec::new();
        for (id, (key, _, size)) in all {
            if live.contains(&id) {
                out.kept += 1;
                continue;
            }
            self.op.delete(&key).await.map_err(|e| self.err("delete a snapshot object in", e))?;
            out.removed += 1;
            out.bytes += size;
            removed.push(id);
        }
        let mut stored = self.stored.lock().unwrap_or_else(|e| e.into_inner());
        let mut fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
        for id in removed {
            stored.remove(&id);
            fresh.remove(&id);
        }
        Ok(out)
    }

    /// Marks `id` and, when it is a tree, everything it reaches; an id the
    /// listing did not show (another store's, a missing child) ends the walk.
    async fn mark(&self, id: &str, all: &HashMap<String, (String, bool, u64)>, live: &mut HashSet<String>) -> EnvResult<()> {
        let mut todo = vec![id.to_string()];
        while let Some(id) = todo.pop() {
            if !all.contains_key(&id) || !live.insert(id.clone()) {
                continue;
            }
            let body = match self.object(&id, "tree").await {
                Ok(b) => b,
                // A blob (marked, nothing below), gone since the listing, or unreadable (kept as it is).
                Err(EnvError::InvalidInput(_) | EnvError::NotFound(_)) => continue,
                Err(EnvError::Io(e)) if e.contains("is corrupt") => continue,
                Err(e) => return Err(e),
            };
            for (mode, _, child) in snapshot::parse_tree(&id, &body)? {
                match mode {
                    TreeMode::Dir => todo.push(child),
                    TreeMode::File(_) => drop(live.insert(child)),
                }
            }
        }
        Ok(())
    }

    async fn object(&self, id: &str, kind: &str) -> EnvResult<Vec<u8>> {
        let key = format!("objects/{}", snapshot::object_key(id)?);
        let packed = match self.op.read(&key).await {
            Ok(b) => b.to_vec(),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Err(EnvError::NotFound(format!("snapshot object {id}"))),
            Err(e) => return Err(self.err("read a snapshot object from", e)),
        };
        snapshot::decode_object(id, kind, &packed)
    }

    /// The validator map; an unreadable one is empty (objects are read again).
    async fn load_validators(&self) -> HashMap<String, (String, String)> {
        let Ok(data) = self.op.read(VALIDATORS).await else { return HashMap::new() };
        let text = String::from_utf8_lossy(&data.to_vec()).into_owned();
        text.lines()
            .filter_map(|line| {
                let mut f = line.splitn(3, '\t');
                let (v, blob, path) = (f.next()?, f.next()?, f.next()?);
                Some((path.to_string(), (v.to_string(), blob.to_string())))
            })
            .collect()
    }

    async fn save_validators(&self, seen: &HashMap<String, (String, String)>) -> EnvResult<()> {
        let mut text = String::new();
        for (path, (v, blob)) in seen {
            if !v.contains(['\t', '\n']) && !path.contains('\n') {
                text.push_str(&format!("{v}\t{blob}\t{path}\n"));
            }
        }
        self.op.write(VALIDATORS, text.into_bytes()).await.map_err(|e| self.err("write the snapshot validators to", e))?;
        Ok(())
    }

    fn err(&self, what: &str, e: opendal::Error) -> EnvError {
        EnvError::Io(format!("cannot {what} {}: {e}", self.url))
    }
}

/// The object id of a copy's key below `objects/` (`ab/cdef…`), or `None`
/// for any other name there (left alone).
fn copy_id(rest: &str) -> Option<String> {
    let (fan, tail) = rest.split_once('/')?;
    let id = format!("{fan}{tail}");
    (fan.len() == 2 && id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_ascii_lowercase())
}

/// `store` as a path relative to the workspace `ws`, when it lies inside it.
fn inside(ws: &str, store: &str) -> Option<String> {
    if ws.is_empty() {
        return Some(store.to_string());
    }
    store.strip_prefix(&format!("{ws}/")).map(str::to_string)
}
