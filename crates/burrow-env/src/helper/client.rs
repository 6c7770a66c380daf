//! The server side of the helper: find the static `burrow-helper` builds, install
//! the one for the environment's architecture once, in a folder of the exec user
//! that nobody else can have made (`~/.cache/burrow/helper/<sha256>/`, mode
//! 0700), check its SHA-256 where it lives before every run (the session
//! started at once after the install's own check is the one exception:
//! [`NearSearch::session_command`]), and fall back
//! to `rg --json`, then to POSIX `find` and `grep` ([`super::posix`]), when it
//! cannot run there. `BURROW_SEARCH=helper|rg|grep|stream` forces one method.
//!
//! Backends provide a [`HelperHost`]: a shell and a way to put an executable
//! in place. Everything else — probing, installing, parsing, fallbacks — lives
//! here once for Docker and SSH alike.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::protocol;
use crate::env::process::Collected;
use crate::env::{EntryKind, EnvError, EnvResult, GrepMatch, GrepRequest, GrepResult, IndexEntry, Output, Process, SearchBackend, Submatch};
use crate::search::grep::{clip_line, compile};

/// Walk and search answers larger than this are refused rather than buffered.
const MAX_ANSWER: usize = 512 << 20;
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for another server installing the helper on the same host.
const LOCK_WAIT: Duration = Duration::from_secs(120);
/// How long after the install checked the helper's SHA-256 the first session
/// start may run it without checking again ([`NearSearch::session_command`]).
const FRESH_FOR: Duration = Duration::from_secs(5);

/// What a remote backend gives the helper client.
#[async_trait]
pub trait HelperHost: Send + Sync {
    /// Runs a shell command line in the environment (not confined to the workspace).
    async fn run(&self, command: String, stdin: Option<Bytes>) -> EnvResult<Process>;
    /// Writes `data` to the absolute path `path` in the environment, creating its folder.
    async fn put_file(&self, path: &str, data: Bytes) -> EnvResult<()>;
}

/// How searches run in one environment, decided once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    /// The helper installed there.
    Helper(Installed),
    /// `rg` from the environment's PATH.
    Ripgrep,
    /// POSIX `find` and `grep`, with ignore rules and the regex applied here.
    Grep,
    /// Nothing runs next to the data: the caller streams files.
    Stream,
}

impl Method {
    pub fn backend(&self) -> SearchBackend {
        match self {
            Method::Helper(_) => SearchBackend::Helper,
            Method::Ripgrep => SearchBackend::Ripgrep,
            Method::Grep => SearchBackend::Grep,
            Method::Stream => SearchBackend::Stream,
        }
    }
}

/// A statically linked helper on this machine, for environments of its architecture.
struct LocalHelper {
    path: PathBuf,
    /// `uname -m` of the machines it runs on, read from its ELF header.
    arch: &'static str,
    /// Its SHA-256, hex: the build id it greets with, the name of its install
    /// folder, and what the environment checks before every run.
    sha256: String,
}

/// Variables naming the build for one architecture, beside `BURROW_HELPER_BIN`.
const ARCH_VARS: [(&str, &str); 2] = [("BURROW_HELPER_BIN_X86_64", "x86_64"), ("BURROW_HELPER_BIN_AARCH64", "aarch64")];

/// The static helper builds, computed once per process: each path of
/// `BURROW_HELPER_BIN` (one, or several separated by `:`), then
/// `BURROW_HELPER_BIN_X86_64` and `BURROW_HELPER_BIN_AARCH64`; without any of
/// them, `burrow-helper` next to this binary when it is statically linked.
/// Each file's architecture is read from its ELF header, so the variables
/// only say where to look; an environment gets the build of its `uname -m`
/// ([`pick`]).
fn local_helpers() -> &'static [LocalHelper] {
    static FOUND: OnceLock<Vec<LocalHelper>> = OnceLock::new();
    FOUND.get_or_init(|| {
        let mut paths = helper_paths(|name| std::env::var_os(name));
        if paths.is_empty() {
            paths.extend(std::env::current_exe().ok().map(|me| (me.with_file_name("burrow-helper"), None)));
        }
        load_helpers(paths)
    })
}

