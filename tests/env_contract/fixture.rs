//! The environments the contract runs over, the tree each one starts with,
//! and a way to look at that tree behind Burrow's back.
//!
//! `BURROW_TEST_ENVS` (a comma list) selects them: `local`, `helper` (an
//! in-process `helper serve` over an in-memory pipe, the code that runs in
//! containers and on SSH hosts), `docker`, `ssh` and `s3`. Without it, `local`
//! and `helper`, which need no service. Docker and SSH each run twice: through
//! the helper session (`docker`, `ssh`) and without a helper (`docker_scripts`:
//! sh scripts and the pid wrapper; `ssh_channels`: one exec channel per
//! command). A selected environment whose service is missing fails in CI
//! (`CI=true`) and is skipped with a note elsewhere.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use burrow::env::{SearchBackend, SharedEnv, WorkspacePath};

use crate::docker_support as docker;
use crate::support::s3::S3;
use crate::support::ssh::Sshd;

/// Bounds waits for things that must happen; never a performance assertion.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// One way of serving the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Local,
    Helper,
    Docker,
    DockerScripts,
    Ssh,
    SshChannels,
    S3,
}

impl Kind {
    /// The `BURROW_TEST_ENVS` name that selects it.
    pub fn selector(self) -> &'static str {
        match self {
            Kind::Local => "local",
            Kind::Helper => "helper",
            Kind::Docker | Kind::DockerScripts => "docker",
            Kind::Ssh | Kind::SshChannels => "ssh",
            Kind::S3 => "s3",
        }
    }

    fn selected(self) -> bool {
        const KNOWN: [&str; 5] = ["local", "helper", "docker", "ssh", "s3"];
        let list = std::env::var("BURROW_TEST_ENVS").ok().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| "local,helper".into());
        let names: Vec<&str> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        if let Some(bad) = names.iter().find(|n| !KNOWN.contains(n)) {
            panic!("unknown environment {bad:?} in BURROW_TEST_ENVS; expected some of {KNOWN:?}");
        }
        names.contains(&self.selector())
    }

    /// Whether calls go through a `burrow-helper serve` session.
    pub fn through_helper(self) -> bool {
        matches!(self, Kind::Helper | Kind::Docker | Kind::Ssh)
    }

    /// Whether processes run there (everywhere but object storage).
    pub fn runs_processes(self) -> bool {
        self != Kind::S3
    }

    /// Whether the environment reports changes as paths (inotify, locally or
    /// in the helper); the others signal a periodic rescan, or nothing.
    pub fn names_changes(self) -> bool {
        matches!(self, Kind::Local | Kind::Helper | Kind::Docker | Kind::Ssh)
    }
}

/// The files every environment starts with. Object storage keeps no
/// symlinks, so `etc-link` (to `/etc`, outside the root) is left out there.
/// A git repository (`.git/HEAD`), so that `.gitignore` applies too (ripgrep's rule).
pub const FILES: [(&str, &str); 10] = [
    ("src/main.rs", "fn main() {\n    println!(\"needle in main\");\n}\n"),
    ("src/lib.rs", "pub fn helper() -> u32 {\n    42 // needle\n}\n"),
    ("README.md", "# Fixture\n"),
    (".ignore", "target/\n"),
    (".gitignore", "*.log\n"),
    (".git/HEAD", "ref: refs/heads/main\n"),
    ("build.log", "needle in a log\n"),
    ("target/debug/junk.rs", "needle in ignored output\n"),
    ("docs/guide.md", "A guide.\n"),
    ("notes/todo.md", "- write the contract\n"),
];

/// The tree of [`FILES`] in a fresh local folder, with the symlink.
fn local_tree() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("burrow-contract-").tempdir().unwrap();
    for (rel, text) in FILES {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    std::os::unix::fs::symlink("/etc", dir.path().join("etc-link")).unwrap();
    dir
}

fn canonical(dir: &Path) -> String {
    std::fs::canonicalize(dir).unwrap().to_str().expect("a UTF-8 temp dir").to_string()
}

/// An environment serving the fixture, and direct access to its files.
pub struct Workspace {
    pub kind: Kind,
    pub env: SharedEnv,
    /// Where the fixture was put, as the environment must name its root.
    pub root: String,
    host: Host,
}

/// Where the files live, for looking behind Burrow's back.
enum Host {
    /// A folder on this machine (local, and the in-process helper).
    Local {
        _dir: tempfile::TempDir,
    },
    Docker {
        name: String,
        _fx: tempfile::TempDir,
    },
    Ssh {
        sshd: Sshd,
    },
    S3 {
        op: opendal::Operator,
        /// The bucket's folder when the service keeps objects as files (s3s-fs).
        files: Option<std::path::PathBuf>,
    },
}

