//! The one way the tests start `burrow serve`: a free port on loopback, a
//! clean environment (its own `$HOME` and data folder, no password, no XDG
//! folders of the machine's user), debug logs, and the URL read from the line
//! the server prints. Every harness (tests/support/server.rs, the sessions,
//! Docker, SSH and object-storage suites) builds on it and adds only what its
//! backend needs. It stands alone, so a suite that does not include
//! `support/mod.rs` takes it with `#[path = "../support/launch.rs"]`.
//!
//! Starting blocks the calling thread on reader threads, never on the async
//! runtime: [`Launch::start_async`] hands it to the blocking pool, so a test
//! whose server talks to a mock running in the test's own runtime still works.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a server may take to print its URL, and how long an exited
/// server's stderr may take to close (bounds on a hang, not performance
/// assertions).
const START_TIMEOUT: Duration = Duration::from_secs(90);
const STDERR_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
const URL_PREFIX: &str = "burrow server listening on ";

/// Variables of the machine's user that would leak into the server's config or auth.
const CLEARED: &[&str] = &["OPENCODE_SERVER_PASSWORD", "OPENCODE_SERVER_USERNAME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"];

/// A `burrow serve` command line and environment, not started yet.
pub struct Launch {
    hostname: String,
    args: Vec<OsString>,
    vars: Vec<(OsString, OsString)>,
    removed: Vec<OsString>,
    removed_prefixes: Vec<String>,
    home: Option<PathBuf>,
    data_dir: Option<PathBuf>,
}

/// A server that printed its URL. Dropping it kills the process; during a
/// panic it prints what the server wrote on stderr.
pub struct Running {
    pub url: String,
    pub child: Child,
    /// `$HOME` of the server process.
    pub home: PathBuf,
    /// Where the server keeps its data (`BURROW_DATA_DIR`).
    pub data_dir: PathBuf,
    pub label: String,
    stderr: Arc<Mutex<String>>,
    _tmp: Option<tempfile::TempDir>,
}

/// How a server ended that never printed its URL.
#[derive(Debug)]
pub struct Failed {
    /// The exit code (`None` if killed: a signal, or still silent after [`START_TIMEOUT`]).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Default for Launch {
    fn default() -> Self {
        Self::serve()
    }
}

impl Launch {
    /// `burrow serve --port 0 --hostname 127.0.0.1`.
    pub fn serve() -> Self {
        Self {
            hostname: "127.0.0.1".into(),
            args: Vec::new(),
            vars: vec![("BURROW_LOG".into(), "burrow=debug".into())],
            removed: CLEARED.iter().map(OsString::from).collect(),
            removed_prefixes: Vec::new(),
            home: None,
            data_dir: None,
        }
    }

    pub fn hostname(mut self, hostname: &str) -> Self {
        self.hostname = hostname.into();
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets a variable; a later call for the same name wins.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.vars.push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn envs<I: IntoIterator<Item = (K, V)>, K: AsRef<OsStr>, V: AsRef<OsStr>>(self, vars: I) -> Self {
        vars.into_iter().fold(self, |l, (k, v)| l.env(k, v))
    }

    /// Removes a variable of the test's own environment (set ones are kept).
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.removed.push(key.as_ref().to_owned());
        self
    }

    /// Removes every variable of the test's own environment whose name starts with `prefix`.
    pub fn env_remove_prefix(mut self, prefix: &str) -> Self {
        self.removed_prefixes.push(prefix.into());
        self
    }

    /// The server's `$HOME` (a fresh folder if not given).
    pub fn home(mut self, home: impl Into<PathBuf>) -> Self {
        self.home = Some(home.into());
        self
    }

    /// The server's data folder (a fresh folder if not given).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Requires basic auth with this password.
    pub fn password(self, password: &str) -> Self {
        self.env("OPENCODE_SERVER_PASSWORD", password)
    }

    fn label(&self) -> String {
        self.args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
    }

