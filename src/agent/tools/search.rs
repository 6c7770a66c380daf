//! `glob` (files by name pattern) and `grep` (lines by regex), both searched
//! where the files live through the environment's walk and grep.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{args, fail, Tool, ToolContext, ToolError, ToolOutput, ToolResult};
use crate::agent::permission::AskInput;
use crate::env::{EntryKind, EnvError, GrepRequest, WorkspacePath};

const LIMIT: usize = 100;

/// Resolves an optional `path` argument to a directory (and, for a file, its name).
async fn search_root(ctx: &ToolContext, path: Option<&str>) -> Result<(WorkspacePath, Option<String>), ToolError> {
    let p = match path {
        Some(p) => ctx.resolve(p).await?,
        None => return Ok((ctx.cwd.clone(), None)),
    };
    match ctx.env.stat(&p).await {
        Ok(m) if m.kind == EntryKind::File => Ok((p.parent().unwrap_or_default(), Some(p.file_name().to_string()))),
        Ok(_) => Ok((p, None)),
        Err(EnvError::NotFound(_)) => fail(format!("No such file or directory: {}", ctx.absolute(&p))),
        Err(e) => Err(e.into()),
    }
}

/// A glob as ripgrep's `--glob` reads it: without a `/` it matches a name at any depth.
pub fn matcher(pattern: &str) -> Result<impl Fn(&str) -> bool, String> {
    let anchored = pattern.contains('/');
    let glob = globset::GlobBuilder::new(pattern.trim_start_matches("./"))
        .literal_separator(anchored)
        .build()
        .map_err(|e| format!("invalid glob {pattern:?}: {e}"))?;
    let m = glob.compile_matcher();
    Ok(move |path: &str| if anchored { m.is_match(path) } else { m.is_match(path.rsplit('/').next().unwrap_or(path)) })
}

pub struct Glob;

#[derive(Deserialize)]
struct GlobArgs {
    pattern: String,
    path: Option<String>,
}

#[async_trait]
impl Tool for Glob {
    fn name(&self) -> &'static str {
        "glob"
    }
    fn description(&self) -> &'static str {
        "- Fast file pattern matching tool that works with any codebase size\n- Supports glob patterns like \"**/*.js\" or \"src/**/*.ts\"\n- Returns matching file paths\n- Use this tool when you need to find files by name patterns"
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "pattern": {"type": "string", "description": "The glob pattern to match files against"},
                "path": {"type": "string", "description": "The directory to search in. If not specified, the current working directory will be used. IMPORTANT: Omit this field to use the default directory. DO NOT enter \"undefined\" or \"null\" - simply omit it for the default behavior. Must be a valid directory path if provided."}
            },
            "required": ["pattern"]
        })
    }

    async fn run(&self, input: Value, ctx: &ToolContext) -> ToolResult {
        let a: GlobArgs = args("glob", input)?;
        ctx.ask(AskInput::new("glob", vec![a.pattern.clone()], vec!["*".into()], json!({"pattern": a.pattern, "path": a.path}))).await?;
        let (dir, file) = search_root(ctx, a.path.as_deref()).await?;
        if file.is_some() {
            return fail(format!("glob path must be a directory: {}", ctx.absolute(&dir.join(file.as_deref().unwrap_or_default()))));
        }
        let matches = matcher(&a.pattern).map_err(ToolError::Failed)?;
        let mut found: Vec<String> = ctx.env.walk(&dir).await?.into_iter().filter(|e| e.kind == EntryKind::File && matches(&e.path)).map(|e| e.path).collect();
        found.sort();
        let truncated = found.len() > LIMIT;
        found.truncate(LIMIT);
        let mut lines: Vec<String> = found.iter().map(|p| ctx.absolute(&dir.join(p))).collect();
        if lines.is_empty() {
            lines.push("No files found".into());
        } else if truncated {
            lines.push(String::new());
            lines.push(format!("(Results are truncated: showing first {LIMIT} results. Consider using a more specific path or pattern.)"));
        }
        Ok(ToolOutput::new(ctx.relative(&dir), lines.join("\n"), json!({"count": found.len(), "truncated": truncated})))
    }
}

pub struct Grep;

#[derive(Deserialize)]
struct GrepArgs {
    pattern: String,
    path: Option<String>,
    include: Option<String>,
}

#[async_trait]
impl Tool for Grep {
    fn name(&self) -> &'static str {
        "grep"
    }
    fn description(&self) -> &'static str {
        "- Fast content search tool that works with any codebase size\n- Searches file contents using regular expressions\n- Supports full regex syntax (eg. \"log.*Error\", \"function\\s+\\w+\", etc.)\n- Filter files by pattern with the include parameter (eg. \"*.js\", \"*.{ts,tsx}\")\n- Returns file paths and line numbers with matching lines"
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "pattern": {"type": "string", "description": "The regex pattern to search for in file contents"},
                "path": {"type": "string", "description": "The directory to search in. Defaults to the current working directory."},
                "include": {"type": "string", "description": "File pattern to include in the search (e.g. \"*.js\", \"*.{ts,tsx}\")"}
            },
            "required": ["pattern"]
        })
    }

    async fn run(&self, input: Value, ctx: &ToolContext) -> ToolResult {
        let a: GrepArgs = args("grep", input)?;
        if a.pattern.is_empty() {
            return fail("pattern is required");
        }
        ctx.ask(AskInput::new("grep", vec![a.pattern.clone()], vec!["*".into()], json!({"pattern": a.pattern, "path": a.path, "include": a.include}))).await?;
        let (dir, file) = search_root(ctx, a.path.as_deref()).await?;
        let mut req = GrepRequest::new(&dir, a.pattern.clone(), LIMIT);
        req.include = file.map(|f| globset::escape(&f)).or(a.include.clone());
        let result = crate::search::gate::grep(&ctx.env, req).await?;
        if result.matches.is_empty() {
            return Ok(ToolOutput::new(a.pattern, "No files found", json!({"matches": 0, "truncated": false})));
        }
        let truncated = result.truncated || result.matches.len() >= LIMIT;
        let mut lines = vec![format!("Found {} matches{}", result.matches.len(), if truncated { " (more matches available)" } else { "" })];
        let mut current = String::new();
        for m in &result.matches {
            let path = ctx.absolute(&dir.join_checked(&m.path).unwrap_or_else(|_| dir.clone()));
            if path != current {
                if !current.is_empty() {
                    lines.push(String::new());
                }
                lines.push(format!("{path}:"));
                current = path;
            }
            lines.push(format!("  Line {}: {}", m.line_number, m.line.trim_end_matches(['\n', '\r'])));
        }
        if truncated {
            lines.push(String::new());
            lines.push("(Results truncated. Consider using a more specific path or pattern.)".into());
        }
        Ok(ToolOutput::new(a.pattern, lines.join("\n"), json!({"matches": result.matches.len(), "truncated": truncated})))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn globs_match_like_ripgrep() {
        let m = super::matcher("*.rs").unwrap();
        assert!(m("src/main.rs") && m("a.rs") && !m("a.rsx"));
        let m = super::matcher("src/*.rs").unwrap();
        assert!(m("src/main.rs") && !m("src/a/b.rs"));
        let m = super::matcher("**/*.ts").unwrap();
        assert!(m("a/b/c.ts"));
    }
}
