//! Opening the environment named on the command line.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};

use super::local::LocalEnv;
use super::SharedEnv;
use crate::cli::ServeArgs;

/// Opens the environment `args.env` names. Each backend adds one arm here and
/// takes its own options from `args`.
pub async fn open(args: &ServeArgs) -> anyhow::Result<SharedEnv> {
    match args.env.as_str() {
        "local" => {
            let dir = match &args.dir {
                Some(d) => d.clone(),
                None => std::env::current_dir().context("cannot read the current folder")?,
            };
            open_local(dir)
        }
        #[cfg(feature = "docker")]
        "docker" => super::docker::open(&args.docker, args.dir.as_deref()).await,
        #[cfg(feature = "ssh")]
        "ssh" => open_ssh(args).await,
        #[cfg(feature = "object")]
        url if url.contains("://") => Ok(Arc::new(super::object::ObjectEnv::open(url, &args.object).await?)),
        other => bail!("unknown environment {other:?}; expected local, docker, ssh or a URL such as s3://bucket/prefix"),
    }
}

fn open_local(dir: PathBuf) -> anyhow::Result<SharedEnv> {
    Ok(Arc::new(LocalEnv::new(&dir).with_context(|| format!("cannot serve {}", dir.display()))?))
}

#[cfg(feature = "ssh")]
async fn open_ssh(args: &ServeArgs) -> anyhow::Result<SharedEnv> {
    use super::ssh::{default_known_hosts, target, SshEnv, SshOptions};
    let host = args.host.as_deref().context("--env ssh needs --host [user@]host[:port]")?;
    let dir = args.dir.as_ref().context("--env ssh needs --dir with the folder on the host")?;
    let target = target::resolve(host, target::default_config().as_deref())?;
    let secret = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let opts = SshOptions {
        target,
        identity: args.identity.clone(),
        known_hosts: args.known_hosts.clone().map(|f| vec![f]).unwrap_or_else(default_known_hosts),
        accept_new_host_key: args.accept_new_host_key,
        password: secret("BURROW_SSH_PASSWORD"),
        passphrase: secret("BURROW_SSH_KEY_PASSPHRASE"),
    };
    let shown = format!("{}:{}", opts.target.display(), dir.display());
    let env = SshEnv::open(opts, &dir.to_string_lossy()).await.with_context(|| format!("cannot serve {shown}"))?;
    Ok(Arc::new(env))
}
