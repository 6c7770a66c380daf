use std::process::Command;

use super::super::Store;
use super::*;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn write(root: &Path, rel: &str, data: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

/// Every loose object of the store, by id.
fn objects(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for fan in fs::read_dir(dir.join("objects")).unwrap().flatten() {
        for obj in fs::read_dir(fan.path()).unwrap().flatten() {
            out.push(format!("{}{}", fan.file_name().to_string_lossy(), obj.file_name().to_string_lossy()));
        }
    }
    out.sort();
    out
}

/// Makes every object (and any temporary file) `age` old, as if written then.
fn age_all(dir: &Path, age: Duration) {
    let then = SystemTime::now() - age;
    for fan in fs::read_dir(dir.join("objects")).unwrap().flatten() {
        for obj in fs::read_dir(fan.path()).unwrap().flatten() {
            // Gone meanwhile: a concurrent prune removed it.
            if let Ok(file) = fs::File::options().write(true).open(obj.path()) {
                file.set_modified(then).unwrap();
            }
        }
    }
}

/// The ids a snapshot is made of: its trees and blobs.
fn reachable(store: &Store, tree: &str) -> Vec<String> {
    let mut live = HashSet::new();
    mark(store, tree, &mut live).unwrap();
    let mut out: Vec<String> = live.into_iter().collect();
    out.sort();
    out
}

/// `git fsck` on the store: every tree's entries are there (no refs, so
/// objects no tree names are only "dangling", which is not an error).
fn fsck(dir: &Path) {
    let out =
        Command::new("git").arg("--git-dir").arg(dir).args(["fsck", "--full", "--no-dangling"]).env("GIT_CONFIG_NOSYSTEM", "1").output().expect("git runs");
    assert!(out.status.success(), "git fsck: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// Three snapshots, all old: the one a session references stays whole, the
/// others' objects go, and git finds the store consistent.
#[test]
fn old_unreferenced_objects_go_and_referenced_snapshots_stay_whole() {
    let (root, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = Store::open(dir.path(), root.path()).unwrap();
    write(root.path(), "a.txt", "one\n");
    write(root.path(), "keep/deep.txt", "shared by every snapshot\n");
    let first = store.track().unwrap();
    write(root.path(), "a.txt", "two\n");
    write(root.path(), "b.txt", "only in the second\n");
    let second = store.track().unwrap();
    write(root.path(), "a.txt", "three\n");
    let third = store.track().unwrap();
    // No stat cache: a file's blob stays only for a snapshot that names it.
    fs::remove_file(dir.path().join(super::super::STAT_FILE)).ok();
    age_all(dir.path(), 30 * DAY);

    let pruned = store.prune(std::slice::from_ref(&first), DEFAULT_AGE).unwrap();
    assert_eq!(objects(dir.path()), reachable(&store, &first), "exactly the referenced snapshot's objects are left");
    assert_eq!(pruned.kept as usize, reachable(&store, &first).len());
    assert!(pruned.removed >= 4 && pruned.bytes > 0, "{pruned:?}");
    for gone in [&second, &third] {
        assert!(matches!(store.files(gone), Err(EnvError::NotFound(_))), "{gone} was not referenced");
    }
    fsck(dir.path());
    // What stays is usable: undo to it still works.
    store.restore(&first, None).unwrap();
    assert_eq!(fs::read_to_string(root.path().join("a.txt")).unwrap(), "one\n");
    // A second prune finds nothing more to do.
    assert_eq!(store.prune(&[first], DEFAULT_AGE).unwrap().removed, 0);
}

/// Objects younger than the age stay though nothing references them; an old
/// one goes once the age is shorter than its life.
#[test]
fn recent_objects_stay_until_they_are_older_than_the_age() {
    let (root, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = Store::open(dir.path(), root.path()).unwrap();
    write(root.path(), "a.txt", "recent\n");
    let recent = store.track().unwrap();
    let before = objects(dir.path());
    assert_eq!(store.prune(&[], DEFAULT_AGE).unwrap().removed, 0);
    assert_eq!(objects(dir.path()), before);
    assert!(store.files(&recent).is_ok());

    age_all(dir.path(), 3 * DAY);
    fs::remove_file(dir.path().join(super::super::STAT_FILE)).ok();
    assert_eq!(store.prune(&[], DEFAULT_AGE).unwrap().removed, 0, "three days is younger than the default week");
    assert_eq!(store.prune(&[], 2 * DAY).unwrap().removed as usize, before.len(), "but older than two days");
    fsck(dir.path());
}

/// A snapshot of an unchanged tree reuses old objects: its root tree is
/// freshened, and a young tree keeps everything it reaches, so the new
/// snapshot stays whole until a session can reference it.
#[test]
fn a_new_snapshot_of_old_files_keeps_them() {
    let (root, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = Store::open(dir.path(), root.path()).unwrap();
    write(root.path(), "a.txt", "unchanged for a month\n");
    write(root.path(), "sub/b.txt", "this one too\n");
    let old = store.track().unwrap();
    age_all(dir.path(), 30 * DAY);
    // The stat cache is gone: the blobs are found by content, already stored.
    fs::remove_file(dir.path().join(super::super::STAT_FILE)).ok();
    let again = store.track().unwrap();
    assert_eq!(again, old, "the same files, the same tree");

    assert_eq!(store.prune(&[], DEFAULT_AGE).unwrap().removed, 0);
    let files = store.files(&again).unwrap();
    assert_eq!(store.blob(&files["sub/b.txt"].blob).unwrap(), b"this one too\n");
    fsck(dir.path());
}

/// The blobs the stat cache names stay: a snapshot that trusts the cache does
/// not read the file, so its blob must be there.
#[test]
fn blobs_the_stat_cache_names_stay() {
    let (root, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = Store::open(dir.path(), root.path()).unwrap();
    write(root.path(), "a.txt", "cached\n");
    // Old enough on disk to be cached (not racily clean).
    fs::File::options().write(true).open(root.path().join("a.txt")).unwrap().set_modified(SystemTime::now() - DAY).unwrap();
    store.track().unwrap();
    let blob = super::super::object_id("blob", b"cached\n");
    assert!(fs::read_to_string(dir.path().join(super::super::STAT_FILE)).unwrap().contains(&blob));
    age_all(dir.path(), 30 * DAY);
    store.prune(&[], DEFAULT_AGE).unwrap();
    assert_eq!(objects(dir.path()), [blob.as_str()], "the cached blob stays, the unreferenced old tree goes");
    // The next snapshot, from the cache, is whole.
    let next = store.track().unwrap();
    assert_eq!(store.blob(&store.files(&next).unwrap()["a.txt"].blob).unwrap(), b"cached\n");
}

/// The age never goes under [`MIN_AGE`]: a snapshot just taken stays even with
/// an age of zero, until its id is stored somewhere.
#[test]
fn an_age_of_zero_still_keeps_what_was_just_written() {
    let (root, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = Store::open(dir.path(), root.path()).unwrap();
    write(root.path(), "a.txt", "just now\n");
    let hash = store.track().unwrap();
    assert_eq!(store.prune(&[], Duration::ZERO).unwrap().removed, 0);
    assert!(store.files(&hash).is_ok());
}

/// Every store under the base is pruned, without opening (or creating) one;
/// other files and folders there are left alone.
#[test]
fn prune_all_prunes_every_store_under_the_base() {
    let base = tempfile::tempdir().unwrap();
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut keep = Vec::new();
    for (i, root) in [&one, &two].into_iter().enumerate() {
        let dir = base.path().join(format!("store{i}"));
        let store = Store::open(&dir, root.path()).unwrap();
        write(root.path(), "a.txt", &format!("store {i}, kept\n"));
        keep.push(store.track().unwrap());
        write(root.path(), "a.txt", &format!("store {i}, dropped\n"));
        store.track().unwrap();
        fs::remove_file(dir.join(super::super::STAT_FILE)).ok();
        age_all(&dir, 30 * DAY);
    }
    fs::create_dir(base.path().join("not-a-store")).unwrap();
    // Each store is given both stores' snapshots: the other's ids are skipped.
    let total = prune_all(base.path(), &keep, DEFAULT_AGE).unwrap();
    assert_eq!(total.removed, 4, "each store's second tree and blob: {total:?}");
    for (i, kept) in keep.iter().enumerate() {
        let dir = base.path().join(format!("store{i}"));
        fsck(&dir);
        let store =
            Store { dir: dir.clone(), root: Default::default(), lock: Default::default(), journal: None, last: Default::default(), walks: Default::default() };
        assert_eq!(objects(&dir), reachable(&store, kept));
    }
    assert!(base.path().join("not-a-store").is_dir());
    assert_eq!(prune_all(&base.path().join("missing"), &keep, DEFAULT_AGE).unwrap(), SnapshotPruned::default());
}

/// Tracks and prunes on two threads, through two handles on one store (as a
/// server pruning every local store while a workspace snapshots). Before each
/// track every object is made a month old and the stat cache is dropped, so
/// the track reuses old objects that no session references while prunes run
/// without pause. Whatever the interleaving, each snapshot is whole as soon as
/// its track returns (a prune in the middle of a track, or one right after a
/// track that did not freshen its tree, would have removed some of it).
#[test]
fn a_concurrent_track_never_loses_objects() {
    let (root, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = Store::open(dir.path(), root.path()).unwrap();
    write(root.path(), "a.txt", "an old version\n");
    let dropped = store.track().unwrap();
    for i in 0..200 {
        write(root.path(), &format!("dir{}/f{i}.txt", i % 8), &format!("file {i}\n"));
    }
    write(root.path(), "a.txt", "the version every track sees\n");
    let stat = dir.path().join(super::super::STAT_FILE);
    let done = std::sync::atomic::AtomicBool::new(false);
    /// Stops the pruner however the tracking ends: a failed check panics,
    /// and the scope waits for the pruner before the panic goes on.
    struct Stop<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Release);
        }
    }
    let removed = std::thread::scope(|s| {
        let pruner = s.spawn(|| {
            let mut removed = 0;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                removed += prune_dir(dir.path(), &[], DEFAULT_AGE).unwrap().removed;
            }
            removed
        });
        let stop = Stop(&done);
        for round in 0..15 {
            age_all(dir.path(), 30 * DAY);
            fs::remove_file(&stat).ok();
            let hash = store.track().unwrap();
            for (path, entry) in store.files(&hash).unwrap_or_else(|e| panic!("round {round}: {hash}: {e}")) {
                store.blob(&entry.blob).unwrap_or_else(|e| panic!("round {round}: {path} of {hash}: {e}"));
            }
        }
        drop(stop);
        pruner.join().unwrap()
    });
    assert!(removed > 0, "the prunes removed the old version at least");
    assert!(matches!(store.files(&dropped), Err(EnvError::NotFound(_))), "nothing reuses the old version's tree");
    fsck(dir.path());
}
