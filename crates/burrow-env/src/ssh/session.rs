//! The helper session on the host ([`SessionSlot`]): `burrow-helper serve`
//! on one exec channel of the shared connection, started once the helper is
//! installed. Searches, commands and terminals then cost a message instead of
//! a new channel and three shells, and the helper's watcher keeps file
//! indexes fresh. Files stay on SFTP, which is already one round trip.

use std::sync::Arc;

use super::{exec, SshEnv};
use crate::helper::client::Method;
use crate::helper::remote::RemoteEnv;

impl SshEnv {
    /// The helper session, started when the helper is installed and restarted
    /// (after a reconnect) when it was lost; `None` while there is none.
    pub(super) async fn remote(&self) -> Option<Arc<RemoteEnv>> {
        if let Some(r) = self.session.current() {
            return Some(r);
        }
        let Some(Method::Helper(bin)) = self.search.probed().cloned() else { return None };
        let command = bin.command(&["serve", &self.root]);
        let what = self.link.target().display();
        self.session
            .get(&what, || async {
                let (reader, writer) = exec::attach(&self.link, &command).await?;
                RemoteEnv::connect(reader, writer, &bin.version_line()).await
            })
            .await
    }
}
