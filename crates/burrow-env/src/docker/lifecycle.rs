//! Opening the Docker environment, replacing a dead container, and cleaning
//! up at exit.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use bollard::query_parameters::{InspectContainerOptions, StartContainerOptions};
use bollard::Docker;

use super::*;
use crate::env::{EnvResult, SharedEnv};
use crate::helper::client::NearSearch;

/// Opens `burrow serve --env docker`: connects, reaps orphans, creates or
/// finds the container, resolves the workdir in it, uploads `--copy`, and
/// starts installing the helper in the background.
pub async fn open(opts: DockerArgs) -> anyhow::Result<SharedEnv> {
    opts.validate()?;
    let docker = engine::connect().await?;
    let owner = Owner::current();
    let reaped = container::reap_orphans(&docker, &owner).await;
    if reaped > 0 {
        eprintln!("removed {reaped} container(s) left behind by a Burrow that did not exit cleanly");
    }
    let (mode, id, name, workdir) = match opts.source()? {
        Source::Image(image) => {
            let spec = Spec {
                image,
                name: opts.container_name.clone(),
                workdir: opts.workdir.clone().unwrap_or_else(|| "/workspace".into()),
                mount: opts.mount.clone(),
                copy: opts.copy.clone(),
                network: opts.network.clone(),
                cpus: opts.cpus,
                memory: opts.memory,
                keep: opts.keep,
                labels: opts.labels.clone(),
            };
            let (id, name) = container::create(&docker, &spec, &owner).await?;
            let workdir = spec.workdir.clone();
            (Mode::Created(spec), id, name, workdir)
        }
        Source::Container(name) => {
            let (id, workdir) = attach(&docker, &name, opts.workdir.as_deref()).await?;
            (Mode::Attached(name.clone()), id, name, workdir)
        }
    };
    let recreate = opts.recreate_request.as_deref().unwrap_or("POST /burrow/env/recreate");
    let target = Arc::new(Target { docker: docker.clone(), hint: hint(&mode, recreate), id, name });
    // Installing the helper needs the container, not the workdir: it runs
    // while the workdir is resolved and the folder copied in.
    let search = Arc::new(NearSearch::new());
    let probing = {
        let (search, host) = (search.clone(), backend::Host(target.clone()));
        tokio::spawn(async move {
            search.method(&host).await;
        })
    };
    let root = match prepare(&target, &workdir, opts.copy.as_deref()).await {
        Ok(root) => root,
        Err(e) => {
            probing.abort();
            if matches!(mode, Mode::Created(ref spec) if !spec.keep) {
                container::remove(&docker, &target.id).await;
            }
            return Err(e);
        }
    };
    // A container made just now runs nothing of a Burrow that is gone; one
    // found running may, and ending that does not hold up the start.
    if matches!(mode, Mode::Attached(_)) {
        let (t, owner) = (target.clone(), owner.clone());
        tokio::spawn(async move { end_processes_of_gone_owners(&t, &owner).await });
    }
    let env = Arc::new_cyclic(|me| DockerEnv::new(me, docker, mode, owner, target, root, search));
    env.warm_search();
    Ok(env)
}

/// Ends what a killed Burrow left running in the container (a kept or
/// attached one outlives its Burrow): every process carrying the label of an
/// owner that is gone, by session, as `kill` does. A failure is logged, not
/// fatal: the container is still usable.
async fn end_processes_of_gone_owners(t: &Target, here: &Owner) {
    let listing = match exec::op(t, scripts::argv(scripts::OWNED, &[]), None, 1 << 20).await {
        Ok(out) => String::from_utf8_lossy(&out).into_owned(),
        Err(e) => {
            tracing::warn!("cannot list the processes in {}: {e}", t.name);
            return;
        }
    };
    let sessions = super::owner::sessions_of_gone_owners(&listing, here, super::owner::process_start);
    for sid in &sessions {
        if let Err(e) = exec::op(t, scripts::argv(scripts::KILL, &[&sid.to_string()]), None, 1 << 10).await {
            tracing::warn!("cannot end the processes of session {sid} in {}: {e}", t.name);
        }
    }
    if !sessions.is_empty() {
        tracing::info!(sessions = sessions.len(), "ended the processes a killed Burrow left in {}", t.name);
    }
}

