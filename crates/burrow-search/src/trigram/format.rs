//! The index file: a header, then a checksummed body.
//!
//! ```text
//! header  magic "BRWTRIGM" | version u32 | crc32 of the body u32 | body length u64
//! body    meta: files u32 | dirs u32 | trigrams u32 | max file bytes u64
//!               | files offset u64 | dirs offset u64 | table offset u64 | postings offset u64
//!         files: per file (sorted by path) varint path length, path, varint size,
//!                varint stamp (mtime in ns, or a hash of the ETag), flags byte
//!                (1 = its trigrams are indexed)
//!         dirs: per directory varint length, path
//!         postings: per trigram the ascending file numbers, delta then varint coded
//!         table: per trigram (ascending) key u32 | posting count u32 | posting offset u64
//! ```
//!
//! All integers are little-endian; offsets are from the body's start. The
//! table comes last so that a build can stream the postings out before it
//! knows how many trigrams there are (`segments.rs`). The table and postings are read from a memory map, one posting list at a time,
//! so a query touches only the pages of the trigrams it asks for.

use std::io::{self, Read};

pub const MAGIC: &[u8; 8] = b"BRWTRIGM";
/// Bumped whenever the layout or the meaning of a field changes: an index of
/// another version is rebuilt, never read.
pub const VERSION: u32 = 3;
pub const HEADER_LEN: usize = 24;
pub const META_LEN: usize = 4 * 3 + 8 * 5;
pub const TABLE_ENTRY: usize = 16;

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint at `*pos`, advancing it; None past the end or when overlong.
pub fn get_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

pub fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(buf.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

pub fn u64_at(buf: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(buf.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

/// Checks a header and the body's checksum, reading the body from `file` in
/// pieces (a checksum over a map would make every page resident).
pub fn verify(file: &mut std::fs::File) -> io::Result<()> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    let mut h = [0u8; HEADER_LEN];
    file.read_exact(&mut h).map_err(|_| bad("truncated header"))?;
    if &h[..8] != MAGIC {
        return Err(bad("not a trigram index"));
    }
    let version = u32_at(&h, 8).unwrap_or(0);
    if version != VERSION {
        return Err(bad(&format!("index format {version}, this server reads {VERSION}")));
    }
    let crc = u32_at(&h, 12).unwrap_or(0);
    let len = u64_at(&h, 16).unwrap_or(0);
    if file.metadata()?.len() != HEADER_LEN as u64 + len {
        return Err(bad("truncated or extended body"));
    }
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    if hasher.finalize() != crc {
        return Err(bad("checksum mismatch"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_reject_overruns() {
        let mut buf = Vec::new();
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            put_varint(&mut buf, v);
        }
        let mut pos = 0;
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            assert_eq!(get_varint(&buf, &mut pos), Some(v));
        }
        assert_eq!(get_varint(&buf, &mut pos), None);
        assert_eq!(get_varint(&[0x80, 0x80], &mut 0), None);
        assert_eq!(get_varint(&[0xff; 11], &mut 0), None);
    }
}
