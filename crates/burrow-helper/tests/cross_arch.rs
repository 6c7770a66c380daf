//! The aarch64 helper, run here under qemu-user (`qemu-aarch64-static`): it
//! greets with its own architecture and build id, and a session over the
//! framed protocol answers a walk, a search and a read exactly as the native
//! helper does over the same tree. So an aarch64 SSH host or container gets a
//! helper that works, even where no aarch64 machine is at hand to test on.
//!
//! The builds come from `BURROW_HELPER_BIN` (native) and
//! `BURROW_HELPER_BIN_AARCH64`, or from where `tests/build-helper.sh` puts
//! them; tests/run.sh builds both and installs qemu-user-static.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use burrow_env::helper::protocol::version_line_for;
use burrow_env::helper::remote::RemoteEnv;
use burrow_env::{Env, GrepRequest, WorkspacePath};
use sha2::{Digest, Sha256};

const QEMU: &str = "qemu-aarch64-static";

/// A helper build: the variable's path, else the one `tests/build-helper.sh`
/// makes for `target`. `None` (outside CI) when there is none.
fn build(var: &str, target: &str) -> Option<PathBuf> {
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target").join(target).join("helper/burrow-helper");
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or(default);
    if path.is_file() {
        return Some(path);
    }
    let arch = target.split('-').next().unwrap_or(target);
    let why = format!("no {target} helper at {} (set {var} or run: bash tests/build-helper.sh {arch})", path.display());
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    eprintln!("{why}; skipping");
    None
}

/// Both builds and qemu, or `None` (outside CI) when one is missing.
fn builds() -> Option<(PathBuf, PathBuf)> {
    let native = build("BURROW_HELPER_BIN", "x86_64-unknown-linux-gnu")?;
    let arm = build("BURROW_HELPER_BIN_AARCH64", "aarch64-unknown-linux-gnu")?;
    let qemu = std::process::Command::new(QEMU).arg("--version").output();
    if !qemu.is_ok_and(|o| o.status.success()) {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{QEMU} is not installed (Debian: apt-get install qemu-user-static)");
        eprintln!("{QEMU} is not installed; skipping");
        return None;
    }
    Some((native, arm))
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// The command that runs `bin`: under qemu when it is the aarch64 build.
fn command(bin: &Path, aarch64: bool) -> tokio::process::Command {
    let mut cmd = if aarch64 {
        let mut cmd = tokio::process::Command::new(QEMU);
        cmd.arg(bin);
        cmd
    } else {
        tokio::process::Command::new(bin)
    };
    cmd.kill_on_drop(true);
    cmd
}

/// `burrow-helper serve root` as a child process, and its client.
async fn session(bin: &Path, aarch64: bool, root: &Path) -> (RemoteEnv, tokio::process::Child) {
    let mut child = command(bin, aarch64).arg("serve").arg(root).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("start the helper");
    let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
    // What a server expects from the build it uploaded to a machine of that architecture.
    let expected = version_line_for(if aarch64 { "aarch64" } else { std::env::consts::ARCH }, &sha256(bin));
    let remote = RemoteEnv::connect(stdout, stdin, &expected).await.unwrap_or_else(|e| panic!("{} greets: {e}", bin.display()));
    (remote, child)
}

#[tokio::test]
async fn the_aarch64_helper_greets_with_its_architecture_and_build_id() {
    let Some((_, arm)) = builds() else { return };
    let out = command(&arm, true).arg("version").output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = String::from_utf8(out.stdout).unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"burrow-helper"), "{line}");
    assert!(words.contains(&"aarch64") && !words.contains(&"x86_64"), "{line}");
    assert_eq!(words.last(), Some(&sha256(&arm).as_str()), "the build id is the file's SHA-256: {line}");
    assert_eq!(line.trim_end(), version_line_for("aarch64", &sha256(&arm)), "the line a server expects of this build");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aarch64_helper_answers_as_the_native_one_does() {
    let Some((native, arm)) = builds() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("src/main.rs", "fn main() {\n    println!(\"needle\");\n}\n"),
        ("src/lib/deep.rs", "// a Needle, twice: needle\nconst X: u8 = 1;\n"),
        ("docs/notes.md", "no match here\nneedle at the end"),
        ("ignored/skip.txt", "needle\n"),
        // Not a git repository: `.ignore` applies here, `.gitignore` would not (ripgrep's rule).
        (".ignore", "ignored/\n"),
    ];
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let root = WorkspacePath::root();
    let mut request = GrepRequest::new(&root, "needle", 100);
    request.case_insensitive = true;

    let mut answers = Vec::new();
    for (bin, aarch64) in [(&native, false), (&arm, true)] {
        let (remote, _child) = session(bin, aarch64, dir.path()).await;
        let mut walk = remote.walk(&root).await.unwrap();
        walk.sort_by(|a, b| a.path.cmp(&b.path));
        let mut found = remote.grep(request.clone()).await.unwrap();
        found.matches.sort_by(|a, b| (&a.path, a.line_number).cmp(&(&b.path, b.line_number)));
        let read = remote.read(&WorkspacePath::from_relative("src/main.rs").unwrap(), 1 << 20).await.unwrap();
        answers.push((walk, found, read));
    }
    let (walk, found, read) = &answers[0];
    assert_eq!(found.matches.len(), 3, "{found:?}");
    assert!(!found.matches.iter().any(|m| m.path.starts_with("ignored")), "ignore rules apply: {found:?}");
    assert!(walk.iter().any(|e| e.path == "src/lib/deep.rs"), "{walk:?}");
    assert_eq!(&read[..], files[0].1.as_bytes());
    assert_eq!(answers[1], answers[0], "the aarch64 helper's walk, search and read equal the native one's");
}
