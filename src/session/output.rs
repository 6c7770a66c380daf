//! Command output with a bound: what a tool part shows and stores.
//!
//! OpenCode keeps a shell command's whole output in memory, in the database and
//! in every live update (a 12 MB output became a 24 MB response and hundreds of
//! multi-megabyte events). Burrow keeps the first and the last part, up to the
//! limits OpenCode's tools use (50 KB, 2000 lines), says in the text what was
//! left out, and spools the complete output to a file under the data
//! directory (up to 100 MB), whose path the part's metadata carries
//! (`outputPath`).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

/// Shown output is at most this many bytes...
pub const MAX_BYTES: usize = 51_200;
/// ...and this many lines, half from the start and half from the end.
pub const MAX_LINES: usize = 2000;
const HALF: usize = MAX_BYTES / 2;

/// Where full outputs go, below the data directory.
pub const SPOOL_DIR: &str = "tool-output";

/// The most a spool file may hold; a command that prints forever (`yes`)
/// must not fill the disk.
pub const SPOOL_MAX: u64 = 100 * 1024 * 1024;

pub struct BoundedOutput {
    /// Everything, while it fits; then the first `HALF` bytes.
    head: Vec<u8>,
    /// The last `HALF` bytes, once the output no longer fits.
    tail: VecDeque<u8>,
    total: u64,
    lines: u64,
    spool_dir: PathBuf,
    spool_max: u64,
    spool: Option<Spool>,
}

/// The file that receives the complete output once it is too long to show.
struct Spool {
    path: PathBuf,
    /// `None` once finished or full.
    file: Option<tokio::io::BufWriter<tokio::fs::File>>,
    written: u64,
    max: u64,
}

impl Spool {
    async fn create(dir: &Path, max: u64, first: &[&[u8]]) -> std::io::Result<Self> {
        let path = dir.join(format!("tool_{}", crate::id::ascending(crate::id::Prefix::Part).trim_start_matches("prt_")));
        let (d, p) = (dir.to_path_buf(), path.clone());
        let file = tokio::task::spawn_blocking(move || {
            super::datadir::create_private_dir(&d)?;
            super::datadir::create_private_file(&p)
        })
        .await
        .map_err(std::io::Error::other)??;
        super::datadir::prune_in_background(dir, Some(&path));
        let file = tokio::io::BufWriter::new(tokio::fs::File::from_std(file));
        let mut spool = Self { path, file: Some(file), written: 0, max };
        for chunk in first {
            spool.write(chunk).await?;
        }
        Ok(spool)
    }

    /// Appends up to `max` bytes in all; past it the file is closed.
    async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        let Some(file) = &mut self.file else { return Ok(()) };
        let room = self.max.saturating_sub(self.written) as usize;
        let take = chunk.len().min(room);
        file.write_all(&chunk[..take]).await?;
        self.written += take as u64;
        if take < chunk.len() {
            self.close().await?;
        }
        Ok(())
    }

    async fn close(&mut self) -> std::io::Result<()> {
        match self.file.take() {
            Some(mut file) => file.flush().await,
            None => Ok(()),
        }
    }
}

impl BoundedOutput {
    pub fn new(data_dir: &Path) -> Self {
        Self::with_spool_limit(data_dir, SPOOL_MAX)
    }

    pub fn with_spool_limit(data_dir: &Path, spool_max: u64) -> Self {
        Self { head: Vec::new(), tail: VecDeque::new(), total: 0, lines: 0, spool_dir: data_dir.join(SPOOL_DIR), spool_max, spool: None }
    }

    /// True once the output is over a limit and the text shows only its ends.
    pub fn truncated(&self) -> bool {
        self.total > MAX_BYTES as u64 || self.lines > MAX_LINES as u64
    }

    pub async fn push(&mut self, chunk: &[u8]) {
        let was_truncated = self.truncated();
        self.total += chunk.len() as u64;
        self.lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        if !was_truncated && self.truncated() {
            // Until now everything fitted, so `head` holds all of it.
            match Spool::create(&self.spool_dir, self.spool_max, &[&self.head]).await {
                Ok(spool) => self.spool = Some(spool),
                Err(e) => tracing::warn!(dir = %self.spool_dir.display(), "cannot save the full command output: {e}"),
            }
        }
        if let Some(spool) = &mut self.spool {
            if let Err(e) = spool.write(chunk).await {
                tracing::warn!(path = %spool.path.display(), "cannot save the full command output: {e}");
                self.spool = None;
            }
        }
        if self.tail.is_empty() && self.head.len() + chunk.len() <= MAX_BYTES {
            self.head.extend_from_slice(chunk);
            return;
        }
        if self.tail.is_empty() {
            // Leaving "everything fits": keep HALF bytes at the front, the rest goes to the tail.
            let overflow = self.head.split_off(HALF.min(self.head.len()));
            self.tail.extend(overflow);
        }
        self.tail.extend(chunk);
        let excess = self.tail.len().saturating_sub(HALF);
        self.tail.drain(..excess);
    }

    /// Flushes the spool file; call once the process has ended.
    pub async fn finish(&mut self) {
        if let Some(spool) = &mut self.spool {
            if let Err(e) = spool.close().await {
                tracing::warn!(path = %spool.path.display(), "cannot save the full command output: {e}");
                self.spool = None;
            }
        }
    }

