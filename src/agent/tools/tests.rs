//! The tools against a real local workspace.

use std::sync::Arc;

use serde_json::json;

use super::testing::Fixture;
use super::ToolError;
use crate::agent::permission::{Action, Permissions, Rule, SessionGate};
use crate::event::Bus;

#[tokio::test]
async fn write_then_edit_change_the_file_and_report_diffs() {
    let f = Fixture::new();
    let path = format!("{}/hello.txt", f.root());
    let out = f.run("write", json!({"filePath": path, "content": "hello\nworld\n"})).await.unwrap();
    assert_eq!(out.output, "Wrote file successfully.");
    assert_eq!(out.title, "hello.txt");
    assert_eq!(out.metadata, json!({"diagnostics": {}, "filepath": path, "exists": false, "truncated": false}));
    assert_eq!(out.edited, vec![path.clone()]);
    assert_eq!(f.get("hello.txt"), "hello\nworld\n");

    let out = f.run("edit", json!({"filePath": "hello.txt", "oldString": "world", "newString": "there"})).await.unwrap();
    assert_eq!(out.output, "Edit applied successfully.");
    assert_eq!(f.get("hello.txt"), "hello\nthere\n");
    assert_eq!(out.metadata["filediff"]["additions"], 1);
    assert_eq!(out.metadata["filediff"]["deletions"], 1);
    assert!(out.metadata["diff"].as_str().unwrap().contains("-world\n+there\n"));

    let err = f.run("edit", json!({"filePath": "hello.txt", "oldString": "nope", "newString": "x"})).await.unwrap_err();
    assert!(err.to_string().starts_with("Could not find oldString"), "{err}");
    let err = f.run("edit", json!({"filePath": "missing.txt", "oldString": "a", "newString": "b"})).await.unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
}

#[tokio::test]
async fn edit_keeps_crlf_line_endings() {
    let f = Fixture::new();
    f.put("w.txt", "a\r\nb\r\nc\r\n");
    f.run("edit", json!({"filePath": "w.txt", "oldString": "b\nc", "newString": "B\nC"})).await.unwrap();
    assert_eq!(f.get("w.txt"), "a\r\nB\r\nC\r\n");
}

#[tokio::test]
async fn paths_outside_the_workspace_are_refused() {
    let f = Fixture::new();
    for (tool, input) in [
        ("write", json!({"filePath": "/etc/passwd", "content": "x"})),
        ("read", json!({"filePath": "../outside.txt"})),
        ("edit", json!({"filePath": "/tmp/x", "oldString": "a", "newString": "b"})),
    ] {
        let err = f.run(tool, input).await.unwrap_err();
        assert!(err.to_string().contains("outside the workspace"), "{tool}: {err}");
    }
}

#[tokio::test]
async fn read_numbers_lines_and_lists_directories() {
    let f = Fixture::new();
    f.put("src/main.rs", "fn main() {}\n");
    f.put("src/lib.rs", "// lib\n");
    let out = f.run("read", json!({"filePath": "src/main.rs"})).await.unwrap();
    assert!(out.output.contains("<content>\n1: fn main() {}\n\n(End of file - total 1 lines)\n</content>"), "{}", out.output);
    assert_eq!(out.title, "src/main.rs");
    assert_eq!(out.metadata["preview"], "fn main() {}");
    let out = f.run("read", json!({"filePath": "src"})).await.unwrap();
    assert!(out.output.contains("<entries>\nlib.rs\nmain.rs\n\n(2 entries)\n</entries>"), "{}", out.output);
    let err = f.run("read", json!({"filePath": "src/mian.rs"})).await.unwrap_err().to_string();
    assert!(err.starts_with("File not found:"), "{err}");
    f.put("bin.dat", "x");
    assert!(f.run("read", json!({"filePath": "bin.dat"})).await.unwrap_err().to_string().starts_with("Cannot read binary file"));
}

#[tokio::test]
async fn glob_grep_and_list_search_the_workspace() {
    let f = Fixture::new();
    f.put("src/a.rs", "fn alpha() {}\n");
    f.put("src/b.ts", "const alpha = 1;\n");
    f.put("node_modules/x/y.rs", "fn alpha() {}\n");
    let root = f.root();
    let out = f.run("glob", json!({"pattern": "**/*.rs", "path": "src"})).await.unwrap();
    assert_eq!(out.output, format!("{root}/src/a.rs"));
    assert_eq!(out.metadata, json!({"count": 1, "truncated": false}));
    let out = f.run("glob", json!({"pattern": "*.py"})).await.unwrap();
    assert_eq!(out.output, "No files found");

    let out = f.run("grep", json!({"pattern": "alpha", "include": "*.ts"})).await.unwrap();
    assert_eq!(out.output, format!("Found 1 matches\n{root}/src/b.ts:\n  Line 1: const alpha = 1;"));
    assert_eq!(out.metadata["matches"], 1);
    let out = f.run("grep", json!({"pattern": "zzz"})).await.unwrap();
    assert_eq!(out.output, "No files found");

    let out = f.run("list", json!({})).await.unwrap();
    assert_eq!(out.output, format!("{root}/\n  src/\n    a.rs\n    b.ts\n"));
}

