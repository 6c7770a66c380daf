//! The POSIX fallback must answer like the in-process search over the same
//! tree: the same entries for a walk, the same matches for a search.

use async_trait::async_trait;

use super::*;
use crate::env::local::LocalEnv;
use crate::env::{Env, ExecRequest, Process, WorkspacePath};
use crate::search;

/// The local machine as a helper host: a real `sh`, `find` and `grep`, with
/// HOME set to the root (the install tests use it too).
pub(crate) struct LocalHost(pub(crate) LocalEnv);

#[async_trait]
impl HelperHost for LocalHost {
    async fn run(&self, command: String, stdin: Option<Bytes>) -> EnvResult<Process> {
        let mut req = ExecRequest::shell(command, WorkspacePath::root());
        req.stdin = stdin;
        req.env.insert("HOME".into(), self.0.root().to_string());
        self.0.exec(req).await
    }
    async fn put_file(&self, path: &str, data: Bytes) -> EnvResult<()> {
        std::fs::write(path, &data).map_err(|e| EnvError::from_io(e, path))
    }
}

fn tree() -> (tempfile::TempDir, LocalHost) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    for d in ["src/deep", "ignored", "docs/build", ".git/objects", "odd: name"] {
        std::fs::create_dir_all(p.join(d)).unwrap();
    }
    let files: [(&str, &[u8]); 11] = [
        (".gitignore", b"ignored/\n*.log\n!keep.log\n"),
        ("docs/.gitignore", b"build/\n"),
        ("src/main.rs", b"fn main() {\n    println!(\"Hello 42\");\n}\n"),
        ("src/deep/lib.rs", b"pub fn hello_world() -> u32 { 7 }\n// hello again\n"),
        ("ignored/x.rs", b"hello\n"),
        ("docs/build/out.txt", b"hello\n"),
        ("docs/readme.md", b"Say HELLO\n"),
        ("a.log", b"hello\n"),
        ("keep.log", b"hello log\n"),
        ("bin.dat", b"hello\x00\x01"),
        ("odd: name/it's.txt", b"hello: 1:2:3\n"),
    ];
    for (name, body) in files {
        std::fs::write(p.join(name), body).unwrap();
    }
    std::fs::write(p.join(".git/objects/x"), "hello").unwrap();
    std::os::unix::fs::symlink("src/main.rs", p.join("link.rs")).unwrap();
    std::os::unix::fs::symlink("src", p.join("src-link")).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(p.join("src/fifo")).status().unwrap().success());
    let host = LocalHost(LocalEnv::new(p).unwrap());
    (dir, host)
}

#[tokio::test]
async fn walk_matches_in_process_walk() {
    let (dir, host) = tree();
    let root = host.0.root().to_string();
    let got = walk(&host, &root).await.unwrap();
    let want = search::walk::walk(dir.path()).unwrap();
    assert_eq!(got, want);
    assert!(got.iter().any(|e| e.path == "keep.log") && !got.iter().any(|e| e.path == "a.log" || e.path.starts_with("ignored")));
}

#[tokio::test]
async fn grep_matches_in_process_grep() {
    let (dir, host) = tree();
    let root = host.0.root().to_string();
    let cases: [(&str, Option<&str>, bool); 7] = [
        ("hello", None, false),
        ("hello", None, true),
        (r"\d+", None, false),
        (r"(?i)hello\s+\w+", None, false),
        (r"fn\s+(?:main|hello_\w+)", Some("*.rs"), false),
        (r"hel+?o", Some("src/**"), false),
        ("[[:digit:]]:", None, false),
    ];
    for (pattern, include, case_insensitive) in cases {
        let req = GrepRequest { dir: String::new(), pattern: pattern.into(), include: include.map(Into::into), limit: 100, case_insensitive };
        let got = grep(&host, &root, &req).await.unwrap();
        let want = search::grep::grep(dir.path(), &req).unwrap();
        assert_eq!(got, want, "pattern {pattern:?} include {include:?} -i {case_insensitive}");
        assert!(!got.matches.is_empty(), "{pattern}");
    }
}

#[tokio::test]
async fn grep_limit_truncates() {
    let (_dir, host) = tree();
    let root = host.0.root().to_string();
    let req = GrepRequest { dir: String::new(), pattern: "hello".into(), include: None, limit: 2, case_insensitive: true };
    let got = grep(&host, &root, &req).await.unwrap();
    assert_eq!(got.matches.len(), 2);
    assert!(got.truncated);
}

#[test]
fn translates_rust_syntax_to_ere() {
    assert_eq!(to_ere(r"\d+\s\w"), ("[0-9]+[[:space:]][[:alnum:]_]".into(), false));
    assert_eq!(to_ere(r"[\d_]x"), ("[0-9_]x".into(), false));
    assert_eq!(to_ere(r"(?i)ab(?:c|d)*?"), ("ab(c|d)*".into(), true));
    assert_eq!(to_ere(r"(?P<n>x)\.y"), (r"(x)\.y".into(), false));
    assert_eq!(to_ere(r"[]a]"), ("[]a]".into(), false));
}

/// Outside a repository `.gitignore` does not apply, `.ignore` and `.rgignore`
/// do; inside a nested one its `.gitignore` and `.git/info/exclude` do.
#[tokio::test]
async fn walk_outside_a_repository_matches_in_process_walk() {
    let dir = tempfile::tempdir().unwrap();
    let files: [(&str, &str); 10] = [
        (".gitignore", "/*\n"),
        (".ignore", "*.o\n"),
        ("Makefile", "all:\n"),
        ("kernel/sched.o", "obj\n"),
        ("tools/.rgignore", "*.tmp\n"),
        ("tools/a.tmp", "tmp\n"),
        ("sub/.git/info/exclude", "excluded.txt\n"),
        ("sub/.gitignore", "*.gen\n"),
        ("sub/x.gen", "gen\n"),
        ("sub/excluded.txt", "ex\n"),
    ];
    for (name, body) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    let host = LocalHost(LocalEnv::new(dir.path()).unwrap());
    let root = host.0.root().to_string();
    let got = walk(&host, &root).await.unwrap();
    assert_eq!(got, search::walk::walk(dir.path()).unwrap());
    let paths: Vec<&str> = got.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, [".gitignore", ".ignore", "Makefile", "kernel", "sub", "sub/.gitignore", "tools", "tools/.rgignore"]);
}
