//! `cargo bench -p burrow-env --bench snapshot`: what one workspace snapshot (the store that
//! undo uses, `burrow_env::snapshot`) costs on a large tree, in two settings:
//!
//! - **no watcher**: every snapshot walks the tree and `stat`s every file
//!   (the stat cache spares the reads): the first one (every file read,
//!   compressed and written), an unchanged tree, one file changed;
//! - **watched**, as a local environment (and the helper next to the files
//!   of Docker and SSH) serves it: the file watcher's journal tells the store
//!   what changed, so an unchanged tree costs a sync with the watcher and one
//!   changed file a partial walk of the folders on its way and its new blob.
//!
//! - **docker** (with `--features docker`, Docker running and
//!   `BURROW_HELPER_BIN` the static helper): the same tree bind-mounted into
//!   a container of `BURROW_SNAPSHOT_IMAGE` (default the offline test image,
//!   `burrow-test-busybox:latest`, networking off), served by the Docker
//!   environment: the helper runs there, its store and watcher next to the
//!   files, and each snapshot is one message to its session. The scratch
//!   files are written on the host, so the helper learns of them from its
//!   watcher as it would of a `bash` edit. Without Docker or the helper the
//!   rows say why instead.
//!
//! The tree is `BURROW_SNAPSHOT_TREE`, else the Linux source at
//! `/usr/src/linux`. The "one file changed" rounds write a scratch file at the
//! tree's root and one in a deep folder with new content each time, and
//! remove them at the end. The store goes to a temporary folder
//! (`BURROW_SNAPSHOT_STORE` keeps one between runs, so the first snapshot is
//! paid once). Without `--bench` (as `cargo test --all-targets` runs it) this
//! prints a note and exits. Nothing here asserts a time.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burrow_env::local::LocalEnv;
use burrow_env::snapshot::Store;
use burrow_env::Env;

const ROUNDS: usize = 7;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("benches/snapshot runs with `cargo bench --bench snapshot`");
        return;
    }
    let tree = std::env::var_os("BURROW_SNAPSHOT_TREE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/src/linux"));
    assert!(tree.is_dir(), "no tree at {} (set BURROW_SNAPSHOT_TREE)", tree.display());
    // As the environments serve it: the real folder (`/usr/src/linux` is often a link).
    let tree = std::fs::canonicalize(&tree).expect("the tree's real path");
    let scratch = tempfile::tempdir().expect("a temporary folder");
    let dir = std::env::var_os("BURROW_SNAPSHOT_STORE").map(PathBuf::from).unwrap_or_else(|| scratch.path().join("store"));
    let store = Store::open(&dir, &tree).expect("the store opens");

    let t = Instant::now();
    let first = store.track().expect("the first snapshot");
    let first_time = t.elapsed();
    let files = store.files(&first).expect("the first snapshot's files").len();

    // The stat cache skips files modified in the last seconds; the tree is older.
    let unchanged = rounds(|_| assert_eq!(store.track().expect("a snapshot"), first, "the tree changed while measuring"));
    // The part of an unchanged snapshot that is the walk itself.
    let walks = rounds(|_| drop(burrow_search::walk::walk(&tree).expect("a walk")));
    let scratch_files = Scratch::new(&tree);
    let changed = scratch_files.rounds(|| drop(store.track().expect("a snapshot")));
    drop(store);

    // Watched: the same store folder (its objects are there), through the local environment.
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let env = LocalEnv::with_snapshot_store(&tree, &dir).expect("the environment");
    let t = Instant::now();
    let _events = rt.block_on(env.watch()).expect("the watcher starts").expect("a watcher");
    let watch_time = t.elapsed();
    let t = Instant::now();
    let watched_first = rt.block_on(env.snapshot_track()).expect("the first watched snapshot");
    let watched_first_time = t.elapsed();
    let watched_unchanged = rounds(|_| assert_eq!(rt.block_on(env.snapshot_track()).expect("a snapshot"), watched_first, "the tree changed while measuring"));
    let watched_changed = scratch_files.rounds(|| drop(rt.block_on(env.snapshot_track()).expect("a snapshot")));
    let walked = rt.block_on(env.snapshot_store()).expect("the store").walks();
    assert_eq!(walked, 1, "only the first watched snapshot walked");
    drop(env);
    let docker = docker::rows(&rt, &tree, &scratch_files);
    drop(scratch_files);

    println!("| snapshot of `{}` ({files} files) | median | min | max |", tree.display());
    println!("|---|---|---|---|");
    println!("| no watcher: first (every file read and stored) | {} | | |", ms(first_time));
    let no_watcher =
        [("no watcher: unchanged tree", unchanged), ("of which the walk (ignore rules, as search)", walks), ("no watcher: one file changed", changed)];
    for (name, times) in no_watcher {
        row(name, times);
    }
    println!("| watched: starting the watcher | {} | | |", ms(watch_time));
    println!("| watched: first (a walk, the stat cache warm) | {} | | |", ms(watched_first_time));
    row("watched: unchanged tree", watched_unchanged);
    row("watched: one file changed", watched_changed);
    match docker {
        Ok(d) => {
            println!("| docker: the helper installed in the new container | {} | | |", ms(d.start));
            println!("| docker: first (the helper session and its watcher start, every file read and stored) | {} | | |", ms(d.first));
            row("docker: unchanged tree", d.unchanged);
            row("docker: one file changed", d.changed);
        }
        Err(why) => println!("| docker: not measured ({why}) | | | |"),
    }
}

