//! `cargo bench -p burrow-env --bench snapshot`: what one workspace snapshot (the store that
//! undo uses, `burrow_env::snapshot`) costs on a large tree: the first one
//! (every file read, compressed and written), then an unchanged tree (the
//! walk and a `stat` per file, no reads), then one file changed.
//!
//! The tree is `BURROW_SNAPSHOT_TREE`, else the Linux source at
//! `/usr/src/linux`. The "one file changed" rounds write a scratch file at the
//! tree's root with new content each time, and remove it at the end. The store
//! goes to a temporary folder (`BURROW_SNAPSHOT_STORE` keeps one between runs,
//! so the first snapshot is paid once). Without `--bench` (as `cargo test
//! --all-targets` runs it) this prints a note and exits. Nothing here asserts a time.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use burrow_env::snapshot::Store;

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
    let unchanged: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(store.track().expect("a snapshot"), first, "the tree changed while measuring");
            t.elapsed()
        })
        .collect();

    // The part of an unchanged snapshot that is the walk itself.
    let walks: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            burrow_search::walk::walk(&tree).expect("a walk");
            t.elapsed()
        })
        .collect();

    let changed_file = tree.join(format!(".burrow-bench-{}", std::process::id()));
    let changed: Vec<Duration> = (0..ROUNDS)
        .map(|i| {
            std::fs::write(&changed_file, format!("round {i}\n")).expect("the scratch file is written");
            let t = Instant::now();
            store.track().expect("a snapshot");
            t.elapsed()
        })
        .collect();
    let _ = std::fs::remove_file(&changed_file);

    println!("| snapshot of `{}` ({files} files) | median | min | max |", tree.display());
    println!("|---|---|---|---|");
    println!("| first (every file read and stored) | {} | | |", ms(first_time));
    for (name, mut times) in [("unchanged tree", unchanged), ("of which the walk (ignore rules, as search)", walks), ("one file changed", changed)] {
        times.sort();
        println!("| {name} | {} | {} | {} |", ms(times[times.len() / 2]), ms(times[0]), ms(times[times.len() - 1]));
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
