//! Container lifecycle: pull the image, create and start a labelled container,
//! upload a host folder, remove it again, and reap the orphans of Burrows that
//! died without cleaning up.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, InspectContainerOptions, ListContainersOptions, RemoveContainerOptions, StartContainerOptions,
    UploadToContainerOptions,
};
use bollard::Docker;
use bytes::Bytes;
use futures::StreamExt;

use super::owner::{self, Owner};

/// The container's main process: it only has to stay alive (an init process,
/// `--init`, reaps the zombies of processes Burrow kills).
const KEEPALIVE: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

/// Everything needed to create the container, kept to create it again.
#[derive(Clone, Debug)]
pub struct Spec {
    pub image: String,
    pub name: Option<String>,
    pub workdir: String,
    pub mount: Option<PathBuf>,
    pub copy: Option<PathBuf>,
    pub network: Option<String>,
    pub cpus: Option<f64>,
    pub memory: Option<i64>,
    pub keep: bool,
    /// Labels besides Burrow's own (owner, workdir, keep).
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Makes sure `image` is present, pulling it with progress on the terminal.
pub async fn ensure_image(docker: &Docker, image: &str) -> anyhow::Result<()> {
    match docker.inspect_image(image).await {
        Ok(_) => return Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
        Err(e) => return Err(e).with_context(|| format!("cannot inspect the image {image}")),
    }
    eprintln!("pulling {image} ...");
    let mut progress = Progress::new();
    let opts = CreateImageOptions { from_image: Some(image.to_string()), ..Default::default() };
    let mut stream = docker.create_image(Some(opts), None, None);
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| {
            progress.finish();
            anyhow::anyhow!(
                "cannot pull {image}: {e}\n(no registry reachable? build the image where one is, e.g. from sandbox-images/, \
                 or `docker load` it)"
            )
        })?;
        progress.show(info.id.as_deref(), info.status.as_deref().unwrap_or(""), info.progress.as_deref());
    }
    progress.finish();
    eprintln!("pulled {image}");
    Ok(())
}

/// Pull progress: one redrawn line on a terminal, status changes otherwise.
struct Progress {
    tty: bool,
    last: HashMap<String, String>,
    drawn: bool,
}

impl Progress {
    fn new() -> Self {
        Self { tty: std::io::stderr().is_terminal(), last: HashMap::new(), drawn: false }
    }

    fn show(&mut self, layer: Option<&str>, status: &str, bar: Option<&str>) {
        let layer = layer.unwrap_or("");
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[K  {layer} {status} {}", bar.unwrap_or(""));
            self.drawn = true;
        } else if self.last.get(layer).map(String::as_str) != Some(status) {
            let _ = writeln!(err, "  {layer} {status}");
            self.last.insert(layer.to_string(), status.to_string());
        }
        let _ = err.flush();
    }

    fn finish(&mut self) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }
}

/// Creates and starts the container; returns its id and name.
pub async fn create(docker: &Docker, spec: &Spec, owner: &Owner) -> anyhow::Result<(String, String)> {
    ensure_image(docker, &spec.image).await?;
    let binds = match &spec.mount {
        Some(dir) => {
            let host = std::fs::canonicalize(dir).with_context(|| format!("--mount {}", dir.display()))?;
            vec![format!("{}:{}", host.display(), spec.workdir)]
        }
        None => Vec::new(),
    };
    let host_config = HostConfig {
        init: Some(true),
        binds: Some(binds),
        network_mode: spec.network.clone(),
        nano_cpus: spec.cpus.map(|c| (c * 1e9) as i64),
        memory: spec.memory,
        memory_swap: spec.memory,
        ..Default::default()
    };
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: Some(vec!["/bin/sh".into(), "-c".into(), KEEPALIVE.into()]),
        cmd: Some(Vec::new()),
        working_dir: Some(spec.workdir.clone()),
        labels: Some(owner.labels(&spec.workdir, spec.keep).into_iter().chain(spec.labels.clone()).collect()),
        host_config: Some(host_config),
        ..Default::default()
    };
    let name = spec.name.clone().unwrap_or_else(|| format!("burrow-{:08x}", fastrand::u32(..)));
    let opts = CreateContainerOptions { name: Some(name.clone()), ..Default::default() };
    let created = docker.create_container(Some(opts), body).await.with_context(|| format!("cannot create a container from {}", spec.image))?;
    for warning in &created.warnings {
        tracing::warn!("docker: {warning}");
    }
    if let Err(e) = docker.start_container(&created.id, None::<StartContainerOptions>).await {
        remove(docker, &created.id).await;
        return Err(e).with_context(|| format!("cannot start the container {name} (does {} have /bin/sh?)", spec.image));
    }
    tracing::info!("created container {name} ({}) from {}", short(&created.id), spec.image);
    Ok((created.id, name))
}

