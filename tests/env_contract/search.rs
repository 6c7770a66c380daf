//! Walks and searches: the same answer wherever they run (in process, in the
//! helper next to the data, with the environment's own rg, or by streaming
//! files to the server), with the fixture's ignore rules applied.

use burrow::env::{EnvError, GrepRequest, SearchBackend, WorkspacePath};

use crate::fixture::{Kind, Workspace};

/// The search method each way of serving must pick.
fn expected_backend(kind: Kind) -> SearchBackend {
    match kind {
        Kind::Local => SearchBackend::InProcess,
        Kind::Helper | Kind::Docker | Kind::Ssh => SearchBackend::Helper,
        Kind::DockerScripts => SearchBackend::Stream,
        Kind::SshChannels => SearchBackend::Ripgrep,
        Kind::S3 => SearchBackend::CachedIndex,
    }
}

/// A walk lists every file and folder below the root but `.git` and what
/// `.ignore` and (in a repository) `.gitignore` leave out.
pub async fn a_walk_applies_the_ignore_rules(ws: &Workspace) {
    assert_eq!(ws.env.capabilities().search, expected_backend(ws.kind));
    let mut paths: Vec<String> = ws.env.walk(&WorkspacePath::root()).await.unwrap().into_iter().map(|e| e.path).collect();
    paths.sort();
    // The link to /etc is listed as an entry (never followed) where links exist.
    paths.retain(|p| p != "etc-link");
    assert_eq!(paths, [".gitignore", ".ignore", "README.md", "docs", "docs/guide.md", "notes", "notes/todo.md", "src", "src/lib.rs", "src/main.rs"]);
}

/// A search finds every match outside ignored folders, and a bad regex is
/// the caller's error, not the environment's.
pub async fn a_search_finds_what_is_not_ignored(ws: &Workspace) {
    let found = ws.env.grep(GrepRequest::new(&WorkspacePath::root(), "needle", 10)).await.unwrap();
    let mut hits: Vec<(&str, u64)> = found.matches.iter().map(|m| (m.path.as_str(), m.line_number)).collect();
    hits.sort_unstable();
    assert_eq!(hits, [("src/lib.rs", 2), ("src/main.rs", 2)], "{found:?}");
    assert!(!found.truncated);
    let main = found.matches.iter().find(|m| m.path == "src/main.rs").unwrap();
    assert_eq!(main.line, "    println!(\"needle in main\");\n");
    let bad = ws.env.grep(GrepRequest::new(&WorkspacePath::root(), "(", 10)).await;
    assert!(matches!(bad, Err(EnvError::InvalidInput(_))), "{bad:?}");
}
