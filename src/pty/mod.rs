//! Terminals: PTYs started through the environment, their output kept in a
//! ring for replay, and the `pty.*` events.
//!
//! A terminal belongs to the directory (instance) it was created in, as in
//! OpenCode: it is listed and found only through that directory. Its process
//! runs wherever the environment runs processes; this module never spawns
//! anything itself.

pub mod ring;
pub mod shell;
pub mod ticket;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, OnceCell};
use utoipa::ToSchema;

use crate::env::{EnvError, EnvResult, ExitStatus, Pty, PtyInput, PtyRequest, PtySize, SharedEnv, WorkspacePath};
use crate::event::Bus;
use crate::id::{self, Prefix};
use ring::{Ring, BUFFER_LIMIT};

/// How many output chunks a connected client may fall behind before it
/// catches up from the ring instead.
const LIVE_CAPACITY: usize = 256;
/// After the process exits, output still in flight is read for this long.
const DRAIN_GRACE: Duration = Duration::from_millis(200);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PtyStatus {
    Running,
    Exited,
}

/// A terminal as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PtyInfo {
    pub id: String,
    pub title: String,
    pub command: String,
    pub args: Vec<String>,
    pub cwd: String,
    pub status: PtyStatus,
    /// The process id where the environment has one, else 0.
    pub pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// What reaches a connected client.
#[derive(Clone, Debug)]
pub enum Live {
    /// Text that starts at `cursor`.
    Data { cursor: u64, text: Arc<str> },
    /// The terminal exited or was removed.
    End,
}

/// A client's view at the moment it attached: what to replay, where the
/// replay ends, and the live output after it.
pub struct Attached {
    pub replay: String,
    pub cursor: u64,
    pub live: broadcast::Receiver<Live>,
}

struct Output {
    ring: Ring,
    ended: bool,
}

pub struct Terminal {
    info: Mutex<PtyInfo>,
    /// The instance directory it belongs to.
    directory: String,
    project: String,
    output: Mutex<Output>,
    live: broadcast::Sender<Live>,
    input: mpsc::Sender<PtyInput>,
    control: Arc<dyn crate::env::ProcessControl>,
}

impl Terminal {
    pub fn info(&self) -> PtyInfo {
        lock(&self.info).clone()
    }

    pub fn running(&self) -> bool {
        lock(&self.info).status == PtyStatus::Running
    }

    /// Subscribes to live output and takes the replay from `cursor` in one step,
    /// so nothing is lost or sent twice between the two. `None` replays
    /// everything kept; `-1` nothing. `None` is returned once it has ended.
    pub fn attach(&self, cursor: Option<i64>) -> Option<Attached> {
        let out = lock(&self.output);
        if out.ended {
            return None;
        }
        let end = out.ring.end();
        let from = match cursor {
            Some(-1) => end,
            Some(c) => c.max(0) as u64,
            None => 0,
        };
        let replay = if from >= end { String::new() } else { out.ring.since(from) };
        Some(Attached { replay, cursor: end, live: self.live.subscribe() })
    }

    /// Keystrokes; dropped once the process is gone.
    pub async fn write(&self, data: Bytes) {
        let _ = self.input.send(PtyInput::Data(data)).await;
    }

