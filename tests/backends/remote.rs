//! A scratch folder on the test sshd, and a `burrow serve --env ssh` process
//! whose failure to start is an outcome to check (refused keys and logins).

pub use crate::support::launch::Failed;
use crate::support::launch::{Launch, Running};
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
    run: Running,
}

impl Server {
    /// Starts `burrow serve` with `args`, a fresh `$HOME` and `vars`; no SSH
    /// agent, password or search setting of the test's own environment leaks in.
    pub async fn start(args: &[String], vars: &[(&str, &str)]) -> Result<Self, Failed> {
        let launch =
            Launch::serve().args(args).env_remove("SSH_AUTH_SOCK").env_remove("BURROW_SSH_PASSWORD").env_remove("BURROW_SEARCH").envs(vars.iter().copied());
        let run = launch.start_async().await?;
        Ok(Self { url: run.url.clone(), run })
    }

    pub fn stderr(&self) -> String {
        self.run.stderr()
    }

    pub async fn get(&self, path_and_query: &str) -> (u16, serde_json::Value) {
        let res = reqwest::Client::new().get(format!("{}{path_and_query}", self.url)).send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")))
    }

    pub fn pid(&self) -> u32 {
        self.run.child.id()
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
