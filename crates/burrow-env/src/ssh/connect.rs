//! One SSH connection and the link that keeps one open: host-key checking
//! against known_hosts, authentication, keepalives, and reconnecting with
//! backoff after the connection drops.
//!
//! Every request borrows the current [`Conn`]; when it is gone, the request
//! that notices reconnects (single-flight, under the link's lock), and while
//! reconnecting keeps failing, requests fail fast with the last error instead
//! of piling up behind timeouts.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey};
use russh_sftp::client::RawSftpSession;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::target::Target;
use crate::env::{EnvError, EnvResult};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
const KEEPALIVE: Duration = Duration::from_secs(15);
/// Keepalives without an answer before the connection counts as dead.
const KEEPALIVE_MAX: usize = 3;
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// SFTP requests that get no answer for this long fail (a stuck server).
const SFTP_TIMEOUT_SECS: u64 = 120;

/// How to reach and log in to the host.
#[derive(Clone, Debug)]
pub struct SshOptions {
    pub target: Target,
    /// `--identity`: when given, the only key tried.
    pub identity: Option<PathBuf>,
    /// known_hosts files to check, in order; new keys are recorded in the first.
    pub known_hosts: Vec<PathBuf>,
    pub accept_new_host_key: bool,
    /// From `BURROW_SSH_PASSWORD`, never from the command line.
    pub password: Option<String>,
    /// From `BURROW_SSH_KEY_PASSPHRASE`, for encrypted key files.
    pub passphrase: Option<String>,
}

/// One live connection: the session and its SFTP channel.
pub struct Conn {
    pub handle: Handle<Client>,
    pub sftp: RawSftpSession,
    /// The server supports `posix-rename@openssh.com` (rename over an existing file).
    pub posix_rename: bool,
    /// The remote user's home directory, where SFTP starts.
    pub home: String,
    /// Cancelled when the session ends, for whatever reason.
    lost: CancellationToken,
    target: String,
}

impl Conn {
    pub fn alive(&self) -> bool {
        !self.lost.is_cancelled() && !self.handle.is_closed()
    }

    /// The error every request on a dropped connection gets.
    pub fn lost_error(&self) -> EnvError {
        EnvError::Unavailable(format!("the SSH connection to {} was lost; the next request reconnects", self.target))
    }

    /// Runs `fut`, failing with [`Conn::lost_error`] as soon as the connection drops.
    pub async fn guard<T>(&self, fut: impl std::future::Future<Output = EnvResult<T>>) -> EnvResult<T> {
        tokio::select! {
            r = fut => r,
            _ = self.lost.cancelled() => Err(self.lost_error()),
        }
    }

    /// Resolves once the connection is gone.
    pub async fn lost(&self) {
        self.lost.cancelled().await
    }
}

/// The russh handler: checks the host key, and marks the connection lost
/// when the session task ends (it owns the handler, so dropping it is the signal).
pub struct Client {
    target: Target,
    known_hosts: Vec<PathBuf>,
    accept_new: bool,
    /// Why the host key was refused, for the error message.
    verdict: Arc<Mutex<Option<String>>>,
    _lost: DropGuard,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKey) -> Result<bool, Self::Error> {
        let t = &self.target;
        match super::hostkey::verify(&t.host, t.port, key, &self.known_hosts, self.accept_new) {
            Ok(()) => Ok(true),
            Err(why) => {
                *self.verdict.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
                Ok(false)
            }
        }
    }
}

struct LinkState {
    conn: Option<Arc<Conn>>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: String,
}

/// Keeps one connection to the host open across drops.
pub struct Link {
    opts: SshOptions,
    config: Arc<client::Config>,
    state: tokio::sync::Mutex<LinkState>,
}

impl Link {
    pub fn new(opts: SshOptions) -> Self {
        let config = client::Config {
            keepalive_interval: Some(KEEPALIVE),
            keepalive_max: KEEPALIVE_MAX,
            // Small requests (a shell command, an SFTP stat) must not wait for Nagle.
            nodelay: true,
            ..Default::default()
        };
        let state = LinkState { conn: None, failures: 0, retry_at: None, last_error: String::new() };
        Self { opts, config: Arc::new(config), state: tokio::sync::Mutex::new(state) }
    }

    pub fn target(&self) -> &Target {
        &self.opts.target
    }

