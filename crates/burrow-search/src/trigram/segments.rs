//! How a build keeps its memory bounded: postings are gathered as (trigram,
//! file number) pairs, a few million at a time, radix-sorted by trigram and
//! written out as a sorted segment in a temporary file; the index file is then
//! written by merging the segments, streaming.
//!
//! Each segment covers a contiguous range of file numbers (a build thread
//! takes files in runs and cuts a segment at the end of each run or when its
//! buffer is full), so the merge joins a trigram's lists by concatenating them
//! in file-number order: only the first number of each list is coded again,
//! as a delta from the previous list's last.
//!
//! ```text
//! segment  per trigram (ascending) key u32 | count u32 | last file u32 | bytes u32
//!          then per trigram its file numbers, delta then varint coded (the first from 0)
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::format::*;
use super::FileEntry;

/// Pairs one build thread gathers before it writes a segment: 8 bytes each,
/// and as many again while they are sorted (32 MiB in all).
pub const SEGMENT_PAIRS: usize = 2 << 20;

const SEGMENT_ENTRY: usize = 16;

/// A pair: the trigram in the high half, the file number in the low.
pub fn pair(key: u32, file: u32) -> u64 {
    (key as u64) << 32 | file as u64
}

/// Sorts pairs by trigram, keeping the order of file numbers within one:
/// two stable counting passes over the 24 bits of the key.
fn sort_by_key(pairs: &mut Vec<u64>, scratch: &mut Vec<u64>) {
    scratch.clear();
    scratch.resize(pairs.len(), 0);
    let mut counts = vec![0usize; 1 << 12];
    for shift in [32u32, 44] {
        counts.iter_mut().for_each(|c| *c = 0);
        for p in pairs.iter() {
            counts[((p >> shift) & 0xfff) as usize] += 1;
        }
        let mut at = 0;
        for c in counts.iter_mut() {
            let n = *c;
            *c = at;
            at += n;
        }
        for p in pairs.iter() {
            let bucket = ((p >> shift) & 0xfff) as usize;
            scratch[counts[bucket]] = *p;
            counts[bucket] += 1;
        }
        std::mem::swap(pairs, scratch);
    }
}

struct Segment {
    /// The first file number it covers: segments are merged in this order.
    start: u32,
    file: File,
    header_len: u64,
}

/// The segments of one build, written by any of its threads.
pub struct Segments {
    dir: PathBuf,
    list: Mutex<Vec<Segment>>,
}

impl Segments {
    /// Segments kept as unnamed temporary files in `dir` (the index's folder).
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf(), list: Mutex::default() }
    }

    /// Sorts `pairs` (of files from `start` on, none before) into a segment
    /// and empties it; `scratch` is the sort's second buffer, kept for reuse.
    pub fn flush(&self, start: u32, pairs: &mut Vec<u64>, scratch: &mut Vec<u64>) -> io::Result<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        sort_by_key(pairs, scratch);
        let mut header = Vec::with_capacity(1 << 16);
        let mut data = Vec::with_capacity(pairs.len() * 2);
        let mut i = 0;
        while i < pairs.len() {
            let key = (pairs[i] >> 32) as u32;
            let (begin, mut last, mut count) = (data.len(), 0u32, 0u32);
            while let Some(p) = pairs.get(i).filter(|p| (**p >> 32) as u32 == key) {
                let id = *p as u32;
                put_varint(&mut data, (id - last) as u64);
                last = id;
                count += 1;
                i += 1;
            }
            for v in [key, count, last, (data.len() - begin) as u32] {
                header.extend_from_slice(&v.to_le_bytes());
            }
        }
        pairs.clear();
        let mut file = tempfile::tempfile_in(&self.dir)?;
        file.write_all(&header)?;
        file.write_all(&data)?;
        self.list.lock().unwrap_or_else(|e| e.into_inner()).push(Segment { start, file, header_len: header.len() as u64 });
        Ok(())
    }

    /// Writes the index file to `out`, through a temporary file renamed into
    /// place; returns its size and the number of trigrams.
    pub fn write(self, out: &Path, files: &[FileEntry], dirs: &[String], max_file_bytes: u64) -> io::Result<(u64, usize)> {
        let mut segments = self.list.into_inner().unwrap_or_else(|e| e.into_inner());
        segments.sort_by_key(|s| s.start);
        let mut tables = Vec::with_capacity(files.len() * 24);
        for f in files {
            put_varint(&mut tables, f.path.len() as u64);
            tables.extend_from_slice(f.path.as_bytes());
            put_varint(&mut tables, f.size);
            put_varint(&mut tables, f.stamp);
            tables.push(f.indexed as u8);
        }
        let dirs_off = META_LEN + tables.len();
        for d in dirs {
            put_varint(&mut tables, d.len() as u64);
            tables.extend_from_slice(d.as_bytes());
        }
        let post_off = META_LEN + tables.len();

        let dir = out.parent().ok_or_else(|| io::Error::other("the index path has no folder"))?;
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        let mut w = io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        w.write_all(&[0u8; HEADER_LEN + META_LEN])?;
        w.write_all(&tables)?;
        let mut crc_tables = crc32fast::Hasher::new();
        crc_tables.update(&tables);
        drop(tables);

        // The merge: the smallest trigram first, and for one trigram the
        // segments in file-number order.
        let mut cursors: Vec<Cursor<'_>> = segments.iter().map(|s| Cursor::new(&s.file, s.header_len)).collect();
        let mut heap = BinaryHeap::new();
        for (i, c) in cursors.iter_mut().enumerate() {
            if let Some(e) = c.next_entry()? {
                heap.push(Reverse((e.key, i)));
            }
        }
        let mut table = Vec::new();
        let mut crc_post = crc32fast::Hasher::new();
        let (mut written, mut buf, mut lead, mut same) = (0u64, Vec::new(), Vec::new(), Vec::new());
        while let Some(Reverse((key, first))) = heap.pop() {
            same.clear();
            same.push(first);
            while let Some(Reverse((k, i))) = heap.peek().copied() {
                if k != key {
                    break;
                }
                heap.pop();
                same.push(i);
            }
            same.sort_unstable();
            let (at, mut count, mut prev) = (written, 0u32, None::<u32>);
            for &i in &same {
                let c = &mut cursors[i];
                let e = c.entry;
                c.data(e.len as usize, &mut buf)?;
                let body = match prev {
                    None => &buf[..],
                    Some(prev) => {
                        let mut pos = 0;
                        let first_id = get_varint(&buf, &mut pos).ok_or_else(|| io::Error::other("a segment's posting is cut short"))?;
                        lead.clear();
                        put_varint(&mut lead, first_id - prev as u64);
                        crc_post.update(&lead);
                        w.write_all(&lead)?;
                        written += lead.len() as u64;
                        &buf[pos..]
                    }
                };
                crc_post.update(body);
                w.write_all(body)?;
                written += body.len() as u64;
                count += e.count;
                prev = Some(e.last);
                if let Some(next) = c.next_entry()? {
                    heap.push(Reverse((next.key, i)));
                }
            }
            table.extend_from_slice(&key.to_le_bytes());
            table.extend_from_slice(&count.to_le_bytes());
            table.extend_from_slice(&at.to_le_bytes());
        }
        drop(cursors);
        drop(segments);
        let table_off = post_off as u64 + written;
        w.write_all(&table)?;
        w.flush()?;
        drop(w);
        let trigrams = table.len() / TABLE_ENTRY;

        let mut meta = Vec::with_capacity(META_LEN);
        for v in [files.len() as u32, dirs.len() as u32, trigrams as u32] {
            meta.extend_from_slice(&v.to_le_bytes());
        }
        for v in [max_file_bytes, META_LEN as u64, dirs_off as u64, table_off, post_off as u64] {
            meta.extend_from_slice(&v.to_le_bytes());
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&meta);
        crc.combine(&crc_tables);
        crc.combine(&crc_post);
        let mut crc_table = crc32fast::Hasher::new();
        crc_table.update(&table);
        crc.combine(&crc_table);
        let body_len = table_off + table.len() as u64;
        let mut h = [0u8; HEADER_LEN];
        h[..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&crc.finalize().to_le_bytes());
        h[16..24].copy_from_slice(&body_len.to_le_bytes());
        let f = tmp.as_file_mut();
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&h)?;
        f.write_all(&meta)?;
        f.sync_all()?;
        tmp.persist(out).map_err(|e| e.error)?;
        Ok((HEADER_LEN as u64 + body_len, trigrams))
    }
}

