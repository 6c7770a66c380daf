//! Local process groups outlive nothing.
//!
//! Every command and terminal the local environment starts leads a process
//! group of its own. Each group is recorded as a file in the data folder,
//! `processes/<server pid>-<server start>/<pgid>-<start>` (start times are the
//! kernel's, field 22 of `/proc/<pid>/stat`), and forgotten when its leader
//! exits. Two things end the recorded groups:
//! - a **watchdog** process (`burrow reap`, started with the server, in a
//!   process group of its own so a terminal's Ctrl-C does not reach it) reads
//!   a pipe from the server; when the server dies, even by `kill -9`, the pipe
//!   closes and the watchdog kills the server's groups at once;
//! - at **start**, the records of servers that are no longer running (and whose
//!   watchdog died too) are swept the same way.
//!
//! A group is killed only when its leader still runs with the recorded start
//! time, so a pid the kernel has since reused is never hit. (A group whose
//! leader exited first cannot be told apart safely and is left alone.)

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where this server records its groups, once [`init`] ran.
static OWN: OnceLock<PathBuf> = OnceLock::new();

/// The kernel's start time of `pid` (clock ticks since boot), if it runs.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: count from the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

fn name(pid: i32, start: u64) -> String {
    format!("{pid}-{start}")
}

fn parse(name: &str) -> Option<(i32, u64)> {
    let (pid, start) = name.split_once('-')?;
    Some((pid.parse().ok()?, start.parse().ok()?))
}

/// True when `pid` runs and started at `start`.
fn same_process(pid: i32, start: u64) -> bool {
    start_time(pid) == Some(start)
}

/// Records the groups of this server under `data_dir`, sweeps those of
/// servers that died, and starts the watchdog. Failing to do any of this
/// costs only the clean-up, so errors are logged, not fatal.
pub fn init(data_dir: &Path) {
    let base = data_dir.join("processes");
    sweep_dead_servers(&base);
    let me = std::process::id() as i32;
    let Some(start) = start_time(me) else { return tracing::warn!("no /proc: commands may outlive a crash of the server") };
    let own = base.join(name(me, start));
    if let Err(e) = std::fs::create_dir_all(&own) {
        return tracing::warn!("cannot record process groups in {}: {e}", own.display());
    }
    if let Err(e) = start_watchdog(&own) {
        tracing::warn!("no watchdog for commands (they are still killed at the next start): {e}");
    }
    let _ = OWN.set(own);
}

/// Kills the recorded groups of every server under `base` that no longer runs.
fn sweep_dead_servers(base: &Path) {
    let Ok(servers) = std::fs::read_dir(base) else { return };
    for server in servers.flatten() {
        let Some((pid, start)) = server.file_name().to_str().and_then(parse) else { continue };
        if !same_process(pid, start) {
            sweep(&server.path());
        }
    }
}

/// Kills every recorded group of one server whose leader still runs, and
/// removes the records.
pub fn sweep(dir: &Path) {
    if let Ok(groups) = std::fs::read_dir(dir) {
        for group in groups.flatten() {
            if let Some((pgid, start)) = group.file_name().to_str().and_then(parse) {
                if same_process(pgid, start) {
                    tracing::info!(pgid, "ending a command left by a server that is gone");
                    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), nix::sys::signal::Signal::SIGKILL);
                }
            }
            let _ = std::fs::remove_file(group.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

fn start_watchdog(own: &Path) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("reap")
        .arg(own)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .process_group(0)
        .spawn()?;
    // The write end stays open for as long as this process lives; the kernel
    // closes it when the process ends, however it ends.
    static PIPE: OnceLock<std::process::ChildStdin> = OnceLock::new();
    if let Some(stdin) = child.stdin.take() {
        let _ = PIPE.set(stdin);
    }
    // Reap the watchdog if it ends first, so it does not linger as a zombie.
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// `burrow reap DIR`: waits for the server's pipe to close, then ends the
/// groups recorded in `DIR`. Ignores the signals a terminal or a service
/// manager sends the server, so that it outlives it.
pub fn watchdog(dir: &Path) -> i32 {
    use nix::sys::signal::{signal, SigHandler, Signal};
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: SIG_IGN installs no handler code.
        let _ = unsafe { signal(sig, SigHandler::SigIgn) };
    }
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin();
    while !matches!(stdin.read(&mut sink), Ok(0) | Err(_)) {}
    sweep(dir);
    0
}

/// A recorded group; the record goes when this is dropped (its leader exited).
pub struct Recorded(Option<PathBuf>);

impl Drop for Recorded {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Records the group that `pgid` leads. Without [`init`] (tests, the helper)
/// nothing is recorded.
pub fn record(pgid: u32) -> Recorded {
    let Some(own) = OWN.get() else { return Recorded(None) };
    let Some(start) = start_time(pgid as i32) else { return Recorded(None) };
    let path = own.join(name(pgid as i32, start));
    match std::fs::File::create(&path) {
        Ok(_) => Recorded(Some(path)),
        Err(e) => {
            tracing::warn!("cannot record process group {pgid}: {e}");
            Recorded(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_reads_past_a_command_name_with_spaces_and_parentheses() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some());
        assert_eq!(parse(&name(me, 42)), Some((me, 42)));
        assert_eq!(start_time(i32::MAX), None);
    }

    #[test]
    fn a_sweep_kills_live_groups_and_spares_a_reused_pid() {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let server = dir.path().join(name(i32::MAX, 1));
        std::fs::create_dir_all(&server).unwrap();
        let mut live = std::process::Command::new("sleep").arg("1000").process_group(0).spawn().unwrap();
        let mut other = std::process::Command::new("sleep").arg("1000").process_group(0).spawn().unwrap();
        let live_start = start_time(live.id() as i32).unwrap();
        let other_start = start_time(other.id() as i32).unwrap();
        std::fs::write(server.join(name(live.id() as i32, live_start)), "").unwrap();
        // The same pid with another start time: a process the record is not about.
        std::fs::write(server.join(name(other.id() as i32, other_start + 1)), "").unwrap();
        sweep_dead_servers(dir.path());
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(live.wait().unwrap().signal(), Some(9), "the recorded group is killed");
        assert!(other.try_wait().unwrap().is_none(), "a pid with another start time is spared");
        assert!(!server.exists(), "the records are gone");
        other.kill().unwrap();
        other.wait().unwrap();
    }
}
