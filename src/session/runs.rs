//! Which sessions are working, what waits for them, and how to stop them.
//!
//! A run (a shell command, an agent turn) holds its session for as long as it
//! works: `GET /session/status` lists the session, and `abort` cancels the run
//! and waits until it has wound down. Starting publishes `session.status`
//! busy; finishing publishes `session.status` idle and then `session.idle`, as
//! OpenCode does.
//!
//! A shell command on a busy session is refused (`Busy`, 409), as OpenCode's
//! runner refuses it. A prompt is never refused: it takes a place in the
//! session's queue ([`Runs::enqueue`]) and gets the session when the runs
//! before it are over, first come first served, without the session going
//! idle in between. An abort cancels the running run and drops every prompt
//! still waiting, as OpenCode's `cancel` interrupts its loop.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, watch};
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
    /// Prompts waiting for the session, in the order they came.
    waiting: VecDeque<Waiter>,
}

/// A prompt's place in a session's queue: the run is handed over on `tx`.
struct Waiter {
    message_id: String,
    tx: oneshot::Sender<Result<RunGuard, Dropped>>,
}

/// Why a waiting prompt will not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// The session was aborted: like OpenCode, the prompt's user message stays, unanswered.
    Aborted,
    /// The server is stopping: the next start marks the prompt as failed.
    Shutdown,
}

/// What [`Runs::enqueue`] gives: the session at once, or a place in its queue.
pub enum Ticket {
    Now(RunGuard),
    Queued(oneshot::Receiver<Result<RunGuard, Dropped>>),
}

impl Ticket {
    pub fn is_queued(&self) -> bool {
        matches!(self, Ticket::Queued(_))
    }

