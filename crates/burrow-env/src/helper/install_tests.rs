//! Installing the helper, against the local machine as the environment: the
//! install folder, a planted file, and the checksum check before each run.

use super::*;
use crate::env::local::LocalEnv;
use crate::helper::posix::tests::LocalHost;

/// A stand-in helper build: a script that prints the version line of its own
/// SHA-256, as the real helper does. `marker` is created if it ever runs.
fn fake_helper(dir: &std::path::Path, name: &str, marker: &str) -> LocalHelper {
    fake_helper_for(std::env::consts::ARCH, dir, name, marker)
}

/// [`fake_helper`] built for `arch`: its version line names that architecture.
fn fake_helper_for(arch: &'static str, dir: &std::path::Path, name: &str, marker: &str) -> LocalHelper {
    let line = protocol::version_line_for(arch, "BUILD").replace("BUILD", "$1");
    let path = dir.join(name);
    let script = format!("#!/bin/sh\ntouch {marker}\nset -- $(sha256sum \"$0\")\necho \"{line}\"\n");
    std::fs::write(&path, script).unwrap();
    let sha256 = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
    LocalHelper { path, arch, sha256 }
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The helper lands in `$HOME/.cache/burrow/helper/<sha256>/`, mode 0700; a
/// file planted at its path (even one that prints the right version line) is
/// replaced without ever running; a file swapped after the install is refused
/// by the checksum check that precedes every run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_replaces_a_planted_helper_and_checks_the_checksum_before_each_run() {
    let home = tempfile::tempdir().unwrap();
    let builds = tempfile::tempdir().unwrap();
    let host = LocalHost(LocalEnv::new(home.path()).unwrap());
    let ours = builds.path().join("ours-ran");
    let planted = builds.path().join("planted-ran");
    let local = fake_helper(builds.path(), "ours", &ours.display().to_string());

    // Someone plants a helper at the install path first, pretending to be the build.
    let dir = home.path().join(".cache/burrow/helper").join(&local.sha256);
    std::fs::create_dir_all(&dir).unwrap();
    let pretender = fake_helper(builds.path(), "pretender", &planted.display().to_string());
    std::fs::copy(&pretender.path, dir.join("burrow-helper")).unwrap();
    std::fs::set_permissions(dir.join("burrow-helper"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();

    let installed = install_from(&host, std::slice::from_ref(&local)).await.unwrap().expect("installed");
    assert_eq!(installed.path, format!("{}/burrow-helper", dir.display()));
    assert_eq!(std::fs::read(&installed.path).unwrap(), std::fs::read(&local.path).unwrap(), "the planted file is replaced");
    assert!(!planted.exists(), "the planted helper never ran");
    assert!(ours.exists(), "our build answered the version check");
    for d in [home.path().join(".cache/burrow"), home.path().join(".cache/burrow/helper"), dir.clone()] {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }

    // Swapped after the install: the run is refused before the file executes.
    std::fs::copy(&pretender.path, &installed.path).unwrap();
    let out = run(&host, installed.command(&["version"]), None).await.unwrap();
    assert!(!out.status.unwrap().success());
    assert!(matches!(protocol::decode_error(out.status.and_then(|s| s.code), &String::from_utf8_lossy(&out.stderr)), EnvError::Unavailable(_)));
    assert!(!planted.exists(), "the swapped file never ran");
}

/// The local machine, claiming to be another architecture: the install probe's `uname -m` prints `machine`.
struct Machine {
    host: LocalHost,
    machine: &'static str,
}

#[async_trait::async_trait]
impl HelperHost for Machine {
    async fn run(&self, command: String, stdin: Option<Bytes>) -> EnvResult<Process> {
        let command = command.replace("$(uname -m)", &format!("$(echo {})", self.machine));
        self.host.run(command, stdin).await
    }
    async fn put_file(&self, path: &str, data: Bytes) -> EnvResult<()> {
        self.host.put_file(path, data).await
    }
}

/// A machine gets the build of its architecture, and that build is accepted
/// by the version line of its own architecture, not the server's: an aarch64
/// host served from x86_64 runs the aarch64 helper; a machine with no build
/// of its architecture gets none (and falls back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_machine_gets_the_build_of_its_architecture() {
    let builds = tempfile::tempdir().unwrap();
    let (x86_ran, arm_ran) = (builds.path().join("x86-ran"), builds.path().join("arm-ran"));
    let x86 = fake_helper_for("x86_64", builds.path(), "x86", &x86_ran.display().to_string());
    let arm = fake_helper_for("aarch64", builds.path(), "arm", &arm_ran.display().to_string());
    let both = [x86, arm];

    let home = tempfile::tempdir().unwrap();
    let host = Machine { host: LocalHost(LocalEnv::new(home.path()).unwrap()), machine: "aarch64" };
    let installed = install_from(&host, &both).await.unwrap().expect("the aarch64 build is installed");
    assert_eq!((installed.arch.as_str(), installed.sha256.as_str()), ("aarch64", both[1].sha256.as_str()));
    assert_eq!(installed.version_line(), protocol::version_line_for("aarch64", &both[1].sha256));
    assert_eq!(std::fs::read(&installed.path).unwrap(), std::fs::read(&both[1].path).unwrap());
    assert!(arm_ran.exists() && !x86_ran.exists(), "only the aarch64 build ran");

    let home = tempfile::tempdir().unwrap();
    let host = Machine { host: LocalHost(LocalEnv::new(home.path()).unwrap()), machine: "riscv64" };
    assert_eq!(install_from(&host, &both).await.unwrap(), None, "no build for riscv64");
    assert!(!home.path().join(".cache/burrow/helper").exists(), "nothing was uploaded");
}

/// The session started right after the probe's own checksum check runs the
/// helper without checking it again, once; a later start, or one long after
/// the check, checks it (so a file swapped meanwhile is refused, as above).
#[test]
fn only_the_first_session_start_right_after_the_check_skips_it() {
    let bin = Installed { path: "/home/u/.cache/burrow/helper/abc/burrow-helper".into(), sha256: "abc".into(), arch: "x86_64".into() };
    let checks = |cmd: &str| cmd.contains("sha256sum") && cmd.contains("abc");
    let search = NearSearch::new();
    assert!(checks(&search.session_command(&bin, &["serve", "/w"])), "nothing was checked yet");

    *search.verified.lock().unwrap() = Some(Instant::now());
    let first = search.session_command(&bin, &["serve", "/w"]);
    assert_eq!(first, "exec /home/u/.cache/burrow/helper/abc/burrow-helper serve /w");
    assert!(checks(&search.session_command(&bin, &["serve", "/w"])), "the next start checks again");

    *search.verified.lock().unwrap() = Instant::now().checked_sub(FRESH_FOR * 2);
    assert!(checks(&search.session_command(&bin, &["serve", "/w"])), "a check long ago does not count");
}