    /// The command, and the folders it uses (with the temporary folder that holds them).
    fn command(&self) -> (Command, PathBuf, PathBuf, Option<tempfile::TempDir>) {
        let tmp = (self.home.is_none() || self.data_dir.is_none()).then(|| tempfile::Builder::new().prefix("burrow-server-").tempdir().expect("temp dir"));
        let home = self.home.clone().unwrap_or_else(|| tmp.as_ref().unwrap().path().join("home"));
        let data_dir = self.data_dir.clone().unwrap_or_else(|| tmp.as_ref().unwrap().path().join("data"));
        std::fs::create_dir_all(&home).expect("creating the server's home");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_burrow"));
        cmd.args(["serve", "--port", "0", "--hostname", &self.hostname]).args(&self.args);
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy();
            if self.removed_prefixes.iter().any(|p| name.starts_with(p.as_str())) {
                cmd.env_remove(&key);
            }
        }
        for key in &self.removed {
            cmd.env_remove(key);
        }
        cmd.env("HOME", &home).env("BURROW_DATA_DIR", &data_dir);
        cmd.envs(self.vars.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        (cmd, home, data_dir, tmp)
    }

    /// Starts the server and waits for its URL; a server that exits first (or
    /// stays silent for [`START_TIMEOUT`]) is a [`Failed`].
    pub fn start(self) -> Result<Running, Failed> {
        let label = self.label();
        let (mut cmd, home, data_dir, tmp) = self.command();
        let mut child = cmd.spawn().expect("cannot start the burrow binary");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_closed = collect(child.stderr.take().unwrap(), stderr.clone());
        let (url_tx, url_rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        // Reads up to the URL line, then keeps draining so the server never
        // blocks on a full pipe; what came before the URL is kept for `Failed`.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout);
            let mut before = String::new();
            let mut line = String::new();
            loop {
                line.clear();
                match lines.read_line(&mut line) {
                    Ok(0) | Err(_) => {
                        let _ = url_tx.send(Err(before));
                        return;
                    }
                    Ok(_) => match line.trim().strip_prefix(URL_PREFIX) {
                        Some(url) => {
                            let _ = url_tx.send(Ok(url.to_string()));
                            break;
                        }
                        None => before.push_str(&line),
                    },
                }
            }
            let _ = std::io::copy(&mut lines, &mut std::io::sink());
        });
        match url_rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(url)) => Ok(Running { url, child, home, data_dir, label, stderr, _tmp: tmp }),
            outcome => {
                let _ = child.kill();
                let code = child.wait().ok().and_then(|s| s.code());
                let _ = stderr_closed.recv_timeout(STDERR_CLOSE_TIMEOUT);
                let stdout = match outcome {
                    Ok(Err(before)) => before,
                    _ => format!("(no URL within {START_TIMEOUT:?})"),
                };
                let stderr = stderr.lock().unwrap().clone();
                Err(Failed { code, stdout, stderr })
            }
        }
    }

    /// [`Launch::start`] on the blocking pool, so the runtime keeps running meanwhile.
    pub async fn start_async(self) -> Result<Running, Failed> {
        tokio::task::spawn_blocking(move || self.start()).await.expect("the launcher thread panicked")
    }

    /// Starts the server expecting it to refuse to start; panics if it serves.
    pub async fn refused(self) -> Failed {
        match self.start_async().await {
            Ok(running) => panic!("burrow serve ({}) started at {} but should have refused", running.label, running.url),
            Err(failed) => failed,
        }
    }
}

impl Running {
    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal).expect("signalling burrow");
    }

    /// SIGTERM, then the exit status (blocks until the server exits).
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.child.wait().expect("burrow exits")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // CI keeps the head and tail of a long log: the warnings and
            // errors come first, so a cut in the middle never hides them.
            let log = self.stderr();
            let loud: String = log.lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).map(|l| format!("{l}\n")).collect();
            eprintln!("--- burrow serve ({}) at {}: warnings and errors ---\n{loud}--- stderr ---\n{log}--- end ---", self.label, self.url);
        }
    }
}

/// Copies `pipe` into `into` line by line; the receiver hears when it closes.
fn collect(pipe: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut s = into.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
        let _ = tx.send(());
    });
    rx
}
