//! `GET /pty/{ptyID}/connect` (and v2's `GET /api/pty/{ptyID}/connect`): a
//! terminal over a WebSocket, with OpenCode's framing.
//!
//! The server first replays the kept output from `?cursor=N` (everything when
//! absent, nothing for `-1`) as text frames, then sends one binary frame, a
//! 0x00 byte followed by `{"cursor":N}`: the cursor just past the replay.
//! Live output follows as text frames. Text frames from the client are
//! keystrokes (binary frames too, when they are UTF-8). When the process ends
//! or the terminal is removed the socket closes with 1000; a terminal that
//! vanishes while connecting closes it with 4404.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;

use super::{DirectoryParams, LocationParams};
use crate::error::ApiError;
use crate::pty::{Attached, Live, Terminal};
use crate::server::auth::TicketGrant;
use crate::server::extract::{Ctx, Query, Ws};
use crate::server::AppState;

/// Replayed output goes out in frames of at most this many bytes, like the reference.
pub const REPLAY_CHUNK: usize = 64 * 1024;
/// The close code for a terminal that is gone.
pub const CLOSE_GONE: u16 = 4404;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConnectParams {
    /// Replay from this byte of the output; `-1` replays nothing. Anything
    /// else that is not a whole number replays everything kept.
    pub cursor: Option<String>,
    /// A one-use ticket from `POST /pty/{ptyID}/connect-token`, in place of credentials.
    pub ticket: Option<String>,
}

/// The terminal id when `path` is a terminal's WebSocket, `/pty/{id}/connect`
/// or the v2 `/api/pty/{id}/connect`.
pub fn connect_path_id(path: &str) -> Option<&str> {
    let path = path.strip_prefix("/api").unwrap_or(path);
    path.strip_prefix("/pty/").and_then(|rest| rest.strip_suffix("/connect")).filter(|id| !id.is_empty() && !id.contains('/'))
}

/// Parses `cursor` as the reference does: whole numbers from -1 up count.
fn parse_cursor(raw: Option<&str>) -> Option<i64> {
    raw?.trim().parse::<i64>().ok().filter(|c| *c >= -1)
}

/// The binary frame that tells a client where the output it has seen ends.
pub fn meta_frame(cursor: u64) -> Bytes {
    let mut out = vec![0u8];
    out.extend_from_slice(format!("{{\"cursor\":{cursor}}}").as_bytes());
    Bytes::from(out)
}

#[utoipa::path(get, path = "/pty/{ptyID}/connect", tag = "pty", operation_id = "pty.connect",
    params(DirectoryParams, ConnectParams, ("ptyID" = String, Path)),
    responses((status = 101, description = "WebSocket to the terminal"), (status = 400, description = "Not a WebSocket request"),
        (status = 404, description = "No such running terminal")))]
pub async fn connect(
    State(st): State<Arc<AppState>>,
    Ws(ws): Ws,
    Ctx(inst): Ctx,
    Path(id): Path<String>,
    Query(q): Query<ConnectParams>,
    grant: Option<Extension<TicketGrant>>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    // The auth middleware checked and used up the ticket (and the guard the
    // Origin) before this ran; here the ticket must also match the directory.
    if q.ticket.is_some() && grant.is_none_or(|Extension(g)| g.directory != inst.directory) {
        return ApiError::new(StatusCode::FORBIDDEN, "ForbiddenError", "the terminal ticket was issued for another directory").into_response();
    }
    let Some(terminal) = ws.ptys.get(&inst.directory, &id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(upgrade) = upgrade else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let cursor = parse_cursor(q.cursor.as_deref());
    let bus = st.runtime.bus.clone();
    upgrade.on_upgrade(move |socket| stream(socket, terminal, cursor, bus))
}

/// The v2 path of the same WebSocket (`client.v2.pty.connect`): the same
/// framing, tickets and close codes as `GET /pty/{ptyID}/connect`.
#[utoipa::path(get, path = "/api/pty/{ptyID}/connect", tag = "v2", operation_id = "v2.pty.connect", summary = "Connect to PTY session",
    params(("ptyID" = String, Path), LocationParams, ConnectParams),
    responses((status = 101, description = "WebSocket to the terminal"), (status = 400, description = "Not a WebSocket request"),
        (status = 403, description = "The ticket was issued for another directory"), (status = 404, description = "No such running terminal")))]