/// How to get a working container again (by the request `recreate`), for error messages.
fn hint(mode: &Mode, recreate: &str) -> String {
    match mode {
        Mode::Created(spec) => format!(
            "{recreate} replaces it with a new container from {} ({}), or restart burrow",
            spec.image,
            match (&spec.mount, &spec.copy) {
                (Some(_), _) => "the --mount folder is mounted again",
                (_, Some(_)) => "the --copy folder is uploaded again; changes made inside are lost",
                _ => "files written inside are lost",
            }
        ),
        Mode::Attached(n) => format!("{recreate} starts it again (like `docker start {n}`)"),
    }
}

/// Finds a running container and its workdir.
async fn attach(docker: &Docker, name: &str, workdir: Option<&str>) -> anyhow::Result<(String, String)> {
    let info = docker.inspect_container(name, None::<InspectContainerOptions>).await.with_context(|| format!("no container {name}"))?;
    if info.state.as_ref().and_then(|s| s.running) != Some(true) {
        bail!("the container {name} is not running (start it with `docker start {name}`)");
    }
    let id = info.id.context("the daemon did not say the container's id")?;
    let configured = info.config.and_then(|c| c.working_dir).filter(|w| !w.is_empty() && w != "/");
    let workdir = match (workdir, configured) {
        (Some(w), _) => w.to_string(),
        (None, Some(w)) => w,
        (None, None) => bail!("the container {name} has no working directory: say which folder to serve with --workdir"),
    };
    Ok((id, workdir))
}

/// Resolves the workdir inside the container and uploads `--copy` into it.
async fn prepare(t: &Target, workdir: &str, copy: Option<&Path>) -> anyhow::Result<String> {
    let argv = scripts::argv(scripts::ROOT, &[workdir]);
    let out = exec::op(t, argv, None, 64 << 10).await.with_context(|| format!("cannot use {workdir} in the container {}", t.name))?;
    let out = String::from_utf8_lossy(&out);
    // One newline ends the line; any other belongs to the folder's name.
    let root = out.strip_suffix('\n').unwrap_or(&out).to_string();
    if let Some(dir) = copy {
        eprintln!("copying {} into {}:{root} ...", dir.display(), t.name);
        container::upload_dir(&t.docker, &t.id, dir, &root).await?;
    }
    Ok(root)
}

impl DockerEnv {
    /// Removes the container Burrow created (unless --keep); in an attached
    /// container, kills what Burrow started.
    pub(super) async fn shutdown_container(&self) {
        let live: Vec<_> = self.live.lock().unwrap_or_else(|e| e.into_inner()).drain().filter_map(|(_, c)| c).collect();
        let t = self.target();
        match &self.mode {
            Mode::Created(spec) if spec.keep => {
                eprintln!("left the container {} running (--keep); serve it again with --env docker --container {}", t.name, t.name);
            }
            Mode::Created(_) => container::remove(&self.docker, &t.id).await,
            Mode::Attached(_) => {
                for control in live {
                    let _ = control.kill().await;
                }
            }
        }
    }

    /// A fresh container (created mode) or the same one started again
    /// (attached mode). Returns the container's name.
    pub(super) async fn replace_container(&self) -> EnvResult<String> {
        let old = self.target();
        let (id, name) = match &self.mode {
            Mode::Created(spec) => {
                container::remove(&self.docker, &old.id).await;
                let created = container::create(&self.docker, spec, &self.owner).await;
                let (id, name) = created.map_err(|e| EnvError::Unavailable(format!("{e:#}")))?;
                if let Some(dir) = &spec.copy {
                    if let Err(e) = container::upload_dir(&self.docker, &id, dir, &self.root).await {
                        container::remove(&self.docker, &id).await;
                        return Err(EnvError::Unavailable(format!("{e:#}")));
                    }
                }
                (id, name)
            }
            Mode::Attached(name) => {
                let started = self.docker.start_container(name, None::<StartContainerOptions>).await;
                started.map_err(|e| EnvError::Unavailable(format!("cannot start the container {name}: {e}")))?;
                (old.id.clone(), name.clone())
            }
        };
        let target = Arc::new(Target { docker: self.docker.clone(), id, name: name.clone(), hint: old.hint.clone() });
        *self.target.write().unwrap_or_else(|e| e.into_inner()) = target;
        self.near.reset().await;
        self.live.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.warm_search();
        Ok(name)
    }
}