/// Where the helper builds are, from the variables `var` reads, each with the
/// architecture its variable promises (`None` for `BURROW_HELPER_BIN`).
fn helper_paths(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Vec<(PathBuf, Option<&'static str>)> {
    let mut paths: Vec<_> = var("BURROW_HELPER_BIN").map(|list| std::env::split_paths(&list).map(|p| (p, None)).collect()).unwrap_or_default();
    for (name, arch) in ARCH_VARS {
        paths.extend(var(name).filter(|p| !p.is_empty()).map(|p| (PathBuf::from(p), Some(arch))));
    }
    paths.retain(|(p, _)| !p.as_os_str().is_empty());
    paths
}

/// Reads the builds at `paths`, keeping static executables of a known
/// architecture (the one their variable promises, when it does) and the
/// first build of each architecture.
fn load_helpers(paths: Vec<(PathBuf, Option<&'static str>)>) -> Vec<LocalHelper> {
    let mut found: Vec<LocalHelper> = Vec::new();
    for (path, promised) in paths {
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!("cannot read helper {}: {e}", path.display());
                continue;
            }
        };
        let Some(arch) = static_elf_arch(&bytes) else {
            tracing::warn!("{} is not a static Linux executable of a known architecture; not using it as the helper", path.display());
            continue;
        };
        if promised.is_some_and(|want| want != arch) {
            tracing::warn!("{} is a helper for {arch}, not {}; not using it", path.display(), promised.unwrap_or_default());
            continue;
        }
        if let Some(first) = found.iter().find(|h| h.arch == arch) {
            tracing::warn!("{} is a second helper for {arch}; using {}", path.display(), first.path.display());
            continue;
        }
        found.push(LocalHelper { path, arch, sha256: hex::encode(Sha256::digest(&bytes)) });
    }
    found
}

/// The build for a machine whose `uname -m` printed `machine`. Linux names
/// 64-bit ARM `aarch64`, BSD-derived systems `arm64`, and some tools call
/// x86_64 `amd64`: they are the same executables.
fn pick<'a>(helpers: &'a [LocalHelper], machine: &str) -> Option<&'a LocalHelper> {
    let arch = match machine.trim() {
        "arm64" | "aarch64" => "aarch64",
        "amd64" | "x86_64" => "x86_64",
        other => other,
    };
    helpers.iter().find(|h| h.arch == arch)
}

/// The architecture (`uname -m`) of a 64-bit little-endian ELF executable
/// without a `PT_INTERP` program header: one that needs no dynamic loader, so
/// it runs in any Linux of that architecture.
fn static_elf_arch(data: &[u8]) -> Option<&'static str> {
    let u16_at = |o: usize| data.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u32_at = |o: usize| data.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let u64_at = |o: usize| data.get(o..o + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize);
    if data.get(..6) != Some(b"\x7fELF\x02\x01") {
        return None;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else { return None };
    const PT_INTERP: u32 = 3;
    if !(0..phnum).all(|i| u32_at(phoff + i * phentsize) != Some(PT_INTERP)) {
        return None;
    }
    match u16_at(0x12)? {
        0x3e => Some("x86_64"),
        0xb7 => Some("aarch64"),
        _ => None,
    }
}

/// Whether `path` is a static executable ([`static_elf_arch`]).
pub fn is_static_elf(path: &Path) -> bool {
    std::fs::read(path).ok().is_some_and(|data| static_elf_arch(&data).is_some())
}

/// A helper installed in the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    /// Its absolute path there.
    pub path: String,
    /// The SHA-256 it must have, hex; also its build id.
    pub sha256: String,
    /// The architecture it was built for (`uname -m`), which its version line names.
    pub arch: String,
}