pub async fn connect_v2(
    st: State<Arc<AppState>>,
    ws: Ws,
    ctx: Ctx,
    id: Path<String>,
    q: Query<ConnectParams>,
    grant: Option<Extension<TicketGrant>>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    connect(st, ws, ctx, id, q, grant, upgrade).await
}

async fn stream(mut socket: WebSocket, terminal: Arc<Terminal>, cursor: Option<i64>, bus: crate::event::Bus) {
    let Some(attached) = terminal.attach(cursor) else {
        let _ = socket.send(close(CLOSE_GONE, "session not found")).await;
        return;
    };
    let Attached { replay, cursor, mut live } = attached;
    for chunk in chunks(&replay, REPLAY_CHUNK) {
        if socket.send(Message::Text(chunk.into())).await.is_err() {
            return;
        }
    }
    if socket.send(Message::Binary(meta_frame(cursor))).await.is_err() {
        return;
    }
    // The cursor just past what this client has been sent.
    let mut seen = cursor;
    loop {
        tokio::select! {
            // At shutdown: say so (briefly: the client may not be reading) and close.
            _ = bus.closed() => {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), socket.send(close(1001, "server shutting down"))).await;
                return;
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => terminal.write(Bytes::from(text)).await,
                Some(Ok(Message::Binary(data))) => {
                    if std::str::from_utf8(&data).is_ok() {
                        terminal.write(data).await;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            out = live.recv() => {
                let text = match out {
                    Ok(Live::Data { cursor, text }) => {
                        // Skip what a catch-up replay already sent.
                        let end = cursor + text.len() as u64;
                        if end <= seen {
                            continue;
                        }
                        seen = end;
                        text.to_string()
                    }
                    Ok(Live::End) | Err(RecvError::Closed) => {
                        let _ = socket.send(close(1000, "")).await;
                        return;
                    }
                    Err(RecvError::Lagged(_)) => {
                        // Fell behind the live channel: catch up from the ring.
                        let Some(again) = terminal.attach(Some(seen as i64)) else {
                            let _ = socket.send(close(1000, "")).await;
                            return;
                        };
                        live = again.live;
                        seen = again.cursor;
                        again.replay
                    }
                };
                for chunk in chunks(&text, REPLAY_CHUNK) {
                    if socket.send(Message::Text(chunk.into())).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: reason.into() }))
}

/// Splits text into pieces of at most `max` bytes, on character boundaries.
fn chunks(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut cut = rest.len().min(max);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (head, tail) = rest.split_at(cut);
        out.push(head);
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_parsing_follows_the_reference() {
        assert_eq!(parse_cursor(Some("-1")), Some(-1));
        assert_eq!(parse_cursor(Some("72")), Some(72));
        assert_eq!(parse_cursor(Some("-2")), None);
        assert_eq!(parse_cursor(Some("abc")), None);
        assert_eq!(parse_cursor(None), None);
    }

    #[test]
    fn both_connect_paths_name_the_terminal() {
        assert_eq!(connect_path_id("/pty/pty_1/connect"), Some("pty_1"));
        assert_eq!(connect_path_id("/api/pty/pty_1/connect"), Some("pty_1"));
        assert_eq!(connect_path_id("/api/pty/pty_1/connect-token"), None);
        assert_eq!(connect_path_id("/x/pty/pty_1/connect"), None);
    }

    #[test]
    fn chunks_respect_characters() {
        assert_eq!(chunks("aéb", 2), vec!["a", "é", "b"]);
        assert_eq!(chunks("", 4), Vec::<&str>::new());
        assert_eq!(meta_frame(18)[..], b"\0{\"cursor\":18}"[..]);
    }
}
