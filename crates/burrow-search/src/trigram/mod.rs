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
mod segments;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use memmap2::Mmap;

use self::format::*;
use self::query::Query;
use self::segments::Segments;
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
    /// Postings each build thread holds before it writes a sorted segment
    /// (the build's memory, 16 bytes each; see `segments.rs`).
    pub segment_pairs: usize,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self { max_file_bytes: DEFAULT_MAX_FILE_BYTES, threads: crate::walk::threads(), segment_pairs: segments::SEGMENT_PAIRS }
    }
}

/// Files a build thread takes at a time: a run of consecutive file numbers,
/// so that its segments cover contiguous ranges.
const RUN: usize = 512;

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

/// A set of trigram keys, one bit each: sorting every trigram of a file to
/// drop repeats costs far more than marking them.
///
/// The loop over a file's bytes is the build's hottest (a profile put it at
/// a fifth of the build's CPU time). It is computation-bound (the set's hot
/// words stay cached), so it does the least per byte: it rolls the key, marks
/// it and writes its pair to the next slot, which counts only if the key was
/// new (no branch on that, which new keys make unpredictable); trigrams that
/// span a line end are marked too, and dropped afterwards from the file's few
/// distinct keys rather than tested at every byte. On the Linux tree this
/// took 19% off the loop's CPU time (0.43 s to 0.35 s for 176 MB, a
/// single-thread A/B in one process).
pub(crate) struct Seen(Box<[u64; SEEN_WORDS]>);

const SEEN_WORDS: usize = (1 << 24) / 64;

/// Whether one of the three bytes of key `k` is a line end (the zero-byte
/// test of `k` XOR three line ends).
#[inline(always)]
fn spans_line_end(k: u32) -> bool {
    let x = k ^ 0x000a_0a0a;
    (x.wrapping_sub(0x0001_0101) & !x & 0x0080_8080) != 0
}

impl Seen {
    pub(crate) fn new() -> Self {
        let words: Box<[u64]> = vec![0; SEEN_WORDS].into_boxed_slice();
        Self(words.try_into().unwrap_or_else(|_| unreachable!("the set has SEEN_WORDS words")))
    }

    /// Appends the pair of each distinct indexable key of `bytes` with file
    /// `id` to `pairs`; leaves the set empty again.
    fn pairs(&mut self, bytes: &[u8], id: u32, pairs: &mut Vec<u64>) {
        let [first, second, rest @ ..] = bytes else { return };
        let from = pairs.len();
        pairs.reserve(rest.len());
        let slots = &mut pairs.spare_capacity_mut()[..rest.len()];
        let mut n = 0usize;
        // The key of the last three bytes, rolled one byte at a time.
        let mut k = (*first as u32) << 8 | *second as u32;
        for &b in rest {
            k = (k << 8 | b as u32) & 0x00ff_ffff;
            let (word, bit) = ((k >> 6) as usize, 1u64 << (k & 63));
            let w = self.0[word];
            self.0[word] = w | bit;
            // The next key overwrites this slot unless this one counts.
            slots[n].write(segments::pair(k, id));
            n += (w & bit == 0) as usize;
        }
        // SAFETY: the loop wrote slot `n` before counting it, so the first
        // `n` spare slots are initialised; `n <= rest.len()` fits the capacity
        // reserved above.
        unsafe { pairs.set_len(from + n) };
        let mut keep = from;
        for i in from..pairs.len() {
            let p = pairs[i];
            let k = (p >> 32) as u32;
            self.0[(k >> 6) as usize] = 0;
            if !spans_line_end(k) {
                pairs[keep] = p;
                keep += 1;
            }
        }
        pairs.truncate(keep);
    }
}

