//! `burrow-helper serve ROOT`: the local environment, served over stdin and
//! stdout with the framed protocol ([`protocol::frames`]).
//!
//! Inside a container this is the whole backend in one long-lived process:
//! files are confined by canonicalizing where they live, writes are atomic,
//! processes run in their own process group and are killed with it, search
//! runs in process, and a notify watcher reports changes. Requests are handled
//! concurrently. When stdin closes (Burrow exited or lost the connection),
//! every process it started is killed and the helper exits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use super::protocol::frames::{self, Call, Event, Hello, Reply, Request};
use super::protocol::{self, version_line};
use crate::env::local::LocalEnv;
use crate::env::*;

/// A running process and, for a PTY, its keyboard.
struct Running {
    control: Arc<dyn ProcessControl>,
    input: Option<mpsc::Sender<PtyInput>>,
}

#[derive(Clone)]
struct Server {
    env: Arc<LocalEnv>,
    out: mpsc::Sender<Vec<u8>>,
    running: Arc<Mutex<HashMap<u64, Running>>>,
}

/// Serves `root` to the requests on `input`, answering on `output`; greets with
/// the version line of `build` (the helper's SHA-256). Returns the exit code.
pub async fn serve<R, W>(root: &str, build: &str, mut input: R, output: W) -> i32
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    // Snapshots live in the helper's cache folder, next to the files and
    // outside the workspace: `~/.cache/burrow/snapshot` beside `helper/<build>/`.
    if let Some(cache) = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("snapshot"))) {
        crate::snapshot::init(&cache);
    }
    let env = match LocalEnv::new(root) {
        Ok(env) => Arc::new(env),
        Err(e) => {
            eprintln!("{}", protocol::encode_error(&e));
            return protocol::exit_code(&e);
        }
    };
    let (out, mut writer) = frames::writer(output);
    let server = Server { env: env.clone(), out, running: Arc::default() };
    let hello = Hello { version: version_line(build), root: env.root().to_string() };
    server.send(0, Event::Ok { value: serde_json::to_value(hello).unwrap_or_default() }, &[]).await;
    loop {
        match frames::read::<Request, _>(&mut input).await {
            Ok(Some((req, data))) => server.dispatch(req, data),
            Ok(None) => break,
            Err(e) => {
                eprintln!("helper serve: {e}");
                break;
            }
        }
    }
    let running: Vec<_> = server.running.lock().unwrap_or_else(|e| e.into_inner()).drain().map(|(_, r)| r.control).collect();
    for control in running {
        let _ = control.kill().await;
    }
    drop(server);
    // Long-lived tasks (the watcher) still hold the output: flush what is queued, then stop.
    let flushed = tokio::time::timeout(std::time::Duration::from_millis(500), &mut writer).await;
    if flushed.is_err() {
        writer.abort();
    }
    0
}

fn path(p: &str) -> EnvResult<WorkspacePath> {
    WorkspacePath::from_relative(p)
}

fn ok(value: impl serde::Serialize) -> Event {
    Event::Ok { value: serde_json::to_value(value).unwrap_or_default() }
}

impl Server {
    async fn send(&self, id: u64, event: Event, data: &[u8]) {
        let _ = self.out.send(frames::encode(&Reply { id, event }, data)).await;
    }

    async fn answer(&self, id: u64, result: EnvResult<(Event, Bytes)>) {
        match result {
            Ok((event, data)) => self.send(id, event, &data).await,
            Err(e) => self.send(id, Event::Err { error: protocol::encode_error(&e) }, &[]).await,
        }
    }

    fn dispatch(&self, req: Request, data: Bytes) {
        let id = req.id;
        match req.call {
            // Input must keep its order, so it is not spawned.
            Call::Input { process } => {
                if let Some(input) = self.input_of(process) {
                    let _ = input.try_send(PtyInput::Data(data));
                }
            }
            Call::Resize { process, rows, cols } => {
                if let Some(input) = self.input_of(process) {
                    let _ = input.try_send(PtyInput::Resize(PtySize { rows, cols }));
                }
            }
            Call::Exec { command, cwd, env, stdin } => {
                let this = self.clone();
                tokio::spawn(async move { this.exec(id, command, cwd, env, stdin.then_some(data)).await });
            }
            Call::Pty { command, args, cwd, env, rows, cols } => {
                let this = self.clone();
                tokio::spawn(
                    async move { this.pty(id, PtyRequest { command, args, cwd: WorkspacePath::root(), env, size: PtySize { rows, cols } }, cwd).await },
                );
            }
            Call::Watch => {
                let this = self.clone();
                tokio::spawn(async move { this.watch(id).await });
            }
            call => {
                let this = self.clone();
                tokio::spawn(async move {
                    let result = this.call(call, data).await;
                    this.answer(id, result).await;
                });
            }
        }
    }