    fn end(&self) {
        lock(&self.output).ended = true;
        let _ = self.live.send(Live::End);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What `POST /pty` asks for, with the directory's defaults filled in.
pub struct CreateRequest {
    pub command: Option<String>,
    pub args: Option<Vec<String>>,
    pub cwd: WorkspacePath,
    pub title: Option<String>,
    pub env: HashMap<String, String>,
    pub directory: String,
    pub project: String,
}

#[derive(Clone)]
pub struct PtyManager {
    env: SharedEnv,
    bus: Bus,
    terminals: Arc<Mutex<HashMap<String, Arc<Terminal>>>>,
    shell: Arc<OnceCell<String>>,
    pub tickets: Arc<ticket::Tickets>,
}

impl PtyManager {
    pub fn new(env: SharedEnv, bus: Bus) -> Self {
        Self { env, bus, terminals: Arc::default(), shell: Arc::default(), tickets: Arc::default() }
    }

    /// The terminals of `directory` that are running, oldest first.
    pub fn list(&self, directory: &str) -> Vec<PtyInfo> {
        let mut out: Vec<PtyInfo> = lock(&self.terminals).values().filter(|t| t.directory == directory && t.running()).map(|t| t.info()).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Whether no terminal is running, in any directory: an idle workspace may stop then.
    pub fn is_empty(&self) -> bool {
        !lock(&self.terminals).values().any(|t| t.running())
    }

    /// A running terminal of `directory`.
    pub fn get(&self, directory: &str, id: &str) -> Option<Arc<Terminal>> {
        lock(&self.terminals).get(id).filter(|t| t.directory == directory && t.running()).cloned()
    }

    pub async fn create(&self, req: CreateRequest) -> EnvResult<PtyInfo> {
        let command = match req.command.filter(|c| !c.is_empty()) {
            Some(c) if !shell::runnable(&*self.env, &c).await => return Err(EnvError::NotFound(c)),
            Some(c) => c,
            None => self.shell.get_or_init(|| shell::preferred(&*self.env)).await.clone(),
        };
        let args = shell::login_args(&command, req.args.unwrap_or_default());
        let mut env = req.env;
        env.insert("TERM".into(), "xterm-256color".into());
        env.insert("OPENCODE_TERMINAL".into(), "1".into());
        let cwd = req.cwd.absolute(self.env.root());
        let pty_req = PtyRequest { command: command.clone(), args: args.clone(), cwd: req.cwd, env, size: PtySize::default() };
        let Pty { output, input, exit, control, pid } = self.env.pty(pty_req).await?;
        let id = id::ascending(Prefix::Pty);
        let title = req.title.filter(|t| !t.is_empty()).unwrap_or_else(|| format!("Terminal {}", &id[id.len() - 4..]));
        let info = PtyInfo { id: id.clone(), title, command, args, cwd, status: PtyStatus::Running, pid: pid.unwrap_or(0), exit_code: None };
        let terminal = Arc::new(Terminal {
            info: Mutex::new(info.clone()),
            directory: req.directory,
            project: req.project,
            output: Mutex::new(Output { ring: Ring::new(BUFFER_LIMIT), ended: false }),
            live: broadcast::channel(LIVE_CAPACITY).0,
            input,
            control,
        });
        lock(&self.terminals).insert(id.clone(), terminal.clone());
        self.publish(&terminal, "pty.created", serde_json::json!({ "info": info }));
        tokio::spawn(self.clone().pump(terminal, output, exit));
        Ok(info)
    }

    /// Renames and resizes; publishes `pty.updated`.
    pub async fn update(&self, terminal: &Arc<Terminal>, title: Option<String>, size: Option<PtySize>) -> PtyInfo {
        if let Some(t) = title.filter(|t| !t.is_empty()) {
            lock(&terminal.info).title = t;
        }
        if let Some(size) = size.filter(|_| terminal.running()) {
            let _ = terminal.input.send(PtyInput::Resize(size)).await;
        }
        let info = terminal.info();
        self.publish(terminal, "pty.updated", serde_json::json!({ "info": info }));
        info
    }

    /// Kills the process and forgets the terminal; publishes `pty.deleted`.
    pub async fn remove(&self, terminal: &Arc<Terminal>) {
        let id = terminal.info().id;
        if lock(&self.terminals).remove(&id).is_none() {
            return;
        }
        terminal.end();
        if let Err(e) = terminal.control.kill().await {
            tracing::warn!(pty = %id, "killing the terminal failed: {e}");
        }
        self.publish(terminal, "pty.deleted", serde_json::json!({ "id": id }));
    }

    fn publish(&self, t: &Terminal, kind: &str, properties: serde_json::Value) {
        self.bus.publish(Some(&t.directory), Some(&t.project), kind, properties);
    }

    /// Feeds output into the ring and to clients until the process ends, then
    /// publishes `pty.exited` and forgets the terminal.
    async fn pump(self, t: Arc<Terminal>, mut output: mpsc::Receiver<Bytes>, mut exit: tokio::sync::oneshot::Receiver<ExitStatus>) {
        let status = loop {
            tokio::select! {
                chunk = output.recv() => match chunk {
                    Some(bytes) => self.feed(&t, &bytes),
                    None => break (&mut exit).await.ok(),
                },
                status = &mut exit => {
                    // Output written just before the exit is still on its way.
                    while let Ok(Some(bytes)) = tokio::time::timeout(DRAIN_GRACE, output.recv()).await {
                        self.feed(&t, &bytes);
                    }
                    break status.ok();
                }
            }
        };
        let id = t.info().id;
        // A terminal removed by DELETE has already said goodbye.
        if lock(&self.terminals).remove(&id).is_none() {
            return;
        }
        let exit_code = status.map(|s| s.code.unwrap_or_else(|| 128 + s.signal.unwrap_or(0))).unwrap_or(-1);
        {
            let mut info = lock(&t.info);
            info.status = PtyStatus::Exited;
            info.exit_code = Some(exit_code);
        }
        t.end();
        self.publish(&t, "pty.exited", serde_json::json!({ "id": id, "exitCode": exit_code }));
    }

    fn feed(&self, t: &Terminal, bytes: &[u8]) {
        let mut out = lock(&t.output);
        let cursor = out.ring.end();
        let text = out.ring.push(bytes);
        if !text.is_empty() {
            // Sent under the lock, so attach() sees either the ring before this
            // chunk plus the chunk live, or the ring with it.
            let _ = t.live.send(Live::Data { cursor, text: text.into() });
        }
    }
}