/// Reads file `path` into `buf` and returns its entry (without the path):
/// `indexed` when its bytes are in `buf` and may be indexed.
fn read_file(root: &Path, path: &str, opts: &BuildOptions, open: &Opener<'_>, buf: &mut Vec<u8>) -> (u64, u64, bool) {
    let Ok(mut file) = open(&root.join(path)) else { return (0, 0, false) };
    let Ok(meta) = file.metadata() else { return (0, 0, false) };
    let (size, stamp) = (meta.len(), mtime_ns(&meta));
    if size > opts.max_file_bytes {
        return (size, stamp, false);
    }
    buf.clear();
    let read = Read::by_ref(&mut file).take(opts.max_file_bytes + 1).read_to_end(buf);
    (size, stamp, read.is_ok() && buf.len() as u64 <= opts.max_file_bytes && !buf.contains(&0))
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
    let dir = out.parent().ok_or_else(|| io::Error::other("the index path has no folder"))?;
    std::fs::create_dir_all(dir)?;
    let segments = Segments::new(dir);
    let next = AtomicUsize::new(0);
    // Per file: size, stamp, indexed; the paths stay in `files`.
    let (tx, rx) = std::sync::mpsc::channel::<Vec<(usize, u64, u64, bool)>>();
    let budget = opts.segment_pairs.max(1);
    let failed: Mutex<Option<io::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..opts.threads.max(1) {
            let tx = tx.clone();
            let (next, files, segments, failed) = (&next, &files, &segments, &failed);
            s.spawn(move || {
                lower_priority();
                let (mut buf, mut seen, mut pairs, mut scratch) = (Vec::new(), Seen::new(), Vec::with_capacity(budget), Vec::new());
                let mut flush = |start: usize, pairs: &mut Vec<u64>| {
                    if let Err(e) = segments.flush(start as u32, pairs, &mut scratch) {
                        failed.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(e);
                    }
                };
                loop {
                    let first = next.fetch_add(RUN, Ordering::Relaxed);
                    if first >= files.len() {
                        break;
                    }
                    let run = first..(first + RUN).min(files.len());
                    let mut start = first;
                    let mut entries = Vec::with_capacity(run.len());
                    for i in run {
                        let (size, stamp, indexed) = read_file(root, &files[i], opts, open, &mut buf);
                        if indexed {
                            if pairs.len() + buf.len() > budget && !pairs.is_empty() {
                                flush(start, &mut pairs);
                                start = i;
                            }
                            seen.pairs(&buf, i as u32, &mut pairs);
                        }
                        entries.push((i, size, stamp, indexed));
                    }
                    flush(start, &mut pairs);
                    if tx.send(entries).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let mut table: Vec<FileEntry> = files.into_iter().map(|path| FileEntry { path, size: 0, stamp: 0, indexed: false }).collect();
    let mut stats = BuildStats { files: table.len(), ..Default::default() };
    for (i, size, stamp, indexed) in rx.into_iter().flatten() {
        table[i].size = size;
        table[i].stamp = stamp;
        table[i].indexed = indexed;
        if indexed {
            stats.indexed_files += 1;
            stats.text_bytes += size;
        }
    }
    (stats.index_bytes, stats.trigrams) = segments.write(out, &table, &dirs, opts.max_file_bytes)?;
    Ok(stats)
}

/// An index built from files handed over one at a time, in path order: for a
/// tree that is not a local folder (object storage feeds it from its content
/// cache). Its memory is bounded as a local build's is (`segments.rs`).
pub struct Builder {
    files: Vec<FileEntry>,
    stats: BuildStats,
    max_file_bytes: u64,
    out: std::path::PathBuf,
    segments: Segments,
    /// The first file of the pairs not yet written.
    start: usize,
    pairs: Vec<u64>,
    scratch: Vec<u64>,
    budget: usize,
    /// Allocated on the first text handed over (2 MiB).
    seen: Option<Seen>,
}

impl Builder {
    /// A build of the index file `out`, whose folder it creates.
    pub fn new(out: &Path, opts: &BuildOptions) -> io::Result<Self> {
        let dir = out.parent().ok_or_else(|| io::Error::other("the index path has no folder"))?;
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            files: Vec::new(),
            stats: BuildStats::default(),
            max_file_bytes: opts.max_file_bytes,
            out: out.to_path_buf(),
            segments: Segments::new(dir),
            start: 0,
            pairs: Vec::new(),
            scratch: Vec::new(),
            budget: opts.segment_pairs.max(1),
            seen: None,
        })
    }

    /// Adds the file after the last one added, whose path it must follow. Its
    /// trigrams are indexed if `text` is given, fits the size cap and is not
    /// binary (a NUL byte); otherwise it is listed as always a candidate.
    pub fn add(&mut self, path: String, size: u64, stamp: u64, text: Option<&[u8]>) -> io::Result<()> {
        if self.files.last().is_some_and(|f| f.path >= path) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{path:?} handed to the index builder out of path order")));
        }
        let id = self.files.len();
        let text = text.filter(|t| t.len() as u64 <= self.max_file_bytes && !t.contains(&0));
        if let Some(t) = text {
            if self.pairs.len() + t.len() > self.budget && !self.pairs.is_empty() {
                self.segments.flush(self.start as u32, &mut self.pairs, &mut self.scratch)?;
                self.start = id;
            }
            self.seen.get_or_insert_with(Seen::new).pairs(t, id as u32, &mut self.pairs);
            self.stats.indexed_files += 1;
            self.stats.text_bytes += size;
        }
        self.files.push(FileEntry { path, size, stamp, indexed: text.is_some() });
        Ok(())
    }

    /// Writes the index, with `dirs` the folders the walk visited (through a
    /// temporary file renamed into place).
    pub fn finish(mut self, dirs: &[String]) -> io::Result<BuildStats> {
        self.segments.flush(self.start as u32, &mut self.pairs, &mut self.scratch)?;
        let mut stats = self.stats;
        stats.files = self.files.len();
        (stats.index_bytes, stats.trigrams) = self.segments.write(&self.out, &self.files, dirs, self.max_file_bytes)?;
        Ok(stats)
    }
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
        if !(META_LEN <= files_off && files_off <= dirs_off && dirs_off <= post_off && post_off <= table_off && table_off <= body.len())
            || body.len() - table_off != trigrams * TABLE_ENTRY
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
            dirs.insert(string(&mut pos, post_off)?);
        }
        if pos != post_off {
            return Err(corrupt("directory table"));
        }
        Ok(Self { map, files, dirs, trigrams, table_off: HEADER_LEN + table_off, post_off: HEADER_LEN + post_off, max_file_bytes })
    }

    /// The trigram table (after the postings).
    fn table(&self) -> &[u8] {
        &self.map[self.table_off..]
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
        let table = self.table();
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
                Ok(Some(at)) => u32_at(self.table(), at + 4).map_or(usize::MAX, |c| c as usize),
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
        let table = self.table();
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