    fn input_of(&self, process: u64) -> Option<mpsc::Sender<PtyInput>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).get(&process).and_then(|r| r.input.clone())
    }

    /// The calls with one answer.
    async fn call(&self, call: Call, data: Bytes) -> EnvResult<(Event, Bytes)> {
        let env = &self.env;
        let none = Bytes::new();
        Ok(match call {
            Call::Confine { path: p } => (ok(env.confine(&path(&p)?).await?), none),
            Call::List { path: p } => (ok(env.list(&path(&p)?).await?), none),
            Call::Stat { path: p } => (ok(env.stat(&path(&p)?).await?), none),
            Call::Read { path: p, max } => (ok(()), env.read(&path(&p)?, max.min(frames::MAX_DATA as u64)).await?),
            Call::Write { path: p } => (ok(env.write(&path(&p)?, data).await?), none),
            Call::Mkdir { path: p } => (ok(env.mkdir_all(&path(&p)?).await?), none),
            Call::Remove { path: p } => (ok(env.remove(&path(&p)?).await?), none),
            Call::Rename { from, to } => (ok(env.rename(&path(&from)?, &path(&to)?).await?), none),
            Call::Walk { path: p } => {
                let entries = env.walk(&path(&p)?).await?;
                let mut lines = Vec::with_capacity(entries.len() * 32);
                for e in &entries {
                    protocol::write_entry(&mut lines, e).map_err(|e| EnvError::Io(e.to_string()))?;
                }
                lines.extend_from_slice(protocol::END.as_bytes());
                (ok(()), Bytes::from(lines))
            }
            Call::Grep { request } => (ok(env.grep(request).await?), none),
            Call::TextIndex => (ok(env.text_index().await), none),
            Call::Refresh => (ok(env.refresh().await?), none),
            Call::SnapshotTrack => (ok(env.snapshot_track().await?), none),
            Call::SnapshotChanges { from, to } => (ok(env.snapshot_changes(&from, &to).await?), none),
            Call::SnapshotBlob { blob } => (ok(()), env.snapshot_blob(&blob).await?),
            Call::SnapshotRestore { hash, files } => (ok(env.snapshot_restore(&hash, files).await?), none),
            Call::SnapshotPrune { keep, max_age_secs } => (ok(env.snapshot_prune(keep, std::time::Duration::from_secs(max_age_secs)).await?), none),
            Call::Kill { process } => {
                let control = self.running.lock().unwrap_or_else(|e| e.into_inner()).get(&process).map(|r| r.control.clone());
                if let Some(control) = control {
                    control.kill().await?;
                }
                (ok(()), none)
            }
            other => return Err(EnvError::InvalidInput(format!("unexpected call {other:?}"))),
        })
    }

    async fn exec(&self, id: u64, command: String, cwd: String, env: HashMap<String, String>, stdin: Option<Bytes>) {
        let started = async { self.env.exec(ExecRequest { command, cwd: path(&cwd)?, env, stdin }).await };
        let mut process = match started.await {
            Ok(p) => p,
            Err(e) => return self.answer(id, Err(e)).await,
        };
        self.running.lock().unwrap_or_else(|e| e.into_inner()).insert(id, Running { control: process.control.clone(), input: None });
        self.send(id, ok(()), &[]).await;
        while let Some(chunk) = process.output.recv().await {
            match chunk {
                Output::Stdout(d) => self.send(id, Event::Stdout, &d).await,
                Output::Stderr(d) => self.send(id, Event::Stderr, &d).await,
            }
        }
        let status = process.exit.await.unwrap_or(ExitStatus { code: None, signal: None });
        self.finish(id, status).await;
    }

    async fn pty(&self, id: u64, mut req: PtyRequest, cwd: String) {
        let started = async {
            req.cwd = path(&cwd)?;
            self.env.pty(req).await
        };
        let mut pty = match started.await {
            Ok(p) => p,
            Err(e) => return self.answer(id, Err(e)).await,
        };
        let running = Running { control: pty.control.clone(), input: Some(pty.input.clone()) };
        self.running.lock().unwrap_or_else(|e| e.into_inner()).insert(id, running);
        self.send(id, ok(serde_json::json!({ "pid": pty.pid })), &[]).await;
        while let Some(d) = pty.output.recv().await {
            self.send(id, Event::Stdout, &d).await;
        }
        let status = pty.exit.await.unwrap_or(ExitStatus { code: None, signal: None });
        self.finish(id, status).await;
    }

    async fn finish(&self, id: u64, status: ExitStatus) {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        self.send(id, Event::Exit { code: status.code, signal: status.signal }, &[]).await;
    }

    async fn watch(&self, id: u64) {
        let mut rx = match self.env.watch().await {
            Ok(Some(rx)) => rx,
            Ok(None) => return self.answer(id, Err(EnvError::Unsupported("watch".into()))).await,
            Err(e) => return self.answer(id, Err(e)).await,
        };
        self.send(id, ok(()), &[]).await;
        while let Some(event) = rx.recv().await {
            let event = match event {
                WatchEvent::Changed(paths) => Event::Changed { paths: paths.iter().map(|p| p.as_str().to_string()).collect() },
                WatchEvent::Rescan | WatchEvent::Overflow => Event::Rescan,
            };
            self.send(id, event, &[]).await;
        }
    }
}