#[derive(Clone, Copy, Default)]
struct Entry {
    key: u32,
    count: u32,
    last: u32,
    len: u32,
}

/// Reads one segment's table and postings side by side, each through its own buffer.
struct Cursor<'a> {
    headers: Reader<'a>,
    postings: Reader<'a>,
    entry: Entry,
}

impl<'a> Cursor<'a> {
    fn new(file: &'a File, header_len: u64) -> Self {
        Self { headers: Reader::new(file, 0, header_len), postings: Reader::new(file, header_len, u64::MAX), entry: Entry::default() }
    }

    fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        let mut raw = [0u8; SEGMENT_ENTRY];
        if !self.headers.read(&mut raw)? {
            return Ok(None);
        }
        let at = |i: usize| u32::from_le_bytes(raw[i..i + 4].try_into().unwrap_or_default());
        self.entry = Entry { key: at(0), count: at(4), last: at(8), len: at(12) };
        Ok(Some(self.entry))
    }

    fn data(&mut self, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
        out.clear();
        out.resize(len, 0);
        if self.postings.read(out)? {
            Ok(())
        } else {
            Err(io::Error::other("a segment's postings are cut short"))
        }
    }
}

/// Buffered positional reads of part of a file.
struct Reader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
    buf: Vec<u8>,
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(file: &'a File, pos: u64, end: u64) -> Self {
        Self { file, pos, end, buf: Vec::new(), at: 0 }
    }

    /// Fills `out`; false at the end of the part (before any byte).
    fn read(&mut self, out: &mut [u8]) -> io::Result<bool> {
        let mut done = 0;
        while done < out.len() {
            if self.at == self.buf.len() {
                let want = (64 << 10).min(self.end.saturating_sub(self.pos)) as usize;
                self.buf.resize(want, 0);
                let n = if want == 0 { 0 } else { self.file.read_at(&mut self.buf, self.pos)? };
                self.buf.truncate(n);
                self.pos += n as u64;
                self.at = 0;
                if n == 0 {
                    return if done == 0 { Ok(false) } else { Err(io::Error::other("a segment is cut short")) };
                }
            }
            let n = (out.len() - done).min(self.buf.len() - self.at);
            out[done..done + n].copy_from_slice(&self.buf[self.at..self.at + n]);
            self.at += n;
            done += n;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sort_orders_by_trigram_and_keeps_file_order() {
        let mut pairs = vec![pair(0xabcdef, 1), pair(5, 1), pair(0xabcdef, 2), pair(5, 3), pair(0x000fff, 3), pair(0xfff000, 4), pair(5, 9)];
        let mut want = pairs.clone();
        want.sort_by_key(|p| p >> 32);
        sort_by_key(&mut pairs, &mut Vec::new());
        assert_eq!(pairs, want);
    }
}
