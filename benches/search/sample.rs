//! The object-storage sample: a few folders of the corpus, copied to a local
//! folder and uploaded under a bucket prefix through the S3 API (opendal,
//! configured the way Burrow configures it), so that Burrow's s3 environment
//! and its local environment search the same files.
//!
//! Both sides are brought up to date on every run: missing or resized files
//! are copied or uploaded, and objects under the prefix that are not in the
//! sample are deleted, so the bucket holds exactly the sample.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use burrow::env::object::location::Location;
use burrow::env::object::ObjectArgs;
use futures::stream::{self, TryStreamExt};

/// The sample's folders when `BURROW_BENCH_S3_SAMPLE` is not set: about
/// 3,300 files and 35 MB of the Linux tree.
pub const DEFAULT_FOLDERS: &str = "kernel mm include/linux";
/// Uploads and downloads in flight at once (Burrow's default `--object-concurrency`).
const CONCURRENCY: usize = 16;

pub struct Sample {
    /// The local copy, searched by Burrow's local environment.
    pub dir: PathBuf,
    pub folders: String,
    /// The files, relative to the sample folder and the bucket prefix.
    pub files: Vec<String>,
    pub bytes: u64,
}

/// Copies `folders` (space-separated, relative to `corpus`) to a folder beside
/// the corpus, then makes the objects under `url` equal to that copy.
pub fn prepare(corpus: &Path, folders: &str, url: &str) -> anyhow::Result<Sample> {
    let files = list(corpus, folders)?;
    let name = corpus.file_name().and_then(|n| n.to_str()).unwrap_or("corpus");
    let slug = folders.split_whitespace().collect::<Vec<_>>().join("+").replace('/', "_");
    let dir = corpus.with_file_name(format!("{name}-sample-{slug}"));
    let mut bytes = 0;
    for (rel, size) in &files {
        bytes += size;
        let to = dir.join(rel);
        if std::fs::metadata(&to).is_ok_and(|m| m.len() == *size) {
            continue;
        }
        std::fs::create_dir_all(to.parent().context("a file has no parent folder")?)?;
        std::fs::copy(corpus.join(rel), &to).with_context(|| format!("cannot copy {rel} to {}", dir.display()))?;
    }
    let local = local_files(&dir)?;
    if local.len() != files.len() {
        bail!("{} holds {} files, the sample {}; remove the folder to have it copied again", dir.display(), local.len(), files.len());
    }
    upload(corpus, &files, url)?;
    let files = files.into_iter().map(|(rel, _)| rel).collect();
    Ok(Sample { dir, folders: folders.to_string(), files, bytes })
}

/// The files below `folders` that ripgrep (and so Burrow) sees, with their sizes.
fn list(corpus: &Path, folders: &str) -> anyhow::Result<Vec<(String, u64)>> {
    let out = Command::new("rg")
        .args(["--no-config", "--files", "--hidden", "--glob=!**/.git/**", "--"])
        .args(folders.split_whitespace())
        .current_dir(corpus)
        .output()
        .context("cannot run rg --files")?;
    if !out.status.success() {
        bail!("rg --files {folders} in {} failed: {}", corpus.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    let mut files = Vec::new();
    for rel in String::from_utf8(out.stdout).context("a file name is not UTF-8")?.lines() {
        files.push((rel.to_string(), std::fs::metadata(corpus.join(rel))?.len()));
    }
    if files.is_empty() {
        bail!("no files below {folders} in {}", corpus.display());
    }
    files.sort();
    Ok(files)
}

fn local_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in ignore::WalkBuilder::new(dir).standard_filters(false).build() {
        let entry = entry?;
        if entry.file_type().is_some_and(|t| t.is_file()) {
            out.push(entry.into_path());
        }
    }
    Ok(out)
}

/// Makes the objects below `url` equal to `files`: uploads what is missing or
/// has another size, deletes what is not in the sample.
fn upload(corpus: &Path, files: &[(String, u64)], url: &str) -> anyhow::Result<()> {
    let op = operator(url)?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let present: HashMap<String, u64> = op
            .list_with("/")
            .recursive(true)
            .await
            .with_context(|| format!("cannot list {url}"))?
            .into_iter()
            .filter(|e| !e.path().ends_with('/'))
            .map(|e| (e.path().trim_start_matches('/').to_string(), e.metadata().content_length()))
            .collect();
        let wanted: HashMap<&str, u64> = files.iter().map(|(p, s)| (p.as_str(), *s)).collect();
        let stale: Vec<&String> = present.keys().filter(|k| !wanted.contains_key(k.as_str())).collect();
        let missing: Vec<&(String, u64)> = files.iter().filter(|(p, s)| present.get(p) != Some(s)).collect();
        if !missing.is_empty() || !stale.is_empty() {
            eprintln!("s3 sample: uploading {} files, deleting {} objects under {url} ...", missing.len(), stale.len());
        }
        stream::iter(missing.into_iter().map(Ok::<_, anyhow::Error>))
            .try_for_each_concurrent(CONCURRENCY, |(rel, _)| {
                let op = op.clone();
                async move {
                    let data = tokio::fs::read(corpus.join(rel)).await.with_context(|| format!("cannot read {rel}"))?;
                    op.write(rel, data).await.with_context(|| format!("cannot upload {rel}"))?;
                    Ok(())
                }
            })
            .await?;
        for key in stale {
            op.delete(key).await.with_context(|| format!("cannot delete {key}"))?;
        }
        Ok(())
    })
}

/// The S3 server alone, without Burrow: how long one recursive listing of the
/// prefix takes, and downloading every file of the sample, [`CONCURRENCY`] at a
/// time, as a first full-scan search must.
pub fn bare_s3(url: &str, files: &[String]) -> anyhow::Result<(Duration, Duration)> {
    let op = operator(url)?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let started = Instant::now();
        let listed = op.list_with("/").recursive(true).await.with_context(|| format!("cannot list {url}"))?;
        let list = started.elapsed();
        if listed.len() < files.len() {
            bail!("{url} lists {} entries, fewer than the {} files of the sample", listed.len(), files.len());
        }
        let started = Instant::now();
        stream::iter(files.iter().map(Ok::<_, anyhow::Error>))
            .try_for_each_concurrent(CONCURRENCY, |rel| {
                let op = op.clone();
                async move {
                    op.read(rel).await.with_context(|| format!("cannot download {rel}"))?;
                    Ok(())
                }
            })
            .await?;
        Ok((list, started.elapsed()))
    })
}

/// An opendal operator for `url`, set up from the environment as Burrow sets up its own.
fn operator(url: &str) -> anyhow::Result<opendal::Operator> {
    Location::parse(url)?.operator(&ObjectArgs::default(), &|n| std::env::var(n).ok())
}