    /// Where the complete output (or its first [`SPOOL_MAX`] bytes) was saved,
    /// when it was too long to show.
    pub fn spool_path(&self) -> Option<&Path> {
        self.spool.as_ref().map(|s| s.path.as_path())
    }

    /// The text to show: everything, or the first and last lines with a note.
    pub fn text(&self) -> String {
        if !self.truncated() {
            let all: Vec<u8> = self.head.iter().chain(self.tail.iter()).copied().collect();
            return String::from_utf8_lossy(&all).into_owned();
        }
        let (head_bytes, tail_bytes): (&[u8], Vec<u8>) = if self.tail.is_empty() {
            // Few bytes, too many lines: everything is in `head`.
            (&self.head, self.head.clone())
        } else {
            (&self.head, self.tail.iter().copied().collect())
        };
        let head = first_lines(head_bytes, MAX_LINES / 2, HALF);
        let tail = last_lines(&tail_bytes, MAX_LINES / 2, HALF);
        let omitted = self.total.saturating_sub((head.len() + tail.len()) as u64);
        let saved = match &self.spool {
            Some(s) if s.written < self.total => format!("; its first {} bytes saved to {}", s.written, s.path.display()),
            Some(s) => format!("; full output saved to {}", s.path.display()),
            None => String::new(),
        };
        format!("{head}\n\n... {omitted} bytes truncated{saved} ...\n\n{tail}")
    }
}

/// The first `lines` lines within `bytes`, cut at a character boundary.
fn first_lines(data: &[u8], lines: usize, bytes: usize) -> String {
    let mut end = data.len().min(bytes);
    if let Some((i, _)) = data[..end].iter().enumerate().filter(|(_, &b)| b == b'\n').nth(lines.saturating_sub(1)) {
        end = i + 1;
    }
    let mut s = &data[..end];
    // Drop a character cut in half by the byte limit.
    while let Err(e) = std::str::from_utf8(s) {
        if e.error_len().is_some() {
            break;
        }
        s = &s[..e.valid_up_to()];
    }
    String::from_utf8_lossy(s).into_owned()
}

/// The last `lines` lines within `bytes`, starting at a character boundary.
fn last_lines(data: &[u8], lines: usize, bytes: usize) -> String {
    let mut start = data.len().saturating_sub(bytes);
    // A trailing newline ends the last line rather than starting another.
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut newlines = body.iter().enumerate().rev().filter(|(_, &b)| b == b'\n');
    if let Some((i, _)) = newlines.nth(lines.saturating_sub(1)) {
        start = start.max(i + 1);
    }
    let mut s = &data[start..];
    while s.first().is_some_and(|b| b & 0xC0 == 0x80) {
        s = &s[1..];
    }
    String::from_utf8_lossy(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn short_output_is_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = BoundedOutput::new(dir.path());
        out.push(b"hi\n").await;
        out.push("é\n".as_bytes()).await;
        assert!(!out.truncated());
        assert_eq!(out.text(), "hi\né\n");
        assert!(out.spool_path().is_none());
    }

    #[tokio::test]
    async fn long_output_keeps_both_ends_and_spools_everything() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = BoundedOutput::new(dir.path());
        let mut all = Vec::new();
        for i in 0..200_000 {
            let line = format!("line {i}\n");
            all.extend_from_slice(line.as_bytes());
            out.push(line.as_bytes()).await;
        }
        out.finish().await;
        let text = out.text();
        assert!(text.starts_with("line 0\nline 1\n"), "{}", &text[..40]);
        assert!(text.ends_with("line 199999\n"));
        assert!(text.lines().count() <= MAX_LINES + 5, "{}", text.lines().count());
        assert!(text.len() <= MAX_BYTES + 200);
        assert!(text.contains("bytes truncated; full output saved to"));
        let saved = std::fs::read(out.spool_path().unwrap()).unwrap();
        assert_eq!(saved, all);
    }

    #[tokio::test]
    async fn the_spool_file_has_a_cap() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = BoundedOutput::with_spool_limit(dir.path(), 100_000);
        for _ in 0..30 {
            out.push(&[b'y'; 10_000]).await;
        }
        out.finish().await;
        assert_eq!(std::fs::metadata(out.spool_path().unwrap()).unwrap().len(), 100_000);
        assert!(out.text().contains("bytes truncated; its first 100000 bytes saved to"), "{}", &out.text()[25_000..25_200]);
    }

    #[tokio::test]
    async fn many_short_lines_are_cut_by_count() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = BoundedOutput::new(dir.path());
        for i in 0..3000 {
            out.push(format!("{i}\n").as_bytes()).await;
        }
        let text = out.text();
        assert!(out.truncated());
        assert!(text.starts_with("0\n1\n"));
        assert!(text.ends_with("2999\n"));
        assert!(!text.contains("\n1000\n") && text.contains("\n999\n") && text.contains("\n2000\n"));
    }

    #[test]
    fn cuts_never_split_characters() {
        let data = "ééééé".as_bytes();
        assert_eq!(first_lines(data, 10, 3), "é");
        assert_eq!(last_lines(data, 10, 3), "é");
    }
}