impl Installed {
    /// A shell command that runs the helper with `args`, after checking where it
    /// lives that the file still has the checksum of the build this server
    /// uploaded: a file swapped since (by anyone who could) is never run.
    pub fn command(&self, args: &[&str]) -> String {
        let path = quote(&self.path);
        let check = format!(
            "set -- $(sha256sum {path} 2>/dev/null); if [ \"$1\" != {sum} ]; then printf 'error\\tUnavailable\\t%s\\n' 'the helper at {shown} does not have the checksum it was installed with' >&2; exit {code}; fi; ",
            sum = self.sha256,
            shown = self.path.replace('\'', ""),
            code = protocol::exit_code(&EnvError::Unavailable(String::new())),
        );
        check + &self.exec(args)
    }

    /// `exec` of the helper with `args`, with no checksum check: only for a
    /// file checked a moment ago ([`NearSearch::session_command`]).
    fn exec(&self, args: &[&str]) -> String {
        let mut cmd = format!("exec {}", quote(&self.path));
        for arg in args {
            cmd.push(' ');
            cmd.push_str(&quote(arg));
        }
        cmd
    }

    /// What this helper's `version` prints and its session greets with.
    pub fn version_line(&self) -> String {
        protocol::version_line_for(&self.arch, &self.sha256)
    }
}

