//! Processes and terminals: where they run, what they get, what they report,
//! and that a kill or a timeout ends the whole process group, checked from
//! outside Burrow. Object storage runs nothing: each case checks that it says
//! so, in its capabilities and with `Unsupported`.

use std::time::Duration;

use burrow::env::{EnvError, ExecRequest, Output, PtyInput, PtyRequest, PtySize, WorkspacePath};
use bytes::Bytes;

use crate::fixture::{eventually, p, Kind, Workspace, FILES, PATIENCE};

/// True (after checking the documented refusal) where processes do not run.
async fn refuses_processes(ws: &Workspace) -> bool {
    if ws.kind.runs_processes() {
        let caps = ws.env.capabilities();
        assert!(caps.exec && caps.pty, "{caps:?}");
        return false;
    }
    let caps = ws.env.capabilities();
    assert!(!caps.exec && !caps.pty, "object storage runs nothing: {caps:?}");
    let exec = ws.env.exec(ExecRequest::shell("true", WorkspacePath::root())).await;
    assert!(matches!(&exec, Err(EnvError::Unsupported(m)) if m.contains("run commands")), "{:?}", exec.err());
    let pty = ws.env.pty(pty_request(24, 80)).await;
    assert!(matches!(&pty, Err(EnvError::Unsupported(m)) if m.contains("open terminals")), "{:?}", pty.err());
    true
}

fn pty_request(rows: u16, cols: u16) -> PtyRequest {
    PtyRequest { command: "/bin/sh".into(), args: vec![], cwd: p("src"), env: Default::default(), size: PtySize { rows, cols } }
}

async fn run(ws: &Workspace, command: &str) -> burrow::env::process::Collected {
    ws.env.exec(ExecRequest::shell(command, WorkspacePath::root())).await.unwrap().collect(1 << 20, Some(PATIENCE)).await.unwrap()
}

/// Commands run where the files are: in the root, and for Docker inside the
/// container (its hostname, its init as pid 1).
pub async fn commands_run_where_the_files_are(ws: &Workspace) {
    if refuses_processes(ws).await {
        return;
    }
    let out = run(ws, "pwd; cat src/main.rs").await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{}\n{}", ws.root, FILES[0].1));
    if matches!(ws.kind, Kind::Docker | Kind::DockerScripts) {
        let out = run(ws, "hostname; tr '\\0' ' ' < /proc/1/cmdline").await;
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        let hostname = ws.sh("hostname").trim().to_string();
        assert_eq!(lines.next(), Some(hostname.as_str()), "the container's hostname");
        assert!(lines.next().unwrap().contains("docker-init"), "pid 1 is the container's init: {text}");
        assert_ne!(hostname, std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim());
    }
}

/// A command gets its folder, its variables (and no others') and its stdin;
/// it reports its streams and its exit code; a large stdin does not wait on
/// unread output, nor the other way round.
pub async fn exec_passes_cwd_env_and_stdin_and_reports_exit_codes(ws: &Workspace) {
    if refuses_processes(ws).await {
        return;
    }
    let env = &ws.env;
    let mut req = ExecRequest::shell("pwd; echo \"$GREETING\"; cat; echo oops >&2; exit 3", p("src"));
    req.env.insert("GREETING".into(), "it's me".into());
    req.stdin = Some(Bytes::from_static(b"from stdin\n"));
    let out = env.exec(req).await.unwrap().collect(1 << 20, Some(PATIENCE)).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{}/src\nit's me\nfrom stdin\n", ws.root));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    assert_eq!(out.status.and_then(|s| s.code), Some(3));

    let out = run(ws, "echo out; echo err >&2; exit 7").await;
    assert_eq!((&out.stdout[..], &out.stderr[..], out.status.unwrap().code), (&b"out\n"[..], &b"err\n"[..], Some(7)));
    let mut req = ExecRequest::shell("tr a-z A-Z", p("src"));
    req.stdin = Some(Bytes::from_static(b"piped in"));
    let out = env.exec(req).await.unwrap().collect(1 << 20, Some(PATIENCE)).await.unwrap();
    assert_eq!(&out.stdout[..], b"PIPED IN");
    // A variable of an earlier command does not leak into the next one.
    let out = run(ws, "echo $GREETING; printenv GREETING || echo unset").await;
    assert_eq!(&out.stdout[..], b"\nunset\n");

    let mut req = ExecRequest::shell("head -c 3000000 /dev/zero; wc -c", WorkspacePath::root());
    req.stdin = Some(Bytes::from(vec![b'x'; 5_000_000]));
    let out = env.exec(req).await.unwrap().collect(8 << 20, Some(Duration::from_secs(120))).await.unwrap();
    assert!(!out.timed_out);
    assert_eq!(out.stdout.len(), 3_000_000 + "5000000\n".len());
    assert!(out.stdout.ends_with(b"5000000\n"), "{:?}", String::from_utf8_lossy(&out.stdout[3_000_000..]));
}

