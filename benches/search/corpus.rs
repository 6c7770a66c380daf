//! The corpus: the Linux 6.1 source tree from Debian's `linux-source-6.1`
//! package (about 78k files, 1.3 GB), cached outside the repository and made a
//! git repository with one commit.
//!
//! Why a git repository: ripgrep (and so OpenCode) honours `.gitignore` files
//! only inside a git checkout, while Burrow honours them everywhere. With a
//! `.git` all three see the same files. Debian's tarball also appends a stanza
//! to the top-level `.gitignore` that ignores everything at the top level (it
//! is meant for Debian's packaging repository); it is removed, so the tree is
//! the upstream kernel's with its upstream ignore rules.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

const PACKAGE: &str = "linux-source-6.1";
const TARBALL: &str = "./usr/src/linux-source-6.1.tar.xz";

/// The folder to search: `BURROW_BENCH_CORPUS` as is, or the kernel tree,
/// downloaded and prepared on first use.
pub fn prepare() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("BURROW_BENCH_CORPUS") {
        let dir = PathBuf::from(dir);
        if !dir.is_dir() {
            bail!("BURROW_BENCH_CORPUS={} is not a folder", dir.display());
        }
        return Ok(dir);
    }
    let cache = cache_dir()?;
    let corpus = cache.join(PACKAGE);
    if has_commit(&corpus) {
        return Ok(corpus);
    }
    std::fs::create_dir_all(&cache).with_context(|| format!("cannot create {}", cache.display()))?;
    let deb = download(&cache)?;
    let staging = cache.join("staging");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).with_context(|| format!("cannot clear {}", staging.display()))?;
    }
    std::fs::create_dir_all(&staging)?;
    eprintln!("extracting {} ...", deb.display());
    run(Command::new("sh").arg("-c").arg(r#"dpkg-deb --fsys-tarfile "$1" | tar -x --to-stdout "$2" | tar -xJ -C "$3""#).args([
        "sh".as_ref(),
        deb.as_os_str(),
        TARBALL.as_ref(),
        staging.as_os_str(),
    ]))?;
    let tree = staging.join(PACKAGE);
    if !tree.join("Makefile").is_file() {
        bail!("{} did not unpack to {}", deb.display(), tree.display());
    }
    drop_debian_ignore_stanza(&tree.join(".gitignore"))?;
    eprintln!("committing the tree to git (once) ...");
    let git = |args: &[&str]| run(Command::new("git").arg("-C").arg(&tree).args(args));
    git(&["init", "-q"])?;
    git(&["add", "-A"])?;
    git(&["-c", "user.name=burrow-bench", "-c", "user.email=bench@localhost", "commit", "-q", "--no-gpg-sign", "-m", "linux-source-6.1"])?;
    if corpus.exists() {
        std::fs::remove_dir_all(&corpus).with_context(|| format!("cannot clear {}", corpus.display()))?;
    }
    std::fs::rename(&tree, &corpus).with_context(|| format!("cannot move the tree to {}", corpus.display()))?;
    let _ = std::fs::remove_dir_all(&staging);
    Ok(corpus)
}

fn cache_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("BURROW_BENCH_CACHE") {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME").context("neither BURROW_BENCH_CACHE nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache/burrow-bench"))
}

fn has_commit(dir: &Path) -> bool {
    Command::new("git").arg("-C").arg(dir).args(["rev-parse", "--verify", "-q", "HEAD"]).output().is_ok_and(|o| o.status.success())
}

/// The package's `.deb` in `cache`, fetched with `apt-get download` if absent.
fn download(cache: &Path) -> anyhow::Result<PathBuf> {
    if let Some(deb) = find_deb(cache)? {
        return Ok(deb);
    }
    eprintln!("downloading {PACKAGE} with apt-get ...");
    run(Command::new("apt-get").args(["download", PACKAGE]).current_dir(cache))?;
    find_deb(cache)?.with_context(|| format!("apt-get download left no {PACKAGE}_*.deb in {}", cache.display()))
}

fn find_deb(cache: &Path) -> anyhow::Result<Option<PathBuf>> {
    for entry in std::fs::read_dir(cache)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with(&format!("{PACKAGE}_")) && name.ends_with(".deb") {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// Cuts the Debian packaging stanza (`/*` then `!/debian/`) off the end of
/// the top-level `.gitignore`.
fn drop_debian_ignore_stanza(path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    if let Some(cut) = text.find("\n#\n# Debian packaging") {
        std::fs::write(path, format!("{}\n", &text[..cut])).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}
