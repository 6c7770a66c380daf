//! The fixture trees the integration tests serve, built in a temp dir.
//!
//! [`Fixture::standard`] is a small git repository with one of everything a
//! file API must get right: ignored files, binary and image files, nested and
//! unicode names, a hidden file, a very long line, symlinks that leave the
//! tree, and uncommitted changes of every kind. Its commit is made with fixed
//! identities and dates, so the repository (and its root commit, OpenCode's
//! project id) is the same on every run.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;

/// A 1×1 PNG, as the reference capture shows it.
pub const TINY_PNG_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";

/// How many characters OpenCode keeps of a matched line.
pub const LINE_CLIP_CHARS: usize = 2000;

/// The tracked text files of the standard fixture, as committed.
pub const README: &str = "# Fixture\nhello from the readme\n";
pub const MAIN_RS: &str = "fn main() {\n    println!(\"hello world\");\n}\n";
/// What `src/main.rs` holds after the commit (one added line).
pub const MAIN_RS_CHANGED: &str = "fn main() {\n    println!(\"hello world\");\n}\n// changed\n";
pub const LIB_RS: &str = "pub fn greet() -> &'static str {\n    \"hello\"\n}\n";
pub const GUIDE_MD: &str = "# Guide\nhello from docs\n";
pub const DEEP_TXT: &str = "deep\n";
pub const ETE_TXT: &str = "unicode content été\n";
pub const NIHONGO_MD: &str = "# 日本語\nこんにちは hello\n";
pub const HIDDEN: &str = "secret xyz\n";
pub const GITIGNORE: &str = "node_modules/\n*.log\n";
/// Deleted after the commit.
pub const OLD_TXT: &str = "to be deleted\n";
/// Untracked, created after the commit.
pub const NEW_TXT: &str = "new untracked\nsecond line\n";

/// The long line of `long.txt`: a match at the start, then 2500 two-byte
/// characters, so clipping by characters and by bytes give different answers.
pub fn long_line() -> String {
    format!("needle_long {}", "é".repeat(2500))
}

/// The bytes 0 to 255, once each: binary by any rule.
pub fn binary_bytes() -> Vec<u8> {
    (0..=255u8).collect()
}

pub fn tiny_png() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(TINY_PNG_BASE64).expect("valid base64")
}

/// A tree on disk, removed when dropped.
pub struct Fixture {
    dir: tempfile::TempDir,
    /// The first commit of the repository (OpenCode's project id), when it is one.
    pub root_commit: Option<String>,
}

impl Fixture {
    /// The fixture tree (`<tempdir>/ws`, so a sibling outside it exists too).
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("ws")
    }

    /// A folder next to the tree, outside it, for escape tests.
    pub fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    /// The standard conformance tree:
    ///
    /// ```text
    /// .gitignore  .hidden  README.md  bin.dat  img.png  long.txt  日本語.md
    /// src/{main.rs,lib.rs}  docs/guide.md  a/b/c/deep.txt  données/été.txt
    /// escape -> /etc   passwd_link -> /etc/passwd   readme_link -> README.md  (committed)
    /// node_modules/pkg/index.js  debug.log                      (ignored)
    /// src/main.rs modified, old.txt deleted, new.txt untracked  (after the commit)
    /// ```
    pub fn standard() -> Self {
        let dir = tempfile::Builder::new().prefix("burrow-fixture-").tempdir().expect("temp dir");
        let root = dir.path().join("ws");
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/secret.txt"), "outside the workspace\n").unwrap();

        let text: &[(&str, &str)] = &[
            (".gitignore", GITIGNORE),
            (".hidden", HIDDEN),
            ("README.md", README),
            ("src/main.rs", MAIN_RS),
            ("src/lib.rs", LIB_RS),
            ("docs/guide.md", GUIDE_MD),
            ("a/b/c/deep.txt", DEEP_TXT),
            ("données/été.txt", ETE_TXT),
            ("日本語.md", NIHONGO_MD),
            ("old.txt", OLD_TXT),
            // Ignored: they contain what searches look for, and must not be found.
            ("node_modules/pkg/index.js", "module.exports = 'hello xyz';\n"),
            ("debug.log", "hello xyz from a log\n"),
        ];
        for (rel, content) in text {
            write(&root, rel, content.as_bytes());
        }
        write(&root, "long.txt", format!("short line\n{}\n", long_line()).as_bytes());
        write(&root, "bin.dat", &binary_bytes());
        write(&root, "img.png", &tiny_png());
        std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("passwd_link")).unwrap();
        std::os::unix::fs::symlink("README.md", root.join("readme_link")).unwrap();

        git(&root, &["init", "-q", "-b", "main"]);
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-q", "-m", "fixture"]);
        let root_commit = git(&root, &["rev-list", "--max-parents=0", "HEAD"]).trim().to_string();

        write(&root, "src/main.rs", MAIN_RS_CHANGED.as_bytes());
        std::fs::remove_file(root.join("old.txt")).unwrap();
        write(&root, "new.txt", NEW_TXT.as_bytes());
        Self { dir, root_commit: Some(root_commit) }
    }

    /// A source tree as a distribution package unpacks it (Debian's
    /// `linux-source`): not a git repository, with a `.gitignore` of `/*` that
    /// ripgrep and OpenCode do not apply outside a repository, and an `.ignore`
    /// (which applies everywhere) that drops object files.
    ///
    /// ```text
    /// .gitignore (/*)  .ignore (*.o)  Makefile  README  kernel/{sched.c,sched.o,.gitignore (*.c)}
    /// ```
    pub fn unpacked_source() -> Self {
        let dir = tempfile::Builder::new().prefix("burrow-unpacked-").tempdir().expect("temp dir");
        let root = dir.path().join("ws");
        let text: &[(&str, &str)] = &[
            (".gitignore", "/*\n"),
            (".ignore", "*.o\n"),
            ("Makefile", "obj-y := hello.o\n"),
            ("README", "hello from the readme\n"),
            ("kernel/.gitignore", "*.c\n"),
            ("kernel/sched.c", "int hello;\n"),
            ("kernel/sched.o", "hello object\n"),
        ];
        for (rel, content) in text {
            write(&root, rel, content.as_bytes());
        }
        Self { dir, root_commit: None }
    }

    /// A plain tree (no git) of `files` small text files in 100 folders, for
    /// load tests. No file contains the letter `q`.
    pub fn large(files: usize) -> Self {
        let dir = tempfile::Builder::new().prefix("burrow-large-").tempdir().expect("temp dir");
        let root = dir.path().join("ws");
        let body = "lorem ipsum dolor sit amet, consectetur adipiscing elit\n".repeat(40);
        for i in 0..files {
            write(&root, &format!("d{:02}/file{i:05}.txt", i % 100), body.as_bytes());
        }
        Self { dir, root_commit: None }
    }
}

fn write(root: &Path, rel: &str, data: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, data).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Runs git with no user or system configuration and fixed identities and
/// dates, so the commit hash is the same everywhere.
fn git(cwd: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Burrow Test")
        .env("GIT_AUTHOR_EMAIL", "test@burrow.invalid")
        .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
        .env("GIT_COMMITTER_NAME", "Burrow Test")
        .env("GIT_COMMITTER_EMAIL", "test@burrow.invalid")
        .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
        .output()
        .unwrap_or_else(|e| panic!("cannot run git (needed to build the fixture): {e}"));
    assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("git output is UTF-8")
}
