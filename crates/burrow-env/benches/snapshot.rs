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
