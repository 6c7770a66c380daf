//! `write` (a whole file) and `list` (a directory tree).

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{args, diff, fail, Tool, ToolContext, ToolOutput, ToolResult};
use crate::agent::permission::AskInput;
use crate::env::{EntryKind, EnvError, WorkspacePath};

/// Files larger than this are not read back for a diff.
pub const MAX_EDIT_BYTES: u64 = 16 << 20;

/// A file's current text, or `None` when it does not exist.
pub async fn current_text(ctx: &ToolContext, path: &WorkspacePath) -> Result<Option<String>, super::ToolError> {
    match ctx.env.read(path, MAX_EDIT_BYTES).await {
        Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
        Err(EnvError::NotFound(_)) => Ok(None),
        Err(EnvError::IsADirectory(_)) => fail(format!("Path is a directory, not a file: {}", ctx.absolute(path))),
        Err(e) => Err(e.into()),
    }
}

pub struct Write;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WriteArgs {
    content: String,
    file_path: String,
}

#[async_trait]
impl Tool for Write {
    fn name(&self) -> &'static str {
        "write"
    }
    fn description(&self) -> &'static str {
        "Writes a file to the local filesystem.\n\nUsage:\n- This tool will overwrite the existing file if there is one at the provided path.\n- If this is an existing file, you MUST use the Read tool first to read the file's contents.\n- ALWAYS prefer editing existing files in the codebase. NEVER write new files unless explicitly required."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "content": {"type": "string", "description": "The content to write to the file"},
                "filePath": {"type": "string", "description": "The absolute path to the file to write (must be absolute, not relative)"}
            },
            "required": ["content", "filePath"]
        })
    }

    async fn run(&self, input: Value, ctx: &ToolContext) -> ToolResult {
        let a: WriteArgs = args("write", input)?;
        let path = ctx.resolve(&a.file_path).await?;
        let abs = ctx.absolute(&path);
        let old = current_text(ctx, &path).await?;
        let exists = old.is_some();
        let patch = diff::patch(&abs, old.as_deref().unwrap_or(""), &a.content);
        ctx.ask(AskInput::new("edit", vec![ctx.relative(&path)], vec!["*".into()], json!({"filepath": abs, "diff": patch}))).await?;
        ctx.changes.record(&path, old.as_deref());
        ctx.env.write(&path, Bytes::from(a.content)).await?;
        let metadata = json!({"diagnostics": {}, "filepath": abs, "exists": exists});
        let mut out = ToolOutput::new(ctx.relative(&path), "Wrote file successfully.", metadata);
        out.edited.push(abs);
        Ok(out)
    }
}

pub struct List;

/// Folders `list` leaves out unless asked (OpenCode's list).
const IGNORED: [&str; 23] = [
    "node_modules",
    "__pycache__",
    ".git",
    "dist",
    "build",
    "target",
    "vendor",
    "bin",
    "obj",
    ".idea",
    ".vscode",
    ".zig-cache",
    "zig-out",
    ".coverage",
    "coverage",
    "tmp",
    "temp",
    ".cache",
    "cache",
    "logs",
    ".venv",
    "venv",
    "env",
];
const LIST_LIMIT: usize = 100;

#[derive(Deserialize)]
struct ListArgs {
    path: Option<String>,
    #[serde(default)]
    ignore: Vec<String>,
}

/// Renders files (relative, `/`-separated) as an indented tree under `root`.
pub fn render_tree(root: &str, files: &[String]) -> String {
    #[derive(Default)]
    struct Dir {
        dirs: BTreeMap<String, Dir>,
        files: BTreeSet<String>,
    }
    let mut top = Dir::default();
    for f in files {
        let mut parts: Vec<&str> = f.split('/').collect();
        let name = parts.pop().unwrap_or_default();
        let mut d = &mut top;
        for p in parts {
            d = d.dirs.entry(p.to_string()).or_default();
        }
        d.files.insert(name.to_string());
    }
    fn render(d: &Dir, depth: usize, out: &mut String) {
        let indent = "  ".repeat(depth + 1);
        for (name, sub) in &d.dirs {
            out.push_str(&format!("{indent}{name}/\n"));
            render(sub, depth + 1, out);
        }
        for f in &d.files {
            out.push_str(&format!("{indent}{f}\n"));
        }
    }
    let mut out = format!("{}/\n", root.trim_end_matches('/'));
    render(&top, 0, &mut out);
    out
}

#[async_trait]
impl Tool for List {
    fn name(&self) -> &'static str {
        "list"
    }
    fn description(&self) -> &'static str {
        "Lists files and directories in a given path. The path parameter must be absolute; omit it to use the current workspace directory. You can optionally provide an array of glob patterns to ignore with the ignore parameter. You should generally prefer the Glob and Grep tools, if you know which directories to search."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "The absolute path to the directory to list (must be absolute, not relative)"},
                "ignore": {"type": "array", "items": {"type": "string"}, "description": "List of glob patterns to ignore"}
            }
        })
    }

    async fn run(&self, input: Value, ctx: &ToolContext) -> ToolResult {
        let a: ListArgs = args("list", input)?;
        let dir = match &a.path {
            Some(p) => ctx.resolve(p).await?,
            None => ctx.cwd.clone(),
        };
        ctx.ask(AskInput::new("list", vec![ctx.relative(&dir)], vec!["*".into()], json!({"path": ctx.absolute(&dir)}))).await?;
        let mut ignore = globset::GlobSetBuilder::new();
        for pattern in &a.ignore {
            let glob = globset::Glob::new(pattern).map_err(|e| super::ToolError::Failed(format!("invalid ignore pattern {pattern:?}: {e}")))?;
            ignore.add(glob);
        }
        let ignore = ignore.build().map_err(|e| super::ToolError::Failed(e.to_string()))?;
        let mut files: Vec<String> = ctx
            .env
            .walk(&dir)
            .await?
            .into_iter()
            .filter(|e| e.kind == EntryKind::File)
            .map(|e| e.path)
            .filter(|p| !p.split('/').any(|c| IGNORED.contains(&c)) && !ignore.is_match(p))
            .collect();
        files.sort();
        files.truncate(LIST_LIMIT);
        let output = render_tree(&ctx.absolute(&dir), &files);
        let metadata = json!({"count": files.len(), "truncated": files.len() >= LIST_LIMIT});
        Ok(ToolOutput::new(ctx.relative(&dir), output, metadata))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tree_lists_dirs_then_files() {
        let files = vec!["b.txt".to_string(), "src/main.rs".into(), "src/a/x.rs".into(), "a.txt".into()];
        assert_eq!(super::render_tree("/w", &files), "/w/\n  src/\n    a/\n      x.rs\n    main.rs\n  a.txt\n  b.txt\n");
    }
}