/// The Docker rows' times.
#[cfg_attr(not(feature = "docker"), allow(dead_code))]
struct DockerTimes {
    start: Duration,
    first: Duration,
    unchanged: Vec<Duration>,
    changed: Vec<Duration>,
}

#[cfg(not(feature = "docker"))]
mod docker {
    pub(super) fn rows(_: &tokio::runtime::Runtime, _: &std::path::Path, _: &super::Scratch) -> Result<super::DockerTimes, String> {
        Err("built without `--features docker`".into())
    }
}

#[cfg(feature = "docker")]
mod docker {
    use std::path::Path;
    use std::time::Instant;

    use burrow_env::docker::DockerArgs;
    use burrow_env::Env;

    use super::{rounds, DockerTimes, Scratch};

    /// A container with `tree` mounted at `/workspace`, served by the Docker
    /// environment, which removes it when dropped.
    pub(super) fn rows(rt: &tokio::runtime::Runtime, tree: &Path, scratch: &Scratch) -> Result<DockerTimes, String> {
        if std::env::var_os("BURROW_HELPER_BIN").is_none() {
            return Err("BURROW_HELPER_BIN is not set: `bash tests/build-helper.sh` builds the helper".into());
        }
        let image = std::env::var("BURROW_SNAPSHOT_IMAGE").unwrap_or_else(|_| "burrow-test-busybox:latest".into());
        let args = DockerArgs { image: Some(image), mount: Some(tree.to_path_buf()), network: Some("none".into()), ..Default::default() };
        let env = rt.block_on(burrow_env::docker::open(args)).map_err(|e| format!("no container: {e:#}"))?;
        let result = measure(rt, &*env, scratch);
        rt.block_on(env.shutdown());
        result
    }

    fn measure(rt: &tokio::runtime::Runtime, env: &dyn Env, scratch: &Scratch) -> Result<DockerTimes, String> {
        let t = Instant::now();
        // The helper installs in the background after the container starts;
        // nothing announces the end of that probe, so it is polled (a bench,
        // not a test: this wait is not measured as a snapshot).
        rt.block_on(async {
            loop {
                match env.snapshots() {
                    Ok("store") => return Ok(()),
                    Ok(other) => return Err(format!("snapshots by {other}, not the helper's store")),
                    Err(why) if why.starts_with("not known yet") && t.elapsed() < std::time::Duration::from_secs(300) => {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await
                    }
                    Err(why) => return Err(why),
                }
            }
        })?;
        let mut events = rt.block_on(env.watch()).map_err(|e| format!("no watcher: {e}"))?.ok_or("the environment has no watcher")?;
        // Drained, as the server's file index drains it.
        rt.spawn(async move { while events.recv().await.is_some() {} });
        let start = t.elapsed();
        let t = Instant::now();
        let first_tree = rt.block_on(env.snapshot_track()).map_err(|e| format!("the first snapshot: {e}"))?;
        let first = t.elapsed();
        let unchanged = rounds(|_| assert_eq!(rt.block_on(env.snapshot_track()).expect("a snapshot"), first_tree, "the tree changed while measuring"));
        let changed = scratch.rounds(|| drop(rt.block_on(env.snapshot_track()).expect("a snapshot")));
        Ok(DockerTimes { start, first, unchanged, changed })
    }
}

fn rounds(mut f: impl FnMut(usize)) -> Vec<Duration> {
    (0..ROUNDS)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed()
        })
        .collect()
}

fn row(name: &str, mut times: Vec<Duration>) {
    times.sort();
    println!("| {name} | {} | {} | {} |", ms(times[times.len() / 2]), ms(times[0]), ms(times[times.len() - 1]));
}

/// The files the "one file changed" rounds rewrite: at the tree's root, and
/// in its deepest folder (the partial walk then reads every folder on the way).
struct Scratch {
    files: [PathBuf; 2],
}

impl Scratch {
    fn new(tree: &Path) -> Self {
        let deepest = burrow_search::walk::walk(tree)
            .expect("a walk")
            .into_iter()
            .filter(|e| e.kind == burrow_env::EntryKind::Directory)
            .max_by_key(|e| e.path.matches('/').count())
            .map(|e| tree.join(e.path))
            .unwrap_or_else(|| tree.to_path_buf());
        let name = format!(".burrow-bench-{}", std::process::id());
        Self { files: [tree.join(&name), deepest.join(&name)] }
    }

    /// Times `f` after each rewrite of one of the files.
    fn rounds(&self, mut f: impl FnMut()) -> Vec<Duration> {
        (0..ROUNDS)
            .map(|i| {
                std::fs::write(&self.files[i % 2], format!("round {i} {:?}\n", Instant::now())).expect("the scratch file is written");
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
