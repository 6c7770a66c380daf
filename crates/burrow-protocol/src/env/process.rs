//! Processes and pseudo-terminals, in a shape every backend can produce:
//! a local child, a `docker exec`, an SSH channel.
//!
//! Output arrives on a bounded channel, so a slow reader applies back-pressure to
//! the process instead of growing memory. Killing goes through [`ProcessControl`],
//! which each backend implements for its transport; timeouts are applied here,
//! once, on top of it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::{EnvResult, WorkspacePath};

/// What to run. `command` goes to the environment's shell (`sh -c`), like a
/// terminal command line.
#[derive(Clone, Debug)]
pub struct ExecRequest {
    pub command: String,
    pub cwd: WorkspacePath,
    pub env: HashMap<String, String>,
    /// Bytes written to stdin, which is then closed. `None` closes stdin at once.
    pub stdin: Option<Bytes>,
}

impl ExecRequest {
    pub fn shell(command: impl Into<String>, cwd: WorkspacePath) -> Self {
        Self { command: command.into(), cwd, env: HashMap::new(), stdin: None }
    }
}

/// A chunk of process output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Stdout(Bytes),
    Stderr(Bytes),
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitStatus {
    /// The exit code, or `None` when a signal ended the process.
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl ExitStatus {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Kills a running process (and its children) wherever it runs.
#[async_trait]
pub trait ProcessControl: Send + Sync {
    async fn kill(&self) -> EnvResult<()>;
}

/// A running process.
pub struct Process {
    pub output: mpsc::Receiver<Output>,
    pub exit: oneshot::Receiver<ExitStatus>,
    pub control: Arc<dyn ProcessControl>,
}

/// Everything a finished process printed, bounded.
#[derive(Debug, Default)]
pub struct Collected {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// `None` when the process was killed by the timeout.
    pub status: Option<ExitStatus>,
    pub timed_out: bool,
    /// True when output past `max_bytes` was dropped.
    pub truncated: bool,
}

impl Process {
    /// Waits for the process to end, keeping at most `max_bytes` of each stream;
    /// past `timeout` the process is killed.
    pub async fn collect(mut self, max_bytes: usize, timeout: Option<Duration>) -> EnvResult<Collected> {
        let mut out = Collected::default();
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        loop {
            let next = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, self.output.recv()).await.ok(),
                    None => Some(self.output.recv().await),
                }
            };
            match next.await {
                Some(Some(chunk)) => {
                    let (buf, data) = match &chunk {
                        Output::Stdout(d) => (&mut out.stdout, d),
                        Output::Stderr(d) => (&mut out.stderr, d),
                    };
                    let room = max_bytes.saturating_sub(buf.len());
                    if data.len() > room {
                        out.truncated = true;
                    }
                    buf.extend_from_slice(&data[..data.len().min(room)]);
                }
                Some(None) => break,
                None => {
                    out.timed_out = true;
                    self.control.kill().await?;
                    return Ok(out);
                }
            }
        }
        let status = match deadline {
            Some(d) => match tokio::time::timeout_at(d, &mut self.exit).await {
                Ok(s) => s.ok(),
                Err(_) => {
                    out.timed_out = true;
                    self.control.kill().await?;
                    None
                }
            },
            None => (&mut self.exit).await.ok(),
        };
        out.status = status;
        Ok(out)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PtySize {
    pub rows: u16,
    pub cols: u16,
}

impl Default for PtySize {
    fn default() -> Self {
        Self { rows: 24, cols: 80 }
    }
}

#[derive(Clone, Debug)]
pub struct PtyRequest {
    pub command: String,
    pub args: Vec<String>,
    pub cwd: WorkspacePath,
    pub env: HashMap<String, String>,
    pub size: PtySize,
}

/// Input to a pseudo-terminal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PtyInput {
    Data(Bytes),
    Resize(PtySize),
}

/// A process on a pseudo-terminal: one output stream, keystrokes and resizes in.
pub struct Pty {
    pub output: mpsc::Receiver<Bytes>,
    pub input: mpsc::Sender<PtyInput>,
    pub exit: oneshot::Receiver<ExitStatus>,
    pub control: Arc<dyn ProcessControl>,
    /// The process id where the environment has one to show.
    pub pid: Option<u32>,
}

/// Called when a process ends (remote backends mark file indexes dirty).
pub type OnExit = Arc<dyn Fn() + Send + Sync>;

/// An exit status receiver that calls `hook` before it delivers the status.
pub fn hook_exit(inner: oneshot::Receiver<ExitStatus>, hook: OnExit) -> oneshot::Receiver<ExitStatus> {
    let (tx, exit) = oneshot::channel();
    tokio::spawn(async move {
        let status = inner.await.unwrap_or(ExitStatus { code: None, signal: None });
        hook();
        let _ = tx.send(status);
    });
    exit
}
