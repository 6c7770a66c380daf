//! Logging in: the `--identity` key alone when given; otherwise the keys of
//! ssh-agent (`SSH_AUTH_SOCK`), then the `IdentityFile`s of the SSH config,
//! then `~/.ssh/id_{ed25519,ecdsa,rsa}`. A password from `BURROW_SSH_PASSWORD`
//! comes last. Each attempt is logged; the error lists what was tried.

use std::path::{Path, PathBuf};

use russh::client::Handle;
use russh::keys::agent::client::AgentClient;

use super::connect::{rsa_hash, with_hash, Client, SshOptions};
use crate::env::{EnvError, EnvResult};

/// Key files `ssh` tries when nothing else is configured.
const DEFAULT_KEYS: [&str; 3] = [".ssh/id_ed25519", ".ssh/id_ecdsa", ".ssh/id_rsa"];

pub async fn login(handle: &mut Handle<Client>, opts: &SshOptions) -> EnvResult<()> {
    let user = opts.target.user.clone();
    let mut tried: Vec<String> = Vec::new();
    let unavailable = |e: russh::Error| EnvError::Unavailable(format!("authentication with {} failed: {e}", opts.target.display()));

    let key_files: Vec<PathBuf> = match &opts.identity {
        Some(path) => vec![path.clone()],
        None => {
            if try_agent(handle, &user, &mut tried).await? {
                return Ok(());
            }
            let mut files = opts.target.identity_files.clone();
            if let Some(home) = dirs::home_dir() {
                files.extend(DEFAULT_KEYS.iter().map(|k| home.join(k)).filter(|p| p.exists()));
            }
            files.dedup();
            files
        }
    };
    for path in key_files {
        let key = match load_key(&path, opts.passphrase.as_deref()) {
            Ok(k) => k,
            Err(why) if opts.identity.is_some() => return Err(EnvError::InvalidInput(why)),
            Err(why) => {
                tracing::debug!("{why}");
                continue;
            }
        };
        let hash = if key.algorithm().is_rsa() { rsa_hash(handle).await } else { None };
        let result = handle.authenticate_publickey(user.clone(), with_hash(key, hash)).await.map_err(unavailable)?;
        if result.success() {
            tracing::info!("logged in to {} with the key {}", opts.target.display(), path.display());
            return Ok(());
        }
        tried.push(format!("key {}", path.display()));
    }
    if let Some(password) = &opts.password {
        let result = handle.authenticate_password(user.clone(), password.clone()).await.map_err(unavailable)?;
        if result.success() {
            tracing::info!("logged in to {} with the password from BURROW_SSH_PASSWORD", opts.target.display());
            return Ok(());
        }
        tried.push("the password from BURROW_SSH_PASSWORD".into());
    }
    let tried = if tried.is_empty() { "nothing: no agent, no key file and no BURROW_SSH_PASSWORD".to_string() } else { tried.join(", ") };
    Err(EnvError::PermissionDenied(format!("{} refused the login as {user} (tried {tried})", opts.target.display())))
}

/// Tries every key the agent holds; `false` when there is no agent or none worked.
async fn try_agent(handle: &mut Handle<Client>, user: &str, tried: &mut Vec<String>) -> EnvResult<bool> {
    if std::env::var_os("SSH_AUTH_SOCK").is_none() {
        return Ok(false);
    }
    let mut agent = match AgentClient::connect_env().await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!("cannot reach ssh-agent at SSH_AUTH_SOCK: {e}");
            return Ok(false);
        }
    };
    let keys = agent.request_identities().await.unwrap_or_default();
    for key in keys {
        let hash = if key.algorithm().is_rsa() { rsa_hash(handle).await } else { None };
        let comment = key.comment().to_string();
        match handle.authenticate_publickey_with(user.to_string(), key, hash, &mut agent).await {
            Ok(r) if r.success() => {
                tracing::info!("logged in with the agent key {comment:?}");
                return Ok(true);
            }
            Ok(_) => tried.push(format!("agent key {comment:?}")),
            Err(e) => {
                tracing::warn!("the agent could not sign with {comment:?}: {e}");
                tried.push(format!("agent key {comment:?} (signing failed)"));
            }
        }
    }
    Ok(false)
}

fn load_key(path: &Path, passphrase: Option<&str>) -> Result<russh::keys::PrivateKey, String> {
    russh::keys::load_secret_key(path, passphrase).map_err(|e| match e {
        russh::keys::Error::KeyIsEncrypted => {
            format!("the key {} is encrypted; set BURROW_SSH_KEY_PASSPHRASE or load it into ssh-agent", path.display())
        }
        e => format!("cannot load the key {}: {e}", path.display()),
    })
}
