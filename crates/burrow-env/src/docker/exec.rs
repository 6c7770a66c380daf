//! Processes through `docker exec`, with streamed output, exit codes, and a
//! kill that works although the exec API has none.
//!
//! Every process runs under a wrapper script (`scripts::SPAWN`) that checks the
//! working directory, prints its pid as the first stdout line, then `exec`s
//! the command. Docker starts each exec in a new session, so that pid is also
//! the process group and session id; [`ExecKiller`] kills them all with
//! another exec (`scripts::KILL`).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

use super::{scripts, Target};
use crate::env::{EnvError, EnvResult, ExitStatus, Output, Process, ProcessControl, Pty, PtyInput, PtySize};
use crate::helper::protocol;

type LogStream = Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

pub use crate::env::process::{hook_exit, OnExit};

struct Started {
    exec_id: String,
    output: LogStream,
    input: Pin<Box<dyn AsyncWrite + Send>>,
}

async fn start(t: &Target, argv: Vec<String>, mut env: Vec<String>, tty: Option<PtySize>, stdin: bool) -> EnvResult<Started> {
    env.push(super::owner::owner_env().to_string());
    let config = ExecConfig {
        attach_stdin: Some(stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(tty.is_some()),
        console_size: tty.map(|s| vec![s.rows as usize, s.cols as usize]),
        env: Some(env),
        cmd: Some(argv),
        ..Default::default()
    };
    let created = match t.docker.create_exec(&t.id, config).await {
        Ok(c) => c,
        Err(e) => return Err(t.fail("run a command", e).await),
    };
    let opts = StartExecOptions { detach: false, tty: tty.is_some(), output_capacity: Some(64 * 1024) };
    match t.docker.start_exec(&created.id, Some(opts)).await {
        Ok(StartExecResults::Attached { output, input }) => Ok(Started { exec_id: created.id, output, input }),
        Ok(StartExecResults::Detached) => Err(EnvError::Io("docker exec did not attach".into())),
        Err(e) => Err(t.fail("start a command", e).await),
    }
}

/// The exit status of a finished exec. The stream can end a moment before the
/// daemon records the exit code, so a still-running answer is asked again.
async fn exit_status(t: &Target, exec_id: &str) -> ExitStatus {
    for _ in 0..50 {
        match t.docker.inspect_exec(exec_id).await {
            Ok(info) if info.running == Some(true) => tokio::time::sleep(Duration::from_millis(10)).await,
            Ok(info) => return ExitStatus { code: info.exit_code.map(|c| c as i32), signal: None },
            Err(_) => break,
        }
    }
    ExitStatus { code: None, signal: None }
}

/// Reads the stream up to the wrapper's pid line. Output seen before it
/// (stderr only, in practice) is returned for the error message.
async fn read_pid(output: &mut LogStream) -> (Option<u32>, BytesMut, Vec<u8>) {
    let mut head = BytesMut::new();
    let mut stderr = Vec::new();
    while let Some(item) = output.next().await {
        match item {
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                head.extend_from_slice(&message);
                if let Some(nl) = head.iter().position(|&b| b == b'\n') {
                    let line = head.split_to(nl + 1);
                    let pid = std::str::from_utf8(&line).ok().and_then(|l| l.trim().parse().ok());
                    return (pid, head, stderr);
                }
            }
            Ok(LogOutput::StdErr { message }) => stderr.extend_from_slice(&message),
            Ok(LogOutput::StdIn { .. }) => {}
            Err(_) => break,
        }
    }
    stderr.extend_from_slice(&head);
    (None, BytesMut::new(), stderr)
}

