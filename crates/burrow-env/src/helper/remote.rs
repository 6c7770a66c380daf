//! The client of `burrow-helper serve`: an [`Env`] whose every operation is a
//! message to a helper running next to the data, over any byte stream (a
//! `docker exec` today). Many requests share the stream; replies are routed
//! back by id. When the stream ends, every pending and later request fails
//! with [`EnvError::Unavailable`] and [`RemoteEnv::is_alive`] turns false.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};

use super::protocol;
use super::protocol::frames::{self, Call, Event, Hello, Reply, Request};
use crate::env::*;

/// How long the helper may take to greet.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

type Message = (Event, Bytes);

enum Route {
    Once(oneshot::Sender<Message>),
    Stream(mpsc::UnboundedSender<Message>),
}

/// The shared stream: sends requests, routes replies.
struct Link {
    out: mpsc::Sender<Vec<u8>>,
    routes: Mutex<Option<HashMap<u64, Route>>>,
    next: AtomicU64,
    alive: AtomicBool,
}

fn gone() -> EnvError {
    EnvError::Unavailable("the connection to the helper next to the data was lost".into())
}

impl Link {
    fn register(&self, route: Route) -> EnvResult<u64> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        routes.as_mut().ok_or_else(gone)?.insert(id, route);
        Ok(id)
    }

    async fn send(&self, id: u64, call: Call, data: &[u8]) -> EnvResult<()> {
        self.out.send(frames::encode(&Request { id, call }, data)).await.map_err(|_| gone())
    }

    /// A call with one answer: its value and data.
    async fn call(&self, call: Call, data: &[u8]) -> EnvResult<(serde_json::Value, Bytes)> {
        let (tx, rx) = oneshot::channel();
        let id = self.register(Route::Once(tx))?;
        self.send(id, call, data).await?;
        match rx.await.map_err(|_| gone())? {
            (Event::Ok { value }, data) => Ok((value, data)),
            (Event::Err { error }, _) => Err(protocol::decode_error(None, &error)),
            (other, _) => Err(EnvError::Io(format!("unexpected helper reply {other:?}"))),
        }
    }

    /// A call that streams: the replies after its first `ok`.
    async fn stream(&self, call: Call, data: &[u8]) -> EnvResult<(u64, serde_json::Value, mpsc::UnboundedReceiver<Message>)> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let id = self.register(Route::Stream(tx))?;
        self.send(id, call, data).await?;
        match rx.recv().await.ok_or_else(gone)? {
            (Event::Ok { value }, _) => Ok((id, value, rx)),
            (Event::Err { error }, _) => Err(protocol::decode_error(None, &error)),
            (other, _) => Err(EnvError::Io(format!("unexpected helper reply {other:?}"))),
        }
    }

    fn route(&self, reply: Reply, data: Bytes) {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let Some(routes) = routes.as_mut() else { return };
        let last = matches!(reply.event, Event::Exit { .. } | Event::Err { .. });
        match routes.remove(&reply.id) {
            Some(Route::Once(tx)) => {
                let _ = tx.send((reply.event, data));
            }
            Some(Route::Stream(tx)) if tx.send((reply.event, data)).is_ok() && !last => {
                routes.insert(reply.id, Route::Stream(tx));
            }
            Some(Route::Stream(_)) => {}
            None => {}
        }
    }

    fn close(&self) {
        self.alive.store(false, Ordering::Release);
        // Dropping every sender wakes every waiter with "gone".
        self.routes.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// An environment served by `burrow-helper serve` somewhere else.
pub struct RemoteEnv {
    root: String,
    link: Arc<Link>,
}

impl RemoteEnv {
    /// Starts the session over the helper's stdout (`reader`) and stdin
    /// (`writer`) and waits for its greeting, which must be `expected`: the
    /// version line of the build this server uploaded (its architecture and
    /// SHA-256, [`protocol::version_line_for`]).
    pub async fn connect<R, W>(mut reader: R, writer: W, expected: &str) -> EnvResult<Self>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (out, _) = frames::writer(writer);
        let link = Arc::new(Link { out, routes: Mutex::new(Some(HashMap::new())), next: AtomicU64::new(1), alive: AtomicBool::new(true) });
        let hello = tokio::time::timeout(HELLO_TIMEOUT, frames::read::<Reply, _>(&mut reader)).await;
        let hello = match hello {
            Ok(Ok(Some((Reply { id: 0, event: Event::Ok { value } }, _)))) => serde_json::from_value::<Hello>(value).ok(),
            Ok(Ok(Some((Reply { event: Event::Err { error }, .. }, _)))) => return Err(protocol::decode_error(None, &error)),
            _ => None,
        };
        let Some(hello) = hello else {
            link.close();
            return Err(EnvError::Unavailable("the helper did not start its session".into()));
        };
        if hello.version != expected {
            link.close();
            return Err(EnvError::Unavailable(format!("the helper is another build ({}); expected {expected}", hello.version)));
        }
        let reading = link.clone();
        tokio::spawn(async move {
            loop {
                match frames::read::<Reply, _>(&mut reader).await {
                    Ok(Some((reply, data))) => reading.route(reply, data),
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!("helper session: {e}");
                        break;
                    }
                }
            }
            reading.close();
        });
        Ok(Self { root: hello.root, link })
    }

    pub fn is_alive(&self) -> bool {
        self.link.alive.load(Ordering::Acquire)
    }

    async fn value<T: for<'de> serde::Deserialize<'de>>(&self, call: Call) -> EnvResult<T> {
        let (value, _) = self.link.call(call, &[]).await?;
        serde_json::from_value(value).map_err(|e| EnvError::Io(format!("bad helper answer: {e}")))
    }

    async fn unit(&self, call: Call, data: &[u8]) -> EnvResult<()> {
        self.link.call(call, data).await.map(drop)
    }
}

