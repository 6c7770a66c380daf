//! Snapshots that trust the watcher's journal give the whole walk's tree hash.
//!
//! Each test compares the store that re-reads only the reported paths with a
//! store of the same root that walks every time, after random sequences of
//! creates, edits, mode changes, deletes, renames and folder removals, with
//! ignore rules in play; and it checks (by the store's walk count) that the
//! journal was used, so a store that always walked would fail them.

use std::path::Path;

use notify::event::{EventKind, Flag};

use super::*;
use crate::env::Env;

/// Folders and names the random steps pick from; `*.log` and `ignored/` are
/// ignored by the root's `.gitignore` (the root is a repository).
const DIRS: [&str; 7] = ["", "a", "a/b", "a/b/deep", "c", "ignored", "c/ignored"];
const NAMES: [&str; 4] = ["x.rs", "y.log", "z.txt", "run.sh"];
const GITIGNORE: &str = "*.log\nignored/\n";

fn tree() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(dir.path()).unwrap();
    fs::create_dir_all(root.join(".git")).unwrap();
    fs::write(root.join(".gitignore"), GITIGNORE).unwrap();
    fs::write(root.join("a/b/deep/keep.rs").tap_dir(), "keep\n").unwrap();
    fs::write(root.join("ignored/old.rs").tap_dir(), "ignored\n").unwrap();
    (dir, root)
}

trait TapDir {
    /// The path, after creating its parent folders.
    fn tap_dir(self) -> Self;
}

impl TapDir for PathBuf {
    fn tap_dir(self) -> Self {
        fs::create_dir_all(self.parent().unwrap()).unwrap();
        self
    }
}

/// Every file and folder below `root` (outside `.git`), relative, sorted.
fn present(root: &Path, kind_dir: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            if e.file_name() == ".git" {
                continue;
            }
            let is_dir = e.file_type().unwrap().is_dir();
            if is_dir {
                stack.push(e.path());
            }
            if is_dir == kind_dir {
                out.push(e.path().strip_prefix(root).unwrap().to_str().unwrap().to_string());
            }
        }
    }
    out.sort();
    out
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// One random change to the tree; returns the paths a watcher reports for it.
fn step(root: &Path, rng: &mut fastrand::Rng) -> Vec<String> {
    // The rules stay as they are (a change to them walks, see below).
    let files: Vec<String> = present(root, false).into_iter().filter(|f| f != ".gitignore").collect();
    let dirs: Vec<String> = present(root, true);
    let pick = |rng: &mut fastrand::Rng, v: &[String]| v.get(rng.usize(..v.len().max(1))).cloned();
    match rng.u8(..7) {
        // Create or edit a file (its folders created as needed).
        0 | 1 => {
            let rel = join(DIRS[rng.usize(..DIRS.len())], NAMES[rng.usize(..NAMES.len())]);
            let path = root.join(&rel).tap_dir();
            fs::write(&path, format!("{}\n", rng.u64(..))).unwrap();
            let mut reported = vec![rel.clone()];
            let mut p = rel.as_str();
            while let Some((parent, _)) = p.rsplit_once('/') {
                reported.push(parent.to_string());
                p = parent;
            }
            reported
        }
        // Flip a file's executable bit.
        2 => {
            let Some(rel) = pick(rng, &files) else { return vec![] };
            let path = root.join(&rel);
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode ^ 0o111)).unwrap();
            vec![rel]
        }
        // Delete a file.
        3 => {
            let Some(rel) = pick(rng, &files) else { return vec![] };
            fs::remove_file(root.join(&rel)).unwrap();
            vec![rel]
        }
        // Rename a file into another folder, maybe over another file.
        4 => {
            let Some(from) = pick(rng, &files) else { return vec![] };
            let to = join(DIRS[rng.usize(..DIRS.len())], NAMES[rng.usize(..NAMES.len())]);
            if from == to || root.join(&to).is_dir() {
                return vec![];
            }
            fs::rename(root.join(&from), root.join(&to).tap_dir()).unwrap();
            vec![from, to]
        }
        // Rename a folder (not into itself), maybe into an ignored one.
        5 => {
            let Some(from) = pick(rng, &dirs) else { return vec![] };
            let to = join(["", "c", "ignored"][rng.usize(..3)], ["moved", "b2", "deep"][rng.usize(..3)]);
            if to == from || to.starts_with(&format!("{from}/")) || root.join(&to).exists() {
                return vec![];
            }
            fs::rename(root.join(&from), root.join(&to).tap_dir()).unwrap();
            vec![from, to]
        }
        // Remove a folder with all it holds.
        _ => {
            let Some(rel) = pick(rng, &dirs) else { return vec![] };
            fs::remove_dir_all(root.join(&rel)).unwrap();
            vec![rel]
        }
    }
}