/// Starts `argv` (a wrapper that prints its pid first) as a process.
pub async fn spawn(t: Arc<Target>, argv: Vec<String>, env: Vec<String>, stdin: Option<Bytes>, on_exit: Option<OnExit>) -> EnvResult<Process> {
    let mut started = start(&t, argv, env, None, stdin.is_some()).await?;
    if let Some(data) = stdin {
        let mut input = started.input;
        tokio::spawn(async move {
            let _ = input.write_all(&data).await;
            let _ = input.shutdown().await;
        });
    }
    let (pid, rest, stderr) = read_pid(&mut started.output).await;
    let Some(pid) = pid else {
        let status = exit_status(&t, &started.exec_id).await;
        return Err(t.check_alive(protocol::decode_error(status.code, &String::from_utf8_lossy(&stderr))).await);
    };
    let (tx, output) = mpsc::channel(64);
    let (exit_tx, exit) = oneshot::channel();
    let killer = Arc::new(ExecKiller::new(t.clone(), pid));
    let killed = killer.killed.clone();
    let done = killer.done.clone();
    let mut stream = started.output;
    tokio::spawn(async move {
        let mut open = true;
        for first in [Output::Stderr(Bytes::from(stderr)), Output::Stdout(rest.freeze())] {
            let empty = matches!(&first, Output::Stdout(b) | Output::Stderr(b) if b.is_empty());
            if !empty && open {
                open = tx.send(first).await.is_ok();
            }
        }
        while let Some(Ok(item)) = stream.next().await {
            let chunk = match item {
                LogOutput::StdOut { message } | LogOutput::Console { message } => Output::Stdout(message),
                LogOutput::StdErr { message } => Output::Stderr(message),
                LogOutput::StdIn { .. } => continue,
            };
            // A dropped receiver only means nobody reads; keep draining so the process is never blocked.
            if open {
                open = tx.send(chunk).await.is_ok();
            }
        }
        drop(tx);
        let mut status = exit_status(&t, &started.exec_id).await;
        if killed.load(Ordering::Acquire) {
            status = ExitStatus { code: None, signal: Some(9) };
        }
        let _ = done.send(true);
        if let Some(hook) = on_exit {
            hook();
        }
        let _ = exit_tx.send(status);
    });
    Ok(Process { output, exit, control: killer })
}