/// Everything the install needs to know about the environment, in one run
/// (each run costs a round trip, and a `docker exec` 50–150 ms): its
/// `uname -m`, then, when a build of that architecture is among the
/// arguments (`ARCH SHA256 VERSION_LINE` per build), the build's install
/// folder, made below the exec user's home and never below a folder someone
/// else could have made first, and whether the helper there is ready (its
/// checksum and its version line are the build's), or else whether this run
/// took the install lock (`mkdir` is atomic): `ready`, `locked` or `busy`.
/// The architecture names map as [`pick`] maps them.
const PROBE_INSTALL: &str = r#"
m=$(uname -m) || exit 1
printf '%s\n' "$m"
case $m in arm64|aarch64) a=aarch64 ;; amd64|x86_64) a=x86_64 ;; *) a=$m ;; esac
build= line=
while [ $# -ge 3 ]; do
  if [ -z "$build" ] && [ "$1" = "$a" ]; then build=$2 line=$3; fi
  shift 3
done
[ -n "$build" ] || exit 0
umask 077
home="${HOME:-/}"
[ "$home" = / ] && home=""
me=$(id -u)
mine() { [ -d "$1" ] && [ ! -L "$1" ] && [ "$(stat -c %u "$1")" = "$me" ]; }
refuse() { printf 'error\tPermissionDenied\t%s belongs to another user\n' "$1" >&2; exit 1; }
for d in "$home/.cache" "$home/.cache/burrow" "$home/.cache/burrow/helper"; do
  [ -e "$d" ] || [ -L "$d" ] || mkdir -m 0700 "$d" || exit 1
  mine "$d" || refuse "$d"
done
d="$home/.cache/burrow/helper/$build"
# Only the build's own folder is replaced when someone else made it: its parent is ours.
if [ -e "$d" ] || [ -L "$d" ]; then mine "$d" || rm -rf "$d" || refuse "$d"; fi
[ -d "$d" ] || mkdir -m 0700 "$d" || exit 1
mine "$d" || refuse "$d"
chmod 0700 "$home/.cache/burrow" "$home/.cache/burrow/helper" "$d"
printf '%s\n' "$d"
p=$d/burrow-helper
# The checksum first: a file that is not the build never runs.
s=$(sha256sum "$p" 2>/dev/null) && [ "${s%% *}" = "$build" ] && [ "$("$p" version 2>/dev/null)" = "$line" ] && { echo ready; exit 0; }
if mkdir "$p.lock" 2>/dev/null; then echo locked; else echo busy; fi
"#;

/// `TMP PATH LOCK SHA256 VERSION_LINE`: puts the uploaded TMP in place
/// (executable, renamed over whatever was at PATH), releases the install
/// lock, and prints `ready` when the helper now has the build's checksum and
/// version line; in one run, as [`PROBE_INSTALL`].
const FINISH_INSTALL: &str = r#"
chmod 700 "$1" && rm -rf "$2" && mv -f "$1" "$2"; r=$?
rmdir "$3" 2>/dev/null
[ "$r" = 0 ] || exit 1
s=$(sha256sum "$2" 2>/dev/null) && [ "${s%% *}" = "$4" ] && [ "$("$2" version 2>/dev/null)" = "$5" ] && echo ready
exit 0
"#;

/// Search next to the data for one environment.
#[derive(Default)]
pub struct NearSearch {
    method: OnceCell<Method>,
    /// When the probe found the helper and checked its SHA-256 (the install
    /// probe's check, or the one after the upload), until the first session
    /// start takes it.
    verified: Mutex<Option<Instant>>,
}

impl NearSearch {
    pub fn new() -> Self {
        Self::default()
    }

    /// The method, probing the environment the first time.
    pub async fn method(&self, host: &dyn HelperHost) -> &Method {
        self.method
            .get_or_init(|| async {
                let method = probe(host).await;
                if matches!(method, Method::Helper(_)) {
                    // Every way the probe answers the helper has just checked its checksum.
                    *self.verified.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                }
                method
            })
            .await
    }

    /// The command line that starts `bin` with `args` as the long-lived
    /// session. It checks the helper's SHA-256 first, as every run does
    /// ([`Installed::command`]), except once: the first start within
    /// [`FRESH_FOR`] of the probe's own check, which is what a workspace's
    /// open does (the install, then at once the session). Hashing the 7 MB
    /// helper costs 0.2–0.3 s in a loaded container, and checking the same
    /// file twice within a second adds nothing, because of where it lives:
    /// the install probe made sure the folder and each one above it up to
    /// `~/.cache` are the exec user's own, mode 0700, and no symlinks, so
    /// only that user (or root) can have swapped the file since. Such a
    /// process could already run anything as that user, which is all the
    /// helper runs as; and in the moment between the check and the start of
    /// a container's open nothing else runs there yet. Later starts (after a
    /// lost session, or long after the install, when the agent's commands
    /// have had time to run as that user) check again.
    pub fn session_command(&self, bin: &Installed, args: &[&str]) -> String {
        let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner()).take();
        if verified.is_some_and(|at| at.elapsed() < FRESH_FOR) {
            bin.exec(args)
        } else {
            bin.command(args)
        }
    }

    /// The method if it was already probed (for capability reports).
    pub fn probed(&self) -> Option<&Method> {
        self.method.get()
    }

    /// Walks `dir` (absolute) next to the data; `None` when the caller must stream.
    pub async fn walk(&self, host: &dyn HelperHost, dir: &str) -> EnvResult<Option<Vec<IndexEntry>>> {
        match self.method(host).await {
            Method::Helper(bin) => {
                let out = finish(run(host, bin.command(&["walk", dir]), None).await?)?;
                protocol::parse_walk(&String::from_utf8_lossy(&out.stdout)).map(Some)
            }
            Method::Ripgrep => {
                let cmd = format!("cd {} && rg --no-config --files --hidden --no-messages --glob '!**/.git/**' .", quote(dir));
                let out = run(host, cmd, None).await?;
                // rg exits 1 when there are no files at all.
                if out.status.and_then(|s| s.code).is_some_and(|c| c > 1) {
                    return Err(protocol::decode_error(out.status.and_then(|s| s.code), &String::from_utf8_lossy(&out.stderr)));
                }
                Ok(Some(files_and_dirs(&String::from_utf8_lossy(&out.stdout))))
            }
            Method::Grep => super::posix::walk(host, dir).await.map(Some),
            Method::Stream => Ok(None),
        }
    }

    /// Searches below `dir` (absolute) next to the data; `None` when the caller must stream.
    pub async fn grep(&self, host: &dyn HelperHost, dir: &str, req: &GrepRequest) -> EnvResult<Option<GrepResult>> {
        // Check the pattern here, so a bad one is the same clear 400 whatever runs it.
        compile(req)?;
        match self.method(host).await {
            Method::Helper(bin) => {
                let body = Bytes::from(serde_json::to_vec(req).map_err(|e| EnvError::Io(e.to_string()))?);
                let out = finish(run(host, bin.command(&["grep", dir]), Some(body)).await?)?;
                protocol::parse_grep(&String::from_utf8_lossy(&out.stdout)).map(Some)
            }
            Method::Ripgrep => ripgrep(host, dir, req).await.map(Some),
            Method::Grep => super::posix::grep(host, dir, req).await.map(Some),
            Method::Stream => Ok(None),
        }
    }
}