    /// Waits for the prompt's turn, or says why it will not come.
    pub async fn turn(self) -> Result<RunGuard, Dropped> {
        match self {
            Ticket::Now(guard) => Ok(guard),
            // Dropped without a word: the abort that drained the queue went away before the run ended.
            Ticket::Queued(rx) => rx.await.unwrap_or(Err(Dropped::Aborted)),
        }
    }
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
        Ok(self.insert(&mut map, scope, session_id))
    }

    fn insert(self: &Arc<Self>, map: &mut HashMap<String, Entry>, scope: &Scope, session_id: &str) -> RunGuard {
        let (guard, cancel, done) = self.guard(session_id);
        let status = SessionStatus::Busy;
        events::transient(&self.bus, scope, events::SESSION_STATUS, StatusChanged { session_id, status: &status });
        map.insert(session_id.to_string(), Entry { status, scope: scope.clone(), cancel, done, waiting: VecDeque::new() });
        guard
    }

    fn guard(self: &Arc<Self>, session_id: &str) -> (RunGuard, CancellationToken, watch::Receiver<()>) {
        let cancel = CancellationToken::new();
        let (done_tx, done) = watch::channel(());
        (RunGuard { runs: self.clone(), session_id: session_id.to_string(), cancel: cancel.clone(), done: Some(done_tx) }, cancel, done)
    }

    /// Claims the session for the prompt whose user message is `message_id`,
    /// or queues it behind the runs already there.
    pub fn enqueue(self: &Arc<Self>, scope: &Scope, session_id: &str, message_id: &str) -> Ticket {
        let mut map = self.lock();
        match map.get_mut(session_id) {
            None => Ticket::Now(self.insert(&mut map, scope, session_id)),
            Some(entry) => {
                let (tx, rx) = oneshot::channel();
                entry.waiting.push_back(Waiter { message_id: message_id.to_string(), tx });
                Ticket::Queued(rx)
            }
        }
    }

    /// The user messages of the prompts waiting in the session's queue.
    pub fn queued(&self, session_id: &str) -> Vec<String> {
        self.lock().get(session_id).map(|e| e.waiting.iter().map(|w| w.message_id.clone()).collect()).unwrap_or_default()
    }

    /// The status of every working session (idle ones are absent).
    pub fn statuses(&self) -> BTreeMap<String, SessionStatus> {
        self.lock().iter().map(|(id, e)| (id.clone(), e.status.clone())).collect()
    }

    pub fn is_busy(&self, session_id: &str) -> bool {
        self.lock().contains_key(session_id)
    }

    /// Waits until the session is idle: no run holds it and no prompt waits
    /// for it. A run that hands the session to a queued prompt does not end
    /// the wait, since the session never goes idle in between.
    pub async fn wait_idle(&self, session_id: &str) {
        loop {
            let Some(mut done) = self.lock().get(session_id).map(|e| e.done.clone()) else { return };
            // Ends with an error once the run drops its sender, after `finish` ran.
            while done.changed().await.is_ok() {}
        }
    }

    /// Cancels the session's run, drops the prompts waiting for it, and waits
    /// until the run has finished. With no run, publishes idle anyway, as
    /// OpenCode does, so every client settles.
    pub async fn abort(&self, scope: &Scope, session_id: &str) {
        self.stop(scope, session_id, Dropped::Aborted).await
    }

    /// The waiting prompts leave the queue at once, and learn why once the run
    /// has ended (as in OpenCode, where they wait on the interrupted run), so
    /// what they answer already holds the run's end.
    async fn stop(&self, scope: &Scope, session_id: &str, why: Dropped) {
        let running = {
            let mut map = self.lock();
            map.get_mut(session_id).map(|e| {
                e.cancel.cancel();
                (e.done.clone(), e.waiting.drain(..).collect::<Vec<_>>())
            })
        };
        match running {
            Some((mut done, waiters)) => {
                // Ends with an error once the run drops its sender: that is the signal.
                while done.changed().await.is_ok() {}
                for waiter in waiters {
                    let _ = waiter.tx.send(Err(why));
                }
            }
            None => publish_idle(&self.bus, scope, session_id),
        }
    }

    /// Aborts every run (at shutdown) and waits for them to wind down.
    pub async fn abort_all(&self) {
        let running: Vec<(String, Scope)> = self.lock().iter().map(|(id, e)| (id.clone(), e.scope.clone())).collect();
        futures::future::join_all(running.iter().map(|(id, scope)| self.stop(scope, id, Dropped::Shutdown))).await;
    }

    /// Hands the session to the next waiting prompt, or frees it. A prompt
    /// that stopped waiting refuses the hand-over: the guard comes back and,
    /// dropped outside the lock, passes the session on again.
    fn finish(self: &Arc<Self>, session_id: &str) {
        let (waiter, guard) = {
            let mut map = self.lock();
            let Some(entry) = map.get_mut(session_id) else { return };
            let Some(waiter) = entry.waiting.pop_front() else {
                if let Some(entry) = map.remove(session_id) {
                    publish_idle(&self.bus, &entry.scope, session_id);
                }
                return;
            };
            let (guard, cancel, done) = self.guard(session_id);
            (entry.cancel, entry.done, entry.status) = (cancel, done, SessionStatus::Busy);
            events::transient(&self.bus, &entry.scope, events::SESSION_STATUS, StatusChanged { session_id, status: &entry.status });
            (waiter, guard)
        };
        drop(waiter.tx.send(Ok(guard)));
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

    #[tokio::test]
    async fn wait_idle_outlasts_a_hand_over_to_a_queued_prompt() {
        let runs = Runs::new(Bus::new());
        runs.wait_idle("ses_a").await;
        let Ticket::Now(first) = runs.enqueue(&scope(), "ses_a", "msg_1") else { panic!("an idle session is claimed at once") };
        let queued = runs.enqueue(&scope(), "ses_a", "msg_2");
        let waiter = {
            let runs = runs.clone();
            tokio::spawn(async move { runs.wait_idle("ses_a").await })
        };
        // On this single-threaded runtime, yielding lets the waiter run up to its wait.
        tokio::task::yield_now().await;
        drop(first);
        let second = queued.turn().await.expect("the queued prompt gets the session");
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "the session went from one run to the next, never idle");
        drop(second);
        waiter.await.unwrap();
        assert!(!runs.is_busy("ses_a"));
    }

    fn kinds(rx: &mut tokio::sync::broadcast::Receiver<Arc<crate::event::Published>>) -> Vec<String> {
        std::iter::from_fn(|| rx.try_recv().ok()).map(|p| p.event.kind.clone()).collect()
    }

    #[tokio::test]
    async fn queued_prompts_get_the_session_in_order_without_an_idle_between() {
        let bus = Bus::new();
        let mut rx = bus.subscribe();
        let runs = Runs::new(bus);
        let first = match runs.enqueue(&scope(), "ses_a", "msg_1") {
            Ticket::Now(guard) => guard,
            Ticket::Queued(_) => panic!("an idle session is claimed at once"),
        };
        let second = runs.enqueue(&scope(), "ses_a", "msg_2");
        let third = runs.enqueue(&scope(), "ses_a", "msg_3");
        assert!(second.is_queued() && third.is_queued());
        assert_eq!(runs.queued("ses_a"), ["msg_2", "msg_3"]);
        // A shell command is still refused while anything holds or waits for the session.
        assert!(matches!(runs.start(&scope(), "ses_a"), Err(StoreError::Busy(_))));
        drop(first);
        let second = second.turn().await.expect("the second prompt runs next");
        assert_eq!(runs.queued("ses_a"), ["msg_3"]);
        assert!(runs.is_busy("ses_a"));
        drop(second);
        let third = third.turn().await.expect("then the third");
        drop(third);
        assert!(!runs.is_busy("ses_a"));
        assert_eq!(kinds(&mut rx), ["session.status", "session.status", "session.status", "session.status", "session.idle"]);
    }

    #[tokio::test]
    async fn a_prompt_that_stopped_waiting_passes_its_turn_on() {
        let runs = Runs::new(Bus::new());
        let first = runs.enqueue(&scope(), "ses_a", "msg_1").turn().await.unwrap();
        drop(runs.enqueue(&scope(), "ses_a", "msg_2"));
        let third = runs.enqueue(&scope(), "ses_a", "msg_3");
        drop(first);
        let third = third.turn().await.expect("the third prompt gets the turn the second gave up");
        drop(third);
        assert!(runs.statuses().is_empty());
    }

    #[tokio::test]
    async fn abort_drops_the_waiting_prompts_and_shutdown_says_so() {
        let runs = Runs::new(Bus::new());
        let first = runs.enqueue(&scope(), "ses_a", "msg_1").turn().await.unwrap();
        let waiting = runs.enqueue(&scope(), "ses_a", "msg_2");
        let aborter = {
            let runs = runs.clone();
            tokio::spawn(async move { runs.abort(&scope(), "ses_a").await })
        };
        first.cancelled().await;
        // The waiting prompt leaves the queue at once: the run's end frees the session.
        drop(first);
        assert_eq!(waiting.turn().await.err(), Some(Dropped::Aborted));
        aborter.await.unwrap();
        assert!(runs.statuses().is_empty());

        let first = runs.enqueue(&scope(), "ses_b", "msg_3").turn().await.unwrap();
        let waiting = runs.enqueue(&scope(), "ses_b", "msg_4");
        let stopping = {
            let runs = runs.clone();
            tokio::spawn(async move { runs.abort_all().await })
        };
        first.cancelled().await;
        drop(first);
        assert_eq!(waiting.turn().await.err(), Some(Dropped::Shutdown));
        stopping.await.unwrap();
        assert!(runs.statuses().is_empty());
    }
}
