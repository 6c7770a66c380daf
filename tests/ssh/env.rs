//! The SSH environment through the Env trait: what HTTP does not reach yet
//! (writes, renames, processes, PTYs) checked against the real host.
//!
//! Two test binaries include these cases: `ssh.rs` runs them through the
//! helper session (`SESSION = true`), `ssh_channels.rs` with one exec channel
//! per command (`SESSION = false`, the helper kept out with `BURROW_SEARCH=rg`).

use std::time::Duration;

use burrow::env::ssh::{target, SshEnv, SshOptions};
use burrow::env::{Env, EnvError, ExecRequest, PtyInput, PtyRequest, PtySize, WorkspacePath};
use bytes::Bytes;

use super::remote::{scratch, Sshd, FILES};

async fn open(sshd: &Sshd, dir: &str) -> SshEnv {
    if !super::SESSION {
        // Every test of this binary sets the same value: no race that matters.
        std::env::set_var("BURROW_SEARCH", "rg");
    } else if std::env::var_os("BURROW_HELPER_BIN").is_none() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "BURROW_HELPER_BIN must name the static helper build in CI");
        eprintln!("BURROW_HELPER_BIN not set: the helper session is not exercised");
    }
    let opts = SshOptions {
        target: target::resolve(&sshd.spec(), None).unwrap(),
        identity: Some(sshd.key.clone()),
        known_hosts: vec![sshd.known_hosts.clone()],
        accept_new_host_key: false,
        password: None,
        passphrase: None,
    };
    let env = SshEnv::open(opts, dir).await.unwrap();
    let sessions = remote_pids(sshd, &format!("[h]elper serve {dir}"));
    assert_eq!(!sessions.is_empty(), through_session(), "helper session running: {sessions:?}");
    env
}

/// Whether this binary's envs run through the helper session.
fn through_session() -> bool {
    super::SESSION && std::env::var_os("BURROW_HELPER_BIN").is_some()
}

fn wp(p: &str) -> WorkspacePath {
    WorkspacePath::from_relative(p).unwrap()
}

#[tokio::test]
async fn writes_are_atomic_and_confined() {
    let sshd = sshd!();
    let ws = scratch(&sshd, FILES);
    sshd.sh(&format!("cd {} && chmod 751 src/main.rs && ln -s /tmp out-link", ws.root)).unwrap();
    let env = open(&sshd, &ws.root).await;
    // Replace an existing file: new content, same mode, no temp file left behind.
    env.write(&wp("src/main.rs"), Bytes::from_static(b"fn main() {}\n")).await.unwrap();
    assert_eq!(sshd.sh(&format!("cat {}/src/main.rs", ws.root)).unwrap(), "fn main() {}\n");
    assert_eq!(sshd.sh(&format!("stat -c %a {}/src/main.rs", ws.root)).unwrap().trim(), "751");
    assert_eq!(sshd.sh(&format!("ls -A {}/src", ws.root)).unwrap(), "lib.rs\nmain.rs\n");
    // A new file in new folders, larger than one SFTP packet.
    let big: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    env.write(&wp("new/deep/big.bin"), Bytes::from(big.clone())).await.unwrap();
    assert_eq!(env.read(&wp("new/deep/big.bin"), 1 << 20).await.unwrap(), big);
    assert!(matches!(env.read(&wp("new/deep/big.bin"), 1000).await, Err(EnvError::TooLarge { .. })));
    // Rename over an existing file replaces it (plain SFTP rename would refuse).
    env.rename(&wp("src/lib.rs"), &wp("src/main.rs")).await.unwrap();
    assert_eq!(sshd.sh(&format!("cat {}/src/main.rs; ls {}/src", ws.root, ws.root)).unwrap(), format!("{}main.rs\n", FILES[1].1));
    // Through a symlink that leaves the root: refused before anything is written.
    assert!(matches!(env.write(&wp("out-link/escaped.txt"), Bytes::from_static(b"x")).await, Err(EnvError::Escape(_))));
    assert_eq!(sshd.run("test -e /tmp/escaped.txt", b"").unwrap().status.code(), Some(1));
    env.mkdir_all(&wp("a/b/c")).await.unwrap();
    env.remove(&wp("new")).await.unwrap();
    assert_eq!(sshd.sh(&format!("ls {}", ws.root)).unwrap(), "a\nnotes\nout-link\nsrc\ntarget\n");
    assert!(matches!(env.write(&wp("src"), Bytes::new()).await, Err(EnvError::IsADirectory(_))));
}

