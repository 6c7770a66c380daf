//! Shared by the Docker tests: the daemon and test image check, the `docker`
//! command line (to look inside containers behind Burrow's back), the static
//! helper build, and a fixture tree.
//!
//! A test binary that includes it includes `support` too (for the launcher).
//!
//! Without a Docker daemon or the test image (`tests/support/services.sh`
//! provides both) the tests print why and pass; with `CI=true` they fail.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::launch::{Launch, Running};

/// The offline test image that `tests/support/services.sh` builds.
pub fn image_name() -> String {
    std::env::var("BURROW_TEST_DOCKER_IMAGE").unwrap_or_else(|_| "burrow-test-busybox:latest".into())
}

/// The test image, when a daemon and the image are there; `None` (skip) otherwise, or a panic in CI.
pub fn image() -> Option<String> {
    let image = image_name();
    let problem = match Command::new("docker").args(["image", "inspect", "-f", "ok", &image]).output() {
        Ok(out) if out.status.success() => return Some(image),
        Ok(out) => format!("no usable Docker daemon or image {image}: {}", String::from_utf8_lossy(&out.stderr).trim()),
        Err(e) => format!("no docker command: {e}"),
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{problem} (run tests/support/services.sh docker)");
    }
    eprintln!("skipping: {problem} (run tests/support/services.sh docker)");
    None
}

/// Runs the docker CLI.
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("docker runs")
}

/// Runs the docker CLI, which must succeed; its trimmed stdout.
pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(out.status.success(), "docker {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A shell command in a container, behind Burrow's back.
pub fn sh(container: &str, script: &str) -> String {
    docker_ok(&["exec", container, "sh", "-c", script])
}

/// Whether a container with this name or id exists (in any state).
pub fn exists(container: &str) -> bool {
    docker(&["container", "inspect", container]).status.success()
}

pub fn running(container: &str) -> bool {
    docker(&["container", "inspect", "-f", "{{.State.Running}}", container]).stdout.starts_with(b"true")
}

/// The processes in a container, one `ps` line each.
pub fn ps(container: &str) -> String {
    sh(container, "ps -o pid,args 2>/dev/null || ps")
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{:06x}", std::process::id(), fastrand::u32(..0xffffff))
}

/// The static helper: `BURROW_HELPER_BIN`, or the build `tests/build-helper.sh`
/// makes. In CI it must exist.
pub fn static_helper() -> Option<PathBuf> {
    let given = std::env::var_os("BURROW_HELPER_BIN").map(PathBuf::from);
    if let Some(p) = given.as_ref().filter(|p| p.exists()) {
        return Some(p.clone());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let built = ["helper", "release"].map(|profile| target.join("x86_64-unknown-linux-gnu").join(profile).join("burrow-helper"));
    if let Some(found) = built.iter().find(|p| p.exists()) {
        return Some(found.clone());
    }
    let how = "bash tests/build-helper.sh x86_64";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("no static helper at BURROW_HELPER_BIN={given:?} nor in {} (build it with {how})", built[0].display());
    }
    eprintln!("skipping the helper variant: no static helper (build it with {how})");
    None
}

/// A small workspace: sources, an ignored build folder, a symlink that leaves the root.
pub fn fixture() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("burrow-docker-fx-").tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("src/main.rs", "fn main() {\n    println!(\"needle in main\");\n}\n");
    write("src/lib.rs", "pub fn helper() -> u32 {\n    42 // needle\n}\n");
    write("README.md", "# Fixture\n");
    write(".ignore", "target/\n");
    write("target/debug/junk.rs", "needle in ignored output\n");
    write("docs/guide.md", "A guide.\n");
    std::os::unix::fs::symlink("/etc", dir.path().join("etc-link")).unwrap();
    dir
}

/// A `burrow serve --env docker` process. Dropping it kills the server and
/// removes its container, so a failing test leaves nothing behind.
pub struct Server {
    pub url: String,
    /// The `--name` of the container Burrow creates, removed on drop.
    pub name: Option<String>,
    pub run: Running,
    pub client: reqwest::Client,
}

impl Server {
    /// `burrow serve --port 0 --env docker [--name NAME] ARGS...`; `helper` is
    /// the static build to install, or `None` to run without one.
    pub fn start(name: Option<&str>, args: &[&str], helper: Option<&Path>) -> Self {
        Self::try_start(name, args, helper).unwrap_or_else(|(code, err)| panic!("burrow serve exited ({code:?}) before listening:\n{err}"))
    }

    /// Like [`Server::start`], but a server that exits early is an `Err` with its exit code and stderr.
    pub fn try_start(name: Option<&str>, args: &[&str], helper: Option<&Path>) -> Result<Self, (Option<i32>, String)> {
        let launch = Launch::serve()
            .args(["--env", "docker"])
            .args(name.map(|n| ["--name", n]).iter().flatten())
            .args(args)
            .env("BURROW_HELPER_BIN", helper.map(Path::as_os_str).unwrap_or("/nonexistent/burrow-helper".as_ref()));
        match launch.start() {
            Ok(run) => Ok(Self { url: run.url.clone(), name: name.map(str::to_string), run, client: reqwest::Client::new() }),
            Err(failed) => {
                if let Some(name) = name {
                    docker(&["rm", "-f", name]);
                }
                Err((failed.code, failed.stderr))
            }
        }
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let resp = self.client.get(format!("{}{path}", self.url)).send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|_| serde_json::Value::String(text)))
    }

    pub async fn post(&self, path: &str) -> (u16, serde_json::Value) {
        let resp = self.client.post(format!("{}{path}", self.url)).send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Paths `/find/file` returns for `query`.
    pub async fn find_files(&self, query: &str) -> Vec<String> {
        let (status, body) = self.get(&format!("/find/file?query={query}&limit=200")).await;
        assert_eq!(status, 200, "/find/file?query={query}: {body}");
        body.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.run.terminate()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.run.child.kill();
        let _ = self.run.child.wait();
        if let Some(name) = &self.name {
            docker(&["rm", "-f", name]);
        }
    }
}

/// Tests that start servers take turns: a Burrow that starts reaps the
/// containers of Burrows that were killed, which another test may be looking at.
/// An async lock: each test has its own runtime and holds the turn across awaits.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}
