//! Files: reads, atomic writes, renames, removals and confinement, each
//! checked from outside Burrow.

use burrow::env::{DirEntry, EntryKind, EnvError};
use bytes::Bytes;

use crate::fixture::{p, Kind, Workspace, FILES};

/// The root the environment reports is where the fixture was put.
pub async fn the_root_is_where_the_fixture_is(ws: &Workspace) {
    assert_eq!(ws.env.root(), ws.root);
    assert_eq!(ws.names_behind("src").await, ["lib.rs", "main.rs"]);
    assert_eq!(&ws.env.read(&p("src/main.rs"), 1 << 20).await.unwrap()[..], FILES[0].1.as_bytes());
}

/// What Burrow writes is there behind its back and the other way round; a
/// replaced file keeps its mode and leaves no temporary file; limits and
/// wrong kinds are typed errors.
pub async fn writes_and_reads_cross_the_boundary(ws: &Workspace) {
    let env = &ws.env;
    env.write(&p("notes/api.txt"), Bytes::from_static(b"written through the API\n")).await.unwrap();
    assert_eq!(ws.read_behind("notes/api.txt").await.as_deref(), Some(&b"written through the API\n"[..]));
    ws.write_behind("notes/inside.txt", b"written inside").await;
    assert_eq!(&env.read(&p("notes/inside.txt"), 1 << 20).await.unwrap()[..], b"written inside");
    // Replacing a file: new content, the same mode, no temporary file left behind.
    let modes = ws.kind.runs_processes();
    if modes {
        ws.sh("chmod 751 src/main.rs");
    }
    env.write(&p("src/main.rs"), Bytes::from_static(b"fn main() {}\n")).await.unwrap();
    assert_eq!(ws.read_behind("src/main.rs").await.as_deref(), Some(&b"fn main() {}\n"[..]));
    if modes {
        assert_eq!(ws.sh("stat -c %a src/main.rs").trim(), "751");
    }
    assert_eq!(ws.names_behind("src").await, ["lib.rs", "main.rs"]);
    assert_eq!(ws.names_behind("notes").await, ["api.txt", "inside.txt", "todo.md"]);
    let listing = env.list(&p("notes")).await.unwrap();
    let mut names: Vec<&str> = listing.iter().map(|e| e.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["api.txt", "inside.txt", "todo.md"]);
    assert!(listing.contains(&DirEntry { name: "todo.md".into(), kind: EntryKind::File }), "{listing:?}");
    assert_eq!(env.stat(&p("src")).await.unwrap().kind, EntryKind::Directory);
    assert_eq!(env.stat(&p("src/lib.rs")).await.unwrap().size, FILES[1].1.len() as u64);

    // A new file in new folders, larger than one SFTP packet or one pipe buffer.
    let big: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    env.write(&p("new/deep/big.bin"), Bytes::from(big.clone())).await.unwrap();
    assert_eq!(env.read(&p("new/deep/big.bin"), 1 << 20).await.unwrap(), big);
    assert_eq!(ws.read_behind("new/deep/big.bin").await.as_deref(), Some(&big[..]));
    assert!(matches!(env.read(&p("new/deep/big.bin"), 1000).await, Err(EnvError::TooLarge { .. })));
    let size = FILES[1].1.len() as u64;
    let too_large = env.read(&p("src/lib.rs"), 3).await;
    assert!(matches!(too_large, Err(EnvError::TooLarge { size: s, limit: 3, .. }) if s == size), "{too_large:?}");
    assert!(matches!(env.read(&p("missing.txt"), 100).await, Err(EnvError::NotFound(_))));
    assert!(matches!(env.read(&p("src"), 1 << 20).await, Err(EnvError::IsADirectory(_))));
    assert!(matches!(env.write(&p("src"), Bytes::new()).await, Err(EnvError::IsADirectory(_))));
}

/// A rename replaces an existing target (plain SFTP would refuse) and creates
/// the target's folders; a removal takes a whole folder.
pub async fn renames_and_removes(ws: &Workspace) {
    let env = &ws.env;
    env.rename(&p("src/lib.rs"), &p("src/main.rs")).await.unwrap();
    assert_eq!(ws.read_behind("src/main.rs").await.as_deref(), Some(FILES[1].1.as_bytes()));
    assert_eq!(ws.names_behind("src").await, ["main.rs"]);
    env.rename(&p("notes/todo.md"), &p("moved/todo.md")).await.unwrap();
    assert_eq!(ws.names_behind("moved").await, ["todo.md"]);
    assert_eq!(ws.read_behind("notes/todo.md").await, None);
    env.mkdir_all(&p("a/b/c")).await.unwrap();
    env.write(&p("a/b/c/x.txt"), Bytes::from_static(b"x")).await.unwrap();
    env.remove(&p("a")).await.unwrap();
    env.remove(&p("docs")).await.unwrap();
    assert_eq!(ws.read_behind("a/b/c/x.txt").await, None);
    let mut root = ws.names_behind("").await;
    root.retain(|n| n != "etc-link");
    // Object storage has no empty folders: `notes` went with its last file.
    let expected: &[&str] = if ws.kind == Kind::S3 {
        &[".git", ".gitignore", ".ignore", "README.md", "build.log", "moved", "src", "target"]
    } else {
        &[".git", ".gitignore", ".ignore", "README.md", "build.log", "moved", "notes", "src", "target"]
    };
    assert_eq!(root, expected);
    assert!(matches!(env.remove(&p("missing")).await, Err(EnvError::NotFound(_))));
}

/// A symlink that leaves the root is refused before anything is read or
/// written, where the data lives. Object storage keeps no symlinks: its copy
/// of the fixture has none.
pub async fn symlinks_out_of_the_root_are_refused(ws: &Workspace) {
    let env = &ws.env;
    if ws.kind == Kind::S3 {
        let listing = env.list(&burrow::env::WorkspacePath::root()).await.unwrap();
        assert!(listing.iter().all(|e| e.name != "etc-link"), "{listing:?}");
        return;
    }
    assert!(matches!(env.confine(&p("etc-link/passwd")).await, Err(EnvError::Escape(_))));
    assert!(matches!(env.read(&p("etc-link/passwd"), 1 << 20).await, Err(EnvError::Escape(_))));
    let evil = format!("burrow-evil-{:08x}", fastrand::u32(..));
    assert!(matches!(env.write(&p(&format!("etc-link/{evil}")), Bytes::from_static(b"x")).await, Err(EnvError::Escape(_))));
    assert_eq!(ws.sh(&format!("[ -e /etc/{evil} ] && echo written || echo refused")).trim(), "refused");
    assert!(matches!(env.list(&p("etc-link")).await, Err(EnvError::Escape(_))));
    // A link that stays inside works.
    ws.sh("ln -s src/main.rs main-link.rs");
    assert_eq!(&env.read(&p("main-link.rs"), 1 << 20).await.unwrap()[..], FILES[0].1.as_bytes());
}
