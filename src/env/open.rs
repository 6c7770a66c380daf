//! Opening the environment an [`EnvSpec`] describes. The spec comes from the
//! command line, an `envs/*.toml` definition, or both (see [`crate::envs`]).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};

use super::local::LocalEnv;
use super::SharedEnv;
use crate::envs::{EnvSpec, Kind};

/// Opens the environment `spec.env` names. Each backend adds one arm here and
/// takes its own fields from the spec.
pub async fn open(spec: &EnvSpec) -> anyhow::Result<SharedEnv> {
    let kind = spec.kind().map_err(|bad| anyhow::anyhow!("{}: {}", bad.field, bad.message))?;
    match kind {
        Kind::Local => {
            let dir = match &spec.dir {
                Some(d) => d.clone(),
                None => std::env::current_dir().context("cannot read the current folder")?,
            };
            open_local(dir)
        }
        #[cfg(feature = "docker")]
        Kind::Docker => super::docker::open(docker_args(spec)).await,
        #[cfg(feature = "ssh")]
        Kind::Ssh => open_ssh(spec).await,
        #[cfg(feature = "object")]
        Kind::Object => Ok(Arc::new(super::object::ObjectEnv::open(spec.env_name(), &object_args(spec)).await?)),
        #[allow(unreachable_patterns)]
        _ => bail!("this build of burrow cannot open {:?} environments", spec.env_name()),
    }
}

fn open_local(dir: PathBuf) -> anyhow::Result<SharedEnv> {
    Ok(Arc::new(LocalEnv::new(&dir).with_context(|| format!("cannot serve {}", dir.display()))?))
}

/// The Docker options of a spec; `dir` stands for the workdir when that is unset.
#[cfg(feature = "docker")]
fn docker_args(spec: &EnvSpec) -> super::docker::DockerArgs {
    super::docker::DockerArgs {
        image: spec.image.clone(),
        container: spec.container.clone(),
        workdir: spec.workdir.clone().or_else(|| spec.dir.as_ref().map(|d| d.to_string_lossy().into_owned())),
        mount: spec.mount.clone(),
        copy: spec.copy.clone(),
        network: spec.network.clone(),
        container_name: spec.name.clone(),
        keep: spec.keep.unwrap_or(false),
        cpus: spec.cpus,
        memory: spec.memory,
        labels: spec.labels.clone(),
        recreate_request: spec.recreate_request.clone(),
    }
}

/// The object-storage options of a spec, the defaults filling what it leaves unset.
#[cfg(feature = "object")]
fn object_args(spec: &EnvSpec) -> super::object::ObjectArgs {
    let d = super::object::ObjectArgs::default();
    super::object::ObjectArgs {
        s3_path_style: spec.s3_path_style.or(d.s3_path_style),
        object_load_config: spec.object_load_config.unwrap_or(d.object_load_config),
        index_max_age: spec.index_max_age.unwrap_or(d.index_max_age),
        object_cache_dir: spec.object_cache_dir.clone().or(d.object_cache_dir),
        object_cache_size: spec.object_cache_size.unwrap_or(d.object_cache_size),
        object_concurrency: spec.object_concurrency.unwrap_or(d.object_concurrency),
    }
}

#[cfg(feature = "ssh")]
async fn open_ssh(spec: &EnvSpec) -> anyhow::Result<SharedEnv> {
    use super::ssh::{default_known_hosts, target, SshEnv, SshOptions};
    let host = spec.host.as_deref().context("--env ssh needs --host [user@]host[:port]")?;
    let dir = spec.dir.as_ref().context("--env ssh needs --dir with the folder on the host")?;
    let target = target::resolve(host, target::default_config().as_deref())?;
    let secret = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let opts = SshOptions {
        target,
        identity: spec.identity.clone(),
        known_hosts: spec.known_hosts.clone().map(|f| vec![f]).unwrap_or_else(default_known_hosts),
        accept_new_host_key: spec.accept_new_host_key.unwrap_or(false),
        password: secret("BURROW_SSH_PASSWORD"),
        passphrase: secret("BURROW_SSH_KEY_PASSPHRASE"),
    };
    let shown = format!("{}:{}", opts.target.display(), dir.display());
    let env = SshEnv::open(opts, &dir.to_string_lossy()).await.with_context(|| format!("cannot serve {shown}"))?;
    Ok(Arc::new(env))
}
