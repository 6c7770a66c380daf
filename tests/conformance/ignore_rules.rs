//! Ignore rules like ripgrep's: `.gitignore` applies only inside a git
//! repository, `.ignore` everywhere. Checked on a tree that is not a
//! repository and has a `.gitignore` of `/*`, against what `rg` itself finds
//! in the same tree.

use std::process::Command;

use serde_json::Value;

use crate::support::fixture::Fixture;
use crate::support::{for_each_env, Served};

/// The lines `rg` prints for `args` run in `dir`, or `None` without ripgrep.
fn rg(dir: &std::path::Path, args: &[&str]) -> Option<Vec<String>> {
    let out = Command::new("rg").arg("--no-config").args(args).current_dir(dir).output().ok()?;
    assert!(out.status.code().is_some_and(|c| c <= 1), "rg {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim_start_matches("./").to_string()).collect();
    lines.sort();
    Some(lines)
}

/// What the fixture holds that ripgrep keeps: everything but the object file.
const FILES: &[&str] = &[".gitignore", ".ignore", "Makefile", "README", "kernel/.gitignore", "kernel/sched.c"];

#[tokio::test]
async fn find_outside_a_repository_returns_what_ripgrep_returns() {
    let fx = Fixture::unpacked_source();
    let rg_files = rg(&fx.path(), &["--files", "--hidden", "--glob", "!**/.git/**"]);
    let rg_lines = rg(&fx.path(), &["--hidden", "--no-heading", "-n", "--glob", "!**/.git/**", "hello"]);
    if let Some(files) = &rg_files {
        assert_eq!(files, FILES, "ripgrep itself ignores the .gitignore of a folder that is no repository");
    }
    drop(fx);
    for_each_env(|env| {
        let (rg_files, rg_lines) = (rg_files.clone(), rg_lines.clone());
        async move {
            let t = Served::new(env, Fixture::unpacked_source(), &[]).await;
            let (status, body) = t.srv.get_q("/find/file", &[("query", ""), ("type", "file"), ("limit", "200")]).await;
            assert_eq!(status, 200, "{body}");
            let mut found: Vec<String> = serde_json::from_value(body).expect("an array of paths");
            found.sort();
            assert_eq!(found, FILES, "/find/file lists what the .gitignore of /* would hide");
            if let Some(files) = rg_files {
                assert_eq!(found.len(), files.len(), "as many files as rg --files");
            }

            let (status, body) = t.srv.get_q("/find", &[("pattern", "hello")]).await;
            assert_eq!(status, 200, "{body}");
            let mut paths: Vec<&str> = body.as_array().expect("matches").iter().map(|m| m["path"]["text"].as_str().expect("a path")).collect();
            paths.sort_unstable();
            assert_eq!(paths, ["Makefile", "README", "kernel/sched.c"], "text search skips only the object file");
            if let Some(lines) = rg_lines {
                assert_eq!(paths.len(), lines.len(), "as many matches as rg: {lines:?}");
            }

            let flags = |body: Value| -> Vec<(String, bool)> {
                body.as_array()
                    .expect("a listing")
                    .iter()
                    .map(|n| (n["name"].as_str().expect("a name").to_string(), n["ignored"].as_bool().expect("an ignored flag")))
                    .collect()
            };
            let (status, body) = t.srv.get_q("/file", &[("path", "kernel")]).await;
            assert_eq!(status, 200, "{body}");
            let want = [(".gitignore", false), ("sched.c", false), ("sched.o", true)].map(|(n, i)| (n.to_string(), i));
            assert_eq!(flags(body), want, "listing flags follow the same rules");
        }
    })
    .await;
}
