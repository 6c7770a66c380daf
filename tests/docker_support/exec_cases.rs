//! Processes, PTYs and files through the Docker environment's [`Env`], in
//! process, checked from outside with `docker exec`. Two test binaries run
//! these cases: with the helper session (`docker_exec_helper.rs`) and with
//! the sh scripts and the pid wrapper (`docker_exec_scripts.rs`).

use std::time::Duration;

use burrow::env::{EnvError, ExecRequest, PtyInput, PtyRequest, PtySize, SearchBackend, SharedEnv, WatchEvent, WorkspacePath};
use burrow::envs::EnvSpec;
use bytes::Bytes;

use super::*;

/// Bounds waits for things that must happen; never a performance assertion.
const PATIENCE: Duration = Duration::from_secs(60);

/// A container served in process; removed on drop even when the test fails.
pub struct Box_ {
    pub env: SharedEnv,
    pub name: String,
    _fx: tempfile::TempDir,
}

impl Drop for Box_ {
    fn drop(&mut self) {
        docker(&["rm", "-f", &self.name]);
    }
}

/// Opens a container with the fixture copied in; with `helper`, waits until
/// the helper session serves it. A test binary uses one mode: Burrow reads the
/// helper setting once per process.
pub async fn open(helper: bool) -> Option<Box_> {
    static READY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ready = *READY.get_or_init(|| {
        let bin = if helper {
            match static_helper() {
                Some(bin) => bin,
                None => return false,
            }
        } else {
            std::path::PathBuf::from("/nonexistent/burrow-helper")
        };
        std::env::set_var("BURROW_HELPER_BIN", bin);
        true
    });
    if !ready {
        return None;
    }
    let image = image()?;
    let fx = fixture();
    let name = unique("burrow-exec");
    let spec = EnvSpec {
        env: Some("docker".into()),
        image: Some(image),
        copy: Some(fx.path().to_path_buf()),
        network: Some("none".into()),
        name: Some(name.clone()),
        ..Default::default()
    };
    let env = burrow::env::open::open(&spec).await.expect("docker env opens");
    let want = if helper { SearchBackend::Helper } else { SearchBackend::Stream };
    let deadline = tokio::time::Instant::now() + PATIENCE;
    // The helper installs in the background: wait for the probe to settle.
    while env.capabilities().search != want || env.walk(&WorkspacePath::root()).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "search never became {want:?}: {:?}", env.capabilities());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if helper {
        // Everything goes through `burrow-helper serve` once it runs.
        eventually("the helper session runs", || ps(&name).contains("helper serve")).await;
        env.walk(&WorkspacePath::root()).await.unwrap();
    }
    Some(Box_ { env, name, _fx: fx })
}

fn p(s: &str) -> WorkspacePath {
    WorkspacePath::from_relative(s).unwrap()
}

async fn run(env: &SharedEnv, command: &str) -> burrow::env::process::Collected {
    env.exec(ExecRequest::shell(command, WorkspacePath::root())).await.unwrap().collect(1 << 20, Some(PATIENCE)).await.unwrap()
}

/// Polls `check` until it holds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn commands_run_inside_the_container(b: &Box_) {
    let out = run(&b.env, "hostname; pwd; tr '\\0' ' ' < /proc/1/cmdline").await;
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let hostname = docker_ok(&["inspect", "-f", "{{.Config.Hostname}}", &b.name]);
    assert_eq!(lines.next(), Some(hostname.as_str()), "the container's hostname");
    assert_eq!(lines.next(), Some("/workspace"));
    assert!(lines.next().unwrap().contains("docker-init"), "pid 1 is the container's init: {text}");
    assert_ne!(hostname, std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim());
}

