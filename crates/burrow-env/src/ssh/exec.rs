//! Processes over exec channels, with and without a PTY.
//!
//! Every command runs as `exec /bin/sh -c 'echo $$; ...; exec /bin/sh -c CMD'`.
//! sshd starts each session's command in a new session (setsid), so the shell's
//! pid is also its process group, and `exec` keeps that pid for the command.
//! The first line of output carries it; killing sends SIGKILL to the whole
//! group through a second exec channel, because closing a channel does not
//! stop a non-PTY process and OpenSSH's "signal" request reaches only the
//! session leader, not the children a shell command starts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use russh::client::Msg;
use russh::{Channel, ChannelMsg, ChannelReadHalf, Sig};
use tokio::sync::{mpsc, oneshot};

use super::connect::{Conn, Link};
use crate::env::{EnvError, EnvResult, ExitStatus, Output, Process, ProcessControl, Pty, PtyInput, PtySize};

/// How long the process-group line may take to arrive.
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub fn quote_word(s: &str) -> String {
    // POSIX single quotes: everything literal, a quote closes, escapes and reopens.
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What the wrapper prints instead of its pid when the program to run is missing.
const NO_PROGRAM: &str = "burrow:no-such-program";

/// The command line sent over the channel. With `program`, a missing program
/// is reported before anything starts (a terminal's command, checked like a local spawn).
pub fn wrap(command: &str, cwd: Option<&str>, env: &HashMap<String, String>, program: Option<&str>) -> String {
    let mut script = String::new();
    if let Some(p) = program {
        script.push_str(&format!("command -v {} >/dev/null 2>&1 || {{ echo {NO_PROGRAM}; exit 127; }}; ", quote_word(p)));
    }
    script.push_str("echo $$; ");
    if let Some(dir) = cwd {
        script.push_str(&format!("cd -- {} || exit 126; ", quote_word(dir)));
    }
    let mut vars: Vec<_> = env.iter().filter(|(k, _)| is_name(k)).collect();
    vars.sort();
    for (k, v) in vars {
        script.push_str(&format!("export {k}={}; ", quote_word(v)));
    }
    script.push_str(&format!("exec /bin/sh -c {}", quote_word(command)));
    format!("exec /bin/sh -c {}", quote_word(&script))
}

fn is_name(k: &str) -> bool {
    !k.is_empty() && !k.starts_with(|c: char| c.is_ascii_digit()) && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Kills a remote process group, over a fresh channel (the link reconnects if
/// the connection that started the process is gone).
pub struct RemoteGroup {
    link: Arc<Link>,
    pgid: u32,
    /// Closes the process's own channel once the group is dead.
    channel: tokio::sync::Mutex<Option<Arc<russh::ChannelWriteHalf<Msg>>>>,
}

#[async_trait]
impl ProcessControl for RemoteGroup {
    async fn kill(&self) -> EnvResult<()> {
        let conn = self.link.get().await?;
        let cmd = format!("kill -KILL -- -{p} 2>/dev/null || kill -KILL {p} 2>/dev/null; true", p = self.pgid);
        let channel = conn.guard(async { conn.handle.channel_open_session().await.map_err(|e| EnvError::Io(format!("kill: {e}"))) }).await?;
        let (mut read, write) = channel.split();
        write.exec(true, cmd).await.map_err(|e| EnvError::Io(format!("kill: {e}")))?;
        conn.guard(async {
            while let Some(msg) = read.wait().await {
                if matches!(msg, ChannelMsg::ExitStatus { .. } | ChannelMsg::Close) {
                    break;
                }
            }
            Ok(())
        })
        .await?;
        if let Some(ch) = self.channel.lock().await.take() {
            let _ = ch.close().await;
        }
        Ok(())
    }
}

/// Opens a channel, optionally with a PTY, and runs `wrapped` on it.
async fn open(conn: &Conn, wrapped: String, pty: Option<PtySize>) -> EnvResult<Channel<Msg>> {
    let err = |e: russh::Error| EnvError::Io(format!("cannot start a remote command: {e}"));
    conn.guard(async {
        let channel = conn.handle.channel_open_session().await.map_err(err)?;
        if let Some(size) = pty {
            channel.request_pty(false, "xterm-256color", size.cols as u32, size.rows as u32, 0, 0, &[]).await.map_err(err)?;
        }
        channel.exec(true, wrapped).await.map_err(err)?;
        Ok(channel)
    })
    .await
}

/// Reads until the first line (the process group) and returns it with
/// whatever output followed it in the same packet.
async fn read_pgid(conn: &Conn, read: &mut ChannelReadHalf) -> EnvResult<(u32, Vec<u8>)> {
    let mut buf = Vec::new();
    let wait = async {
        loop {
            match read.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    buf.extend_from_slice(&data);
                    if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                        let line = String::from_utf8_lossy(&buf[..nl]).trim().to_string();
                        if line == NO_PROGRAM {
                            return Err(EnvError::NotFound("no such program".into()));
                        }
                        let rest = buf[nl + 1..].to_vec();
                        return line
                            .parse::<u32>()
                            .map(|p| (p, rest))
                            .map_err(|_| EnvError::Io(format!("the remote shell printed {line:?} instead of its pid")));
                    }
                }
                Some(ChannelMsg::ExtendedData { data, .. }) => {
                    return Err(EnvError::Io(format!("the remote command did not start: {}", String::from_utf8_lossy(&data).trim())))
                }
                Some(ChannelMsg::Failure) => return Err(EnvError::Io("the server refused to run the command".into())),
                Some(_) => {}
                None => return Err(conn.lost_error()),
            }
        }
    };
    match tokio::time::timeout(START_TIMEOUT, conn.guard(wait)).await {
        Ok(r) => r,
        Err(_) => Err(EnvError::Unavailable("the remote command did not start in time".into())),
    }
}

