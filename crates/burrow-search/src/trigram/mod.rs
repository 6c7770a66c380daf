//! The trigram index of a tree's text files, and text search through it.
//!
//! A full scan reads every byte of the tree for each search; on a kernel tree
//! that is a gigabyte and most of a second, whatever the pattern. The index
//! maps each trigram (three bytes) to the files that contain it, so a search
//! reads only the files that can hold a match: [`query::plan`] turns the
//! pattern into an AND/OR of trigrams, the posting lists give the candidate
//! files, and each candidate is searched with the same searcher and sink as
//! the scan ([`crate::grep`]). The index narrows, the matcher decides: results
//! equal the scan's, in the same order.
//!
//! What the index cannot vouch for is searched directly or by the scan:
//! - patterns with no trigram (`.`, `\w+`, two letters): the scan;
//! - an `include` glob (it may whitelist files the ignore rules hide, which the
//!   index never listed): the scan;
//! - files too large or binary (a NUL byte): not indexed, always candidates;
//! - files changed since the build ([`Dirty`], from the watcher): left out of
//!   the index's answer and searched directly if the walk would visit them;
//! - a changed ignore file: the scan, until the index is rebuilt.
//!
//! The file ([`format`]) has a version and a checksum; one that fails either
//! is an error for the caller to answer with a rebuild, never trusted.

pub mod format;
pub mod live;
pub mod query;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::UNIX_EPOCH;

use memmap2::Mmap;

use self::format::*;
use self::query::{indexable, key, Query};
use crate::env::{EnvResult, GrepMatch, GrepRequest, GrepResult};
use crate::grep::{compile, searcher, LineSink, Opener};

/// Files larger than this are not indexed (they are always searched). The
/// generated register headers of the Linux tree reach 23 MB: left out, they
/// would be 244 MiB read by every search.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 32 << 20;

/// The names of files whose change alters which files a walk visits.
const IGNORE_FILES: [&str; 3] = [".gitignore", ".ignore", ".rgignore"];

/// More changed files than this since the build: the scan answers until a rebuild.
pub const MAX_DIRTY: usize = 20_000;

#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub max_file_bytes: u64,
    pub threads: usize,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self { max_file_bytes: DEFAULT_MAX_FILE_BYTES, threads: crate::walk::threads() }
    }
}

/// What a build produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildStats {
    pub files: usize,
    /// Files whose trigrams are in the index (the rest are always searched).
    pub indexed_files: usize,
    /// Bytes of the indexed files.
    pub text_bytes: u64,
    pub trigrams: usize,
    /// The index file's size.
    pub index_bytes: u64,
}

/// One walked file as the index saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    /// What tells that the file changed since: its modification time in
    /// nanoseconds for a file system, a hash of its ETag for object storage;
    /// 0 when unknown (then it is always searched directly).
    pub stamp: u64,
    /// Its trigrams are in the index; otherwise (too large, binary, unreadable)
    /// it is a candidate for every query.
    pub indexed: bool,
}