pub async fn files_cross_the_container_boundary(b: &Box_) {
    let env = &b.env;
    env.write(&p("notes/api.txt"), Bytes::from_static(b"written through the API\n")).await.unwrap();
    assert_eq!(sh(&b.name, "cat /workspace/notes/api.txt"), "written through the API");
    sh(&b.name, "printf 'written inside' > /workspace/notes/inside.txt; chmod 755 /workspace/notes/inside.txt");
    assert_eq!(&env.read(&p("notes/inside.txt"), 1 << 20).await.unwrap()[..], b"written inside");
    // Atomic replace keeps the mode and leaves no temporary file behind.
    env.write(&p("notes/inside.txt"), Bytes::from_static(b"replaced")).await.unwrap();
    assert_eq!(sh(&b.name, "stat -c %a /workspace/notes/inside.txt; cat /workspace/notes/inside.txt"), "755\nreplaced");
    assert_eq!(sh(&b.name, "ls -A /workspace/notes"), "api.txt\ninside.txt");
    let mut names: Vec<String> = env.list(&p("notes")).await.unwrap().into_iter().map(|e| e.name).collect();
    names.sort();
    assert_eq!(names, ["api.txt", "inside.txt"]);
    env.rename(&p("notes/api.txt"), &p("moved/api.txt")).await.unwrap();
    env.remove(&p("notes")).await.unwrap();
    assert_eq!(sh(&b.name, "ls -A /workspace/moved; [ -e /workspace/notes ] || echo gone"), "api.txt\ngone");
    // Confinement is checked inside the container: the fixture's etc-link points at its /etc.
    assert!(matches!(env.read(&p("etc-link/passwd"), 1 << 20).await, Err(EnvError::Escape(_))));
    assert!(matches!(env.write(&p("etc-link/evil"), Bytes::from_static(b"x")).await, Err(EnvError::Escape(_))));
    assert!(matches!(env.read(&p("src"), 1 << 20).await, Err(EnvError::IsADirectory(_))));
    assert!(matches!(env.read(&p("src/lib.rs"), 3).await, Err(EnvError::TooLarge { limit: 3, .. })));
}

pub async fn exit_codes_and_streams(b: &Box_) {
    let out = run(&b.env, "echo out; echo err >&2; exit 7").await;
    assert_eq!((&out.stdout[..], &out.stderr[..], out.status.unwrap().code), (&b"out\n"[..], &b"err\n"[..], Some(7)));
    let mut req = ExecRequest::shell("tr a-z A-Z", p("src"));
    req.stdin = Some(Bytes::from_static(b"piped in"));
    req.env.insert("GREETING".into(), "unused".into());
    let out = b.env.exec(req).await.unwrap().collect(1 << 20, Some(PATIENCE)).await.unwrap();
    assert_eq!(&out.stdout[..], b"PIPED IN");
    let out = run(&b.env, "echo $GREETING; printenv GREETING || echo unset").await;
    assert_eq!(&out.stdout[..], b"\nunset\n");
    let mut req = ExecRequest::shell("echo $GREETING", WorkspacePath::root());
    req.env.insert("GREETING".into(), "hi".into());
    assert_eq!(&b.env.exec(req).await.unwrap().collect(1 << 20, None).await.unwrap().stdout[..], b"hi\n");
}

pub async fn output_streams_before_the_exit(b: &Box_) {
    let go = format!("/tmp/go-{}", fastrand::u32(..));
    let cmd = format!("echo first; while [ ! -e {go} ]; do sleep 0.05; done; echo second");
    let mut process = b.env.exec(ExecRequest::shell(cmd, WorkspacePath::root())).await.unwrap();
    let first = tokio::time::timeout(PATIENCE, process.output.recv()).await.unwrap().unwrap();
    assert_eq!(first, burrow::env::Output::Stdout(Bytes::from_static(b"first\n")));
    assert!(process.exit.try_recv().is_err(), "still running while its first line arrived");
    sh(&b.name, &format!("touch {go}"));
    let second = tokio::time::timeout(PATIENCE, process.output.recv()).await.unwrap().unwrap();
    assert_eq!(second, burrow::env::Output::Stdout(Bytes::from_static(b"second\n")));
    assert_eq!(process.exit.await.unwrap().code, Some(0));
}

