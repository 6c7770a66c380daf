//! The wire format of `burrow-helper serve`: one long-lived helper process
//! next to the data that answers many requests over its stdin and stdout, so
//! a file operation or a search costs a message round trip instead of
//! starting a process (a `docker exec` costs tens of milliseconds).
//!
//! A frame is `u32 header length`, `u32 data length` (both big-endian), a JSON
//! header, then raw data. Requests carry an id chosen by the client; every
//! reply carries the id of its request. A call gets one `ok` or `err` reply;
//! `exec`, `pty` and `watch` get `ok` once started, then a stream of
//! `stdout`/`stderr`/`exit` or `changed`/`rescan` replies. Id 0 is the
//! helper's greeting (`ok` with [`Hello`]). Errors travel as the helper's
//! error line ([`super::encode_error`]).

use std::collections::HashMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::env::GrepRequest;

/// Larger headers are a broken stream, not a request.
const MAX_HEADER: usize = 1 << 20;
/// The largest data part of a frame.
pub const MAX_DATA: usize = 1 << 30;

/// A request from the server. Paths are relative to the helper's root.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    #[serde(flatten)]
    pub call: Call,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Call {
    Confine {
        path: String,
    },
    List {
        path: String,
    },
    Stat {
        path: String,
    },
    /// Answered with the bytes as data.
    Read {
        path: String,
        max: u64,
    },
    /// The bytes come as data.
    Write {
        path: String,
    },
    Mkdir {
        path: String,
    },
    Remove {
        path: String,
    },
    Rename {
        from: String,
        to: String,
    },
    /// Answered with the walk lines ([`super::write_entry`], then `end`) as data.
    Walk {
        path: String,
    },
    Grep {
        request: GrepRequest,
    },
    /// Answered with the text index's state, or null when the helper keeps none.
    TextIndex,
    /// Rebuilds the text index in the background.
    Refresh,
    /// stdin, when `stdin` is set, comes as data.
    Exec {
        command: String,
        cwd: String,
        env: HashMap<String, String>,
        stdin: bool,
    },
    Pty {
        command: String,
        args: Vec<String>,
        cwd: String,
        env: HashMap<String, String>,
        rows: u16,
        cols: u16,
    },
    /// Keystrokes for the PTY `process` (a request id), as data.
    Input {
        process: u64,
    },
    Resize {
        process: u64,
        rows: u16,
        cols: u16,
    },
    Kill {
        process: u64,
    },
    Watch,
    /// Snapshots the workspace into the helper's store (see `crate::snapshot`); answers the tree hash.
    SnapshotTrack,
    /// Answers the files that differ between two snapshots.
    SnapshotChanges {
        from: String,
        to: String,
    },
    /// Answered with the blob's bytes as data. (Not `id`: the request's own id shares the header.)
    SnapshotBlob {
        blob: String,
    },
    /// Puts files back as a snapshot holds them (all of its files when `files` is absent).
    SnapshotRestore {
        hash: String,
        files: Option<Vec<String>>,
    },
    /// Prunes the helper's store (`crate::snapshot::prune`): objects that no
    /// snapshot in `keep` reaches and older than `max_age_secs` go.
    SnapshotPrune {
        keep: Vec<String>,
        max_age_secs: u64,
    },
}

/// A reply from the helper.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub id: u64,
    #[serde(flatten)]
    pub event: Event,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Event {
    Ok {
        #[serde(default)]
        value: serde_json::Value,
    },
    Err {
        error: String,
    },
    Stdout,
    Stderr,
    Exit {
        code: Option<i32>,
        signal: Option<i32>,
    },
    Changed {
        paths: Vec<String>,
    },
    Rescan,
}

/// The helper's greeting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`super::version_line`] of the helper: version, protocol and build id.
    pub version: String,
    /// The canonical root it serves.
    pub root: String,
}