/// The modification time of `meta` in nanoseconds since the epoch.
pub fn mtime_ns(meta: &std::fs::Metadata) -> u64 {
    meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// One file's share of the build: its entry and its sorted, distinct trigrams.
struct Scanned {
    entry: FileEntry,
    keys: Vec<u32>,
}

/// A set of trigram keys, one bit each: sorting every trigram of a file to
/// drop repeats costs far more than marking them.
pub(crate) struct Seen(Vec<u64>);

impl Seen {
    pub(crate) fn new() -> Self {
        Self(vec![0; (1 << 24) / 64])
    }

    /// The distinct keys of `bytes`, sorted; leaves the set empty again.
    pub(crate) fn distinct(&mut self, bytes: &[u8]) -> Vec<u32> {
        let mut keys = Vec::new();
        for t in bytes.windows(3) {
            if indexable(t) {
                let k = key(t);
                let (word, bit) = ((k >> 6) as usize, 1u64 << (k & 63));
                if self.0[word] & bit == 0 {
                    self.0[word] |= bit;
                    keys.push(k);
                }
            }
        }
        for k in &keys {
            self.0[(k >> 6) as usize] = 0;
        }
        keys.sort_unstable();
        keys
    }
}

fn scan_file(root: &Path, path: &str, opts: &BuildOptions, open: &Opener<'_>, buf: &mut Vec<u8>, seen: &mut Seen) -> Scanned {
    let mut entry = FileEntry { path: path.to_string(), size: 0, stamp: 0, indexed: false };
    let Ok(mut file) = open(&root.join(path)) else { return Scanned { entry, keys: Vec::new() } };
    let Ok(meta) = file.metadata() else { return Scanned { entry, keys: Vec::new() } };
    entry.size = meta.len();
    entry.stamp = mtime_ns(&meta);
    if entry.size > opts.max_file_bytes {
        return Scanned { entry, keys: Vec::new() };
    }
    buf.clear();
    if Read::by_ref(&mut file).take(opts.max_file_bytes + 1).read_to_end(buf).is_err() || buf.len() as u64 > opts.max_file_bytes || buf.contains(&0) {
        return Scanned { entry, keys: Vec::new() };
    }
    let keys = seen.distinct(buf);
    entry.indexed = true;
    Scanned { entry, keys }
}

/// Hashes a trigram key with one multiplication: the default SipHash is most
/// of a build's time, and keys come from files, not from an attacker who
/// could choose collisions to any effect but a slower build.
#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u32(*b as u32);
        }
    }

    fn write_u32(&mut self, n: u32) {
        let h = (self.0 ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 29);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type KeyMap<V> = HashMap<u32, V, std::hash::BuildHasherDefault<KeyHasher>>;

/// A posting list being built: file numbers delta-coded as they arrive in order.
#[derive(Default)]
struct Posting {
    last: u32,
    count: u32,
    bytes: Vec<u8>,
}

/// Lowers the calling thread's scheduling priority: a build must not slow
/// requests down. Best effort; a failure leaves the priority as it was.
pub fn lower_priority() {
    let tid = rustix::thread::gettid();
    let _ = rustix::process::setpriority_process(Some(tid), 19);
}

/// Walks `root` as text search does and writes the index of its files to
/// `out` (through a temporary file renamed into place, so a reader never sees
/// half an index). Files are opened with `open`, like the scan opens them.
pub fn build(root: &Path, out: &Path, opts: &BuildOptions, open: &Opener<'_>) -> io::Result<BuildStats> {
    lower_priority();
    let entries = crate::walk::walk(root).map_err(|e| io::Error::other(e.to_string()))?;
    let mut files = Vec::new();
    let mut dirs: Vec<String> = Vec::new();
    for e in entries {
        match e.kind {
            burrow_protocol::env::EntryKind::File => files.push(e.path),
            _ => dirs.push(e.path),
        }
    }
    let next = AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Scanned)>(256);
    let mut builder = Builder::new(opts.max_file_bytes);
    builder.files.reserve(files.len());
    std::thread::scope(|s| {
        for _ in 0..opts.threads.max(1) {
            let tx = tx.clone();
            let (next, files) = (&next, &files);
            s.spawn(move || {
                lower_priority();
                let (mut buf, mut seen) = (Vec::new(), Seen::new());
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    if tx.send((i, scan_file(root, path, opts, open, &mut buf, &mut seen))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // Files arrive in any order; postings need them in number order.
        let mut early: BTreeMap<usize, Scanned> = BTreeMap::new();
        for (i, scanned) in rx {
            early.insert(i, scanned);
            while let Some(scanned) = early.remove(&builder.files.len()) {
                builder.push(scanned.entry, &scanned.keys);
            }
        }
    });
    builder.finish(&dirs, out)
}

/// An index built from files handed over one at a time, in path order: for a
/// tree that is not a local folder (object storage feeds it from its content
/// cache), and for the walk of a local one.
pub struct Builder {
    files: Vec<FileEntry>,
    postings: KeyMap<Posting>,
    stats: BuildStats,
    max_file_bytes: u64,
    /// Allocated on the first text handed over (2 MiB).
    seen: Option<Seen>,
}

impl Builder {
    pub fn new(max_file_bytes: u64) -> Self {
        Self { files: Vec::new(), postings: KeyMap::default(), stats: BuildStats::default(), max_file_bytes, seen: None }
    }

    /// Adds the file after the last one added, whose path it must follow. Its
    /// trigrams are indexed if `text` is given, fits the size cap and is not
    /// binary (a NUL byte); otherwise it is listed as always a candidate.
    pub fn add(&mut self, path: String, size: u64, stamp: u64, text: Option<&[u8]>) -> io::Result<()> {
        if self.files.last().is_some_and(|f| f.path >= path) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{path:?} handed to the index builder out of path order")));
        }
        let keys = match text {
            Some(t) if t.len() as u64 <= self.max_file_bytes && !t.contains(&0) => Some(self.seen.get_or_insert_with(Seen::new).distinct(t)),
            _ => None,
        };
        let entry = FileEntry { path, size, stamp, indexed: keys.is_some() };
        self.push(entry, keys.as_deref().unwrap_or_default());
        Ok(())
    }

    fn push(&mut self, entry: FileEntry, keys: &[u32]) {
        let id = self.files.len() as u32;
        for k in keys {
            let p = self.postings.entry(*k).or_default();
            put_varint(&mut p.bytes, (id - p.last) as u64);
            p.last = id;
            p.count += 1;
        }
        if entry.indexed {
            self.stats.indexed_files += 1;
            self.stats.text_bytes += entry.size;
        }
        self.files.push(entry);
    }

    /// Writes the index, with `dirs` the folders the walk visited, to `out`
    /// (through a temporary file renamed into place).
    pub fn finish(self, dirs: &[String], out: &Path) -> io::Result<BuildStats> {
        let mut stats = self.stats;
        stats.files = self.files.len();
        stats.trigrams = self.postings.len();
        stats.index_bytes = write(out, &self.files, dirs, self.postings, self.max_file_bytes)?;
        Ok(stats)
    }
}

fn write(out: &Path, files: &[FileEntry], dirs: &[String], postings: KeyMap<Posting>, max_file_bytes: u64) -> io::Result<u64> {
    let mut keys: Vec<u32> = postings.keys().copied().collect();
    keys.sort_unstable();
    let mut file_bytes = Vec::new();
    for f in files {
        put_varint(&mut file_bytes, f.path.len() as u64);
        file_bytes.extend_from_slice(f.path.as_bytes());
        put_varint(&mut file_bytes, f.size);
        put_varint(&mut file_bytes, f.stamp);
        file_bytes.push(f.indexed as u8);
    }
    let mut dir_bytes = Vec::new();
    for d in dirs {
        put_varint(&mut dir_bytes, d.len() as u64);
        dir_bytes.extend_from_slice(d.as_bytes());
    }
    let files_off = META_LEN as u64;
    let dirs_off = files_off + file_bytes.len() as u64;
    let table_off = dirs_off + dir_bytes.len() as u64;
    let post_off = table_off + (keys.len() * TABLE_ENTRY) as u64;
    let mut meta = Vec::with_capacity(META_LEN);
    for v in [files.len() as u32, dirs.len() as u32, keys.len() as u32] {
        meta.extend_from_slice(&v.to_le_bytes());
    }
    for v in [max_file_bytes, files_off, dirs_off, table_off, post_off] {
        meta.extend_from_slice(&v.to_le_bytes());
    }
    let mut table = Vec::with_capacity(keys.len() * TABLE_ENTRY);
    let mut at = 0u64;
    for k in &keys {
        let p = &postings[k];
        table.extend_from_slice(&k.to_le_bytes());
        table.extend_from_slice(&p.count.to_le_bytes());
        table.extend_from_slice(&at.to_le_bytes());
        at += p.bytes.len() as u64;
    }

    let dir = out.parent().ok_or_else(|| io::Error::other("the index path has no folder"))?;
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut body_len = 0u64;
    {
        let mut w = io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        w.write_all(&[0u8; HEADER_LEN])?;
        let mut put = |w: &mut io::BufWriter<&mut std::fs::File>, b: &[u8]| -> io::Result<()> {
            hasher.update(b);
            body_len += b.len() as u64;
            w.write_all(b)
        };
        put(&mut w, &meta)?;
        put(&mut w, &file_bytes)?;
        put(&mut w, &dir_bytes)?;
        put(&mut w, &table)?;
        let mut postings = postings;
        for k in &keys {
            if let Some(p) = postings.remove(k) {
                put(&mut w, &p.bytes)?;
            }
        }
        w.flush()?;
    }
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&hasher.finalize().to_le_bytes());
    h[16..24].copy_from_slice(&body_len.to_le_bytes());
    let f = tmp.as_file_mut();
    f.seek(SeekFrom::Start(0))?;
    f.write_all(&h)?;
    f.sync_all()?;
    tmp.persist(out).map_err(|e| e.error)?;
    Ok(HEADER_LEN as u64 + body_len)
}

/// An index file, checked and mapped.
pub struct TrigramIndex {
    map: Mmap,
    files: Vec<FileEntry>,
    dirs: HashSet<String>,
    trigrams: usize,
    table_off: usize,
    post_off: usize,
    max_file_bytes: u64,
}

fn corrupt(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("corrupt trigram index: {why}"))
}

impl TrigramIndex {
    /// Opens and checks an index: a wrong version, a bad checksum or an
    /// inconsistent layout is an `InvalidData` error (the caller rebuilds).
    pub fn open(path: &Path) -> io::Result<Self> {
        let mut file = std::fs::File::open(path)?;
        verify(&mut file)?;
        // SAFETY: the file is ours, written once and renamed into place; it is
        // never modified in place (a rebuild replaces it with a new inode).
        let map = unsafe { Mmap::map(&file)? };
        let body = map.get(HEADER_LEN..).ok_or_else(|| corrupt("no body"))?;
        let n_files = u32_at(body, 0).ok_or_else(|| corrupt("meta"))? as usize;
        let n_dirs = u32_at(body, 4).ok_or_else(|| corrupt("meta"))? as usize;
        let trigrams = u32_at(body, 8).ok_or_else(|| corrupt("meta"))? as usize;
        let offs: Vec<usize> = (0..5).map(|i| u64_at(body, 12 + 8 * i).map(|v| v as usize)).collect::<Option<_>>().ok_or_else(|| corrupt("meta"))?;
        let (max_file_bytes, files_off, dirs_off, table_off, post_off) = (offs[0] as u64, offs[1], offs[2], offs[3], offs[4]);
        if !(META_LEN <= files_off && files_off <= dirs_off && dirs_off <= table_off && table_off <= post_off && post_off <= body.len())
            || post_off - table_off != trigrams * TABLE_ENTRY
        {
            return Err(corrupt("section offsets"));
        }
        let mut pos = files_off;
        let mut files = Vec::with_capacity(n_files.min(body.len()));
        let string = |pos: &mut usize, end: usize| -> io::Result<String> {
            let len = get_varint(body, pos).ok_or_else(|| corrupt("string length"))? as usize;
            let bytes = body.get(*pos..pos.checked_add(len).filter(|e| *e <= end).ok_or_else(|| corrupt("string"))?).ok_or_else(|| corrupt("string"))?;
            *pos += len;
            String::from_utf8(bytes.to_vec()).map_err(|_| corrupt("path"))
        };
        for _ in 0..n_files {
            let path = string(&mut pos, dirs_off)?;
            let size = get_varint(body, &mut pos).ok_or_else(|| corrupt("size"))?;
            let stamp = get_varint(body, &mut pos).ok_or_else(|| corrupt("stamp"))?;
            let flags = *body.get(pos).ok_or_else(|| corrupt("flags"))?;
            pos += 1;
            files.push(FileEntry { path, size, stamp, indexed: flags & 1 != 0 });
        }
        if pos != dirs_off || files.windows(2).any(|w| w[0].path >= w[1].path) {
            return Err(corrupt("file table"));
        }
        let mut dirs = HashSet::with_capacity(n_dirs.min(body.len()));
        for _ in 0..n_dirs {
            dirs.insert(string(&mut pos, table_off)?);
        }
        if pos != table_off {
            return Err(corrupt("directory table"));
        }
        Ok(Self { map, files, dirs, trigrams, table_off: HEADER_LEN + table_off, post_off: HEADER_LEN + post_off, max_file_bytes })
    }

    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }

    pub fn is_dir(&self, path: &str) -> bool {
        path.is_empty() || self.dirs.contains(path)
    }

    pub fn trigrams(&self) -> usize {
        self.trigrams
    }

    pub fn bytes(&self) -> u64 {
        self.map.len() as u64
    }

    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_bytes
    }

    /// The table entry of trigram `k`: its offset in the table, if it is there.
    fn entry(&self, k: u32) -> io::Result<Option<usize>> {
        let table = &self.map[self.table_off..self.post_off];
        let (mut lo, mut hi) = (0usize, self.trigrams);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let at = mid * TABLE_ENTRY;
            let mk = u32_at(table, at).ok_or_else(|| corrupt("table"))?;
            if mk < k {
                lo = mid + 1;
            } else if mk > k {
                hi = mid;
            } else {
                return Ok(Some(at));
            }
        }
        Ok(None)
    }

    /// How many files a query node may select, to intersect the rarest first:
    /// the posting count of a trigram, the most files for anything else.
    fn cost(&self, q: &Query) -> usize {
        match q {
            Query::Tri(k) => match self.entry(*k) {
                Ok(Some(at)) => u32_at(&self.map[self.table_off..self.post_off], at + 4).map_or(usize::MAX, |c| c as usize),
                Ok(None) => 0,
                Err(_) => usize::MAX,
            },
            Query::Nothing => 0,
            _ => usize::MAX,
        }
    }

    /// The files containing trigram `k`, ascending.
    fn posting(&self, k: u32) -> io::Result<Vec<u32>> {
        let Some(at) = self.entry(k)? else { return Ok(Vec::new()) };
        let table = &self.map[self.table_off..self.post_off];
        let count = u32_at(table, at + 4).ok_or_else(|| corrupt("table"))? as usize;
        let off = u64_at(table, at + 8).ok_or_else(|| corrupt("table"))? as usize;
        let data = self.map.get(self.post_off.checked_add(off).ok_or_else(|| corrupt("posting"))?..).ok_or_else(|| corrupt("posting"))?;
        let mut out = Vec::with_capacity(count.min(self.files.len()));
        let (mut pos, mut id) = (0usize, 0u64);
        for _ in 0..count {
            id += get_varint(data, &mut pos).ok_or_else(|| corrupt("posting"))?;
            if id >= self.files.len() as u64 {
                return Err(corrupt("posting past the file table"));
            }
            out.push(id as u32);
        }
        Ok(out)
    }

    /// The files that satisfy `q`; None means every file.
    pub fn eval(&self, q: &Query) -> io::Result<Option<Vec<u32>>> {
        Ok(match q {
            Query::All => None,
            Query::Nothing => Some(Vec::new()),
            Query::Tri(k) => Some(self.posting(*k)?),
            Query::And(qs) => {
                let mut acc: Option<Vec<u32>> = None;
                let mut qs: Vec<&Query> = qs.iter().collect();
                qs.sort_by_cached_key(|q| self.cost(q));
                for q in qs {
                    if let Some(ids) = self.eval(q)? {
                        acc = Some(match acc {
                            None => ids,
                            Some(a) => intersect(&a, &ids),
                        });
                        if acc.as_ref().is_some_and(Vec::is_empty) {
                            break;
                        }
                    }
                }
                acc
            }
            Query::Or(qs) => {
                let mut acc = Vec::new();
                for q in qs {
                    match self.eval(q)? {
                        None => return Ok(None),
                        Some(ids) => acc = union(&acc, &ids),
                    }
                }
                Some(acc)
            }
        })
    }
}

fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn union(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    out.extend_from_slice(a);
    out.extend_from_slice(b);
    out.sort_unstable();
    out.dedup();
    out
}

/// Paths (relative to the root) changed since the index was built, as the
/// watcher reported them: files or folders, created, changed, removed or renamed.
#[derive(Clone, Debug, Default)]
pub struct Dirty {
    pub paths: BTreeSet<String>,
}

impl Dirty {
    /// Whether `path` or one of its folders changed.
    fn covers(&self, path: &str) -> bool {
        if self.paths.is_empty() {
            return false;
        }
        let mut at = path.len();
        loop {
            if self.paths.contains(&path[..at]) {
                return true;
            }
            match path[..at].rfind('/') {
                Some(i) => at = i,
                None => return false,
            }
        }
    }

    /// Whether a changed file can change what a walk visits.
    pub fn touches_ignore_rules(&self) -> bool {
        self.paths.iter().any(|p| IGNORE_FILES.contains(&p.rsplit('/').next().unwrap_or(p)))
    }
}

fn parent_of(path: &str) -> &str {
    path.rfind('/').map(|i| &path[..i]).unwrap_or("")
}

/// The files the walk would visit among changed paths: a changed file if its
/// folder is visited and the ignore rules keep it, every kept file below a
/// changed folder. None when the ignore rules themselves changed or there is
/// too much to check (the scan answers then).
fn changed_files(root: &Path, index: &TrigramIndex, dirty: &Dirty) -> Option<BTreeSet<String>> {
    if dirty.touches_ignore_rules() || dirty.paths.len() > MAX_DIRTY {
        return None;
    }
    // Each listed folder's kept children (name -> is a folder).
    let mut listings: HashMap<String, Option<HashMap<String, bool>>> = HashMap::new();
    let mut out = BTreeSet::new();
    fn visible_dir(root: &Path, index: &TrigramIndex, dirty: &Dirty, dir: &str, listings: &mut HashMap<String, Option<HashMap<String, bool>>>) -> bool {
        if dir.is_empty() {
            return true;
        }
        if !dirty.covers(dir) {
            return index.is_dir(dir);
        }
        let parent = parent_of(dir);
        let name = &dir[parent.len() + usize::from(!parent.is_empty())..];
        visible_dir(root, index, dirty, parent, listings) && list(root, parent, listings).is_some_and(|l| l.get(name) == Some(&true))
    }
    fn list<'a>(root: &Path, dir: &str, listings: &'a mut HashMap<String, Option<HashMap<String, bool>>>) -> Option<&'a HashMap<String, bool>> {
        listings
            .entry(dir.to_string())
            .or_insert_with(|| {
                let base = root.join(dir);
                if !base.is_dir() {
                    return None;
                }
                let walker = crate::walk::builder(&base, None).ok()?.max_depth(Some(1)).build();
                let mut kids = HashMap::new();
                for e in walker.flatten() {
                    if e.depth() == 1 {
                        if let Some(t) = e.file_type().filter(|t| !t.is_symlink()) {
                            kids.insert(e.file_name().to_string_lossy().into_owned(), t.is_dir());
                        }
                    }
                }
                Some(kids)
            })
            .as_ref()
    }
    for p in &dirty.paths {
        let parent = parent_of(p);
        if !visible_dir(root, index, dirty, parent, &mut listings) {
            continue;
        }
        let name = &p[parent.len() + usize::from(!parent.is_empty())..];
        match list(root, parent, &mut listings).and_then(|l| l.get(name).copied()) {
            Some(false) => {
                out.insert(p.clone());
            }
            Some(true) => {
                let base = root.join(p);
                let entries = crate::walk::walk(&base).ok()?;
                for e in entries {
                    if e.kind == burrow_protocol::env::EntryKind::File {
                        out.insert(format!("{p}/{}", e.path));
                    }
                }
            }
            None => {}
        }
        if out.len() > MAX_DIRTY {
            return None;
        }
    }
    Some(out)
}

