//! The helper session of one environment, and the change events it feeds.
//!
//! Where starting a process costs a round trip or more (a `docker exec`, an
//! SSH exec channel), Burrow keeps `burrow-helper serve` running next to the
//! data and sends every operation there as a message ([`RemoteEnv`]). Its
//! notify watcher reports changes made by anyone (a shell, an editor, another
//! user on the host), so file indexes stay cached until something changes.
//! Without a session, indexes are told to re-walk every few seconds and after
//! every command Burrow ran; writes through Burrow mark them dirty at once.
//!
//! Backends differ only in how they start the helper process: that is the
//! closure they pass to [`SessionSlot::get`]. Starting, retrying, losing the
//! session and forwarding its watcher are the same everywhere, and live here.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::remote::RemoteEnv;
use crate::env::{EnvError, EnvResult, WatchEvent, WorkspacePath};

/// After the session failed to start, wait this long before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// How many change events may wait for the file indexes.
const EVENT_BACKLOG: usize = 1024;

/// Whether a call through the helper session may run again by the slower
/// path when the session is lost while the call is under way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replay {
    /// Reads, and writes whose repetition changes nothing (writing the same
    /// bytes, creating a folder that may exist).
    Safe,
    /// Effects that must happen at most once (a command, a terminal, a
    /// rename, a removal): only a call that was never sent goes elsewhere.
    NeverSent,
}

pub struct SessionSlot {
    current: RwLock<Option<Arc<RemoteEnv>>>,
    /// Serializes starts; holds the time of the last failed attempt.
    starting: tokio::sync::Mutex<Option<Instant>>,
    /// True while the session's watcher feeds `events`.
    watching: Arc<AtomicBool>,
    events: mpsc::Sender<WatchEvent>,
    events_rx: Mutex<Option<mpsc::Receiver<WatchEvent>>>,
}

impl Default for SessionSlot {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionSlot {
    pub fn new() -> Self {
        let (events, events_rx) = mpsc::channel(EVENT_BACKLOG);
        Self { current: RwLock::new(None), starting: tokio::sync::Mutex::new(None), watching: Arc::default(), events, events_rx: Mutex::new(Some(events_rx)) }
    }

    /// The running session, if there is one and it is alive.
    pub fn current(&self) -> Option<Arc<RemoteEnv>> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).as_ref().filter(|r| r.is_alive()).cloned()
    }

    /// Waits until no caller is starting the session (for callers that must
    /// not take a slower path, such as snapshots, which live in the helper's store).
    pub async fn settled(&self) {
        drop(self.starting.lock().await);
    }

    /// The session, started with `start` when there is none; `None` while it
    /// cannot run (another caller is starting it, or the last attempt failed
    /// less than [`RETRY_AFTER`] ago). Callers then take their slower path.
    pub async fn get<F, Fut>(&self, what: &str, start: F) -> Option<Arc<RemoteEnv>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = EnvResult<RemoteEnv>>,
    {
        if let Some(r) = self.current() {
            return Some(r);
        }
        let mut last_failure = self.starting.try_lock().ok()?;
        if last_failure.is_some_and(|at| at.elapsed() < RETRY_AFTER) {
            return None;
        }
        if let Some(r) = self.current() {
            return Some(r);
        }
        match start().await {
            Ok(remote) => {
                let remote = Arc::new(remote);
                tracing::info!("helper session started in {what}");
                *last_failure = None;
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(remote.clone());
                self.forward_watch(what, &remote).await;
                Some(remote)
            }
            Err(e) => {
                tracing::warn!("cannot start the helper session in {what}: {e}");
                *last_failure = Some(Instant::now());
                None
            }
        }
    }

    /// The result of `call` on `remote`, or `None` when the caller's slower
    /// path must take over: there is no session, or the session was already
    /// lost (so the request was never sent), or it was lost during a call that
    /// may safely run again ([`Replay::Safe`]). A call that must not run twice
    /// ([`Replay::NeverSent`]) and whose session died after it was sent fails
    /// with [`EnvError::Unavailable`]: the helper may have done it already (a
    /// command started, a file renamed), and doing it again by another path
    /// would run a command twice or report a rename that happened as missing.
    pub async fn call<T, F, Fut>(remote: Option<Arc<RemoteEnv>>, replay: Replay, call: F) -> Option<EnvResult<T>>
    where
        F: FnOnce(Arc<RemoteEnv>) -> Fut,
        Fut: Future<Output = EnvResult<T>>,
    {
        let remote = remote.filter(|r| r.is_alive())?;
        let result = call(remote.clone()).await;
        if replay == Replay::Safe && matches!(result, Err(EnvError::Unavailable(_))) && !remote.is_alive() {
            return None;
        }
        Some(result)
    }

    /// Forgets the session (its environment was replaced) and allows an
    /// immediate new start.
    pub async fn reset(&self) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = None;
        *self.starting.lock().await = None;
        self.rescan();
    }

    /// Whether the session's watcher reports changes.
    pub fn is_watching(&self) -> bool {
        self.watching.load(Ordering::Acquire)
    }

    /// Tells the file indexes that these paths changed.
    pub fn changed(&self, paths: &[&WorkspacePath]) {
        let _ = self.events.try_send(WatchEvent::Changed(paths.iter().map(|p| (*p).clone()).collect()));
    }

    /// Tells the file indexes that anything may have changed.
    pub fn rescan(&self) {
        let _ = self.events.try_send(WatchEvent::Rescan);
    }

    /// A hook for the end of a command: anything may have changed, unless the
    /// watcher reports the changes themselves.
    pub fn after_command(&self) -> impl Fn() + Send + Sync + 'static {
        let (events, watching) = (self.events.clone(), self.watching.clone());
        move || {
            if !watching.load(Ordering::Acquire) {
                let _ = events.try_send(WatchEvent::Rescan);
            }
        }
    }

    /// The change events, for [`crate::env::Env::watch`] (once). While no
    /// watcher runs, a `Rescan` is sent every `every`.
    pub fn take_events(&self, every: Duration) -> Option<mpsc::Receiver<WatchEvent>> {
        let rx = self.events_rx.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        let (events, watching) = (self.events.clone(), self.watching.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if watching.load(Ordering::Acquire) {
                    continue;
                }
                if let Err(mpsc::error::TrySendError::Closed(_)) = events.try_send(WatchEvent::Rescan) {
                    break;
                }
            }
        });
        Some(rx)
    }

    /// Feeds the session's watcher into the events; when it stops, periodic
    /// rescans take over again.
    async fn forward_watch(&self, what: &str, remote: &RemoteEnv) {
        use crate::env::Env;
        let mut rx = match remote.watch().await {
            Ok(Some(rx)) => rx,
            Ok(None) => return,
            Err(e) => return tracing::warn!("no file watcher in {what}: {e}"),
        };
        let (events, watching) = (self.events.clone(), self.watching.clone());
        watching.store(true, Ordering::Release);
        // Changes made before the watcher ran are unknown.
        let _ = events.try_send(WatchEvent::Rescan);
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                if events.send(event).await.is_err() {
                    break;
                }
            }
            watching.store(false, Ordering::Release);
            let _ = events.try_send(WatchEvent::Rescan);
        });
    }
}
