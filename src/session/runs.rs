//! Which sessions are working, and how to stop them.
//!
//! A run (a shell command now, an agent turn later) holds its session for as
//! long as it works: a second run gets `Busy` (409), `GET /session/status`
//! lists the session, and `abort` cancels the run and waits until it has
//! wound down. Starting publishes `session.status` busy; finishing publishes
//! `session.status` idle and then `session.idle`, as OpenCode does.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::error::StoreError;
use super::events::{self, Idle, Scope, StatusChanged};
use crate::event::Bus;
use crate::protocol::session::SessionStatus;

struct Entry {
    status: SessionStatus,
    scope: Scope,
    cancel: CancellationToken,
    /// Changes (to closed) once the run has finished.
    done: watch::Receiver<()>,
}

pub struct Runs {
    bus: Bus,
    map: Mutex<HashMap<String, Entry>>,
}

impl Runs {
    pub fn new(bus: Bus) -> Arc<Self> {
        Arc::new(Self { bus, map: Mutex::default() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims the session for a run, or says it is busy.
    pub fn start(self: &Arc<Self>, scope: &Scope, session_id: &str) -> Result<RunGuard, StoreError> {
        let mut map = self.lock();
        if map.contains_key(session_id) {
            return Err(StoreError::Busy(session_id.to_string()));
        }
        let cancel = CancellationToken::new();
        let (done_tx, done) = watch::channel(());
        let status = SessionStatus::Busy;
        events::transient(&self.bus, scope, events::SESSION_STATUS, StatusChanged { session_id, status: &status });
        map.insert(session_id.to_string(), Entry { status, scope: scope.clone(), cancel: cancel.clone(), done });
        Ok(RunGuard { runs: self.clone(), session_id: session_id.to_string(), cancel, done: Some(done_tx) })
    }

    /// The status of every working session (idle ones are absent).
    pub fn statuses(&self) -> BTreeMap<String, SessionStatus> {
        self.lock().iter().map(|(id, e)| (id.clone(), e.status.clone())).collect()
    }

    pub fn is_busy(&self, session_id: &str) -> bool {
        self.lock().contains_key(session_id)
    }

    /// Cancels the session's run and waits until it has finished. With no run,
    /// publishes idle anyway, as OpenCode does, so every client settles.
    pub async fn abort(&self, scope: &Scope, session_id: &str) {
        let waiting = {
            let map = self.lock();
            map.get(session_id).map(|e| {
                e.cancel.cancel();
                e.done.clone()
            })
        };
        match waiting {
            // Ends with an error once the run drops its sender: that is the signal.
            Some(mut done) => while done.changed().await.is_ok() {},
            None => publish_idle(&self.bus, scope, session_id),
        }
    }

    /// Aborts every run (at shutdown) and waits for them to wind down.
    pub async fn abort_all(&self) {
        let running: Vec<(String, Scope)> = self.lock().iter().map(|(id, e)| (id.clone(), e.scope.clone())).collect();
        futures::future::join_all(running.iter().map(|(id, scope)| self.abort(scope, id))).await;
    }

    fn finish(&self, session_id: &str) {
        let mut map = self.lock();
        if let Some(entry) = map.remove(session_id) {
            publish_idle(&self.bus, &entry.scope, session_id);
        }
    }
}

fn publish_idle(bus: &Bus, scope: &Scope, session_id: &str) {
    let idle = SessionStatus::Idle;
    events::transient(bus, scope, events::SESSION_STATUS, StatusChanged { session_id, status: &idle });
    events::transient(bus, scope, events::SESSION_IDLE, Idle { session_id });
}

/// A session held by a run. Dropping it (however the run ends: done, failed,
/// panicked) frees the session and publishes idle.
pub struct RunGuard {
    runs: Arc<Runs>,
    session_id: String,
    cancel: CancellationToken,
    done: Option<watch::Sender<()>>,
}

impl RunGuard {
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Completes when someone aborts the run.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// Completes when someone aborts the run. It holds the run's token, not the
    /// run: a watcher waiting on it never keeps the session busy after the run
    /// has ended (a parent's abort must find its subtask's session idle).
    pub fn cancellation(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.cancel.clone().cancelled_owned()
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Changes the published status (an agent turn that waits to retry).
    pub fn set_status(&self, status: SessionStatus) {
        let mut map = self.runs.lock();
        if let Some(entry) = map.get_mut(&self.session_id) {
            let changed = StatusChanged { session_id: &self.session_id, status: &status };
            events::transient(&self.runs.bus, &entry.scope, events::SESSION_STATUS, changed);
            entry.status = status;
        }
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.runs.finish(&self.session_id);
        // Wakes the aborters only after idle was published.
        drop(self.done.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope { directory: "/w".into(), project: "p".into() }
    }

    #[tokio::test]
    async fn busy_then_idle_and_abort_waits() {
        let bus = Bus::new();
        let mut rx = bus.subscribe();
        let runs = Runs::new(bus);
        let guard = runs.start(&scope(), "ses_a").unwrap();
        assert!(matches!(runs.start(&scope(), "ses_a"), Err(StoreError::Busy(_))));
        assert_eq!(runs.statuses().get("ses_a"), Some(&SessionStatus::Busy));
        let aborter = {
            let runs = runs.clone();
            tokio::spawn(async move { runs.abort(&scope(), "ses_a").await })
        };
        guard.cancelled().await;
        drop(guard);
        aborter.await.unwrap();
        assert!(runs.statuses().is_empty());
        let kinds: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok()).map(|p| p.event.kind.clone()).collect();
        assert_eq!(kinds, ["session.status", "session.status", "session.idle"]);
    }
}