#[tokio::test]
async fn bash_runs_in_the_environment_and_reports_exit() {
    let f = Fixture::new();
    f.put("sub/marker", "");
    let out = f.run("bash", json!({"command": "ls; echo err >&2; exit 3", "description": "list", "workdir": "sub"})).await.unwrap();
    assert_eq!(out.title, "ls; echo err >&2; exit 3");
    assert!(out.output.contains("marker") && out.output.contains("err"), "{}", out.output);
    assert_eq!(out.metadata["exit"], 3);
    assert_eq!(out.metadata["truncated"], false);
    let out = f.run("bash", json!({"command": "sleep 5", "description": "wait", "timeout": 50})).await.unwrap();
    assert!(out.output.contains("terminated command after exceeding timeout 50 ms"), "{}", out.output);
    let out = f.run("bash", json!({"command": "true", "description": "nothing"})).await.unwrap();
    assert_eq!(out.output, "(no output)");
}

#[tokio::test]
async fn long_bash_output_keeps_the_tail_and_saves_the_rest() {
    let f = Fixture::new();
    let out = f.run("bash", json!({"command": "seq 1 5000", "description": "count"})).await.unwrap();
    assert_eq!(out.metadata["truncated"], true);
    assert!(out.output.starts_with("...output truncated...\n\nFull output saved to: "), "{}", &out.output[..200]);
    assert!(out.output.ends_with("5000\n"));
    let saved = out.metadata["outputPath"].as_str().unwrap();
    // The saved output is readable with the read tool although it is not in the workspace.
    let back = f.run("read", json!({"filePath": saved, "offset": 4999, "limit": 2})).await.unwrap();
    assert!(back.output.contains("4999: 4999\n5000: 5000"), "{}", back.output);
}

#[tokio::test]
async fn aborting_kills_a_running_command() {
    let f = Fixture::new();
    let pidfile = f.dir.path().join("ws/pid");
    let ctx = f.ctx.clone();
    let abort = ctx.abort.clone();
    let run = tokio::spawn({
        let registry = f.registry.clone();
        async move { registry.run("bash", json!({"command": "echo $$ > pid; exec sleep 60", "description": "slow"}), &ctx).await }
    });
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pidfile).ok().and_then(|p| p.trim().parse::<i32>().ok()) {
            break pid;
        }
        tokio::task::yield_now().await;
    };
    abort.cancel();
    assert_eq!(run.await.unwrap().unwrap_err(), ToolError::Aborted);
    // The kill is asynchronous; wait (bounded) for the process to disappear.
    let alive = || nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok() && !zombie(pid);
    for _ in 0..200 {
        if !alive() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("process {pid} still runs after the abort");
}

fn zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z'))).unwrap_or(true)
}

#[tokio::test]
async fn todos_are_written_and_read_per_session() {
    let f = Fixture::new();
    let todos = json!([{"content": "a", "status": "completed", "priority": "high"}, {"content": "b", "status": "pending", "priority": "low", "id": "2"}]);
    let out = f.run("todowrite", json!({"todos": todos})).await.unwrap();
    assert_eq!(out.title, "1 todos");
    assert_eq!(out.metadata["todos"], todos);
    let out = f.run("todoread", json!({})).await.unwrap();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out.output).unwrap(), todos);
}

#[tokio::test]
async fn denied_and_bad_calls_are_errors_the_model_can_read() {
    let perms = Permissions::new(Bus::new());
    let rules = vec![Rule::new("*", "*", Action::Allow), Rule::new("edit", "*", Action::Deny)];
    let f = Fixture::with_gate(Arc::new(SessionGate { permissions: perms, ruleset: rules, directory: None, project: None }));
    let err = f.run("write", json!({"filePath": "x.txt", "content": "x"})).await.unwrap_err();
    assert!(matches!(err, ToolError::Permission(_)), "{err}");
    assert!(!f.dir.path().join("ws/x.txt").exists());
    let err = f.run("read", json!({"path": "x"})).await.unwrap_err().to_string();
    assert!(err.contains("invalid arguments") && err.contains("filePath"), "{err}");
    let err = f.run("nope", json!({})).await.unwrap_err().to_string();
    assert!(err.contains("unavailable tool 'nope'"), "{err}");
}