/// Removes a container and its anonymous volumes, whatever state it is in.
pub async fn remove(docker: &Docker, id: &str) {
    let opts = RemoveContainerOptions { force: true, v: true, ..Default::default() };
    match docker.remove_container(id, Some(opts)).await {
        Ok(()) => tracing::info!("removed container {}", short(id)),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
        Err(e) => tracing::warn!("cannot remove container {}: {e}", short(id)),
    }
}

/// Removes the containers of Burrows that are gone. Returns how many.
pub async fn reap_orphans(docker: &Docker, here: &Owner) -> usize {
    let filters = HashMap::from([("label".to_string(), vec![format!("{}=1", owner::MANAGED)])]);
    let opts = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
    let list = match docker.list_containers(Some(opts)).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("cannot list containers to reap orphans: {e}");
            return 0;
        }
    };
    let mut reaped = 0;
    for c in list {
        let (Some(id), Some(labels)) = (c.id, c.labels) else { continue };
        if owner::is_orphan(&labels, here) {
            let name = c.names.and_then(|n| n.into_iter().next()).unwrap_or_default();
            tracing::info!("reaping container {} {name}: the Burrow that created it is gone", short(&id));
            remove(docker, &id).await;
            reaped += 1;
        }
    }
    reaped
}

/// Why a container cannot run commands: its state, for error messages.
pub async fn describe_down(docker: &Docker, id: &str) -> String {
    match docker.inspect_container(id, None::<InspectContainerOptions>).await {
        Ok(info) => {
            let state = info.state.unwrap_or_default();
            let status = state.status.map(|s| s.to_string()).unwrap_or_else(|| "stopped".into());
            let mut why = format!("is {status}");
            if let Some(code) = state.exit_code.filter(|_| state.running != Some(true)) {
                why.push_str(&format!(" (exit code {code}"));
                if state.oom_killed == Some(true) {
                    why.push_str(", killed for using too much memory");
                }
                why.push(')');
            }
            why
        }
        Err(_) => "no longer exists".into(),
    }
}

/// Uploads the contents of `host_dir` into `dest` (an existing folder in the
/// container), symlinks kept as symlinks. The archive is built on the blocking
/// pool and streamed, so a large folder is never held in memory.
pub async fn upload_dir(docker: &Docker, id: &str, host_dir: &Path, dest: &str) -> anyhow::Result<()> {
    let host_dir = host_dir.to_path_buf();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let builder = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut tar = tar::Builder::new(ChannelWriter { tx: tx.clone(), buf: Vec::with_capacity(CHUNK) });
        tar.follow_symlinks(false);
        tar.append_dir_all(".", &host_dir).with_context(|| format!("cannot read {}", host_dir.display()))?;
        tar.into_inner()?.flush()?;
        Ok(())
    });
    let body = bollard::body_try_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let opts = UploadToContainerOptions { path: dest.to_string(), ..Default::default() };
    // A large folder takes longer than the default request timeout to send.
    let mut patient = docker.clone();
    patient.set_timeout(std::time::Duration::from_secs(6 * 3600));
    let uploaded = patient.upload_to_container(id, Some(opts), body).await;
    let built = builder.await.context("archive task failed")?;
    built?;
    uploaded.with_context(|| format!("cannot upload into {dest}"))?;
    Ok(())
}

const CHUNK: usize = 256 * 1024;

/// Sends what the tar builder writes, in chunks, to the upload stream.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "upload ended"))
    }
}

/// Writes one file at an absolute path in the container (its folder must exist).
pub async fn put_file(docker: &Docker, id: &str, path: &str, data: Bytes, mode: u32) -> anyhow::Result<()> {
    let Some((dir, name)) = path.rsplit_once('/').filter(|(_, n)| !n.is_empty()) else { bail!("not a file path: {path}") };
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_mtime(crate::now_ms() / 1000);
    header.set_entry_type(tar::EntryType::Regular);
    let mut archive = tar::Builder::new(Vec::with_capacity(data.len() + 2048));
    archive.append_data(&mut header, name, &data[..])?;
    let archive = archive.into_inner()?;
    let opts = UploadToContainerOptions { path: if dir.is_empty() { "/".into() } else { dir.to_string() }, ..Default::default() };
    docker.upload_to_container(id, Some(opts), bollard::body_full(archive.into())).await.with_context(|| format!("cannot upload {path}"))
}

pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