pub(crate) fn quote(s: &str) -> String {
    shlex::try_quote(s).map(|q| q.into_owned()).unwrap_or_else(|_| format!("'{}'", s.replace('\'', "")))
}

pub(crate) async fn run(host: &dyn HelperHost, command: String, stdin: Option<Bytes>) -> EnvResult<Collected> {
    host.run(command, stdin).await?.collect(MAX_ANSWER, None).await
}

/// A helper run's output, or the error it reported. No exit status means the
/// connection to the environment went away mid-run.
pub(crate) fn finish(out: Collected) -> EnvResult<Collected> {
    match out.status {
        Some(s) if s.success() => Ok(out),
        None => Err(EnvError::Unavailable(format!("the environment went away before the command finished: {}", String::from_utf8_lossy(&out.stderr).trim()))),
        s => Err(protocol::decode_error(s.and_then(|s| s.code), &String::from_utf8_lossy(&out.stderr))),
    }
}

async fn probe(host: &dyn HelperHost) -> Method {
    let forced = std::env::var("BURROW_SEARCH").ok().filter(|v| !v.is_empty());
    let method = match forced.as_deref() {
        None | Some("helper") => None,
        Some("rg") => Some(Method::Ripgrep),
        Some("grep") => Some(Method::Grep),
        Some("stream") => Some(Method::Stream),
        Some(other) => {
            tracing::warn!("BURROW_SEARCH={other:?} is not one of helper, rg, grep, stream; probing");
            None
        }
    };
    if let Some(m) = method {
        tracing::info!("search method forced by BURROW_SEARCH: {m:?}");
        return m;
    }
    if forced.is_some() {
        tracing::info!("search method forced by BURROW_SEARCH: the helper (probing)");
    }
    match install(host).await {
        Ok(Some(installed)) => {
            tracing::info!("search runs next to the data with the helper at {}", installed.path);
            return Method::Helper(installed);
        }
        Ok(None) => {}
        Err(e) => tracing::warn!("cannot install the search helper: {e}"),
    }
    let has_rg = async {
        let out = run(host, "command -v rg >/dev/null 2>&1 && rg --version".into(), None).await.ok()?;
        out.status.filter(|s| s.success())
    };
    if tokio::time::timeout(PROBE_TIMEOUT, has_rg).await.ok().flatten().is_some() {
        tracing::info!("search falls back to the environment's rg");
        return Method::Ripgrep;
    }
    let has_grep = async {
        let out = run(host, super::posix::PROBE.into(), None).await.ok()?;
        (String::from_utf8_lossy(&out.stdout).trim() == super::posix::PROBE_EXPECT).then_some(())
    };
    if tokio::time::timeout(PROBE_TIMEOUT, has_grep).await.ok().flatten().is_some() {
        tracing::info!("no helper and no rg in the environment: search falls back to its find and grep");
        return Method::Grep;
    }
    tracing::warn!("no helper, rg or grep in the environment: search streams files to the server");
    Method::Stream
}

/// Installs the helper for the environment's architecture unless the same
/// build is already there, and answers where it is.
async fn install(host: &dyn HelperHost) -> EnvResult<Option<Installed>> {
    install_from(host, local_helpers()).await
}