/// Starts `argv` (a wrapper that prints its pid first) on a pseudo-terminal.
pub async fn pty(t: Arc<Target>, argv: Vec<String>, env: Vec<String>, size: PtySize, on_exit: Option<OnExit>) -> EnvResult<Pty> {
    let mut started = start(&t, argv, env, Some(size), true).await?;
    // The engine may leave a new exec's terminal at 0x0 whatever `console_size`
    // asked for (busybox's `stty size` then fails): set it once more, before
    // the caller can send the first command.
    let opts = bollard::query_parameters::ResizeExecOptions { h: size.rows as i32, w: size.cols as i32 };
    if let Err(e) = t.docker.resize_exec(&started.exec_id, opts).await {
        tracing::debug!("cannot size the new terminal: {e}");
    }
    let (pid, rest, head) = read_pid(&mut started.output).await;
    let Some(pid) = pid else {
        let status = exit_status(&t, &started.exec_id).await;
        return Err(t.check_alive(protocol::decode_error(status.code, &String::from_utf8_lossy(&head))).await);
    };
    let (out_tx, output) = mpsc::channel::<Bytes>(256);
    let (exit_tx, exit) = oneshot::channel();
    let killer = Arc::new(ExecKiller::new(t.clone(), pid));
    let (done, exec_id) = (killer.done.clone(), started.exec_id.clone());
    let mut stream = started.output;
    let waiter = t.clone();
    tokio::spawn(async move {
        let mut open = rest.is_empty() || out_tx.send(rest.freeze()).await.is_ok();
        while let Some(Ok(item)) = stream.next().await {
            if let LogOutput::StdOut { message } | LogOutput::Console { message } | LogOutput::StdErr { message } = item {
                if open {
                    open = out_tx.send(message).await.is_ok();
                }
            }
        }
        drop(out_tx);
        let status = exit_status(&waiter, &exec_id).await;
        let _ = done.send(true);
        if let Some(hook) = on_exit {
            hook();
        }
        let _ = exit_tx.send(status);
    });
    let (input, mut in_rx) = mpsc::channel::<PtyInput>(256);
    let mut writer = started.input;
    let (resizer, exec_id) = (t.clone(), started.exec_id);
    tokio::spawn(async move {
        while let Some(msg) = in_rx.recv().await {
            let ok = match msg {
                PtyInput::Data(d) => writer.write_all(&d).await.is_ok() && writer.flush().await.is_ok(),
                PtyInput::Resize(s) => {
                    let opts = bollard::query_parameters::ResizeExecOptions { h: s.rows as i32, w: s.cols as i32 };
                    resizer.docker.resize_exec(&exec_id, opts).await.is_ok()
                }
            };
            if !ok {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    Ok(Pty { output, input, exit, control: killer, pid: Some(pid) })
}

/// Kills a process started by [`spawn`] or [`pty`], and everything in its
/// process group or session, from another exec.
pub struct ExecKiller {
    target: Arc<Target>,
    pid: u32,
    killed: Arc<AtomicBool>,
    done: Arc<watch::Sender<bool>>,
}

impl ExecKiller {
    fn new(target: Arc<Target>, pid: u32) -> Self {
        Self { target, pid, killed: Arc::new(AtomicBool::new(false)), done: Arc::new(watch::channel(false).0) }
    }
}

#[async_trait]
impl ProcessControl for ExecKiller {
    async fn kill(&self) -> EnvResult<()> {
        if *self.done.borrow() {
            return Ok(());
        }
        self.killed.store(true, Ordering::Release);
        let argv = scripts::argv(scripts::KILL, &[&self.pid.to_string()]);
        let started = start(&self.target, argv, Vec::new(), None, false).await?;
        // Wait for the kill to finish, then (briefly) for the process to be reported gone.
        let _: Vec<_> = started.output.collect().await;
        let mut done = self.done.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(5), done.wait_for(|d| *d)).await;
        Ok(())
    }
}

/// Runs a short script to completion: what it printed on stdout, or the error
/// it reported. Output past `max` bytes is an error, never silently cut.
pub async fn op(t: &Target, argv: Vec<String>, stdin: Option<Bytes>, max: usize) -> EnvResult<Bytes> {
    let started = start(t, argv, Vec::new(), None, stdin.is_some()).await?;
    if let Some(data) = stdin {
        let mut input = started.input;
        // Concurrently with reading: a script may answer before it read everything.
        tokio::spawn(async move {
            let _ = input.write_all(&data).await;
            let _ = input.shutdown().await;
        });
    }
    let (mut stdout, mut stderr) = (BytesMut::new(), Vec::new());
    let mut output = started.output;
    while let Some(item) = output.next().await {
        match item {
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                if stdout.len() + message.len() > max {
                    return Err(EnvError::Io(format!("the container sent more than {max} bytes")));
                }
                stdout.extend_from_slice(&message);
            }
            Ok(LogOutput::StdErr { message }) => stderr.extend_from_slice(&message),
            Ok(LogOutput::StdIn { .. }) => {}
            Err(e) => return Err(t.fail("read command output", e).await),
        }
    }
    let status = exit_status(t, &started.exec_id).await;
    if status.success() {
        return Ok(stdout.freeze());
    }
    Err(t.check_alive(protocol::decode_error(status.code, &String::from_utf8_lossy(&stderr))).await)
}

/// Starts a long-lived `argv` whose stdin and stdout carry a protocol (the
/// helper's session); stderr goes to the log.
pub async fn attach(
    t: &Target,
    argv: Vec<String>,
) -> EnvResult<(impl tokio::io::AsyncRead + Send + Unpin + 'static, impl AsyncWrite + Send + Unpin + 'static)> {
    let started = start(t, argv, Vec::new(), None, true).await?;
    let name = t.name.clone();
    let bytes = started.output.filter_map(move |item| {
        let chunk = match item {
            Ok(LogOutput::StdOut { message }) => Some(Ok(message)),
            Ok(LogOutput::StdErr { message }) => {
                tracing::warn!("helper in {name}: {}", String::from_utf8_lossy(&message).trim());
                None
            }
            Ok(_) => None,
            Err(e) => Some(Err(std::io::Error::other(e))),
        };
        std::future::ready(chunk)
    });
    Ok((tokio_util::io::StreamReader::new(Box::pin(bytes)), started.input))
}
