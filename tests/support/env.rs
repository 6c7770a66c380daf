//! The environments the suites run against, and how each one gets a fixture
//! tree to serve.
//!
//! `BURROW_TEST_ENVS` (a comma list, default `local`) selects them; CI sets it
//! to all of them (and `helper`, which only the Env contract suite serves). A selected environment that cannot be set up makes the test
//! fail with the reason: nothing is skipped silently.
//!
//! Adding a backend: fill in its arm of [`TestEnv::place`]. It receives the
//! fixture tree on this machine and returns a [`Workspace`]: the `burrow serve`
//! arguments that open the copy, the root as the server names it, and a way to
//! write files there behind the server's back. Copy everything, `.git`
//! included; a backend without symlinks (object storage) leaves them out and
//! says so in [`Workspace::symlinks`].

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use async_trait::async_trait;
use futures::StreamExt as _;

use super::fixture::Fixture;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Local,
    Docker,
    Ssh,
    S3,
}

/// One environment a suite runs against.
#[derive(Clone, Copy, Debug)]
pub struct TestEnv {
    pub backend: Backend,
}

impl TestEnv {
    pub const NAMES: [&'static str; 4] = ["local", "docker", "ssh", "s3"];

    pub fn from_name(name: &str) -> anyhow::Result<Self> {
        let backend = match name {
            "local" => Backend::Local,
            "docker" => Backend::Docker,
            "ssh" => Backend::Ssh,
            "s3" => Backend::S3,
            other => bail!("unknown test environment {other:?} in BURROW_TEST_ENVS; expected one of {:?}", Self::NAMES),
        };
        Ok(Self { backend })
    }

    /// The environments `BURROW_TEST_ENVS` selects (default: `local`).
    pub fn selected() -> Vec<Self> {
        let list = std::env::var("BURROW_TEST_ENVS").ok().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| "local".into());
        // `helper` (the helper session in process) is an Env, not something
        // `burrow serve` can open: only the Env contract suite runs over it.
        let names = list.split(',').map(str::trim).filter(|s| !s.is_empty() && *s != "helper");
        let envs: Vec<Self> = names.map(|name| Self::from_name(name).unwrap_or_else(|e| panic!("{e:#}"))).collect();
        assert!(!envs.is_empty(), "BURROW_TEST_ENVS={list:?} selects no environment");
        envs
    }

    pub fn name(&self) -> &'static str {
        match self.backend {
            Backend::Local => "local",
            Backend::Docker => "docker",
            Backend::Ssh => "ssh",
            Backend::S3 => "s3",
        }
    }

    /// Puts the fixture where this backend serves it.
    pub async fn place(&self, fixture: &Fixture) -> anyhow::Result<Workspace> {
        match self.backend {
            Backend::Local => place_local(&fixture.path()),
            Backend::Ssh => place_ssh(&fixture.path()).await,
            Backend::S3 => place_s3(&fixture.path()).await,
            Backend::Docker => place_docker(&fixture.path()).await,
        }
    }
}

/// A fixture placed in an environment, ready to be served.
pub struct Workspace {
    pub env: &'static str,
    /// The workspace root as the server names it: an absolute path, or a URL
    /// for object storage.
    pub root: String,
    /// The `burrow serve` arguments that open it (after `--port` and `--hostname`).
    pub args: Vec<String>,
    /// Extra environment variables for the server process.
    pub vars: Vec<(String, String)>,
    /// Whether the fixture's symlinks exist there (object storage has none).
    pub symlinks: bool,
    files: Box<dyn BackdoorFiles>,
}

impl Workspace {
    /// Writes a file in the environment directly, not through Burrow, the way
    /// an editor or a build would.
    pub async fn write_behind(&self, rel: &str, data: &[u8]) -> anyhow::Result<()> {
        self.files.write(rel, data).await.with_context(|| format!("writing {rel} in the {} environment", self.env))
    }

    /// The absolute name of a workspace-relative path.
    pub fn abs(&self, rel: &str) -> String {
        if rel.is_empty() {
            self.root.clone()
        } else {
            format!("{}/{rel}", self.root.trim_end_matches('/'))
        }
    }
}

/// Direct access to the files of a placed workspace.
#[async_trait]
trait BackdoorFiles: Send + Sync {
    async fn write(&self, rel: &str, data: &[u8]) -> anyhow::Result<()>;
}

/// Serves an existing folder on this machine: with `--env local`, or as the
/// object-storage backend `fs:///folder` when `object` is set.
pub fn serve_folder(tree: &Path, object: bool) -> anyhow::Result<Workspace> {
    let mut ws = place_local(tree)?;
    if object {
        let root = ws.root.clone();
        ws.env = "object";
        ws.root = format!("fs://{root}");
        ws.args = vec!["--env".into(), ws.root.clone()];
    }
    Ok(ws)
}

fn place_local(tree: &Path) -> anyhow::Result<Workspace> {
    // The server canonicalizes its root; name it the same way.
    let root = std::fs::canonicalize(tree).with_context(|| format!("fixture at {}", tree.display()))?;
    let shown = root.to_str().context("fixture path is not UTF-8")?.to_string();
    Ok(Workspace {
        env: "local",
        root: shown.clone(),
        args: vec!["--env".into(), "local".into(), "--dir".into(), shown],
        vars: Vec::new(),
        symlinks: true,
        files: Box::new(LocalFiles(root)),
    })
}

struct LocalFiles(PathBuf);

