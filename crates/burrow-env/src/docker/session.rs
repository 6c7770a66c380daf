//! The helper session in the container ([`SessionSlot`]): started once the
//! helper is installed, with one long-lived `docker exec`.

use super::*;
use crate::helper::client::Method;
use crate::helper::slot::Replay;

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
        self.session.current()
    }

    /// The helper session, started when the helper is installed and restarted
    /// when it was lost; `None` while there is none (the scripts serve then).
    pub(super) async fn remote(&self) -> Option<Arc<RemoteEnv>> {
        if let Some(r) = self.session.current() {
            return Some(r);
        }
        let Some(Method::Helper(bin)) = self.near().probed().cloned() else { return None };
        let t = self.target();
        let argv = vec!["/bin/sh".into(), "-c".into(), bin.command(&["serve", &self.root])];
        self.session
            .get(&t.name, || async {
                let (reader, writer) = exec::attach(&t, argv).await?;
                RemoteEnv::connect(reader, writer, &bin.version_line()).await
            })
            .await
    }

    /// The result of `call` through the helper session, or `None` when the
    /// scripts take over (and report the container's state if it is down):
    /// see [`SessionSlot::call`] for when a lost session allows that.
    pub(super) async fn via_helper<T, F, Fut>(&self, replay: Replay, call: F) -> Option<EnvResult<T>>
    where
        F: FnOnce(Arc<RemoteEnv>) -> Fut,
        Fut: std::future::Future<Output = EnvResult<T>>,
    {
        SessionSlot::call(self.remote().await, replay, call).await
    }
}
