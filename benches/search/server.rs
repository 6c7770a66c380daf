//! The HTTP servers under test: Burrow (local, and any extra environments)
//! and the OpenCode reference. Each runs as a child process with a scratch
//! HOME and is killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::cpu::{process_cpu_ms, Remote};
use crate::measure::Http;

/// How long a server may take to print its URL and answer.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a server may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// One server the benchmark talks to over HTTP.
pub struct Server {
    pub label: String,
    pub base: String,
    child: Child,
    /// Where the environment runs its helper (a container, an sshd), whose
    /// CPU time counts as the server's.
    remote: Option<Remote>,
    _scratch: tempfile::TempDir,
}

impl Server {
    /// `burrow serve --port 0 ARGS...`, e.g. `--dir CORPUS` or `--env docker ...`.
    pub fn burrow(http: &Http, label: &str, bin: &Path, args: &[String], cwd: &Path) -> anyhow::Result<Self> {
        Self::burrow_in(http, label, bin, args, cwd, None)
    }

    /// [`Server::burrow`] with its data folder (indexes, saved state) in
    /// `data` rather than in its scratch folder, so that a later server finds
    /// what this one left there.
    pub fn burrow_in(http: &Http, label: &str, bin: &Path, args: &[String], cwd: &Path, data: Option<&Path>) -> anyhow::Result<Self> {
        let scratch = tempfile::tempdir()?;
        let data = data.map_or_else(|| scratch.path().join("data"), Path::to_path_buf);
        let mut cmd = Command::new(bin);
        cmd.args(["serve", "--port", "0"]).args(args).current_dir(cwd).env("BURROW_DATA_DIR", data);
        Self::start(http, label, cmd, scratch)
    }

    /// `opencode serve --pure --port N` in the corpus folder.
    pub fn reference(http: &Http, bin: &Path, corpus: &Path) -> anyhow::Result<Self> {
        let scratch = tempfile::tempdir()?;
        let port = free_port()?;
        let mut cmd = Command::new(bin);
        cmd.args(["serve", "--pure", "--port", &port.to_string()]).current_dir(corpus);
        Self::start(http, "reference", cmd, scratch)
    }

    /// Starts `cmd` with HOME in `scratch`, reads the URL it prints
    /// ("... listening on http://HOST:PORT") and waits until it answers.
    fn start(http: &Http, label: &str, mut cmd: Command, scratch: tempfile::TempDir) -> anyhow::Result<Self> {
        let log = std::fs::File::create(scratch.path().join("server.log"))?;
        cmd.env("HOME", scratch.path()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log);
        for var in ["XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"] {
            cmd.env_remove(var);
        }
        let mut child = cmd.spawn().with_context(|| format!("cannot start {label}: {cmd:?}"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = mpsc::channel();
        // Keeps draining stdout after the URL line so the server never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.trim().trim_end_matches('/').to_string());
                }
            }
        });
        let mut server = Server { label: label.to_string(), base: String::new(), child, remote: None, _scratch: scratch };
        // Waits for the URL in slices, so a server that exits is reported at once.
        let started = std::time::Instant::now();
        server.base = loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(url) => break url,
                Err(_) if started.elapsed() > START_TIMEOUT => bail!("{label} printed no URL within {START_TIMEOUT:?}; see {}", server.log_path()),
                Err(_) => {}
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = std::fs::read_to_string(server.log_path()).unwrap_or_default();
                // The error, without the backtrace frames ("  12: fn", "  at file:line").
                let frame = |l: &&str| {
                    let t = l.trim_start();
                    t.starts_with("at ") || t.split_once(": ").is_some_and(|(n, _)| n.parse::<u32>().is_ok())
                };
                let head = log.lines().filter(|l| !frame(l)).take(8).collect::<Vec<_>>().join("\n");
                bail!("{label} exited ({status}) before printing its URL:\n{head}");
            }
        };
        http.wait_ready(&format!("{}/path", server.base), START_TIMEOUT).with_context(|| format!("{label} did not answer; see {}", server.log_path()))?;
        Ok(server)
    }

    fn log_path(&self) -> String {
        self._scratch.path().join("server.log").display().to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Counts the CPU time of `remote` (where the environment runs its search
    /// helper) as the server's.
    pub fn follow(&mut self, remote: Remote) {
        self.remote = Some(remote);
    }

    /// CPU milliseconds used so far by the server process, its reaped
    /// children, and the remote side it follows.
    pub fn cpu_ms(&self) -> f64 {
        process_cpu_ms(self.pid()) + self.remote.as_ref().map_or(0.0, Remote::ms)
    }

    /// Peak resident set size so far, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        peak_rss_kib(self.child.id())
    }
}

impl Drop for Server {
    /// SIGTERM first, so that Burrow shuts down cleanly (a docker environment
    /// removes its container); SIGKILL if it is still running after a while.
    fn drop(&mut self) {
        self.stop();
        // BURROW_BENCH_LOGS=DIR keeps each server's log (BURROW_LOG=burrow=debug makes it talk).
        if let Some(dir) = std::env::var_os("BURROW_BENCH_LOGS") {
            let to = Path::new(&dir).join(format!("{}-{}.log", self.label, self.child.id()));
            let _ = std::fs::create_dir_all(&dir).and_then(|_| std::fs::copy(self.log_path(), &to));
        }
    }
}

impl Server {
    fn stop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_ok() {
            let deadline = std::time::Instant::now() + STOP_TIMEOUT;
            while std::time::Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmHWM` of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
