//! Provider credentials the server keeps: OpenCode's `auth.json`, one entry
//! per provider id, in Burrow's data folder (`<data dir>/auth.json`, mode
//! 0600), written by `PUT /auth/{providerID}` and the v2 integration routes.
//!
//! The file has OpenCode's shape (`{"openai": {"type": "api", "key": "..."}}`),
//! so a user's own `~/.local/share/opencode/auth.json` can be copied in. Each
//! entry also carries the `id` and `label` of the v2 credential it is, which
//! OpenCode's reader ignores. An `api` key is what a provider without an
//! `options.apiKey` sends (it wins over the environment's variable, as in
//! OpenCode); `oauth` and `wellknown` entries are kept but Burrow runs no
//! OAuth flow, so no provider uses them.
//!
//! Keys never leave the server: no type here serializes a key into an answer
//! (the routes list ids and labels only), and `Debug` prints none.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::id::{self, Prefix};

/// The file's name in the data folder.
pub const FILE: &str = "auth.json";
/// The label of a credential stored without one.
pub const DEFAULT_LABEL: &str = "API key";

/// One stored credential, as OpenCode's `Auth` schema types it.
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Auth {
    Oauth {
        refresh: String,
        access: String,
        expires: u64,
        #[serde(rename = "accountId", default, skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
        #[serde(rename = "enterpriseUrl", default, skip_serializing_if = "Option::is_none")]
        enterprise_url: Option<String>,
    },
    Api {
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<BTreeMap<String, String>>,
    },
    Wellknown {
        key: String,
        token: String,
    },
}

impl Auth {
    /// The API key a provider sends, for an `api` credential.
    pub fn api_key(&self) -> Option<&str> {
        match self {
            Auth::Api { key, .. } => Some(key),
            _ => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Auth::Oauth { .. } => "oauth",
            Auth::Api { .. } => "api",
            Auth::Wellknown { .. } => "wellknown",
        }
    }
}

impl fmt::Debug for Auth {
    /// The kind only: a credential must not reach a log through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Auth({}, <redacted>)", self.kind())
    }
}

/// An entry of the file: the credential and its v2 identity.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Entry {
    #[serde(flatten)]
    pub auth: Auth,
    /// The v2 credential id (`crd_...`); entries copied from OpenCode get one
    /// on the next write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// What the routes may show of a credential: never the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub provider_id: String,
    pub id: String,
    pub label: String,
}

/// Provider id to API key, for the providers with a stored `api` credential.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoredKeys(pub HashMap<String, String>);

impl StoredKeys {
    pub fn get(&self, provider_id: &str) -> Option<&str> {
        self.0.get(provider_id).map(String::as_str)
    }
}

impl fmt::Debug for StoredKeys {
    /// The provider ids only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Why the store could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {source}")]
pub struct AuthError {
    what: &'static str,
    path: String,
    source: std::io::Error,
}

/// The credentials file of one data folder. Writes are serialized in the
/// process, and each replaces the file whole (a temporary file, created 0600,
/// then a rename), so a reader sees the old or the new content.
pub struct AuthStore {
    path: PathBuf,
    write: tokio::sync::Mutex<()>,
}

impl AuthStore {
    pub fn new(data_dir: &Path) -> Self {
        Self { path: data_dir.join(FILE), write: tokio::sync::Mutex::new(()) }
    }