/// Searches `root`'s subfolder `req.dir` through the index, with `dirty` the
/// paths changed since it was built. None when the index cannot answer this
/// request exactly (see the module's doc): the caller scans.
pub fn grep(root: &Path, index: &TrigramIndex, dirty: &Dirty, req: &GrepRequest, open: &Opener<'_>) -> EnvResult<Option<GrepResult>> {
    let matcher = compile(req)?;
    if req.include.as_deref().is_some_and(|g| !g.is_empty()) {
        return Ok(None);
    }
    let dir = req.dir.trim_matches('/');
    if !index.is_dir(dir) || dirty.covers(dir) {
        return Ok(None);
    }
    let q = query::plan(&req.pattern, req.case_insensitive);
    if q == Query::All {
        return Ok(None);
    }
    crate::hold_for_tests();
    let Ok(Some(ids)) = index.eval(&q) else { return Ok(None) };
    let Some(changed) = changed_files(root, index, dirty) else { return Ok(None) };
    let under = |p: &str| dir.is_empty() || (p.len() > dir.len() && p.starts_with(dir) && p.as_bytes()[dir.len()] == b'/');
    // File numbers follow path order, so the candidates come sorted; only
    // changed paths need sorting in.
    let unindexed: Vec<u32> = index.files.iter().enumerate().filter(|(_, f)| !f.indexed).map(|(i, _)| i as u32).collect();
    let ids = if unindexed.is_empty() { ids } else { union(&ids, &unindexed) };
    let mut candidates: Vec<&str> = ids.iter().map(|&i| index.files[i as usize].path.as_str()).filter(|p| under(p) && !dirty.covers(p)).collect();
    if !changed.is_empty() {
        candidates.extend(changed.iter().map(String::as_str).filter(|p| under(p)));
        candidates.sort_unstable();
        candidates.dedup();
    }
    let mut searcher = searcher();
    let mut matches: Vec<GrepMatch> = Vec::new();
    let strip = if dir.is_empty() { 0 } else { dir.len() + 1 };
    for path in candidates {
        let Ok(file) = open(&root.join(path)) else { continue };
        let before = matches.len();
        let mut local = Vec::new();
        let sink = LineSink { matcher: &matcher, rel: &path[strip..], out: &mut local, keep_going: |n| before + n <= req.limit };
        let _ = searcher.search_file(&matcher, &file, sink);
        matches.append(&mut local);
        if matches.len() > req.limit {
            break;
        }
    }
    let truncated = matches.len() > req.limit;
    matches.truncate(req.limit);
    Ok(Some(GrepResult { matches, truncated }))
}

#[cfg(test)]
mod tests;