/// [`install`] with these builds to choose from: one run to probe
/// ([`PROBE_INSTALL`]), and when the helper is not there yet, the upload and
/// one run to put it in place ([`FINISH_INSTALL`]).
async fn install_from(host: &dyn HelperHost, helpers: &[LocalHelper]) -> EnvResult<Option<Installed>> {
    if helpers.is_empty() {
        tracing::info!("no static helper build (set BURROW_HELPER_BIN); skipping the helper");
        return Ok(None);
    }
    let mut cmd = format!("sh -c {} sh", quote(PROBE_INSTALL));
    for h in helpers {
        for arg in [h.arch.to_string(), h.sha256.clone(), protocol::version_line_for(h.arch, &h.sha256)] {
            cmd.push(' ');
            cmd.push_str(&quote(&arg));
        }
    }
    let probed = finish(run(host, cmd, None).await?)?;
    let probed = String::from_utf8_lossy(&probed.stdout);
    let mut lines = probed.lines();
    let arch = lines.next().unwrap_or_default().trim();
    let Some(local) = pick(helpers, arch) else {
        let have: Vec<&str> = helpers.iter().map(|h| h.arch).collect();
        tracing::info!("environment is {arch}, the helper builds are for {have:?}: skipping the helper");
        return Ok(None);
    };
    let (Some(dir), Some(state)) = (lines.next().filter(|d| d.starts_with('/')), lines.next()) else {
        return Err(EnvError::Io(format!("the helper install probe answered {probed:?}, not its folder and state")));
    };
    let installed = Installed { path: format!("{dir}/burrow-helper"), sha256: local.sha256.clone(), arch: local.arch.into() };
    let lock = format!("{}.lock", installed.path);
    match state.trim() {
        "ready" => return Ok(Some(installed)),
        "locked" => {}
        // Servers starting together against one host upload once: the first
        // took the lock, the others wait for its helper. A lock left by a
        // server that died is ignored after LOCK_WAIT.
        _ => {
            let expected = installed.version_line();
            let check = || async {
                let out = run(host, format!("{} 2>/dev/null", installed.command(&["version"])), None).await.ok()?;
                (String::from_utf8_lossy(&out.stdout).trim() == expected).then_some(())
            };
            let deadline = tokio::time::Instant::now() + LOCK_WAIT;
            while tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if check().await.is_some() {
                    return Ok(Some(installed));
                }
            }
            tracing::warn!("the helper lock {lock} is stale; installing anyway");
        }
    }
    Ok(upload(host, local, &installed, &lock).await?.then_some(installed))
}