/// Starts a command; its output streams, and it can be killed with its children.
pub async fn spawn(link: &Arc<Link>, wrapped: String, stdin: Option<Bytes>) -> EnvResult<Process> {
    let conn = link.get().await?;
    let channel = open(&conn, wrapped, None).await?;
    let (mut read, write) = channel.split();
    let (pgid, first) = read_pgid(&conn, &mut read).await?;
    let write = Arc::new(write);
    // Feed stdin beside the output pump: a command that prints before it reads
    // must not wait on us while we wait on it.
    let feeder = write.clone();
    tokio::spawn(async move {
        if let Some(data) = stdin {
            let _ = feeder.data(&data[..]).await;
        }
        let _ = feeder.eof().await;
    });
    let control = Arc::new(RemoteGroup { link: link.clone(), pgid, channel: tokio::sync::Mutex::new(Some(write)) });
    let (tx, output) = mpsc::channel(64);
    let (exit_tx, exit) = oneshot::channel();
    if !first.is_empty() {
        let _ = tx.try_send(Output::Stdout(Bytes::from(first)));
    }
    tokio::spawn(pump(conn, read, tx, exit_tx));
    Ok(Process { output, exit, control })
}

/// Runs `command` on a channel of its own and returns its stdout and stdin as
/// byte streams (stderr is dropped): the transport of the helper session.
/// `command` is a shell script, not one program (the helper's starts with a
/// checksum check and then `exec`s the helper), so it is not prefixed with `exec`.
pub async fn attach(
    link: &Link,
    command: &str,
) -> EnvResult<(impl tokio::io::AsyncRead + Send + Unpin + 'static, impl tokio::io::AsyncWrite + Send + Unpin + 'static)> {
    let conn = link.get().await?;
    let channel = open(&conn, format!("exec 2>/dev/null; {command}"), None).await?;
    Ok(tokio::io::split(channel.into_stream()))
}

