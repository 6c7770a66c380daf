//! Walks and searches: the same answer wherever they run (in process, in the
//! helper next to the data, with the environment's own rg, or by streaming
//! files to the server), with the fixture's ignore rules applied.

use burrow::env::{EntryKind, EnvError, GrepRequest, SearchBackend, WorkspacePath};

use crate::fixture::{p, Kind, Workspace};

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

/// Burrow's own writes, renames and removals show in the next walk and
/// search at once, whatever index or cache the environment keeps.
pub async fn changes_through_burrow_show_in_walks_and_searches_at_once(ws: &Workspace) {
    let env = &ws.env;
    let files = || async {
        let entries = env.walk(&WorkspacePath::root()).await.unwrap();
        entries.into_iter().filter(|e| e.kind == EntryKind::File).map(|e| e.path).collect::<Vec<_>>()
    };
    let grep = |pattern: &'static str| async move {
        let found = env.grep(GrepRequest::new(&WorkspacePath::root(), pattern, 50)).await.unwrap();
        found.matches.into_iter().map(|m| m.path).collect::<Vec<_>>()
    };
    assert!(files().await.contains(&"src/main.rs".to_string()));
    env.write(&p("notes/new.md"), "fresh words\n".into()).await.unwrap();
    assert!(files().await.contains(&"notes/new.md".to_string()));
    assert_eq!(grep("fresh words").await, ["notes/new.md"]);
    env.write(&p("notes/new.md"), "changed words\n".into()).await.unwrap();
    assert_eq!(grep("fresh words").await, Vec::<String>::new(), "a stale copy was searched");
    assert_eq!(grep("changed words").await, ["notes/new.md"]);

    env.rename(&p("notes/new.md"), &p("notes/moved.md")).await.unwrap();
    let now = files().await;
    assert!(now.contains(&"notes/moved.md".to_string()) && !now.contains(&"notes/new.md".to_string()), "{now:?}");
    assert_eq!(grep("changed words").await, ["notes/moved.md"]);
    // A folder moves with everything in it.
    env.rename(&p("src"), &p("lib2")).await.unwrap();
    let now = files().await;
    assert!(now.contains(&"lib2/main.rs".to_string()) && !now.iter().any(|f| f.starts_with("src/")), "{now:?}");
    assert!(matches!(env.stat(&p("src/main.rs")).await, Err(EnvError::NotFound(_))));
    assert_eq!(env.stat(&p("lib2")).await.unwrap().kind, EntryKind::Directory);
    let mut hits = grep("needle").await;
    hits.sort();
    assert_eq!(hits, ["lib2/lib.rs", "lib2/main.rs"]);

    env.remove(&p("docs")).await.unwrap();
    env.remove(&p("README.md")).await.unwrap();
    let now = files().await;
    assert!(!now.iter().any(|f| f.starts_with("docs/") || f == "README.md"), "{now:?}");
    assert!(matches!(env.remove(&p("README.md")).await, Err(EnvError::NotFound(_))));
    env.mkdir_all(&p("made/here")).await.unwrap();
    let dirs: Vec<_> = env.walk(&WorkspacePath::root()).await.unwrap().into_iter().filter(|e| e.kind == EntryKind::Directory).map(|e| e.path).collect();
    // `rg --files` (the environment's rg, without the helper) prints files
    // only, and the walk derives folders from them: an empty folder is
    // missing there. A known gap; the helper and every other method list it.
    assert_eq!(dirs.contains(&"made/here".to_string()), ws.kind != Kind::SshChannels, "{dirs:?}");
    assert!(matches!(env.write(&p("lib2/main.rs/child"), "x".into()).await, Err(EnvError::NotADirectory(_))));
    assert!(matches!(env.list(&p("lib2/main.rs")).await, Err(EnvError::NotADirectory(_))));
}