/// Encodes one frame.
pub fn encode<T: Serialize>(header: &T, data: &[u8]) -> Vec<u8> {
    // Serializing these plain types cannot fail.
    let head = serde_json::to_vec(header).unwrap_or_default();
    let mut out = Vec::with_capacity(8 + head.len() + data.len());
    out.extend_from_slice(&(head.len() as u32).to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(data);
    out
}

/// Reads one frame; `None` at a clean end of the stream.
pub async fn read<T, R>(reader: &mut R) -> std::io::Result<Option<(T, Bytes)>>
where
    T: for<'de> Deserialize<'de>,
    R: AsyncRead + Unpin,
{
    let mut lens = [0u8; 8];
    match reader.read_exact(&mut lens).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let head_len = u32::from_be_bytes([lens[0], lens[1], lens[2], lens[3]]) as usize;
    let data_len = u32::from_be_bytes([lens[4], lens[5], lens[6], lens[7]]) as usize;
    if head_len > MAX_HEADER || data_len > MAX_DATA {
        return Err(invalid(format!("frame too large ({head_len} + {data_len} bytes)")));
    }
    let mut buf = vec![0u8; head_len + data_len];
    reader.read_exact(&mut buf).await?;
    let data = Bytes::from(buf.split_off(head_len));
    let header = serde_json::from_slice(&buf).map_err(|e| invalid(format!("bad frame header: {e}")))?;
    Ok(Some((header, data)))
}

/// Starts the task that writes queued frames to `writer` in order, flushing
/// whenever the queue runs empty; it shuts `writer` down when every sender is gone.
pub fn writer<W: AsyncWrite + Unpin + Send + 'static>(mut writer: W) -> (mpsc::Sender<Vec<u8>>, tokio::task::JoinHandle<()>) {
    let (out, mut queue) = mpsc::channel::<Vec<u8>>(256);
    let task = tokio::spawn(async move {
        while let Some(frame) = queue.recv().await {
            if writer.write_all(&frame).await.is_err() {
                return;
            }
            if queue.is_empty() && writer.flush().await.is_err() {
                return;
            }
        }
        let _ = writer.shutdown().await;
    });
    (out, task)
}

fn invalid(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn round_trip<T: Serialize + for<'de> Deserialize<'de>>(header: &T, data: &[u8]) -> (T, Bytes) {
        let wire = encode(header, data);
        let mut reader = &wire[..];
        let got = read::<T, _>(&mut reader).await.unwrap().unwrap();
        assert!(read::<T, _>(&mut reader).await.unwrap().is_none(), "one frame, then a clean end");
        got
    }

    #[tokio::test]
    async fn requests_and_replies_round_trip() {
        let calls = [
            Call::Read { path: "a b/c".into(), max: 10 },
            Call::Exec { command: "echo hi".into(), cwd: "".into(), env: HashMap::from([("K".into(), "V".into())]), stdin: true },
            Call::Pty { command: "sh".into(), args: vec!["-l".into()], cwd: "src".into(), env: HashMap::new(), rows: 24, cols: 80 },
            Call::Grep { request: GrepRequest::new(&crate::env::WorkspacePath::root(), "x+", 5) },
            Call::Watch,
        ];
        for (i, call) in calls.into_iter().enumerate() {
            let req = Request { id: i as u64 + 1, call };
            let json = serde_json::to_value(&req).unwrap();
            assert!(json.get("op").is_some(), "flat header with an op tag: {json}");
            let (got, data) = round_trip(&req, b"\x00bin\xffary").await;
            assert_eq!(got.id, req.id);
            assert_eq!(serde_json::to_value(&got).unwrap(), json);
            assert_eq!(&data[..], b"\x00bin\xffary");
        }
        for event in [Event::Ok { value: serde_json::json!({"pid": 3}) }, Event::Exit { code: Some(1), signal: None }, Event::Rescan, Event::Stdout] {
            let (got, _) = round_trip(&Reply { id: 9, event: event.clone() }, b"").await;
            assert_eq!(got, Reply { id: 9, event });
        }
        // `ok` without a value is fine.
        let reply: Reply = serde_json::from_str(r#"{"id":1,"ev":"ok"}"#).unwrap();
        assert_eq!(reply.event, Event::Ok { value: serde_json::Value::Null });
    }

    #[tokio::test]
    async fn truncated_and_oversized_frames_are_errors() {
        let wire = encode(&Reply { id: 1, event: Event::Stdout }, b"abcdef");
        let mut cut = &wire[..wire.len() - 2];
        assert!(read::<Reply, _>(&mut cut).await.is_err());
        let mut huge = &[0xffu8, 0xff, 0xff, 0xff, 0, 0, 0, 0][..];
        assert!(read::<Reply, _>(&mut huge).await.is_err());
        let mut garbage = &encode(&"not a reply", b"")[..];
        assert!(read::<Reply, _>(&mut garbage).await.is_err());
    }
}
