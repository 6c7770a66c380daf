//! Admission for text searches: a semaphore with a bounded queue.
//!
//! A text search is the one request that can keep every core busy for seconds
//! (each one walks and reads the whole tree on all cores). Left unbounded, 200
//! of them start hundreds of threads, and health checks and fuzzy file lookups
//! wait behind them for a second or more. So a text search (`GET /find`, the
//! agent's `grep` tool) first takes one of [`Limits::concurrency`] permits; at
//! most [`Limits::queue`] more wait for one, and past that the search is
//! refused at once with 503 and `Retry-After`, which a client can act on,
//! rather than queued without bound. Fuzzy lookups and every other request
//! never pass through here, so they never wait behind searches.
//!
//! The searches themselves run on the blocking pool (locally) or in the helper
//! process (Docker, SSH); holding the permit for the whole call bounds both.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::env::{EnvError, EnvResult, GrepRequest, GrepResult, SharedEnv};

/// How many searches may run, and how many may wait for a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub concurrency: usize,
    pub queue: usize,
}

impl Default for Limits {
    /// One search per core (each already scans on all cores), and a queue that
    /// absorbs a burst of typing in a few clients.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Self { concurrency: cores, queue: 8 * cores }
    }
}

/// Seconds a refused client is told to wait before it tries again.
pub const RETRY_AFTER_SECS: u64 = 1;

pub struct Gate {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
}

/// The search was refused: every permit is taken and the queue is full.
#[derive(Debug)]
pub struct Busy;

impl Gate {
    pub fn new(limits: Limits) -> Self {
        Self { permits: Arc::new(Semaphore::new(limits.concurrency.max(1))), waiting: AtomicUsize::new(0), queue: limits.queue }
    }

    /// A permit to run one search, after waiting in the queue if need be.
    pub async fn admit(&self) -> Result<OwnedSemaphorePermit, Busy> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Busy);
        }
        // Leaves the queue however the wait ends, even when the request is dropped.
        struct Queued<'a>(&'a AtomicUsize);
        impl Drop for Queued<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let _queued = Queued(&self.waiting);
        self.permits.clone().acquire_owned().await.map_err(|_| Busy)
    }
}

static GATE: OnceLock<Gate> = OnceLock::new();

/// Sets the limits of this process's searches; only the first call counts
/// (the server calls it once at start, before any search).
pub fn configure(limits: Limits) {
    let _ = GATE.set(Gate::new(limits));
}

fn gate() -> &'static Gate {
    GATE.get_or_init(|| Gate::new(Limits::default()))
}

/// Runs a text search once admitted; [`EnvError::Busy`] when refused.
pub async fn grep(env: &SharedEnv, req: GrepRequest) -> EnvResult<GrepResult> {
    let _permit = gate().admit().await.map_err(|Busy| EnvError::Busy("too many text searches are running; try again shortly".into()))?;
    env.grep(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_the_queue_a_search_is_refused_and_a_freed_permit_admits_the_next() {
        let gate = Arc::new(Gate::new(Limits { concurrency: 1, queue: 1 }));
        let running = gate.admit().await.unwrap();
        let queued = tokio::spawn({
            let gate = gate.clone();
            async move { gate.admit().await.map(drop).is_ok() }
        });
        // Wait until the second caller sits in the queue (not a race: it
        // cannot leave the queue while the only permit is held).
        while gate.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(gate.admit().await.is_err(), "a third search must be refused");
        drop(running);
        assert!(queued.await.unwrap(), "the queued search runs once the permit is free");
        assert_eq!(gate.waiting.load(Ordering::Acquire), 0);
        assert!(gate.admit().await.is_ok());
    }
}
