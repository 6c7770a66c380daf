//! CPU time, which load on the machine does not inflate (unlike the wall
//! clock): of a process and its reaped children, of a container (where a
//! docker environment runs its search helper), and of the sshd processes that
//! serve one SSH connection (whose children are the helper runs on the host).

use std::collections::HashSet;
use std::process::Command;

use anyhow::{bail, Context};

/// CPU time that process `pid` and its reaped children have used, in ms:
/// `utime + stime + cutime + cstime` of /proc/PID/stat. Unlike the wall
/// clock, other work on the machine does not inflate it.
pub fn process_cpu_ms(pid: u32) -> f64 {
    stat_ticks(&pid.to_string(), 11..15) as f64 * ms_per_tick()
}

/// CPU time of this process's reaped children (the rg runs), in ms.
pub fn children_cpu_ms() -> f64 {
    stat_ticks("self", 13..15) as f64 * ms_per_tick()
}

/// Sums `fields` (counted from `state`, the first field after the command
/// name, which may hold spaces) of /proc/PID/stat.
fn stat_ticks(pid: &str, fields: std::ops::Range<usize>) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0 };
    let all: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    all.get(fields).map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum())
}

/// Milliseconds per clock tick (`getconf CLK_TCK`, 100 on Linux).
fn ms_per_tick() -> f64 {
    static MS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *MS.get_or_init(|| {
        let out = Command::new("getconf").arg("CLK_TCK").output().ok();
        let hz = out.and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok()).unwrap_or(100.0);
        1000.0 / hz
    })
}

/// The CPU accounting of a running container's cgroup: `cpuacct.usage`
/// (nanoseconds, cgroup v1) or the `usage_usec` of `cpu.stat` (v2). It counts
/// every process of the container, `docker exec`s included.
pub struct ContainerCpu {
    file: std::path::PathBuf,
    v2: bool,
}

impl ContainerCpu {
    pub fn find(name: &str) -> anyhow::Result<Self> {
        let out = Command::new("docker").args(["inspect", "-f", "{{.State.Pid}}", name]).output().context("cannot run docker inspect")?;
        let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).with_context(|| format!("no cgroup for container {name} (pid {pid:?})"))?;
        for line in cgroups.lines() {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next(), fields.next().unwrap_or(""), fields.next().unwrap_or(""));
            if controllers.split(',').any(|c| c == "cpuacct") {
                return Ok(Self { file: format!("/sys/fs/cgroup/cpuacct{path}/cpuacct.usage").into(), v2: false });
            }
            if controllers.is_empty() && path != "/" {
                return Ok(Self { file: format!("/sys/fs/cgroup{path}/cpu.stat").into(), v2: true });
            }
        }
        bail!("container {name}: no CPU accounting in /proc/{pid}/cgroup")
    }

    pub fn ms(&self) -> f64 {
        let text = std::fs::read_to_string(&self.file).unwrap_or_default();
        if self.v2 {
            let usec = text.lines().find_map(|l| l.strip_prefix("usage_usec ")).and_then(|v| v.trim().parse::<f64>().ok());
            usec.unwrap_or(0.0) / 1000.0
        } else {
            text.trim().parse::<f64>().unwrap_or(0.0) / 1e6
        }
    }
}

/// The sshd processes at the far end of a process's SSH connection to
/// `port` on loopback (the session's privileged monitor and its unprivileged
/// child), and every process below them: the commands of the connection, the
/// long-lived helper session among them. A command that ended was reaped by
/// sshd, so its CPU time lands in sshd's `cutime`. Found on first use, since
/// the connection may open with the first request.
pub struct SshPeer {
    pid: u32,
    port: u16,
    pids: std::sync::OnceLock<Vec<u32>>,
    warned: std::sync::atomic::AtomicBool,
}

impl SshPeer {
    pub fn new(pid: u32, port: u16) -> Self {
        Self { pid, port, pids: std::sync::OnceLock::new(), warned: Default::default() }
    }

    /// Zero until the connection is found.
    pub fn ms(&self) -> f64 {
        if self.pids.get().is_none() {
            match find_peer(self.pid, self.port) {
                Ok(pids) => drop(self.pids.set(pids)),
                Err(e) if !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed) => {
                    eprintln!("  (no CPU time of the ssh side yet: {e:#})")
                }
                Err(_) => {}
            }
        }
        self.pids.get().map_or(0.0, |pids| with_descendants(pids).into_iter().map(process_cpu_ms).sum())
    }
}

/// What a server's CPU time includes beside its own process.
pub enum Remote {
    Container(ContainerCpu),
    Ssh(SshPeer),
}

impl Remote {
    pub fn ms(&self) -> f64 {
        match self {
            Remote::Container(c) => c.ms(),
            Remote::Ssh(s) => s.ms(),
        }
    }
}

/// The sshd processes at the far end of `pid`'s connection to `port`: found
/// through the socket at the other end of it and the processes that hold it.
fn find_peer(pid: u32, port: u16) -> anyhow::Result<Vec<u32>> {
    let ours = socket_inodes(pid);
    let conns = tcp_connections();
    let local_port = conns
        .iter()
        .find(|c| c.remote == port && ours.contains(&c.inode))
        .map(|c| c.local)
        .with_context(|| format!("process {pid} has no TCP connection to port {port}"))?;
    let theirs = conns.iter().find(|c| c.local == port && c.remote == local_port).map(|c| c.inode).context("no socket at the sshd end")?;
    let pids: Vec<u32> = all_pids().filter(|&p| p != pid && socket_inodes(p).contains(&theirs)).collect();
    if pids.is_empty() {
        bail!("no process holds the sshd end of port {local_port}");
    }
    Ok(pids)
}

struct Tcp {
    local: u16,
    remote: u16,
    inode: u64,
}

/// Established TCP connections of /proc/net/tcp and tcp6 (ports and socket inode).
fn tcp_connections() -> Vec<Tcp> {
    let port = |addr: &str| addr.rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table).unwrap_or_default().lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if let (Some(local), Some(remote), Some(inode)) =
                (f.get(1).and_then(|a| port(a)), f.get(2).and_then(|a| port(a)), f.get(9).and_then(|i| i.parse().ok()))
            {
                out.push(Tcp { local, remote, inode });
            }
        }
    }
    out
}

/// The inodes of the sockets process `pid` holds open.
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return HashSet::new() };
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok())
        .collect()
}

/// `roots` and every live process below them.
fn with_descendants(roots: &[u32]) -> HashSet<u32> {
    let parent = |pid: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
    };
    let parents: Vec<(u32, u32)> = all_pids().filter_map(|p| Some((p, parent(p)?))).collect();
    let mut found: HashSet<u32> = roots.iter().copied().collect();
    loop {
        let before = found.len();
        for &(pid, ppid) in &parents {
            if found.contains(&ppid) {
                found.insert(pid);
            }
        }
        if found.len() == before {
            return found;
        }
    }
}

fn all_pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc").into_iter().flatten().flatten().filter_map(|e| e.file_name().to_str()?.parse().ok())
}
