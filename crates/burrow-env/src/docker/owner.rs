//! Which Burrow owns a container, written into its labels, so that the next
//! Burrow can tell an orphan (its creator crashed or was killed) from a
//! container another live Burrow is using.
//!
//! A pid alone is not enough: pids are reused, and the daemon may be shared by
//! several machines. The owner is the machine id, the boot id, the pid and the
//! process start time; a container is orphaned when it comes from this machine
//! and that process no longer runs (another boot, a dead pid, or a pid reused
//! by a younger process).

use std::collections::HashMap;

/// Set on every container Burrow creates.
pub const MANAGED: &str = "burrow.managed";
/// `machine/boot/pid/start` of the creating Burrow.
pub const OWNER: &str = "burrow.owner";
/// Set when the container must outlive its Burrow (`--keep`); never reaped.
pub const KEEP: &str = "burrow.keep";
/// The image and workdir, for people reading `docker ps`.
pub const WORKDIR: &str = "burrow.workdir";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub machine: String,
    pub boot: String,
    pub pid: u32,
    /// Start time of the process in clock ticks since boot (`/proc/PID/stat` field 22).
    pub start: u64,
}

impl Owner {
    /// This process.
    pub fn current() -> Self {
        let pid = std::process::id();
        Self { machine: machine_id(), boot: read_trimmed("/proc/sys/kernel/random/boot_id"), pid, start: process_start(pid).unwrap_or(0) }
    }

    pub fn label(&self) -> String {
        format!("{}/{}/{}/{}", self.machine, self.boot, self.pid, self.start)
    }

    pub fn parse(label: &str) -> Option<Self> {
        let mut parts = label.split('/');
        let owner =
            Self { machine: parts.next()?.to_string(), boot: parts.next()?.to_string(), pid: parts.next()?.parse().ok()?, start: parts.next()?.parse().ok()? };
        parts.next().is_none().then_some(owner)
    }

    /// Whether the Burrow this label names is gone, judged from `here`
    /// (this machine, this boot) with `start_of` telling a pid's start time.
    pub fn is_gone(&self, here: &Owner, start_of: impl Fn(u32) -> Option<u64>) -> bool {
        if self.machine != here.machine {
            // Another machine's Burrow on a shared daemon: not ours to judge.
            return false;
        }
        if self.boot != here.boot {
            return true;
        }
        start_of(self.pid) != Some(self.start)
    }

    /// The labels of a container this Burrow creates.
    pub fn labels(&self, workdir: &str, keep: bool) -> HashMap<String, String> {
        let mut labels = HashMap::from([(MANAGED.to_string(), "1".to_string()), (OWNER.to_string(), self.label()), (WORKDIR.to_string(), workdir.to_string())]);
        if keep {
            labels.insert(KEEP.to_string(), "1".to_string());
        }
        labels
    }
}

/// The environment variable every `docker exec` of Burrow carries, holding
/// the owner's label, so that the next Burrow can find (and end) the
/// processes of one that was killed: children inherit it.
pub const OWNER_ENV: &str = "BURROW_OWNER";

/// `BURROW_OWNER=<label>` of this process, computed once.
pub fn owner_env() -> &'static str {
    static ENV: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ENV.get_or_init(|| format!("{OWNER_ENV}={}", Owner::current().label()))
}

/// The sessions (by session id) of processes whose Burrow is gone, from the
/// `PID SID OWNER` lines of `scripts::OWNED`.
pub fn sessions_of_gone_owners(listing: &str, here: &Owner, start_of: impl Fn(u32) -> Option<u64>) -> Vec<u32> {
    let mut sids: Vec<u32> = listing
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_pid, sid, label) = (fields.next()?, fields.next()?.parse::<u32>().ok()?, fields.next()?);
            let owner = Owner::parse(label)?;
            (owner != *here && owner.is_gone(here, &start_of) && sid > 1).then_some(sid)
        })
        .collect();
    sids.sort_unstable();
    sids.dedup();
    sids
}

/// Decides whether a managed container with these labels should be reaped.
pub fn is_orphan(labels: &HashMap<String, String>, here: &Owner) -> bool {
    if labels.get(MANAGED).map(String::as_str) != Some("1") || labels.contains_key(KEEP) {
        return false;
    }
    match labels.get(OWNER).and_then(|l| Owner::parse(l)) {
        Some(owner) => owner.is_gone(here, process_start),
        None => false,
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_default()
}

fn machine_id() -> String {
    let id = read_trimmed("/etc/machine-id");
    let id = if id.is_empty() { read_trimmed("/var/lib/dbus/machine-id") } else { id };
    if id.is_empty() {
        read_trimmed("/proc/sys/kernel/hostname").replace('/', "_")
    } else {
        id
    }
}

/// The start time of a running process (`/proc/PID/stat` field 22), as the
/// local process records read it.
pub fn process_start(pid: u32) -> Option<u64> {
    crate::groups::start_time(i32::try_from(pid).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_round_trip() {
        let me = Owner::current();
        assert_eq!(me.pid, std::process::id());
        assert!(me.start > 0, "start time of this process");
        assert_eq!(Owner::parse(&me.label()), Some(me.clone()));
        assert_eq!(Owner::parse("a/b/c/d"), None);
        assert_eq!(Owner::parse("a/b/1/2/3"), None);
    }

    #[test]
    fn orphans_are_judged_per_machine_boot_and_pid() {
        let here = Owner { machine: "m".into(), boot: "b".into(), pid: 1, start: 1 };
        let running = |pid: u32| (pid == 7).then_some(70);
        let owner = |machine: &str, boot: &str, pid, start| Owner { machine: machine.into(), boot: boot.into(), pid, start };
        assert!(!owner("m", "b", 7, 70).is_gone(&here, running), "alive");
        assert!(owner("m", "b", 8, 70).is_gone(&here, running), "dead pid");
        assert!(owner("m", "b", 7, 71).is_gone(&here, running), "pid reused");
        assert!(owner("m", "old", 7, 70).is_gone(&here, running), "previous boot");
        assert!(!owner("other", "x", 8, 1).is_gone(&here, running), "another machine");
    }

    #[test]
    fn keep_and_foreign_containers_are_never_orphans() {
        let here = Owner::current();
        let dead = Owner { pid: u32::MAX - 1, ..here.clone() };
        assert!(is_orphan(&dead.labels("/w", false), &here));
        assert!(!is_orphan(&dead.labels("/w", true), &here));
        assert!(!is_orphan(&here.labels("/w", false), &here));
        assert!(!is_orphan(&HashMap::new(), &here));
    }

    #[test]
    fn only_sessions_of_gone_owners_are_picked() {
        let here = Owner { machine: "m".into(), boot: "b".into(), pid: 10, start: 100 };
        let alive = Owner { pid: 20, start: 200, ..here.clone() };
        let dead = Owner { pid: 30, start: 300, ..here.clone() };
        let other_boot = Owner { boot: "old".into(), pid: 40, start: 400, ..here.clone() };
        let other_machine = Owner { machine: "x".into(), pid: 50, start: 500, ..here.clone() };
        let listing = format!(
            "101 101 {}\n102 101 {}\n103 103 {}\n104 104 {}\n105 105 {}\n106 106 {}\nbad line\n",
            dead.label(),
            dead.label(),
            alive.label(),
            other_boot.label(),
            other_machine.label(),
            here.label()
        );
        let start_of = |pid: u32| [(20, 200), (10, 100)].into_iter().find(|(p, _)| *p == pid).map(|(_, s)| s);
        assert_eq!(sessions_of_gone_owners(&listing, &here, start_of), vec![101, 104]);
    }
}