#[async_trait]
impl BackdoorFiles for LocalFiles {
    async fn write(&self, rel: &str, data: &[u8]) -> anyhow::Result<()> {
        let path = self.0.join(rel);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::write(&path, data).await?;
        Ok(())
    }
}

/// Copies the tree into a fresh folder on the test sshd (tar over ssh) and
/// serves it with `--env ssh`. `BURROW_HELPER_BIN` passes through to the server.
async fn place_ssh(tree: &Path) -> anyhow::Result<Workspace> {
    let sshd = super::ssh::Sshd::from_env()?;
    let (copy, tree) = (sshd.clone(), tree.to_path_buf());
    let root = tokio::task::spawn_blocking(move || copy.upload(&tree, "conformance")).await??;
    Ok(Workspace { env: "ssh", args: sshd.serve_args(&root), root: root.clone(), vars: Vec::new(), symlinks: true, files: Box::new(SshFiles { sshd, root }) })
}

struct SshFiles {
    sshd: super::ssh::Sshd,
    root: String,
}

#[async_trait]
impl BackdoorFiles for SshFiles {
    async fn write(&self, rel: &str, data: &[u8]) -> anyhow::Result<()> {
        let (sshd, path, data) = (self.sshd.clone(), format!("{}/{rel}", self.root), data.to_vec());
        tokio::task::spawn_blocking(move || sshd.write(&path, &data)).await?
    }
}

impl Drop for SshFiles {
    fn drop(&mut self) {
        let _ = self.sshd.sh(&format!("rm -rf '{}'", self.root));
    }
}

/// Uploads the tree (symlinks left out: object storage has none) under a
/// fresh prefix of the test bucket, and serves `s3://bucket/prefix`.
async fn place_s3(tree: &Path) -> anyhow::Result<Workspace> {
    let s3 = super::s3::S3::require().context("the S3 test service is not running (bash tests/support/services.sh s3)")?;
    let prefix = s3.unique_prefix("conformance");
    let op = s3.operator(&prefix);
    // Many uploads in flight: the large fixture has tens of thousands of files.
    let uploads = walkdir(tree)?.into_iter().map(|file| {
        let op = op.clone();
        async move {
            let rel = file.strip_prefix(tree)?.to_str().context("fixture path is not UTF-8")?.to_string();
            let data = tokio::fs::read(&file).await.with_context(|| format!("reading {}", file.display()))?;
            op.write(&rel, data).await.with_context(|| format!("uploading {rel}"))?;
            anyhow::Ok(())
        }
    });
    let mut uploads = futures::stream::iter(uploads).buffer_unordered(32);
    while let Some(done) = futures::StreamExt::next(&mut uploads).await {
        done?;
    }
    drop(uploads);
    let root = format!("s3://{}/{prefix}", s3.bucket);
    Ok(Workspace {
        env: "s3",
        root: root.clone(),
        args: vec!["--env".into(), root],
        vars: s3.env().into_iter().collect(),
        symlinks: false,
        files: Box::new(S3Files(op)),
    })
}

/// Every regular file below `dir`; symlinks are skipped, not followed.
fn walkdir(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            out.extend(walkdir(&entry.path())?);
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    Ok(out)
}

struct S3Files(opendal::Operator);

#[async_trait]
impl BackdoorFiles for S3Files {
    async fn write(&self, rel: &str, data: &[u8]) -> anyhow::Result<()> {
        self.0.write(rel, data.to_vec()).await?;
        Ok(())
    }
}

/// A new container with networking off and the fixture uploaded by `--copy`,
/// from the offline test image plus git (`sandbox-images/offline/busybox-git`,
/// built on first use from the busybox image that `tests/support/services.sh`
/// makes): git runs where the files are, as in the other environments. The
/// container is named here so that the back door can reach it, and removed
/// when the workspace drops (after the server, which was killed).
async fn place_docker(tree: &Path) -> anyhow::Result<Workspace> {
    let build = Path::new(env!("CARGO_MANIFEST_DIR")).join("sandbox-images/offline/busybox-git/build.sh");
    let image = "burrow-test-busybox-git:latest";
    let out = tokio::process::Command::new(&build).arg(image).output().await.with_context(|| format!("running {}", build.display()))?;
    if !out.status.success() {
        bail!(
            "docker: cannot build {image} (is the daemon up and burrow-test-busybox:latest built? run tests/support/services.sh docker): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let tree = tree.to_str().context("fixture path is not UTF-8")?.to_string();
    let name = format!("burrow-conformance-{}-{:08x}", std::process::id(), fastrand::u32(..));
    let args = ["--env", "docker", "--image", image, "--copy", &tree, "--network", "none", "--name", &name];
    Ok(Workspace {
        env: "docker",
        root: "/workspace".into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        vars: Vec::new(),
        symlinks: true,
        files: Box::new(DockerFiles(name)),
    })
}

struct DockerFiles(String);

#[async_trait]
impl BackdoorFiles for DockerFiles {
    async fn write(&self, rel: &str, data: &[u8]) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt;
        let script = r#"mkdir -p "$(dirname "$1")" && cat > "$1""#;
        let path = format!("/workspace/{rel}");
        let mut child = tokio::process::Command::new("docker")
            .args(["exec", "-i", &self.0, "sh", "-c", script, "sh", &path])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().context("docker exec stdin")?;
        stdin.write_all(data).await?;
        drop(stdin);
        let out = child.wait_with_output().await?;
        if !out.status.success() {
            bail!("docker exec {}: {}", self.0, String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }
}

impl Drop for DockerFiles {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}
