//! The test sshd that tests/support/services.sh starts, reached with the
//! OpenSSH client (not through Burrow): running commands, uploading trees.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

/// The `BURROW_TEST_SSH_*` variables services.sh writes.
#[derive(Clone, Debug)]
pub struct Sshd {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub key: PathBuf,
    pub rsa_key: PathBuf,
    pub known_hosts: PathBuf,
    pub password: String,
}

impl Sshd {
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |k: &str| {
            std::env::var(format!("BURROW_TEST_SSH_{k}"))
                .ok()
                .filter(|v| !v.is_empty())
                .with_context(|| format!("BURROW_TEST_SSH_{k} is not set: run `source tests/support/services.sh ssh` first"))
        };
        Ok(Self {
            host: var("HOST")?,
            port: var("PORT")?.parse().context("BURROW_TEST_SSH_PORT")?,
            user: var("USER")?,
            key: var("KEY")?.into(),
            rsa_key: var("RSA_KEY")?.into(),
            known_hosts: var("KNOWN_HOSTS")?.into(),
            password: var("PASSWORD")?,
        })
    }

    /// The sshd, or `None` with a note outside CI when it is not running; in CI, a failure.
    pub fn get() -> Option<Self> {
        match Self::from_env() {
            Ok(s) => Some(s),
            Err(e) => {
                assert!(std::env::var("CI").as_deref() != Ok("true"), "{e:#}");
                eprintln!("skipping: {e:#}");
                None
            }
        }
    }

    /// `user@host:port`, as `--host` takes it.
    pub fn spec(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }

    /// `burrow serve` arguments for `dir` on the host with the test key and known_hosts.
    pub fn serve_args(&self, dir: &str) -> Vec<String> {
        let mut args = self.serve_args_without_key(dir);
        args.extend(["--identity".into(), self.key.display().to_string()]);
        args
    }

    /// Like [`Sshd::serve_args`], leaving the login method to the caller.
    pub fn serve_args_without_key(&self, dir: &str) -> Vec<String> {
        let known = self.known_hosts.display().to_string();
        ["--env", "ssh", "--host", &self.spec(), "--dir", dir, "--known-hosts", &known].iter().map(|s| s.to_string()).collect()
    }

    fn client(&self, command: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(["-F", "/dev/null", "-p", &self.port.to_string(), "-i"])
            .arg(&self.key)
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args(["-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
            .args(["-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"])
            .arg(format!("{}@{}", self.user, self.host))
            .arg(command);
        cmd
    }

    /// Runs a shell command on the host, with `stdin` as its input.
    pub fn run(&self, command: &str, stdin: &[u8]) -> anyhow::Result<std::process::Output> {
        let mut child = self.client(command).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().context("the ssh client runs")?;
        child.stdin.take().context("stdin")?.write_all(stdin)?;
        Ok(child.wait_with_output()?)
    }

    /// Runs a shell command on the host, returning stdout; fails with its stderr.
    pub fn sh(&self, command: &str) -> anyhow::Result<String> {
        let out = self.run(command, b"")?;
        if !out.status.success() {
            bail!("ssh {command:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Copies `tree` (symlinks and `.git` included) into a fresh folder in the
    /// login's home with tar over ssh, and returns the folder's absolute path.
    pub fn upload(&self, tree: &Path, label: &str) -> anyhow::Result<String> {
        let tar = Command::new("tar").arg("-C").arg(tree).args(["-cf", "-", "."]).output().context("tar runs")?;
        if !tar.status.success() {
            bail!("tar of {} failed: {}", tree.display(), String::from_utf8_lossy(&tar.stderr));
        }
        let dir = format!("burrow-{label}-{:016x}", fastrand::u64(..));
        let out = self.run(&format!("mkdir -p ~/{dir} && tar -C ~/{dir} -xf - && cd ~/{dir} && pwd"), &tar.stdout)?;
        if !out.status.success() {
            bail!("unpacking on the host failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Writes a file on the host (creating its folder) behind Burrow's back.
    pub fn write(&self, path: &str, data: &[u8]) -> anyhow::Result<()> {
        let q = format!("'{}'", path.replace('\'', r"'\''"));
        let out = self.run(&format!("mkdir -p \"$(dirname {q})\" && cat > {q}"), data)?;
        if !out.status.success() {
            bail!("writing {path} on the host failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// The pids of the sshd processes serving the TCP connections that `pid` holds.
    pub fn sshd_pids_for(&self, pid: u32) -> Vec<u32> {
        let ss = |filter: String| {
            let out = Command::new("ss").args(["-Htnp", "state", "established", &filter]).output().expect("ss runs");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let mut pids = Vec::new();
        for line in ss(format!("( dport = :{} )", self.port)).lines().filter(|l| l.contains(&format!("pid={pid},"))) {
            let local = line.split_whitespace().nth(2).and_then(|a| a.rsplit(':').next()).unwrap_or_default().to_string();
            let theirs = ss(format!("( sport = :{} and dport = :{local} )", self.port));
            pids.extend(theirs.split("pid=").skip(1).filter_map(|s| s.split(',').next()?.parse::<u32>().ok()));
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }
}
