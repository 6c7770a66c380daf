//! A scratch folder on the test sshd, and a `burrow serve --env ssh` process
//! whose failure to start is an outcome to check (refused keys and logins).

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

pub use crate::support::ssh::Sshd;

/// A fresh folder in the login's home with `files` in it (path, contents).
pub fn scratch(sshd: &Sshd, files: &[(&str, &str)]) -> Scratch {
    let name = format!("burrow-test-{:016x}", fastrand::u64(..));
    let mut script = format!("set -e; mkdir -p ~/{name}; cd ~/{name}; ");
    for (path, body) in files {
        let q = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        script.push_str(&format!("mkdir -p \"$(dirname {p})\"; printf %s {b} > {p}; ", p = q(path), b = q(body)));
    }
    script.push_str("pwd");
    let root = sshd.sh(&script).unwrap().trim().to_string();
    Scratch { sshd: sshd.clone(), root }
}

/// A folder on the host, removed on drop.
pub struct Scratch {
    pub sshd: Sshd,
    pub root: String,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.sshd.sh(&format!("rm -rf '{}'", self.root));
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

/// The workspace most SSH tests start from.
pub const FILES: &[(&str, &str)] = &[
    ("src/main.rs", "fn main() {\n    println!(\"hello 42\");\n}\n"),
    ("src/lib.rs", "pub fn hello() {}\n"),
    (".ignore", "target/\n"),
    ("target/out.txt", "hello from a build\n"),
    ("notes/a b.md", "Hello notes\n"),
];

/// The loopback sshd, or return from the test (which fails in CI).
macro_rules! sshd {
    () => {
        match $crate::remote::Sshd::get() {
            Some(s) => s,
            None => return,
        }
    };
}
