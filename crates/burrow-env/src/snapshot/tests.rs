use std::process::Command;

use super::*;

fn setup() -> (tempfile::TempDir, tempfile::TempDir, Store) {
    let root = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), root.path()).unwrap();
    (root, dir, store)
}

fn write(root: &Path, rel: &str, data: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

fn git_available() -> bool {
    Command::new("git").arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn an_empty_tree_has_gits_empty_tree_hash() {
    let (_root, _dir, store) = setup();
    assert_eq!(store.track().unwrap(), EMPTY_TREE);
}

/// The tree hash is the one `git write-tree` gives for the same files, and git
/// reads the store itself: `ls-tree` lists the files, `cat-file` their content.
#[test]
fn git_agrees_on_the_tree_hash_and_reads_the_store() {
    if !git_available() {
        panic!("this test needs git on the PATH");
    }
    let (root, dir, store) = setup();
    write(root.path(), "a.txt", "alpha\n");
    write(root.path(), "b/c.txt", "gamma\n");
    write(root.path(), "b-c/d.txt", "delta\n");
    write(root.path(), "b.d", "sorting: b.d sorts before b/ but after b-c/\n");
    write(root.path(), "run.sh", "#!/bin/sh\necho hi\n");
    fs::set_permissions(root.path().join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    let ours = store.track().unwrap();

    let git_dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(git_dir.path())
            .arg("--work-tree")
            .arg(root.path())
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", git_dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    assert_eq!(git(&["write-tree"]).trim(), ours);

    let ours_git = |args: &[&str]| {
        let out = Command::new("git").arg("--git-dir").arg(dir.path()).args(args).env("HOME", git_dir.path()).output().unwrap();
        assert!(out.status.success(), "git {args:?} on the store: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let listed = ours_git(&["ls-tree", "-r", "--name-only", &ours]);
    assert_eq!(listed.lines().collect::<Vec<_>>(), ["a.txt", "b-c/d.txt", "b.d", "b/c.txt", "run.sh"]);
    assert_eq!(ours_git(&["cat-file", "-p", &format!("{ours}:b/c.txt")]), "gamma\n");
    ours_git(&["fsck", "--no-dangling"]);
}

#[test]
fn changes_name_added_modified_and_deleted_files() {
    let (root, _dir, store) = setup();
    write(root.path(), "keep.txt", "same\n");
    write(root.path(), "edit.txt", "before\n");
    write(root.path(), "gone.txt", "bye\n");
    let a = store.track().unwrap();
    write(root.path(), "edit.txt", "after\n");
    fs::remove_file(root.path().join("gone.txt")).unwrap();
    write(root.path(), "new/made.txt", "hello\n");
    let b = store.track().unwrap();
    let changes = store.changes(&a, &b).unwrap();
    let summary: Vec<(&str, bool, bool)> = changes.iter().map(|c| (c.path.as_str(), c.before.is_some(), c.after.is_some())).collect();
    assert_eq!(summary, [("edit.txt", true, true), ("gone.txt", true, false), ("new/made.txt", false, true)]);
    assert_eq!(store.blob(changes[0].before.as_ref().unwrap()).unwrap(), b"before\n");
    assert_eq!(store.blob(changes[0].after.as_ref().unwrap()).unwrap(), b"after\n");
    assert!(store.changes(&b, &b).unwrap().is_empty());
}

#[test]
fn restore_puts_back_content_deletes_created_files_and_keeps_modes() {
    let (root, _dir, store) = setup();
    write(root.path(), "edit.txt", "before\n");
    write(root.path(), "gone.txt", "bye\n");
    fs::set_permissions(root.path().join("gone.txt"), fs::Permissions::from_mode(0o755)).unwrap();
    let a = store.track().unwrap();
    write(root.path(), "edit.txt", "after\n");
    fs::remove_file(root.path().join("gone.txt")).unwrap();
    write(root.path(), "new/made.txt", "hello\n");
    let b = store.track().unwrap();
    let files: Vec<String> = store.changes(&a, &b).unwrap().into_iter().map(|c| c.path).collect();

    store.restore(&a, Some(&files)).unwrap();
    assert_eq!(fs::read_to_string(root.path().join("edit.txt")).unwrap(), "before\n");
    assert_eq!(fs::read_to_string(root.path().join("gone.txt")).unwrap(), "bye\n");
    assert_eq!(fs::metadata(root.path().join("gone.txt")).unwrap().permissions().mode() & 0o777, 0o755);
    assert!(!root.path().join("new/made.txt").exists());
    assert_eq!(store.track().unwrap(), a);

    store.restore(&b, None).unwrap();
    assert_eq!(fs::read_to_string(root.path().join("edit.txt")).unwrap(), "after\n");
    assert_eq!(fs::read_to_string(root.path().join("new/made.txt")).unwrap(), "hello\n");
}

#[test]
fn an_unchanged_tree_reads_no_file_again() {
    let (root, dir, store) = setup();
    write(root.path(), "a.txt", "alpha\n");
    // Old enough not to be racily clean.
    let old = SystemTime::now() - Duration::from_secs(60);
    fs::File::options().write(true).open(root.path().join("a.txt")).unwrap().set_modified(old).unwrap();
    let first = store.track().unwrap();
    let cached = fs::read_to_string(dir.path().join(STAT_FILE)).unwrap();
    assert!(cached.ends_with(" a.txt\n"), "{cached}");
    // Point the cache at another blob: a second snapshot that trusts the cache shows it.
    let other = store.write_object("blob", b"not what is on disk\n").unwrap();
    let blob = store.files(&first).unwrap()["a.txt"].blob.clone();
    fs::write(dir.path().join(STAT_FILE), cached.replace(&blob, &other)).unwrap();
    let second = store.track().unwrap();
    assert_eq!(store.blob(&store.files(&second).unwrap()["a.txt"].blob).unwrap(), b"not what is on disk\n");
}

#[test]
fn a_racily_clean_file_is_hashed_again() {
    let (root, dir, store) = setup();
    write(root.path(), "a.txt", "one\n");
    store.track().unwrap();
    assert!(!fs::read_to_string(dir.path().join(STAT_FILE)).unwrap_or_default().contains("a.txt"));
    write(root.path(), "a.txt", "two\n");
    let hash = store.track().unwrap();
    assert_eq!(store.blob(&store.files(&hash).unwrap()["a.txt"].blob).unwrap(), b"two\n");
}

#[test]
fn ignored_and_large_files_stay_out() {
    let (root, _dir, store) = setup();
    write(root.path(), ".ignore", "skip.log\n");
    write(root.path(), "skip.log", "noise\n");
    write(root.path(), "big.bin", &"x".repeat(MAX_FILE as usize + 1));
    write(root.path(), "ok.txt", "fine\n");
    let hash = store.track().unwrap();
    assert_eq!(store.files(&hash).unwrap().keys().collect::<Vec<_>>(), [".ignore", "ok.txt"]);
}

#[test]
fn an_interrupted_restore_is_finished_when_the_store_opens() {
    let (root, dir, store) = setup();
    write(root.path(), "a.txt", "old\n");
    write(root.path(), "b.txt", "old\n");
    let a = store.track().unwrap();
    write(root.path(), "a.txt", "new\n");
    write(root.path(), "b.txt", "new\n");
    // As if killed after the journal was written and the first file restored.
    let journal = Restore { hash: a.clone(), files: Some(vec!["a.txt".into(), "b.txt".into()]) };
    fs::write(dir.path().join(JOURNAL), serde_json::to_vec(&journal).unwrap()).unwrap();
    write(root.path(), "a.txt", "old\n");
    drop(store);
    Store::open(dir.path(), root.path()).unwrap();
    assert_eq!(fs::read_to_string(root.path().join("b.txt")).unwrap(), "old\n");
    assert!(!dir.path().join(JOURNAL).exists());
}

#[test]
fn restore_refuses_to_write_through_a_symlinked_folder() {
    let (root, _dir, store) = setup();
    write(root.path(), "sub/a.txt", "old\n");
    let a = store.track().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::remove_dir_all(root.path().join("sub")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("sub")).unwrap();
    let err = store.restore(&a, Some(&["sub/a.txt".to_string()])).unwrap_err();
    assert!(matches!(err, EnvError::Escape(_)), "{err}");
    assert!(!outside.path().join("a.txt").exists());
}

#[test]
fn unknown_and_malformed_ids_are_errors() {
    let (_root, _dir, store) = setup();
    assert!(matches!(store.files(&"0".repeat(40)), Err(EnvError::NotFound(_))));
    assert!(matches!(store.files("nope"), Err(EnvError::InvalidInput(_))));
}