/// The hash a whole walk gives for `root` now.
fn walked(root: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    Store::open(dir.path(), root).unwrap().track().unwrap()
}

fn event(root: &Path, paths: &[String]) -> notify::Result<notify::Event> {
    let mut ev = notify::Event::new(EventKind::Any);
    for p in paths {
        ev = ev.add_path(root.join(p));
    }
    Ok(ev)
}

/// A store whose journal is fed by the test itself (each change reported as
/// it is made, so syncing has nothing to wait for).
fn fed(root: &Path) -> (tempfile::TempDir, Store, Arc<Journal>) {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::new(root, &dir.path().join("watch"));
    journal.started(Box::new(|_| true));
    let store = Store::open(dir.path(), root).unwrap().with_journal(journal.clone());
    (dir, store, journal)
}

#[test]
fn reported_changes_give_the_whole_walks_hash() {
    for seed in 0..20 {
        let (_tmp, root) = tree();
        let (_dir, store, journal) = fed(&root);
        let mut rng = fastrand::Rng::with_seed(seed);
        assert_eq!(store.track().unwrap(), walked(&root));
        for i in 0..25 {
            for _ in 0..rng.usize(0..4) {
                journal.observe(&event(&root, &step(&root, &mut rng)));
            }
            assert_eq!(store.track().unwrap(), walked(&root), "seed {seed}, round {i}");
        }
        assert_eq!(store.walks(), 1, "seed {seed}: only the first snapshot walked");
    }
}

/// An unchanged tree returns the last hash, without reading anything: even a
/// file changed behind the journal's back is not seen. (This is why every
/// doubt about the journal must make the store walk, as the next tests check.)
#[test]
fn an_unchanged_tree_reads_nothing() {
    let (_tmp, root) = tree();
    let (_dir, store, _journal) = fed(&root);
    let first = store.track().unwrap();
    fs::write(root.join("a/unreported.rs"), "x\n").unwrap();
    assert_eq!(store.track().unwrap(), first);
    assert_eq!(store.walks(), 1);
}

#[test]
fn an_overflow_makes_the_next_snapshot_walk() {
    let (_tmp, root) = tree();
    let (_dir, store, journal) = fed(&root);
    store.track().unwrap();
    // A change whose event was lost with the overflow.
    fs::write(root.join("a/lost.rs"), "x\n").unwrap();
    journal.observe(&Ok(notify::Event::new(EventKind::Other).set_flag(Flag::Rescan)));
    assert_eq!(store.track().unwrap(), walked(&root));
    assert_eq!(store.walks(), 2);
    // And the journal is trusted again after that walk.
    fs::write(root.join("c.rs").tap_dir(), "y\n").unwrap();
    journal.observe(&event(&root, &["c.rs".to_string()]));
    assert_eq!(store.track().unwrap(), walked(&root));
    assert_eq!(store.walks(), 2);
}

#[test]
fn a_watcher_error_a_restart_or_a_failed_sync_makes_the_next_snapshot_walk() {
    let (_tmp, root) = tree();
    let (_dir, store, journal) = fed(&root);
    store.track().unwrap();
    fs::write(root.join("a/one.rs"), "1\n").unwrap();
    journal.observe(&Err(notify::Error::generic("a folder could not be watched")));
    assert_eq!(store.track().unwrap(), walked(&root));
    assert_eq!(store.walks(), 2);

    // A new watcher knows nothing of what happened before it started.
    fs::write(root.join("a/two.rs"), "2\n").unwrap();
    journal.started(Box::new(|_| true));
    assert_eq!(store.track().unwrap(), walked(&root));
    assert_eq!(store.walks(), 3);

    // A watcher that cannot say it caught up.
    journal.started(Box::new(|_| false));
    store.track().unwrap();
    fs::write(root.join("a/three.rs"), "3\n").unwrap();
    assert_eq!(store.track().unwrap(), walked(&root));
    assert_eq!(store.walks(), 5);
}