/// Uploads beside the final name and renames, so a half-written file never has
/// it; a file planted at that name is replaced. Releases the install lock;
/// answers whether the helper in place is the build.
async fn upload(host: &dyn HelperHost, local: &LocalHelper, installed: &Installed, lock: &str) -> EnvResult<bool> {
    let tmp = format!("{}.tmp{}", installed.path, fastrand::u32(..));
    let put = async {
        let data = tokio::fs::read(&local.path).await.map_err(|e| EnvError::from_io(e, &local.path.display().to_string()))?;
        host.put_file(&tmp, Bytes::from(data)).await
    };
    if let Err(e) = put.await {
        let _ = run(host, format!("rmdir {} 2>/dev/null", quote(lock)), None).await;
        return Err(e);
    }
    let args = [tmp.as_str(), &installed.path, lock, &installed.sha256, &installed.version_line()].map(quote).join(" ");
    let out = run(host, format!("sh -c {} sh {args}", quote(FINISH_INSTALL)), None).await?;
    if !out.status.is_some_and(|s| s.success()) {
        return Err(EnvError::Io(format!("installing the helper failed: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "ready")
}

/// Every file `rg --files` printed, and the folders they imply.
fn files_and_dirs(listing: &str) -> Vec<IndexEntry> {
    let mut dirs = std::collections::BTreeSet::new();
    let mut entries = Vec::new();
    for line in listing.lines() {
        let path = line.trim_start_matches("./");
        if path.is_empty() {
            continue;
        }
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            dirs.insert(path[..at + i].to_string());
            at += i + 1;
        }
        entries.push(IndexEntry { path: path.to_string(), kind: EntryKind::File });
    }
    entries.extend(dirs.into_iter().map(|path| IndexEntry { path, kind: EntryKind::Directory }));
    entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    entries
}

/// `rg --json` with OpenCode's flags, read as a stream and stopped once the
/// limit is passed.
async fn ripgrep(host: &dyn HelperHost, dir: &str, req: &GrepRequest) -> EnvResult<GrepResult> {
    let mut cmd = format!("cd {} && rg --no-config --json --hidden --no-messages --glob '!**/.git/**'", quote(dir));
    if let Some(glob) = req.include.as_deref().filter(|g| !g.is_empty()) {
        cmd.push_str(&format!(" --glob {}", quote(glob)));
    }
    if req.case_insensitive {
        cmd.push_str(" -i");
    }
    cmd.push_str(&format!(" -- {} .", quote(&req.pattern)));
    let mut process = host.run(cmd, None).await?;
    let mut matches = Vec::new();
    let mut pending = Vec::new();
    let mut stderr = Vec::new();
    let mut cut = false;
    while let Some(chunk) = process.output.recv().await {
        match chunk {
            Output::Stderr(b) => stderr.extend_from_slice(&b),
            Output::Stdout(b) => {
                pending.extend_from_slice(&b);
                while let Some(nl) = pending.iter().position(|&c| c == b'\n') {
                    let line: Vec<u8> = pending.drain(..=nl).collect();
                    if let Some(m) = parse_rg_match(&line) {
                        matches.push(m);
                    }
                }
                if matches.len() > req.limit {
                    cut = true;
                    process.control.kill().await?;
                    break;
                }
            }
        }
    }
    if !cut {
        let code = process.exit.await.ok().and_then(|s| s.code);
        if code.is_some_and(|c| c > 1) {
            return Err(protocol::decode_error(code, &String::from_utf8_lossy(&stderr)));
        }
    }
    matches.sort_unstable_by(|a, b| a.path.cmp(&b.path).then(a.line_number.cmp(&b.line_number)));
    let truncated = matches.len() > req.limit;
    matches.truncate(req.limit);
    Ok(GrepResult { matches, truncated })
}

/// One `rg --json` line, if it is a match.
fn parse_rg_match(line: &[u8]) -> Option<GrepMatch> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    if v.get("type")?.as_str()? != "match" {
        return None;
    }
    let d = v.get("data")?;
    let text = |o: &serde_json::Value| -> Option<Vec<u8>> {
        if let Some(t) = o.get("text").and_then(|t| t.as_str()) {
            return Some(t.as_bytes().to_vec());
        }
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(o.get("bytes")?.as_str()?).ok()
    };
    let path = String::from_utf8_lossy(&text(d.get("path")?)?).trim_start_matches("./").to_string();
    let line_bytes = text(d.get("lines")?)?;
    let submatches = d
        .get("submatches")?
        .as_array()?
        .iter()
        .take(crate::search::grep::MAX_SUBMATCHES)
        .filter_map(|s| {
            let t = String::from_utf8_lossy(&text(s.get("match")?)?).into_owned();
            Some(Submatch { text: t, start: s.get("start")?.as_u64()? as usize, end: s.get("end")?.as_u64()? as usize })
        })
        .collect();
    Some(GrepMatch {
        path,
        line_number: d.get("line_number")?.as_u64()?,
        absolute_offset: d.get("absolute_offset")?.as_u64()?,
        line: clip_line(&line_bytes),
        submatches,
    })
}

#[cfg(test)]
#[path = "install_tests.rs"]
mod install_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rg_listing_implies_dirs() {
        let got = files_and_dirs("./a/b/c.txt\n./d.txt\n");
        let paths: Vec<_> = got.iter().map(|e| (e.path.as_str(), e.kind)).collect();
        assert_eq!(paths, vec![("a", EntryKind::Directory), ("a/b", EntryKind::Directory), ("a/b/c.txt", EntryKind::File), ("d.txt", EntryKind::File)]);
    }

    #[test]
    fn parses_rg_json() {
        let line = br#"{"type":"match","data":{"path":{"text":"./src/a.rs"},"lines":{"text":"  hello\n"},"line_number":2,"absolute_offset":12,"submatches":[{"match":{"text":"hello"},"start":2,"end":7}]}}"#;
        let m = parse_rg_match(line).unwrap();
        assert_eq!((m.path.as_str(), m.line_number, m.absolute_offset, m.line.as_str()), ("src/a.rs", 2, 12, "  hello\n"));
        assert_eq!(m.submatches, vec![Submatch { text: "hello".into(), start: 2, end: 7 }]);
        assert!(parse_rg_match(br#"{"type":"begin","data":{}}"#).is_none());
    }

    fn build(arch: &'static str) -> LocalHelper {
        LocalHelper { path: PathBuf::from(format!("/builds/{arch}")), arch, sha256: format!("sum-{arch}") }
    }

    /// Each machine gets the build of its architecture, whatever name its
    /// `uname -m` uses for it; a machine with no build gets none.
    #[test]
    fn picks_the_build_of_the_machine_architecture() {
        let both = [build("x86_64"), build("aarch64")];
        let picked = |machine: &str| pick(&both, machine).map(|h| h.arch);
        assert_eq!(picked("x86_64\n"), Some("x86_64"));
        assert_eq!(picked("amd64"), Some("x86_64"));
        assert_eq!(picked("aarch64\n"), Some("aarch64"));
        assert_eq!(picked("arm64"), Some("aarch64"));
        assert_eq!(picked("riscv64"), None);
        assert_eq!(picked(""), None);
        assert_eq!(pick(&both[..1], "aarch64").map(|h| h.arch), None, "an aarch64 host without an aarch64 build falls back");
    }

    /// `BURROW_HELPER_BIN` may list several builds; the per-architecture
    /// variables add one each, and promise its architecture.
    #[test]
    fn reads_the_helper_variables() {
        let vars =
            |pairs: &'static [(&'static str, &'static str)]| move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| std::ffi::OsString::from(v));
        assert_eq!(helper_paths(vars(&[])), vec![]);
        assert_eq!(helper_paths(vars(&[("BURROW_HELPER_BIN", "/a:/b")])), vec![(PathBuf::from("/a"), None), (PathBuf::from("/b"), None)]);
        assert_eq!(
            helper_paths(vars(&[("BURROW_HELPER_BIN", "/native"), ("BURROW_HELPER_BIN_AARCH64", "/arm"), ("BURROW_HELPER_BIN_X86_64", "")])),
            vec![(PathBuf::from("/native"), None), (PathBuf::from("/arm"), Some("aarch64"))]
        );
    }

    /// A build is kept only if it is a static executable of the architecture
    /// its variable promises, and only the first of each architecture.
    #[test]
    fn keeps_static_builds_of_the_promised_architecture() {
        let dir = tempfile::tempdir().unwrap();
        let elf = |name: &str, machine: u16| {
            // The smallest header static_elf_arch reads: 64-bit little-endian, no program headers.
            let mut data = vec![0u8; 64];
            data[..6].copy_from_slice(b"\x7fELF\x02\x01");
            data[0x12..0x14].copy_from_slice(&machine.to_le_bytes());
            data[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
            let path = dir.path().join(name);
            std::fs::write(&path, data).unwrap();
            path
        };
        let (x86, arm, arm2) = (elf("x86", 0x3e), elf("arm", 0xb7), elf("arm2", 0xb7));
        let text = dir.path().join("script");
        std::fs::write(&text, "#!/bin/sh\n").unwrap();
        let loaded = load_helpers(vec![
            (text, None),
            (dir.path().join("missing"), None),
            (x86.clone(), Some("aarch64")),
            (arm.clone(), Some("aarch64")),
            (arm2, None),
            (x86.clone(), None),
        ]);
        let got: Vec<_> = loaded.iter().map(|h| (h.path.clone(), h.arch)).collect();
        assert_eq!(got, vec![(arm, "aarch64"), (x86, "x86_64")]);
        assert_eq!(loaded[0].sha256, hex::encode(Sha256::digest(std::fs::read(&loaded[0].path).unwrap())));
    }

    #[test]
    fn detects_static_binaries() {
        // The test binary itself is dynamically linked in a normal build.
        let me = std::env::current_exe().unwrap();
        let dynamic = std::fs::read(&me).unwrap().windows(8).any(|w| w == b"ld-linux");
        assert_eq!(is_static_elf(&me), !dynamic);
        assert!(!is_static_elf(Path::new("/nonexistent")));
    }
}