impl Drop for Workspace {
    fn drop(&mut self) {
        match &self.host {
            Host::Docker { name, .. } => {
                docker::docker(&["rm", "-f", name]);
            }
            Host::Ssh { sshd } => {
                let _ = sshd.sh(&format!("rm -rf '{}'", self.root));
            }
            Host::Local { .. } | Host::S3 { .. } => {}
        }
    }
}

pub fn p(s: &str) -> WorkspacePath {
    WorkspacePath::from_relative(s).unwrap()
}

/// Opening an environment of Docker or SSH reads `BURROW_SEARCH` (the
/// method the probe must pick) from the process: the tests that set it take
/// turns until their probe has read it.
static PROBE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Opens `kind` over a fresh copy of the fixture; `None` when it is not
/// selected, or (outside CI) when its service is missing.
pub async fn open(kind: Kind) -> Option<Workspace> {
    if !kind.selected() {
        eprintln!("{kind:?} not selected by BURROW_TEST_ENVS");
        return None;
    }
    let ws = match kind {
        Kind::Local => {
            let dir = local_tree();
            let env: SharedEnv = Arc::new(burrow::env::local::LocalEnv::new(dir.path()).unwrap());
            Workspace { kind, root: canonical(dir.path()), env, host: Host::Local { _dir: dir } }
        }
        Kind::Helper => {
            let dir = local_tree();
            let env = helper_session(dir.path()).await;
            Workspace { kind, root: canonical(dir.path()), env, host: Host::Local { _dir: dir } }
        }
        Kind::Docker | Kind::DockerScripts => open_docker(kind).await?,
        Kind::Ssh | Kind::SshChannels => open_ssh(kind).await?,
        Kind::S3 => open_s3().await?,
    };
    Some(ws)
}

/// `burrow-helper serve` on `dir` in this process, and its client, over two
/// in-memory pipes.
async fn helper_session(dir: &Path) -> SharedEnv {
    use burrow::env::helper::{protocol, remote::RemoteEnv, serve::serve};
    const BUILD: &str = "0123abcd";
    let (client_out, helper_in) = tokio::io::duplex(1 << 16);
    let (helper_out, client_in) = tokio::io::duplex(1 << 16);
    let root = dir.to_string_lossy().into_owned();
    tokio::spawn(async move { serve(&root, BUILD, helper_in, helper_out).await });
    let remote = RemoteEnv::connect(client_in, client_out, &protocol::version_line(BUILD)).await.expect("the helper greets");
    Arc::new(remote)
}

/// Sets where the static helper is (read once per process) and the search
/// method the next probe must pick.
fn choose_method(kind: Kind) -> Option<()> {
    static HELPER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let have_helper = *HELPER.get_or_init(|| match docker::static_helper() {
        Some(bin) => {
            std::env::set_var("BURROW_HELPER_BIN", bin);
            true
        }
        None => false,
    });
    if kind.through_helper() {
        if !have_helper {
            return None;
        }
        std::env::remove_var("BURROW_SEARCH");
    } else {
        // Keeps the helper out: scripts (Docker) or one channel per command (SSH).
        std::env::set_var("BURROW_SEARCH", if kind == Kind::SshChannels { "rg" } else { "stream" });
    }
    Some(())
}

async fn open_docker(kind: Kind) -> Option<Workspace> {
    let image = docker::image()?;
    let fx = local_tree();
    let name = docker::unique("burrow-contract");
    let spec = burrow::envs::EnvSpec {
        env: Some("docker".into()),
        image: Some(image),
        copy: Some(fx.path().to_path_buf()),
        network: Some("none".into()),
        name: Some(name.clone()),
        ..Default::default()
    };
    let turn = PROBE.lock().await;
    choose_method(kind)?;
    let env = burrow::env::open::open(&spec).await.expect("the docker env opens");
    let ws = Workspace { kind, root: "/workspace".into(), env, host: Host::Docker { name: name.clone(), _fx: fx } };
    let want = if kind.through_helper() { SearchBackend::Helper } else { SearchBackend::Stream };
    // The helper installs in the background: wait for the probe to settle.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while ws.env.capabilities().search != want || ws.env.walk(&WorkspacePath::root()).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "search never became {want:?}: {:?}", ws.env.capabilities());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(turn);
    if kind.through_helper() {
        // Everything goes through `burrow-helper serve` once it runs.
        eventually("the helper session runs", || docker::ps(&name).contains("helper serve")).await;
    }
    Some(ws)
}

