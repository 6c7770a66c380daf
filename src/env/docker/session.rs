//! The helper session in the container and keeping file indexes fresh.
//!
//! Once `burrow helper` is installed, Burrow keeps `burrow helper serve` running
//! in the container (one long-lived `docker exec`) and sends every operation
//! there as a message ([`RemoteEnv`]). Its notify watcher reports changes made
//! by anyone (a shell, an editor attached to the container, a bind-mounted
//! host folder). Without it, the indexes are told to re-walk every
//! [`RESCAN_EVERY`] and after every command Burrow ran; either way, writes
//! through Burrow mark them dirty at once.

use super::*;
use crate::helper::client::Method;

impl DockerEnv {
    /// Installs the helper in the background, so the first search does not
    /// wait, then starts its session.
    pub(super) fn warm_search(&self) {
        let me = self.me.clone();
        let (near, host) = (self.near(), backend::Host(self.target()));
        tokio::spawn(async move {
            near.method(&host).await;
            if let Some(env) = me.upgrade() {
                env.remote().await;
            }
        });
    }

    pub(super) fn current_remote(&self) -> Option<Arc<RemoteEnv>> {
        self.remote.read().unwrap_or_else(|e| e.into_inner()).as_ref().filter(|r| r.is_alive()).cloned()
    }

    /// The helper session, started when the helper is installed and restarted
    /// when it was lost; `None` while there is none (the scripts serve then).
    pub(super) async fn remote(&self) -> Option<Arc<RemoteEnv>> {
        if let Some(r) = self.current_remote() {
            return Some(r);
        }
        let Some(Method::Helper(bin)) = self.near().probed().cloned() else { return None };
        // One start at a time; callers meanwhile use the scripts.
        let mut last_failure = self.starting.try_lock().ok()?;
        if last_failure.is_some_and(|at| at.elapsed() < SESSION_RETRY) {
            return None;
        }
        if let Some(r) = self.current_remote() {
            return Some(r);
        }
        let t = self.target();
        let argv = vec![bin, "helper".into(), "serve".into(), self.root.clone()];
        let started = match exec::attach(&t, argv).await {
            Ok((reader, writer)) => RemoteEnv::connect(reader, writer).await,
            Err(e) => Err(e),
        };
        match started {
            Ok(remote) => {
                let remote = Arc::new(remote);
                tracing::info!("helper session started in {}", t.name);
                *last_failure = None;
                *self.remote.write().unwrap_or_else(|e| e.into_inner()) = Some(remote.clone());
                self.forward_watch(&remote).await;
                Some(remote)
            }
            Err(e) => {
                tracing::warn!("cannot start the helper session in {}: {e}", t.name);
                *last_failure = Some(Instant::now());
                None
            }
        }
    }

    /// Feeds the helper's watcher into `events`; when it stops, periodic
    /// rescans take over again.
    async fn forward_watch(&self, remote: &RemoteEnv) {
        let mut rx = match remote.watch().await {
            Ok(Some(rx)) => rx,
            Ok(None) => return,
            Err(e) => return tracing::warn!("no file watcher in the container: {e}"),
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

    /// Sends a `Rescan` every [`RESCAN_EVERY`] while no watcher runs, until
    /// the receiver of `events` is gone.
    pub(super) fn start_ticking(&self) {
        let (events, watching) = (self.events.clone(), self.watching.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RESCAN_EVERY);
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
    }

    /// The result of `call` through the helper session, or `None` when there
    /// is no session or it was lost during the call (the scripts take over and
    /// report the container's state if it is down).
    pub(super) async fn via_helper<T, F, Fut>(&self, call: F) -> Option<EnvResult<T>>
    where
        F: FnOnce(Arc<RemoteEnv>) -> Fut,
        Fut: std::future::Future<Output = EnvResult<T>>,
    {
        let remote = self.remote().await?;
        let result = call(remote.clone()).await;
        if matches!(result, Err(EnvError::Unavailable(_))) && !remote.is_alive() {
            return None;
        }
        Some(result)
    }
}
