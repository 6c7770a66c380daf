//! The test sshd (started by tests/support/services.sh), a scratch folder on
//! it reached with the `ssh` client, and a `burrow serve --env ssh` process.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

/// The variables services.sh writes for the sshd.
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
    /// The test sshd, or `None` (with a note) outside CI when it is not running.
    /// In CI a missing service fails the test.
    pub fn get() -> Option<Self> {
        let var = |k: &str| std::env::var(format!("BURROW_TEST_SSH_{k}")).ok().filter(|v| !v.is_empty());
        let found = (|| {
            Some(Self {
                host: var("HOST")?,
                port: var("PORT")?.parse().ok()?,
                user: var("USER")?,
                key: var("KEY")?.into(),
                rsa_key: var("RSA_KEY")?.into(),
                known_hosts: var("KNOWN_HOSTS")?.into(),
                password: var("PASSWORD")?,
            })
        })();
        if found.is_none() {
            let msg = "BURROW_TEST_SSH_* not set: run `source tests/support/services.sh ssh` first";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
            eprintln!("skipping: {msg}");
        }
        found
    }

    pub fn spec(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }

    /// Runs a shell command on the host with the `ssh` client (not through Burrow).
    pub fn ssh(&self, command: &str) -> std::process::Output {
        std::process::Command::new("ssh")
            .args(["-F", "/dev/null", "-p", &self.port.to_string(), "-i"])
            .arg(&self.key)
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args(["-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
            .args(["-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"])
            .arg(format!("{}@{}", self.user, self.host))
            .arg(command)
            .stdin(Stdio::null())
            .output()
            .expect("the ssh client runs")
    }

    /// Like [`Sshd::ssh`], asserting success and returning stdout.
    pub fn sh(&self, command: &str) -> String {
        let out = self.ssh(command);
        assert!(out.status.success(), "ssh {command:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A fresh folder in the login's home with `files` in it (path, contents).
    pub fn scratch(&self, files: &[(&str, &str)]) -> Scratch {
        let name = format!("burrow-test-{:016x}", fastrand::u64(..));
        let mut script = format!("set -e; mkdir -p ~/{name}; cd ~/{name}; ");
        for (path, body) in files {
            let q = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
            script.push_str(&format!("mkdir -p \"$(dirname {p})\"; printf %s {b} > {p}; ", p = q(path), b = q(body)));
        }
        script.push_str("pwd");
        let root = self.sh(&script).trim().to_string();
        Scratch { sshd: self.clone(), root }
    }

    /// The pids of the sshd processes serving TCP connections that `pid` holds.
    pub fn sshd_pids_for(&self, pid: u32) -> Vec<u32> {
        let ss = |filter: String| {
            let out = std::process::Command::new("ss").args(["-Htnp", "state", "established", &filter]).output().expect("ss runs");
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

/// A folder on the host, removed on drop.
pub struct Scratch {
    pub sshd: Sshd,
    pub root: String,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.sshd.ssh(&format!("rm -rf '{}'", self.root));
    }
}

/// A running `burrow serve`.
pub struct Server {
    pub url: String,
    pub child: tokio::process::Child,
    stderr: Arc<Mutex<String>>,
    _home: tempfile::TempDir,
}

/// How `burrow serve` ended when it did not start.
pub struct Failed {
    pub code: Option<i32>,
    pub stderr: String,
}

impl Server {
    /// Starts `burrow serve` with `args`, a fresh `$HOME` and `vars`.
    pub async fn start(args: &[String], vars: &[(&str, &str)]) -> Result<Self, Failed> {
        let home = tempfile::tempdir().unwrap();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_burrow"));
        cmd.args(["serve", "--port", "0"])
            .args(args)
            .env("HOME", home.path())
            .env("BURROW_DATA_DIR", home.path().join("data"))
            .env("BURROW_LOG", "burrow=debug")
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("BURROW_SSH_PASSWORD")
            .env_remove("BURROW_SEARCH")
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("burrow starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut err_lines = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(l)) = err_lines.next_line().await {
                let mut s = sink.lock().unwrap();
                s.push_str(&l);
                s.push('\n');
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(90), async {
            while let Ok(Some(l)) = lines.next_line().await {
                if let Some(u) = l.strip_prefix("burrow server listening on ") {
                    return Some(u.trim().to_string());
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        match url {
            Some(url) => Ok(Self { url, child, stderr, _home: home }),
            None => {
                let _ = child.start_kill();
                let status = child.wait().await.ok();
                // Let the stderr reader catch up with the last lines.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let stderr = stderr.lock().unwrap().clone();
                Err(Failed { code: status.and_then(|s| s.code()), stderr })
            }
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub async fn get(&self, path_and_query: &str) -> (u16, serde_json::Value) {
        let res = reqwest::Client::new().get(format!("{}{path_and_query}", self.url)).send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")))
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("server running")
    }
}

/// `burrow serve` arguments for `scratch` with the test key and known_hosts.
pub fn ssh_args(sshd: &Sshd, dir: &str) -> Vec<String> {
    let mut args = base_args(sshd, dir);
    args.extend(["--identity".into(), sshd.key.display().to_string()]);
    args
}

/// Without a key: the caller picks how to log in.
pub fn base_args(sshd: &Sshd, dir: &str) -> Vec<String> {
    ["--env", "ssh", "--host", &sshd.spec(), "--dir", dir, "--known-hosts", &sshd.known_hosts.display().to_string()]
        .iter()
        .map(|s| s.to_string())
        .collect()
}