async fn open_ssh(kind: Kind) -> Option<Workspace> {
    let sshd = match Sshd::from_env() {
        Ok(s) => s,
        Err(e) => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{e:#}");
            eprintln!("skipping: {e:#}");
            return None;
        }
    };
    let tree = local_tree();
    let root = sshd.upload(tree.path(), "contract").expect("the fixture uploads");
    let opts = burrow::env::ssh::SshOptions {
        target: burrow::env::ssh::target::resolve(&sshd.spec(), None).unwrap(),
        identity: Some(sshd.key.clone()),
        known_hosts: vec![sshd.known_hosts.clone()],
        accept_new_host_key: false,
        password: None,
        passphrase: None,
    };
    let turn = PROBE.lock().await;
    if choose_method(kind).is_none() {
        let _ = sshd.sh(&format!("rm -rf '{root}'"));
        return None;
    }
    let env = burrow::env::ssh::SshEnv::open(opts, &root).await.expect("the ssh env opens");
    drop(turn);
    // `serve [--no-text-index] ROOT`: whether the index is kept is not this suite's concern.
    let sessions: Vec<String> = remote_lines(&sshd, "helper serve").into_iter().filter(|l| l.ends_with(&format!(" {root}"))).collect();
    assert_eq!(!sessions.is_empty(), kind.through_helper(), "helper session running: {sessions:?}");
    let env: SharedEnv = Arc::new(env);
    Some(Workspace { kind, root, env, host: Host::Ssh { sshd } })
}

async fn open_s3() -> Option<Workspace> {
    let s3 = S3::require()?;
    let prefix = s3.unique_prefix("contract");
    let files: BTreeMap<&str, Vec<u8>> = FILES.iter().map(|(k, v)| (*k, v.as_bytes().to_vec())).collect();
    s3.upload(&prefix, &files).await;
    let vars: HashMap<String, String> = s3.env();
    let url = format!("s3://{}/{prefix}", s3.bucket);
    let env = burrow::env::object::ObjectEnv::open_with(&url, &burrow::env::object::ObjectArgs::default(), &|k| vars.get(k).cloned())
        .await
        .unwrap_or_else(|e| panic!("{url} opens: {e:#}"));
    let env: SharedEnv = Arc::new(env);
    Some(Workspace { kind: Kind::S3, root: url, env, host: Host::S3 { op: s3.operator(&prefix), files: s3.files() } })
}

impl Workspace {
    /// Makes every object of each snapshot store that holds the tree `tree`
    /// (this workspace's: the tree is the test's own) as old as a year, as
    /// if written then, behind Burrow's back: the helper's or local store's
    /// loose objects, the `git` fallback's, or a bucket's snapshot copies.
    /// Answers how many stores it aged; 0 where the test cannot set an age
    /// (an S3 service other than s3s-fs).
    pub async fn age_snapshot_stores(&self, tree: &str) -> usize {
        let object = format!("objects/{}/{}", &tree[..2], &tree[2..]);
        match &self.host {
            Host::Local { .. } => {
                let base = burrow::env::snapshot::local_base().expect("snapshots were set up (snapshot::init)");
                age_stores_under(base, &object)
            }
            Host::S3 { files, .. } => files.as_deref().map_or(0, |bucket| age_stores_under(bucket, &object)),
            Host::Docker { .. } | Host::Ssh { .. } => {
                // The helper's stores (beside its install folder) and the `git` fallback's.
                let script = format!(
                    "n=0; for d in \"$HOME/.cache/burrow/snapshot\"/* \"${{XDG_CACHE_HOME:-$HOME/.cache}}/burrow/snapshot-git\"/*; do \
                     if [ -f \"$d/{object}\" ]; then find \"$d/objects\" -type f -exec touch -c -t 202501010000 {{}} \\;; n=$((n+1)); fi; done; echo $n"
                );
                self.sh(&script).trim().parse().expect("a count of stores")
            }
        }
    }
}

/// [`Workspace::age_snapshot_stores`] for stores in folders on this machine:
/// every folder below `base` that holds `object` has its `objects/` aged.
fn age_stores_under(base: &Path, object: &str) -> usize {
    fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => files(&entry.path(), out),
                Ok(t) if t.is_file() => out.push(entry.path()),
                _ => {}
            }
        }
    }
    let mut stores = Vec::new();
    let mut todo = vec![base.to_path_buf()];
    while let Some(dir) = todo.pop() {
        if dir.join(object).is_file() {
            stores.push(dir);
            continue;
        }
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(entry.path());
            }
        }
    }
    let then = std::time::SystemTime::now() - Duration::from_secs(365 * 24 * 3600);
    for store in &stores {
        let mut all = Vec::new();
        files(&store.join("objects"), &mut all);
        for f in all {
            let file = std::fs::File::open(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            file.set_modified(then).unwrap();
        }
    }
    stores.len()
}