#[tokio::test]
async fn exec_passes_cwd_env_and_stdin_and_reports_exit_codes() {
    let sshd = sshd!();
    let ws = scratch(&sshd, FILES);
    let env = open(&sshd, &ws.root).await;
    let mut req = ExecRequest::shell("pwd; echo \"$GREETING\"; cat; echo oops >&2; exit 3", wp("src"));
    req.env.insert("GREETING".into(), "it's me".into());
    req.stdin = Some(Bytes::from_static(b"from stdin\n"));
    let out = env.exec(req).await.unwrap().collect(1 << 20, None).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{}/src\nit's me\nfrom stdin\n", ws.root));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    assert_eq!(out.status.and_then(|s| s.code), Some(3));
    // Output before input: a large stdin must not wait on unread output, nor the other way round.
    let mut req = ExecRequest::shell("head -c 3000000 /dev/zero; wc -c", WorkspacePath::root());
    req.stdin = Some(Bytes::from(vec![b'x'; 5_000_000]));
    let out = env.exec(req).await.unwrap().collect(8 << 20, Some(Duration::from_secs(120))).await.unwrap();
    assert!(!out.timed_out);
    assert_eq!(out.stdout.len(), 3_000_000 + "5000000\n".len());
    assert!(out.stdout.ends_with(b"5000000\n"));
}

/// The pids of processes on the host whose command line matches `pattern`, seen over a second connection.
/// (Put a bracket in `pattern`, like `[s]leep`, so pgrep does not match the
/// shell that runs it.)
fn remote_pids(sshd: &Sshd, pattern: &str) -> String {
    sshd.sh(&format!("pgrep -f '{pattern}' || true")).unwrap().trim().to_string()
}

#[tokio::test]
async fn kill_and_timeout_end_the_whole_remote_process_group() {
    let sshd = sshd!();
    let ws = scratch(&sshd, FILES);
    let env = open(&sshd, &ws.root).await;
    for (n, by_timeout) in [(1, false), (2, true)] {
        let tag = format!("{}{n}", 90000 + fastrand::u32(0..9000));
        // A shell with a background child and a foreground child, like a real build.
        let cmd = format!("sleep {tag}1 & sleep {tag}2; wait");
        let process = env.exec(ExecRequest::shell(cmd, WorkspacePath::root())).await.unwrap();
        let pattern = format!("[s]leep {tag}");
        while remote_pids(&sshd, &pattern).lines().count() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if by_timeout {
            let out = process.collect(1024, Some(Duration::from_millis(300))).await.unwrap();
            assert!(out.timed_out);
        } else {
            let control = process.control.clone();
            control.kill().await.unwrap();
            let status = tokio::time::timeout(Duration::from_secs(30), process.exit).await.expect("exit arrives").unwrap();
            assert_eq!((status.code, status.signal), (None, Some(9)));
        }
        // kill() returns once the kill command ran: nothing of the group may be left.
        assert_eq!(remote_pids(&sshd, &pattern), "", "by timeout: {by_timeout}");
    }
}

#[tokio::test]
async fn pty_echoes_resizes_and_exits() {
    let sshd = sshd!();
    let ws = scratch(&sshd, FILES);
    let env = open(&sshd, &ws.root).await;
    let req = PtyRequest { command: "/bin/sh".into(), args: vec![], cwd: wp("src"), env: Default::default(), size: PtySize { rows: 30, cols: 100 } };
    let mut pty = env.pty(req).await.unwrap();
    assert!(pty.pid.is_some());
    pty.input.send(PtyInput::Data(Bytes::from_static(b"stty size; pwd; exit 7\n"))).await.unwrap();
    let mut seen = String::new();
    let read = async {
        while let Some(chunk) = pty.output.recv().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read).await.expect("the PTY closes after exit");
    assert!(seen.contains("30 100") && seen.contains(&format!("{}/src", ws.root)), "{seen:?}");
    let status = pty.exit.await.unwrap();
    assert_eq!(status.code, Some(7));
}

#[tokio::test]
async fn changes_behind_burrows_back_reach_the_watch_channel() {
    use burrow::env::WatchEvent;
    let sshd = sshd!();
    let ws = scratch(&sshd, FILES);
    let env = open(&sshd, &ws.root).await;
    let mut events = env.watch().await.unwrap().expect("the SSH env reports changes");
    assert!(env.capabilities().watch);
    // Drain what the start sent, then change a file with another connection.
    while tokio::time::timeout(Duration::from_millis(300), events.recv()).await.is_ok() {}
    sshd.sh(&format!("echo new > {}/notes/fresh.md", ws.root)).unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.recv().await.expect("the channel stays open") {
                // The helper's watcher names the file.
                WatchEvent::Changed(paths) if paths.iter().any(|p| p.as_str() == "notes/fresh.md") => break "changed",
                // Without a watcher, a periodic rescan is the signal.
                WatchEvent::Rescan if !through_session() => break "rescan",
                _ => {}
            }
        }
    })
    .await
    .expect("a change event arrives");
    assert_eq!(seen, if through_session() { "changed" } else { "rescan" });
}
