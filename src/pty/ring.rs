//! A PTY's output history: a bounded ring of UTF-8 text addressed by cursor.
//!
//! A cursor counts the bytes of text a PTY has produced since it started, so a
//! client that reconnects with the last cursor it saw gets exactly what it
//! missed, as long as that is still in the ring. Output is decoded to UTF-8 on
//! the way in (an incomplete sequence waits for its next bytes, invalid bytes
//! become U+FFFD), so everything handed out is valid text for WebSocket text
//! frames, and a replay never starts in the middle of a character.

use std::collections::VecDeque;

/// How much output each PTY keeps for replay, like the reference (2 MiB).
pub const BUFFER_LIMIT: usize = 2 * 1024 * 1024;

/// The longest incomplete UTF-8 sequence that can wait for more bytes.
const MAX_PENDING: usize = 3;

pub struct Ring {
    data: VecDeque<u8>,
    /// The cursor of `data[0]`.
    start: u64,
    limit: usize,
    /// The start of a character split across reads.
    pending: Vec<u8>,
}

impl Ring {
    pub fn new(limit: usize) -> Self {
        Self { data: VecDeque::new(), start: 0, limit, pending: Vec::new() }
    }

    /// The cursor just past the newest byte.
    pub fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }

    /// Decodes `bytes`, appends the text and returns it (empty when all of it
    /// is waiting for the rest of a character).
    pub fn push(&mut self, bytes: &[u8]) -> String {
        let mut input = std::mem::take(&mut self.pending);
        input.extend_from_slice(bytes);
        let text = decode(&input, &mut self.pending);
        self.data.extend(text.as_bytes());
        if self.data.len() > self.limit {
            let excess = self.data.len() - self.limit;
            self.data.drain(..excess);
            self.start += excess as u64;
        }
        text
    }

    /// The text from `cursor` to the end, starting at the oldest byte kept when
    /// `cursor` is older, and at the next character boundary.
    pub fn since(&self, cursor: u64) -> String {
        let from = cursor.saturating_sub(self.start).min(self.data.len() as u64) as usize;
        let (a, b) = self.data.as_slices();
        let mut out = Vec::with_capacity(self.data.len() - from);
        if from < a.len() {
            out.extend_from_slice(&a[from..]);
            out.extend_from_slice(b);
        } else {
            out.extend_from_slice(&b[from - a.len()..]);
        }
        let skip = out.iter().take_while(|&&b| is_continuation(b)).count();
        // Only whole characters were pushed, so this is valid past `skip`.
        String::from_utf8_lossy(&out[skip..]).into_owned()
    }
}

fn is_continuation(b: u8) -> bool {
    b & 0b1100_0000 == 0b1000_0000
}

/// Decodes as much of `input` as forms whole characters; an incomplete
/// sequence at the end goes to `pending`.
fn decode(mut input: &[u8], pending: &mut Vec<u8>) -> String {
    let mut out = String::with_capacity(input.len());
    loop {
        match std::str::from_utf8(input) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let (valid, rest) = input.split_at(e.valid_up_to());
                // `valid_up_to` guarantees this prefix is UTF-8.
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                match e.error_len() {
                    Some(n) => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        input = &rest[n..];
                    }
                    None if rest.len() <= MAX_PENDING => {
                        pending.extend_from_slice(rest);
                        return out;
                    }
                    None => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        return out;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_count_bytes_and_replay_from_any_point() {
        let mut r = Ring::new(1024);
        assert_eq!(r.push(b"hello "), "hello ");
        assert_eq!(r.push(b"world"), "world");
        assert_eq!(r.end(), 11);
        assert_eq!(r.since(0), "hello world");
        assert_eq!(r.since(6), "world");
        assert_eq!(r.since(11), "");
        assert_eq!(r.since(500), "");
    }

    #[test]
    fn a_character_split_across_reads_waits_for_its_end() {
        let mut r = Ring::new(1024);
        let e = "é".as_bytes();
        assert_eq!(r.push(&[b'a', e[0]]), "a");
        assert_eq!(r.end(), 1);
        assert_eq!(r.push(&[e[1], b'b']), "éb");
        assert_eq!(r.end(), 4);
        // A cursor inside a character replays from the next one.
        assert_eq!(r.since(2), "b");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut r = Ring::new(1024);
        assert_eq!(r.push(&[b'x', 0xff, b'y']), "x\u{fffd}y");
    }

    #[test]
    fn old_output_falls_off_the_front() {
        let mut r = Ring::new(8);
        r.push(b"0123456789");
        assert_eq!(r.end(), 10);
        assert_eq!(r.since(0), "23456789");
        assert_eq!(r.since(5), "56789");
        // Trimming inside a character: the replay skips its tail.
        let mut r = Ring::new(3);
        r.push("aéé".as_bytes());
        assert_eq!(r.since(0), "é");
    }
}
