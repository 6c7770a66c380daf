//! The layer rule, checked: nothing below `server/` imports it, its error
//! module or the CLI, nor axum. The compiler enforces the crate boundaries
//! (protocol, search, env, helper); inside the `burrow` crate this test does.

use std::path::{Path, PathBuf};

/// The modules below the HTTP layer, relative to `src/`.
const BELOW_SERVER: &[&str] = &["session", "agent", "config", "pty", "instance.rs", "vcs.rs", "event.rs", "content.rs", "workspace", "worktree.rs", "mcp"];

/// The `crate::` roots a module below `server/` may not name: the HTTP layer,
/// its error module (statuses and response bodies), and the CLI above it.
const ABOVE: &[&str] = &["server", "error", "cli"];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let entries = std::fs::read_dir(path).unwrap_or_else(|e| panic!("cannot list {}: {e}", path.display()));
        for entry in entries {
            rust_files(&entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", path.display())).path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// What is wrong with one line of code (comments are skipped), if anything.
fn violation(line: &str) -> Option<String> {
    let code = line.split("//").next().unwrap_or("");
    if code.contains("axum") {
        return Some("names axum".into());
    }
    for root in ABOVE {
        if code.contains(&format!("crate::{root}::")) || code.contains(&format!("crate::{root};")) || code.contains(&format!("burrow::{root}")) {
            return Some(format!("imports crate::{root}"));
        }
        // `use crate::{server, ...}` and `use crate::{error::X, ...}`.
        if let Some((_, group)) = code.split_once("crate::{") {
            let names = group.split([',', '}', ' ']).map(|n| n.split("::").next().unwrap_or(""));
            if names.into_iter().any(|n| n == *root) {
                return Some(format!("imports crate::{root}"));
            }
        }
    }
    None
}

#[test]
fn nothing_below_the_server_imports_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for module in BELOW_SERVER {
        let path = src.join(module);
        assert!(path.exists(), "{} is gone: update BELOW_SERVER", path.display());
        rust_files(&path, &mut files);
    }
    assert!(files.len() > BELOW_SERVER.len(), "found only {} files under {}", files.len(), src.display());
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        for (n, line) in text.lines().enumerate() {
            if let Some(why) = violation(line) {
                found.push(format!("{}:{}: {why}: {}", file.strip_prefix(&src).unwrap_or(file).display(), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "modules below server/ import a layer above them (see DESIGN.md, Layers):\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_each_form_of_import() {
    for bad in [
        "use crate::server::AppState;",
        "use crate::server;",
        "    st: Arc<crate::server::AppState>,",
        "use crate::error::{ApiError, ApiResult};",
        "use crate::{cli, env};",
        "use crate::{env::Env, server::instance::Instance};",
        "use axum::http::StatusCode;",
    ] {
        assert!(violation(bad).is_some(), "{bad:?} passed the check");
    }
    for good in ["use crate::session::error::RunError;", "use crate::{env, instance::Instance};", "// see crate::server::AppState", "let error = 1;"] {
        assert_eq!(violation(good), None, "{good:?} was refused");
    }
}