/// Forwards a channel's output until it closes. When the connection drops
/// first, the output says so and no exit status is sent.
async fn pump(conn: Arc<Conn>, mut read: ChannelReadHalf, tx: mpsc::Sender<Output>, exit_tx: oneshot::Sender<ExitStatus>) {
    let mut status = None;
    loop {
        let msg = tokio::select! {
            m = read.wait() => m,
            _ = conn.lost() => None,
        };
        match msg {
            Some(ChannelMsg::Data { data }) => {
                if tx.send(Output::Stdout(Bytes::copy_from_slice(&data))).await.is_err() {
                    // Nobody reads: keep draining so the exit status still arrives.
                }
            }
            Some(ChannelMsg::ExtendedData { data, .. }) => {
                let _ = tx.send(Output::Stderr(Bytes::copy_from_slice(&data))).await;
            }
            Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(ExitStatus { code: Some(exit_status as i32), signal: None }),
            Some(ChannelMsg::ExitSignal { signal_name, .. }) => status = Some(ExitStatus { code: None, signal: Some(signal_number(&signal_name)) }),
            Some(ChannelMsg::Close) | None => break,
            Some(_) => {}
        }
    }
    match status {
        Some(s) => {
            let _ = exit_tx.send(s);
        }
        None if !conn.alive() => {
            let msg = format!("\nburrow: {}\n", conn.lost_error());
            let _ = tx.send(Output::Stderr(Bytes::from(msg))).await;
        }
        None => {}
    }
}

fn signal_number(sig: &Sig) -> i32 {
    match sig {
        Sig::HUP => 1,
        Sig::INT => 2,
        Sig::QUIT => 3,
        Sig::ILL => 4,
        Sig::ABRT => 6,
        Sig::FPE => 8,
        Sig::KILL => 9,
        Sig::USR1 => 10,
        Sig::SEGV => 11,
        Sig::PIPE => 13,
        Sig::ALRM => 14,
        Sig::TERM => 15,
        Sig::Custom(_) => 0,
    }
}

/// Starts a command on a remote pseudo-terminal.
pub async fn spawn_pty(link: &Arc<Link>, wrapped: String, size: PtySize) -> EnvResult<Pty> {
    let conn = link.get().await?;
    let channel = open(&conn, wrapped, Some(size)).await?;
    let (mut read, write) = channel.split();
    let (pgid, first) = read_pgid(&conn, &mut read).await?;
    let write = Arc::new(write);
    let (input, mut in_rx) = mpsc::channel::<PtyInput>(256);
    let writer = write.clone();
    tokio::spawn(async move {
        while let Some(msg) = in_rx.recv().await {
            let ok = match msg {
                PtyInput::Data(d) => writer.data(&d[..]).await.is_ok(),
                PtyInput::Resize(s) => writer.window_change(s.cols as u32, s.rows as u32, 0, 0).await.is_ok(),
            };
            if !ok {
                return;
            }
        }
    });
    let (out_tx, output) = mpsc::channel::<Bytes>(256);
    let (exit_tx, exit) = oneshot::channel();
    // Reuse the exec pump and keep only the bytes: a PTY has one stream.
    let (tx, mut rx) = mpsc::channel(64);
    tokio::spawn(pump(conn, read, tx, exit_tx));
    tokio::spawn(async move {
        if !first.is_empty() && out_tx.send(Bytes::from(first)).await.is_err() {
            return;
        }
        while let Some(chunk) = rx.recv().await {
            let (Output::Stdout(b) | Output::Stderr(b)) = chunk;
            if out_tx.send(b).await.is_err() {
                return;
            }
        }
    });
    let control = Arc::new(RemoteGroup { link: link.clone(), pgid, channel: tokio::sync::Mutex::new(Some(write)) });
    Ok(Pty { output, input, exit, control, pid: Some(pgid) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_with_quotes_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().join("a b");
        std::fs::create_dir(&cwd).unwrap();
        let env = HashMap::from([("A_1".to_string(), "it's".to_string()), ("bad-name".to_string(), "x".to_string())]);
        let w = wrap("echo \"$A_1\" 'hi'; pwd", Some(cwd.to_str().unwrap()), &env, Some("pwd"));
        assert!(!w.contains("bad-name"), "{w}");
        let out = std::process::Command::new("/bin/sh").arg("-c").arg(&w).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].parse::<u32>().is_ok(), "{text}");
        assert_eq!(&lines[1..], &["it's hi", cwd.to_str().unwrap()]);
        let missing = wrap("true", None, &HashMap::new(), Some("/nonexistent/bin"));
        let out = std::process::Command::new("/bin/sh").arg("-c").arg(&missing).output().unwrap();
        assert_eq!((String::from_utf8_lossy(&out.stdout).trim(), out.status.code()), (NO_PROGRAM, Some(127)));
    }
}