    /// The current connection, reconnecting when it dropped.
    pub async fn get(&self) -> EnvResult<Arc<Conn>> {
        let mut st = self.state.lock().await;
        if let Some(conn) = &st.conn {
            if conn.alive() {
                return Ok(conn.clone());
            }
            tracing::warn!("the SSH connection to {} was lost; reconnecting", self.opts.target.display());
            st.conn = None;
        }
        if let Some(at) = st.retry_at {
            let now = Instant::now();
            if now < at {
                return Err(EnvError::Unavailable(format!("{}; retrying in {:.1}s", st.last_error, (at - now).as_secs_f32())));
            }
        }
        match self.connect().await {
            Ok(conn) => {
                if st.failures > 0 {
                    tracing::info!("reconnected to {}", self.opts.target.display());
                }
                st.failures = 0;
                st.retry_at = None;
                st.conn = Some(conn.clone());
                Ok(conn)
            }
            Err(e) => {
                let delay = BACKOFF_FIRST.saturating_mul(1 << st.failures.min(8)).min(BACKOFF_MAX);
                st.failures += 1;
                st.retry_at = Some(Instant::now() + delay);
                st.last_error = e.to_string();
                tracing::warn!("{e}; next attempt in {delay:?}");
                Err(e)
            }
        }
    }

    /// Opens a connection: TCP, host key, login, the SFTP channel.
    pub async fn connect(&self) -> EnvResult<Arc<Conn>> {
        let shown = self.opts.target.display();
        match tokio::time::timeout(CONNECT_TIMEOUT, self.connect_inner()).await {
            Ok(r) => r,
            Err(_) => Err(EnvError::Unavailable(format!("connecting to {shown} timed out after {CONNECT_TIMEOUT:?}"))),
        }
    }

    async fn connect_inner(&self) -> EnvResult<Arc<Conn>> {
        let t = &self.opts.target;
        let shown = t.display();
        let lost = CancellationToken::new();
        let verdict = Arc::new(Mutex::new(None));
        let handler = Client {
            target: t.clone(),
            known_hosts: self.opts.known_hosts.clone(),
            accept_new: self.opts.accept_new_host_key,
            verdict: verdict.clone(),
            _lost: lost.clone().drop_guard(),
        };
        let mut handle = match client::connect(self.config.clone(), (t.host.as_str(), t.port), handler).await {
            Ok(h) => h,
            Err(e) => {
                if let Some(why) = verdict.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    return Err(EnvError::Unavailable(why));
                }
                return Err(EnvError::Unavailable(format!("cannot connect to {}:{}: {}", t.host, t.port, describe(&e))));
            }
        };
        super::auth::login(&mut handle, &self.opts).await?;
        let fail = |what: &str, e: &dyn std::fmt::Display| EnvError::Unavailable(format!("{what} on {shown}: {e}"));
        let channel = handle.channel_open_session().await.map_err(|e| fail("cannot open a channel", &e))?;
        channel.request_subsystem(true, "sftp").await.map_err(|e| fail("cannot start the SFTP subsystem", &e))?;
        let sftp = RawSftpSession::new(channel.into_stream());
        sftp.set_timeout(SFTP_TIMEOUT_SECS);
        let version = sftp.init().await.map_err(|e| fail("SFTP does not answer", &e))?;
        let posix_rename = version.extensions.get("posix-rename@openssh.com").is_some_and(|v| v == "1");
        let home = sftp.realpath(".").await.ok().and_then(|n| n.files.into_iter().next()).map(|f| f.filename).unwrap_or_else(|| "/".into());
        tracing::info!("connected to {shown} (sftp v{}, posix-rename: {posix_rename})", version.version);
        Ok(Arc::new(Conn { handle, sftp, posix_rename, home, lost, target: shown }))
    }
}

/// A connection error in words a user can act on.
fn describe(e: &russh::Error) -> String {
    match e {
        russh::Error::IO(io) => io.to_string(),
        russh::Error::UnknownKey => "the host key was refused".into(),
        other => other.to_string(),
    }
}

/// The RSA signature hash the server prefers (SHA-2 when it says nothing).
pub async fn rsa_hash(handle: &Handle<Client>) -> Option<HashAlg> {
    match handle.best_supported_rsa_hash().await {
        Ok(Some(h)) => h,
        _ => Some(HashAlg::Sha512),
    }
}

/// Wraps a private key for authentication with the right hash.
pub fn with_hash(key: russh::keys::PrivateKey, rsa: Option<HashAlg>) -> PrivateKeyWithHashAlg {
    PrivateKeyWithHashAlg::new(Arc::new(key), rsa)
}