/// Output arrives while the process still runs, not at its exit.
pub async fn output_streams_before_the_exit(ws: &Workspace) {
    if refuses_processes(ws).await {
        return;
    }
    let go = format!(".go-{:08x}", fastrand::u32(..));
    let cmd = format!("echo first; while [ ! -e {go} ]; do sleep 0.05; done; echo second");
    let mut process = ws.env.exec(ExecRequest::shell(cmd, WorkspacePath::root())).await.unwrap();
    let first = tokio::time::timeout(PATIENCE, process.output.recv()).await.unwrap().unwrap();
    assert_eq!(first, Output::Stdout(Bytes::from_static(b"first\n")));
    assert!(process.exit.try_recv().is_err(), "still running while its first line arrived");
    ws.sh(&format!("touch {go}"));
    let second = tokio::time::timeout(PATIENCE, process.output.recv()).await.unwrap().unwrap();
    assert_eq!(second, Output::Stdout(Bytes::from_static(b"second\n")));
    assert_eq!(process.exit.await.unwrap().code, Some(0));
}

/// A kill, and a timeout, end the whole process group: a shell with a
/// background child and a foreground child, like a real build.
pub async fn kill_and_timeout_end_the_whole_process_group(ws: &Workspace) {
    if refuses_processes(ws).await {
        return;
    }
    for by_timeout in [false, true] {
        let tag = format!("{}", 90000 + fastrand::u32(0..9000));
        let cmd = format!("sleep {tag}1 & sleep {tag}2; wait");
        let process = ws.env.exec(ExecRequest::shell(cmd, WorkspacePath::root())).await.unwrap();
        let pattern = format!("sleep {tag}");
        eventually("both sleeps run", || ws.processes(&pattern).len() >= 2).await;
        if by_timeout {
            let out = process.collect(1024, Some(Duration::from_millis(300))).await.unwrap();
            assert!(out.timed_out);
        } else {
            process.control.kill().await.unwrap();
            let status = tokio::time::timeout(PATIENCE, process.exit).await.expect("the exit arrives").unwrap();
            assert_eq!((status.code, status.signal), (None, Some(9)), "killed");
        }
        // Both return once the kill ran: nothing of the group may be left.
        eventually("no sleep of the group is left", || ws.processes(&pattern).is_empty()).await;
    }
}

/// A terminal runs a shell in its folder at its size, follows a resize, and
/// reports the shell's exit code; its output ends when the shell does.
pub async fn a_pty_runs_a_shell(ws: &Workspace) {
    if refuses_processes(ws).await {
        return;
    }
    let mut pty = ws.env.pty(pty_request(30, 100)).await.unwrap();
    assert!(pty.pid.is_some());
    let mut seen = String::new();
    let mut expect = async |pty: &mut burrow::env::Pty, needle: &str| {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !seen.contains(needle) {
            let chunk = tokio::time::timeout_at(deadline, pty.output.recv()).await.unwrap_or_else(|_| panic!("no {needle:?} in {seen:?}"));
            seen.push_str(&String::from_utf8_lossy(&chunk.expect("output open")));
        }
    };
    pty.input.send(PtyInput::Data(Bytes::from_static(b"stty size; echo pty-$((6*7)) $(pwd)\n"))).await.unwrap();
    expect(&mut pty, "30 100").await;
    expect(&mut pty, &format!("pty-42 {}/src", ws.root)).await;
    pty.input.send(PtyInput::Resize(PtySize { rows: 24, cols: 80 })).await.unwrap();
    pty.input.send(PtyInput::Data(Bytes::from_static(b"stty size\n"))).await.unwrap();
    expect(&mut pty, "24 80").await;
    pty.input.send(PtyInput::Data(Bytes::from_static(b"exit 7\n"))).await.unwrap();
    let drained = async { while pty.output.recv().await.is_some() {} };
    tokio::time::timeout(PATIENCE, drained).await.expect("the output closes after the exit");
    let status = tokio::time::timeout(PATIENCE, pty.exit).await.unwrap().unwrap();
    assert_eq!(status.code, Some(7));
}
