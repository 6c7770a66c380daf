//! The helper session in the container ([`crate::near`]): started once the
//! helper is installed, with one long-lived `docker exec`.

use super::*;
use crate::helper::remote::RemoteEnv;
use crate::helper::slot::Replay;

impl DockerEnv {
    /// Installs the helper in the background, so the first search does not
    /// wait, then starts its session.
    pub(super) fn warm_search(&self) {
        let me = self.me.clone();
        let (search, host) = (self.near.search(), self.host());
        tokio::spawn(async move {
            search.method(&host).await;
            if let Some(env) = me.upgrade() {
                env.near.remote(&host).await;
            }
        });
    }

    /// The result of `call` through the helper session, or `None` when the
    /// scripts take over: see [`crate::helper::slot::SessionSlot::call`] for
    /// when a lost session allows that.
    pub(super) async fn via_helper<T, F, Fut>(&self, replay: Replay, call: F) -> Option<EnvResult<T>>
    where
        F: FnOnce(Arc<RemoteEnv>) -> Fut,
        Fut: std::future::Future<Output = EnvResult<T>>,
    {
        self.near.call(&self.host(), replay, call).await
    }
}