/// Polls `check` until it holds (state outside Burrow, with no event to wait on).
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The lines of `ps` on the SSH host that contain `needle`.
fn remote_lines(sshd: &Sshd, needle: &str) -> Vec<String> {
    sshd.sh("ps -eo pid,args").unwrap().lines().filter(|l| l.contains(needle)).map(str::to_string).collect()
}

impl Workspace {
    /// Runs a shell script in the root, behind Burrow's back; its stdout.
    /// Object storage runs nothing: a case that needs this checks
    /// [`Kind::runs_processes`] first.
    pub fn sh(&self, script: &str) -> String {
        let run = |mut cmd: std::process::Command| {
            let out = cmd.output().expect("the shell runs");
            assert!(out.status.success(), "{script:?} failed: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        match &self.host {
            Host::Local { .. } => {
                let mut cmd = std::process::Command::new("sh");
                cmd.arg("-c").arg(script).current_dir(&self.root);
                run(cmd)
            }
            Host::Docker { name, .. } => {
                let mut cmd = std::process::Command::new("docker");
                cmd.args(["exec", "-w", &self.root, name, "sh", "-c", script]);
                run(cmd)
            }
            Host::Ssh { sshd } => sshd.sh(&format!("cd '{}' && {script}", self.root)).unwrap(),
            Host::S3 { .. } => panic!("object storage runs no shell ({script:?})"),
        }
    }

    /// The process lines (pid and command line) that contain `needle`, seen
    /// from outside Burrow.
    pub fn processes(&self, needle: &str) -> Vec<String> {
        // procps wants -e for every process; busybox (the container) shows all anyway.
        let all = self.sh("ps -eo pid,args 2>/dev/null || ps -o pid,args 2>/dev/null || ps");
        all.lines().filter(|l| l.contains(needle)).map(str::to_string).collect()
    }

    /// Writes a file behind Burrow's back, creating its folder.
    pub async fn write_behind(&self, rel: &str, data: &[u8]) {
        match &self.host {
            Host::S3 { op, .. } => op.write(rel, data.to_vec()).await.map(drop).unwrap_or_else(|e| panic!("writing {rel}: {e}")),
            Host::Local { .. } => {
                let path = Path::new(&self.root).join(rel);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, data).unwrap();
            }
            Host::Docker { .. } | Host::Ssh { .. } => {
                let text = std::str::from_utf8(data).expect("text written behind the back");
                let q = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
                self.sh(&format!("mkdir -p \"$(dirname {p})\" && printf %s {t} > {p}", p = q(rel), t = q(text)));
            }
        }
    }

    /// A file's bytes read behind Burrow's back; `None` if there is none.
    pub async fn read_behind(&self, rel: &str) -> Option<Vec<u8>> {
        match &self.host {
            Host::S3 { op, .. } => match op.read(rel).await {
                Ok(buf) => Some(buf.to_vec()),
                Err(e) if e.kind() == opendal::ErrorKind::NotFound => None,
                Err(e) => panic!("reading {rel}: {e}"),
            },
            Host::Local { .. } => std::fs::read(Path::new(&self.root).join(rel)).ok(),
            Host::Docker { .. } | Host::Ssh { .. } => {
                use base64::Engine;
                let out = self.sh(&format!("if [ -f '{rel}' ]; then echo file; base64 < '{rel}'; else echo none; fi"));
                let (what, encoded) = out.split_once('\n').unwrap_or((out.as_str(), ""));
                (what == "file").then(|| base64::engine::general_purpose::STANDARD.decode(encoded.replace('\n', "")).unwrap())
            }
        }
    }

    /// The names in a folder (hidden ones included), sorted, seen behind Burrow's back.
    pub async fn names_behind(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = match &self.host {
            Host::S3 { op, .. } => {
                let dir = if rel.is_empty() { "/".to_string() } else { format!("{}/", rel.trim_end_matches('/')) };
                let entries = op.list(&dir).await.unwrap_or_else(|e| panic!("listing {dir}: {e}"));
                // A listing names the folder itself too.
                entries.into_iter().filter(|e| e.path() != dir).map(|e| e.name().trim_end_matches('/').to_string()).collect()
            }
            _ => self.sh(&format!("ls -A '{}'", if rel.is_empty() { "." } else { rel })).lines().map(str::to_string).collect(),
        };
        names.sort();
        names
    }
}