#[test]
fn changed_ignore_rules_make_the_next_snapshot_walk() {
    let (_tmp, root) = tree();
    let (_dir, store, journal) = fed(&root);
    store.track().unwrap();
    // The ignored folder's files become part of the tree.
    fs::write(root.join(".gitignore"), "*.log\n").unwrap();
    journal.observe(&event(&root, &[".gitignore".to_string()]));
    let now = store.track().unwrap();
    assert_eq!(now, walked(&root));
    assert!(store.files(&now).unwrap().contains_key("ignored/old.rs"));
    assert_eq!(store.walks(), 2);
    // Without a repository, `.gitignore` does not count (the walk's rule).
    fs::remove_dir_all(root.join(".git")).unwrap();
    fs::write(root.join(".gitignore"), GITIGNORE).unwrap();
    journal.observe(&event(&root, &[".git".to_string(), ".gitignore".to_string()]));
    assert_eq!(store.track().unwrap(), walked(&root));
    assert_eq!(store.walks(), 3);
}

#[test]
fn an_ignore_file_above_the_root_is_compared_too() {
    let tmp = tempfile::tempdir().unwrap();
    let top = fs::canonicalize(tmp.path()).unwrap();
    fs::create_dir_all(top.join(".git")).unwrap();
    let root = top.join("ws");
    fs::write(root.join("keep.rs").tap_dir(), "k\n").unwrap();
    fs::write(root.join("gen.out"), "g\n").unwrap();
    let (_dir, store, _journal) = fed(&root);
    store.track().unwrap();
    // No watcher of the root sees this.
    fs::write(top.join(".gitignore"), "*.out\n").unwrap();
    let now = store.track().unwrap();
    assert_eq!(now, walked(&root));
    assert!(!store.files(&now).unwrap().contains_key("gen.out"));
    assert_eq!(store.walks(), 2);
}

/// With the real watcher: a local environment's snapshots after random
/// changes, each snapshot synced with the watcher by its marker (no sleeps).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchers_journal_gives_the_whole_walks_hash() {
    for seed in 0..6 {
        let (_tmp, root) = tree();
        let store_dir = tempfile::tempdir().unwrap();
        let env = crate::env::local::LocalEnv::with_snapshot_store(&root, store_dir.path()).unwrap();
        let _events = env.watch().await.unwrap().expect("a watcher");
        let mut rng = fastrand::Rng::with_seed(1000 + seed);
        assert_eq!(env.snapshot_track().await.unwrap(), walked(&root));
        for i in 0..20 {
            for _ in 0..rng.usize(0..4) {
                step(&root, &mut rng);
            }
            assert_eq!(env.snapshot_track().await.unwrap(), walked(&root), "seed {seed}, round {i}");
        }
        assert_eq!(env.snapshot_store().await.unwrap().walks(), 1, "seed {seed}: only the first snapshot walked");
    }
}

/// A folder created with files in it just before a snapshot: the snapshot
/// reads it, and a file added to it right after is seen by the next one (the
/// watcher watches the new folder before the snapshot reads it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_folder_is_watched_before_it_is_read() {
    let (_tmp, root) = tree();
    let store_dir = tempfile::tempdir().unwrap();
    let env = crate::env::local::LocalEnv::with_snapshot_store(&root, store_dir.path()).unwrap();
    let _events = env.watch().await.unwrap().expect("a watcher");
    env.snapshot_track().await.unwrap();
    for i in 0..30 {
        let dir = root.join(format!("new{i}/sub"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("first.rs"), "1\n").unwrap();
        assert_eq!(env.snapshot_track().await.unwrap(), walked(&root), "round {i}, the new folder");
        fs::write(dir.join("second.rs"), "2\n").unwrap();
        assert_eq!(env.snapshot_track().await.unwrap(), walked(&root), "round {i}, a file added to it");
    }
    assert_eq!(env.snapshot_store().await.unwrap().walks(), 1);
}

/// A write through a hard link outside the root gives no event for the
/// root's name of the file, so files with more links are read every time.
#[test]
fn a_file_with_another_link_is_read_every_time() {
    let (_tmp, root) = tree();
    let outside = tempfile::tempdir().unwrap();
    fs::write(root.join("a/shared.rs"), "one\n").unwrap();
    fs::hard_link(root.join("a/shared.rs"), outside.path().join("shared.rs")).unwrap();
    let (_dir, store, _journal) = fed(&root);
    store.track().unwrap();
    fs::write(outside.path().join("shared.rs"), "two\n").unwrap();
    let now = store.track().unwrap();
    assert_eq!(now, walked(&root));
    assert_eq!(store.blob(&store.files(&now).unwrap()["a/shared.rs"].blob).unwrap(), b"two\n");
    assert_eq!(store.walks(), 1);
}
