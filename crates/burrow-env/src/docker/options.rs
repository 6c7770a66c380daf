//! The `--env docker` command-line options and their checks.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

/// Options of `burrow serve --env docker`.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Docker (--env docker)")]
pub struct DockerArgs {
    /// Create a container from this image, pulling it when it is missing (progress is shown
    /// on the terminal). Burrow removes the container when it exits, unless --keep. If the
    /// container dies, requests answer 503 until `POST /burrow/env/recreate` makes a new one.
    #[arg(long, value_name = "IMAGE", conflicts_with = "container")]
    pub image: Option<String>,

    /// Attach to this running container (name or id) instead of creating one. It is left
    /// running at exit; processes Burrow started in it are killed.
    #[arg(long, value_name = "NAME|ID")]
    pub container: Option<String>,

    /// The workspace folder inside the container [default: /workspace with --image, the
    /// container's working directory with --container].
    #[arg(long, value_name = "PATH")]
    pub workdir: Option<String>,

    /// Bind-mount this host folder at the workdir (with --image): edits go straight to the host.
    #[arg(long, value_name = "HOST_DIR")]
    pub mount: Option<PathBuf>,

    /// Upload this host folder into the workdir on start (.git included): the container
    /// works on a copy and the host folder is never touched.
    #[arg(long, value_name = "HOST_DIR", conflicts_with = "mount")]
    pub copy: Option<PathBuf>,

    /// The container's network: `none` (no network at all), `bridge` (Docker's default), or
    /// the name of a Docker network.
    #[arg(long, value_name = "none|bridge|NAME")]
    pub network: Option<String>,

    /// Name the created container (default: burrow-<random>).
    #[arg(long = "name", value_name = "NAME")]
    pub container_name: Option<String>,

    /// Leave the created container running when Burrow exits; attach again later with
    /// --container NAME.
    #[arg(long)]
    pub keep: bool,

    /// CPU limit of the created container, in CPUs (e.g. 1.5).
    #[arg(long, value_name = "N", value_parser = parse_cpus)]
    pub cpus: Option<f64>,

    /// Memory limit of the created container, e.g. 512m or 2g (swap is not added on top).
    #[arg(long, value_name = "SIZE", value_parser = parse_memory)]
    pub memory: Option<i64>,

    /// More labels for the created container (not a flag): a workspace's id,
    /// so that the next server finds its container again.
    #[arg(skip)]
    pub labels: std::collections::BTreeMap<String, String>,

    /// The request that replaces a dead container, as error messages name it
    /// (not a flag); unset, `POST /burrow/env/recreate`. A workspace's names
    /// its `?workspace=`, since the bare route recreates the server's own.
    #[arg(skip)]
    pub recreate_request: Option<String>,
}

/// What Burrow should do to get a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Image(String),
    Container(String),
}

impl DockerArgs {
    pub fn source(&self) -> anyhow::Result<Source> {
        match (&self.image, &self.container) {
            (Some(i), None) => Ok(Source::Image(i.clone())),
            (None, Some(c)) => Ok(Source::Container(c.clone())),
            _ => bail!("--env docker needs --image IMAGE (a new container) or --container NAME (a running one)"),
        }
    }

    /// Checks the host folders and the workdir before anything is created.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.source()?;
        for (flag, dir) in [("--mount", &self.mount), ("--copy", &self.copy)] {
            if let Some(d) = dir {
                let meta = std::fs::metadata(d).with_context(|| format!("{flag} {}", d.display()))?;
                if !meta.is_dir() {
                    bail!("{flag} {}: not a folder", d.display());
                }
            }
        }
        if let Some(w) = &self.workdir {
            if !w.starts_with('/') {
                bail!("--workdir {w:?}: must be an absolute path inside the container");
            }
            if w.split('/').any(|c| c == "..") {
                bail!("--workdir {w:?}: must not contain '..'");
            }
        }
        Ok(())
    }
}

fn parse_cpus(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() && n <= 1024.0 => Ok(n),
        _ => Err(format!("{s:?} is not a CPU count such as 0.5 or 2")),
    }
}

/// A byte size with an optional b/k/m/g suffix (powers of 1024), as `docker run --memory`.
pub fn parse_memory(s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').filter(|r| r.ends_with(['k', 'm', 'g'])).unwrap_or(&t);
    let (digits, shift) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 10),
        Some('m') => (&t[..t.len() - 1], 20),
        Some('g') => (&t[..t.len() - 1], 30),
        Some('b') => (&t[..t.len() - 1], 0),
        _ => (t, 0),
    };
    let n: f64 = digits.parse().map_err(|_| format!("{s:?} is not a size such as 512m or 2g"))?;
    let bytes = n * (1u64 << shift) as f64;
    // Docker refuses less than 6 MiB.
    if !(6.0 * 1048576.0..=(i64::MAX as f64)).contains(&bytes) {
        return Err(format!("{s:?}: the memory limit must be at least 6m"));
    }
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("512m"), Ok(512 << 20));
        assert_eq!(parse_memory("2g"), Ok(2 << 30));
        assert_eq!(parse_memory("1.5G"), Ok(3 << 29));
        assert_eq!(parse_memory("65536k"), Ok(64 << 20));
        assert_eq!(parse_memory("64mb"), Ok(64 << 20));
        assert_eq!(parse_memory("10000000"), Ok(10_000_000));
        assert!(parse_memory("1k").is_err());
        assert!(parse_memory("lots").is_err());
    }

    #[test]
    fn cpus_and_source() {
        assert_eq!(parse_cpus("1.5"), Ok(1.5));
        assert!(parse_cpus("0").is_err());
        assert!(parse_cpus("-1").is_err());
        let args = DockerArgs { image: Some("python:3.13".into()), ..Default::default() };
        assert_eq!(args.source().unwrap(), Source::Image("python:3.13".into()));
        assert!(DockerArgs::default().source().is_err());
        let bad = DockerArgs { image: Some("x".into()), workdir: Some("rel/dir".into()), ..Default::default() };
        assert!(bad.validate().is_err());
    }
}