    /// Every entry that parses, by provider id. A missing file is empty; an
    /// entry OpenCode would not accept is skipped, as OpenCode skips it.
    pub async fn all(&self) -> Result<BTreeMap<String, Entry>, AuthError> {
        let text = match tokio::fs::read(&self.path).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(source) => return Err(AuthError { what: "cannot read", path: self.path.display().to_string(), source }),
        };
        let raw: Map<String, Value> = match serde_json::from_slice(&text) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), "ignoring a credentials file that is not a JSON object: {e}");
                return Ok(BTreeMap::new());
            }
        };
        Ok(raw.into_iter().filter_map(|(k, v)| Some((k, serde_json::from_value::<Entry>(v).ok()?))).collect())
    }

    /// The `api` keys, for the config.
    pub async fn keys(&self) -> Result<StoredKeys, AuthError> {
        let all = self.all().await?;
        Ok(StoredKeys(all.into_iter().filter_map(|(p, e)| Some((p, e.auth.api_key()?.to_string()))).collect()))
    }

    /// The stored credentials without their secrets.
    pub async fn list(&self) -> Result<Vec<Listed>, AuthError> {
        Ok(self.all().await?.into_iter().map(|(p, e)| listed(p, e)).collect())
    }

    /// Stores `auth` for `provider_id`, replacing its credential but keeping
    /// the credential's id and label (or `label`, when given).
    pub async fn set(&self, provider_id: &str, auth: Auth, label: Option<String>) -> Result<Listed, AuthError> {
        let _guard = self.write.lock().await;
        let mut all = self.all().await?;
        let old = all.remove(provider_id);
        let entry = Entry {
            auth,
            id: old.as_ref().and_then(|o| o.id.clone()).or_else(|| Some(id::ascending(Prefix::Credential))),
            label: label.or_else(|| old.and_then(|o| o.label)).or_else(|| Some(DEFAULT_LABEL.to_string())),
        };
        all.insert(provider_id.to_string(), entry.clone());
        self.write(&all).await?;
        Ok(listed(provider_id.to_string(), entry))
    }

    /// Removes `provider_id`'s credential; whether there was one.
    pub async fn remove(&self, provider_id: &str) -> Result<bool, AuthError> {
        let _guard = self.write.lock().await;
        let mut all = self.all().await?;
        let found = all.remove(provider_id).is_some();
        if found {
            self.write(&all).await?;
        }
        Ok(found)
    }

    /// Changes the label of credential `id`; the credential, or `None` when
    /// no credential has that id.
    pub async fn relabel(&self, id: &str, label: &str) -> Result<Option<Listed>, AuthError> {
        let _guard = self.write.lock().await;
        let mut all = self.all().await?;
        let Some((provider, entry)) = all.iter_mut().find(|(_, e)| e.id.as_deref() == Some(id)) else { return Ok(None) };
        entry.label = Some(label.to_string());
        let done = listed(provider.clone(), entry.clone());
        self.write(&all).await?;
        Ok(Some(done))
    }

    /// Removes credential `id`; the provider it was for, or `None` when no
    /// credential has that id.
    pub async fn remove_id(&self, id: &str) -> Result<Option<String>, AuthError> {
        let _guard = self.write.lock().await;
        let mut all = self.all().await?;
        let Some(provider) = all.iter().find(|(_, e)| e.id.as_deref() == Some(id)).map(|(p, _)| p.clone()) else { return Ok(None) };
        all.remove(&provider);
        self.write(&all).await?;
        Ok(Some(provider))
    }

    async fn write(&self, all: &BTreeMap<String, Entry>) -> Result<(), AuthError> {
        let path = self.path.clone();
        let text = serde_json::to_vec_pretty(all).expect("credentials serialize");
        let fail = |what, source| AuthError { what, path: self.path.display().to_string(), source };
        tokio::task::spawn_blocking(move || write_private(&path, &text))
            .await
            .map_err(|e| fail("cannot write", std::io::Error::other(e)))?
            .map_err(|e| fail("cannot write", e))
    }
}

fn listed(provider_id: String, e: Entry) -> Listed {
    Listed { provider_id, id: e.id.unwrap_or_default(), label: e.label.unwrap_or_else(|| DEFAULT_LABEL.to_string()) }
}

/// Writes `path` whole, readable by the owner only: a temporary file beside
/// it, created 0600 (never wider, not even for an instant), synced, renamed.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{FILE}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[tokio::test]
    async fn stores_keys_privately_and_keeps_ids_across_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore::new(dir.path());
        assert!(store.all().await.unwrap().is_empty());
        let first = store.set("openai", Auth::Api { key: "sk-1".into(), metadata: None }, None).await.unwrap();
        assert!(first.id.starts_with("crd_"), "{first:?}");
        assert_eq!(first.label, DEFAULT_LABEL);
        let mode = std::fs::metadata(dir.path().join(FILE)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = store.set("openai", Auth::Api { key: "sk-2".into(), metadata: None }, Some("work".into())).await.unwrap();
        assert_eq!((again.id.as_str(), again.label.as_str()), (first.id.as_str(), "work"));
        assert_eq!(store.keys().await.unwrap().get("openai"), Some("sk-2"));
        assert_eq!(store.relabel(&first.id, "home").await.unwrap().map(|l| l.label), Some("home".into()));
        assert_eq!(store.relabel("crd_none", "x").await.unwrap(), None);
        assert_eq!(store.remove_id(&first.id).await.unwrap().as_deref(), Some("openai"));
        assert!(!store.remove("openai").await.unwrap());
    }

    #[tokio::test]
    async fn reads_opencodes_file_and_skips_what_it_would_skip() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"{"openai": {"type": "api", "key": "sk-o"}, "x": {"type": "nope"}, "gh": {"type": "oauth", "refresh": "r", "access": "a", "expires": 1}}"#;
        std::fs::write(dir.path().join(FILE), text).unwrap();
        let store = AuthStore::new(dir.path());
        let all = store.all().await.unwrap();
        assert_eq!(all.keys().collect::<Vec<_>>(), ["gh", "openai"]);
        assert_eq!(store.keys().await.unwrap().0.len(), 1, "only api keys reach providers");
        assert!(!format!("{:?} {:?}", all, store.keys().await.unwrap()).contains("sk-o"), "Debug shows no key");
    }
}