fn path(p: &WorkspacePath) -> String {
    p.as_str().to_string()
}

#[async_trait]
impl Env for RemoteEnv {
    fn kind(&self) -> &'static str {
        "remote"
    }

    fn root(&self) -> &str {
        &self.root
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { exec: true, pty: true, watch: true, search: SearchBackend::Helper }
    }

    async fn confine(&self, p: &WorkspacePath) -> EnvResult<()> {
        self.unit(Call::Confine { path: path(p) }, &[]).await
    }

    async fn list(&self, dir: &WorkspacePath) -> EnvResult<Vec<DirEntry>> {
        self.value(Call::List { path: path(dir) }).await
    }

    async fn stat(&self, p: &WorkspacePath) -> EnvResult<Metadata> {
        self.value(Call::Stat { path: path(p) }).await
    }

    async fn read(&self, p: &WorkspacePath, max_bytes: u64) -> EnvResult<Bytes> {
        Ok(self.link.call(Call::Read { path: path(p), max: max_bytes }, &[]).await?.1)
    }

    async fn write(&self, p: &WorkspacePath, data: Bytes) -> EnvResult<()> {
        if data.len() > frames::MAX_DATA {
            return Err(EnvError::TooLarge { path: p.to_string(), size: data.len() as u64, limit: frames::MAX_DATA as u64 });
        }
        self.unit(Call::Write { path: path(p) }, &data).await
    }

    async fn mkdir_all(&self, p: &WorkspacePath) -> EnvResult<()> {
        self.unit(Call::Mkdir { path: path(p) }, &[]).await
    }

    async fn remove(&self, p: &WorkspacePath) -> EnvResult<()> {
        self.unit(Call::Remove { path: path(p) }, &[]).await
    }

    async fn rename(&self, from: &WorkspacePath, to: &WorkspacePath) -> EnvResult<()> {
        self.unit(Call::Rename { from: path(from), to: path(to) }, &[]).await
    }

    async fn walk(&self, dir: &WorkspacePath) -> EnvResult<Vec<IndexEntry>> {
        let (_, lines) = self.link.call(Call::Walk { path: path(dir) }, &[]).await?;
        protocol::parse_walk(&String::from_utf8_lossy(&lines))
    }

    async fn grep(&self, request: GrepRequest) -> EnvResult<GrepResult> {
        self.value(Call::Grep { request }).await
    }

    async fn text_index(&self) -> Option<TextIndexStatus> {
        self.value(Call::TextIndex).await.ok().flatten()
    }

    async fn refresh(&self) -> EnvResult<()> {
        self.unit(Call::Refresh, &[]).await
    }

    fn snapshots(&self) -> Result<&'static str, String> {
        Ok("store")
    }

    async fn snapshot_track(&self) -> EnvResult<String> {
        self.value(Call::SnapshotTrack).await
    }

    async fn snapshot_changes(&self, from: &str, to: &str) -> EnvResult<Vec<SnapshotChange>> {
        self.value(Call::SnapshotChanges { from: from.to_string(), to: to.to_string() }).await
    }

    async fn snapshot_blob(&self, id: &str) -> EnvResult<Bytes> {
        Ok(self.link.call(Call::SnapshotBlob { blob: id.to_string() }, &[]).await?.1)
    }

    async fn snapshot_restore(&self, hash: &str, files: Option<Vec<String>>) -> EnvResult<()> {
        self.unit(Call::SnapshotRestore { hash: hash.to_string(), files }, &[]).await
    }

    async fn snapshot_prune(&self, keep: Vec<String>, max_age: std::time::Duration) -> EnvResult<crate::env::SnapshotPruned> {
        self.value(Call::SnapshotPrune { keep, max_age_secs: max_age.as_secs() }).await
    }

    async fn exec(&self, req: ExecRequest) -> EnvResult<Process> {
        let call = Call::Exec { command: req.command, cwd: path(&req.cwd), env: req.env, stdin: req.stdin.is_some() };
        let (id, _, mut rx) = self.link.stream(call, req.stdin.as_deref().unwrap_or_default()).await?;
        let (tx, output) = mpsc::channel(64);
        let (exit_tx, exit) = oneshot::channel();
        tokio::spawn(async move {
            let mut status = ExitStatus { code: None, signal: None };
            while let Some((event, data)) = rx.recv().await {
                let chunk = match event {
                    Event::Stdout => Output::Stdout(data),
                    Event::Stderr => Output::Stderr(data),
                    Event::Exit { code, signal } => {
                        status = ExitStatus { code, signal };
                        break;
                    }
                    _ => continue,
                };
                // Nobody reading is fine: keep draining until the exit.
                let _ = tx.send(chunk).await;
            }
            drop(tx);
            let _ = exit_tx.send(status);
        });
        Ok(Process { output, exit, control: Arc::new(Killer { link: self.link.clone(), id }) })
    }

    async fn pty(&self, req: PtyRequest) -> EnvResult<Pty> {
        let call = Call::Pty { command: req.command, args: req.args, cwd: path(&req.cwd), env: req.env, rows: req.size.rows, cols: req.size.cols };
        let (id, value, mut rx) = self.link.stream(call, &[]).await?;
        let pid = value.get("pid").and_then(|p| p.as_u64()).map(|p| p as u32);
        let (tx, output) = mpsc::channel(256);
        let (exit_tx, exit) = oneshot::channel();
        tokio::spawn(async move {
            let mut status = ExitStatus { code: None, signal: None };
            while let Some((event, data)) = rx.recv().await {
                match event {
                    Event::Stdout | Event::Stderr => {
                        let _ = tx.send(data).await;
                    }
                    Event::Exit { code, signal } => {
                        status = ExitStatus { code, signal };
                        break;
                    }
                    _ => {}
                }
            }
            drop(tx);
            let _ = exit_tx.send(status);
        });
        let (input, mut in_rx) = mpsc::channel::<PtyInput>(256);
        let link = self.link.clone();
        tokio::spawn(async move {
            while let Some(msg) = in_rx.recv().await {
                let id_unused = link.next.fetch_add(1, Ordering::Relaxed);
                let sent = match msg {
                    PtyInput::Data(d) => link.send(id_unused, Call::Input { process: id }, &d).await,
                    PtyInput::Resize(s) => link.send(id_unused, Call::Resize { process: id, rows: s.rows, cols: s.cols }, &[]).await,
                };
                if sent.is_err() {
                    break;
                }
            }
        });
        Ok(Pty { output, input, exit, control: Arc::new(Killer { link: self.link.clone(), id }), pid })
    }

    async fn watch(&self) -> EnvResult<Option<mpsc::Receiver<WatchEvent>>> {
        let (_, _, mut rx) = self.link.stream(Call::Watch, &[]).await?;
        let (tx, events) = mpsc::channel(1024);
        tokio::spawn(async move {
            while let Some((event, _)) = rx.recv().await {
                let event = match event {
                    Event::Changed { paths } => WatchEvent::Changed(paths.iter().filter_map(|p| WorkspacePath::from_relative(p).ok()).collect()),
                    Event::Rescan => WatchEvent::Rescan,
                    _ => continue,
                };
                if tx.send(event).await.is_err() {
                    break;
                }
            }
        });
        Ok(Some(events))
    }
}

/// Kills a remote process (and its process group) through the helper.
struct Killer {
    link: Arc<Link>,
    id: u64,
}

#[async_trait]
impl ProcessControl for Killer {
    async fn kill(&self) -> EnvResult<()> {
        self.link.call(Call::Kill { process: self.id }, &[]).await.map(drop)
    }
}