pub async fn kill_and_timeout_end_the_processes_inside(b: &Box_) {
    let process = b.env.exec(ExecRequest::shell("sleep 1231 & sleep 1232", WorkspacePath::root())).await.unwrap();
    eventually("both sleeps run", || ps(&b.name).contains("sleep 1231") && ps(&b.name).contains("sleep 1232")).await;
    process.control.kill().await.unwrap();
    let status = tokio::time::timeout(PATIENCE, process.exit).await.unwrap().unwrap();
    assert!(!status.success(), "{status:?}");
    eventually("no sleep left", || !ps(&b.name).contains("sleep 123")).await;

    let out = b.env.exec(ExecRequest::shell("sleep 1233", WorkspacePath::root())).await.unwrap();
    let out = out.collect(1 << 20, Some(Duration::from_millis(500))).await.unwrap();
    assert!(out.timed_out);
    eventually("the timed-out sleep is gone", || !ps(&b.name).contains("sleep 1233")).await;
}

pub async fn a_pty_runs_a_shell(b: &Box_) {
    let req = PtyRequest { command: "/bin/sh".into(), args: vec![], cwd: p("src"), env: Default::default(), size: PtySize { rows: 24, cols: 80 } };
    let mut pty = b.env.pty(req).await.unwrap();
    let mut seen = String::new();
    let mut expect = async |pty: &mut burrow::env::Pty, needle: &str| {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !seen.contains(needle) {
            let chunk = tokio::time::timeout_at(deadline, pty.output.recv()).await.unwrap_or_else(|_| panic!("no {needle:?} in {seen:?}"));
            seen.push_str(&String::from_utf8_lossy(&chunk.expect("output open")));
        }
    };
    pty.input.send(PtyInput::Data(Bytes::from_static(b"echo pty-$((6*7)) $(pwd)\n"))).await.unwrap();
    expect(&mut pty, "pty-42 /workspace/src").await;
    pty.input.send(PtyInput::Resize(PtySize { rows: 30, cols: 100 })).await.unwrap();
    pty.input.send(PtyInput::Data(Bytes::from_static(b"stty size\n"))).await.unwrap();
    expect(&mut pty, "30 100").await;
    pty.input.send(PtyInput::Data(Bytes::from_static(b"exit 3\n"))).await.unwrap();
    let status = tokio::time::timeout(PATIENCE, pty.exit).await.unwrap().unwrap();
    assert_eq!(status.code, Some(3));
}

pub async fn changes_reach_the_watch_channel(b: &Box_, helper: bool) {
    let mut events = b.env.watch().await.unwrap().expect("the docker env always reports changes");
    sh(&b.name, "echo x > /workspace/watched.txt");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await.expect("a change event").unwrap() {
            WatchEvent::Changed(paths) if paths.contains(&p("watched.txt")) => break,
            // Without the helper's watcher, a periodic rescan is the signal.
            WatchEvent::Rescan if !helper => break,
            WatchEvent::Rescan | WatchEvent::Overflow | WatchEvent::Changed(_) => {}
        }
    }
}

/// The test functions of one mode: `tests!(true)` with the helper session,
/// `tests!(false)` with scripts and the pid wrapper. (docker.rs, which shares
/// this support module, uses neither.)
#[allow(unused_macros)]
macro_rules! tests {
    ($helper:expr) => {
        $crate::docker_support::exec_cases::tests!(@ $helper; commands_run_inside_the_container, files_cross_the_container_boundary,
            exit_codes_and_streams, output_streams_before_the_exit, kill_and_timeout_end_the_processes_inside, a_pty_runs_a_shell);

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn changes_reach_the_watch_channel() {
            let Some(b) = $crate::docker_support::exec_cases::open($helper).await else { return };
            $crate::docker_support::exec_cases::changes_reach_the_watch_channel(&b, $helper).await;
        }
    };
    (@ $helper:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(b) = $crate::docker_support::exec_cases::open($helper).await else { return };
                $crate::docker_support::exec_cases::$name(&b).await;
            }
        )*
    };
}
#[allow(unused_imports)]
pub(crate) use tests;
