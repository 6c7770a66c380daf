//! `read`: a file as numbered lines (a window of them), or a directory's entries.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{args, fail, Tool, ToolContext, ToolError, ToolOutput, ToolResult};
use crate::agent::permission::AskInput;
use crate::env::{EntryKind, EnvError, WorkspacePath};

const DEFAULT_LIMIT: usize = 2000;
const MAX_LINE_CHARS: usize = 2000;
const MAX_BYTES: usize = 50 * 1024;
/// Larger files are refused rather than pulled whole out of a remote environment.
const MAX_FILE_BYTES: u64 = 64 << 20;

const DESCRIPTION: &str = "Read a file or directory from the local filesystem. If the path does not exist, an error is returned.

Usage:
- The filePath parameter should be an absolute path.
- By default, this tool returns up to 2000 lines from the start of the file.
- The offset parameter is the line number to start from (1-indexed).
- To read later sections, call this tool again with a larger offset.
- Contents are returned with each line prefixed by its line number as `<line>: <content>`. For directories, entries are returned one per line (without line numbers) with a trailing `/` for subdirectories.
- Any line longer than 2000 characters is truncated.";

pub struct Read;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Args {
    file_path: String,
    offset: Option<usize>,
    limit: Option<usize>,
}

/// Binary by extension, or by a NUL or many control bytes in the first 4 KB.
fn is_binary(path: &str, sample: &[u8]) -> bool {
    const EXT: [&str; 27] = [
        "zip", "tar", "gz", "exe", "dll", "so", "class", "jar", "war", "7z", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp", "bin", "dat",
        "obj", "o", "a", "lib", "wasm", "pyc",
    ];
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    if EXT.contains(&ext.as_str()) || ext == "pyo" {
        return true;
    }
    let sample = &sample[..sample.len().min(4096)];
    if sample.is_empty() {
        return false;
    }
    if sample.contains(&0) {
        return true;
    }
    let odd = sample.iter().filter(|&&b| b < 9 || (b > 13 && b < 32)).count();
    odd * 10 > sample.len() * 3
}

/// The numbered window of a file, with OpenCode's footer.
pub fn render_file(abs: &str, text: &str, offset: usize, limit: usize) -> Result<(String, Value), String> {
    let all: Vec<&str> = text.lines().collect();
    let count = all.len();
    if count < offset && !(count == 0 && offset == 1) {
        return Err(format!("Offset {offset} is out of range for this file ({count} lines)"));
    }
    let mut raw: Vec<String> = Vec::new();
    let (mut bytes, mut cut) = (0usize, false);
    for line in all.iter().skip(offset - 1).take(limit) {
        let line = if line.chars().count() > MAX_LINE_CHARS {
            format!("{}... (line truncated to {MAX_LINE_CHARS} chars)", line.chars().take(MAX_LINE_CHARS).collect::<String>())
        } else {
            line.to_string()
        };
        let size = line.len() + usize::from(!raw.is_empty());
        if bytes + size > MAX_BYTES {
            cut = true;
            break;
        }
        bytes += size;
        raw.push(line);
    }
    let more = cut || offset - 1 + raw.len() < count;
    let last = offset + raw.len() - 1;
    let mut out = format!("<path>{abs}</path>\n<type>file</type>\n<content>\n");
    out.push_str(&raw.iter().enumerate().map(|(i, l)| format!("{}: {l}", i + offset)).collect::<Vec<_>>().join("\n"));
    if cut {
        out.push_str(&format!("\n\n(Output capped at 50 KB. Showing lines {offset}-{last}. Use offset={} to continue.)", last + 1));
    } else if more {
        out.push_str(&format!("\n\n(Showing lines {offset}-{last} of {count}. Use offset={} to continue.)", last + 1));
    } else {
        out.push_str(&format!("\n\n(End of file - total {count} lines)"));
    }
    out.push_str("\n</content>");
    let metadata = json!({
        "preview": raw.iter().take(20).cloned().collect::<Vec<_>>().join("\n"),
        "truncated": more,
        "loaded": [],
        "display": {"type": "file", "path": abs, "text": raw.join("\n"), "lineStart": offset, "lineEnd": last, "totalLines": count, "truncated": more},
    });
    Ok((out, metadata))
}

async fn list_dir(ctx: &ToolContext, path: &WorkspacePath) -> Result<Vec<String>, ToolError> {
    let mut names: Vec<String> =
        ctx.env.list(path).await?.into_iter().map(|e| if e.kind == EntryKind::Directory { format!("{}/", e.name) } else { e.name }).collect();
    names.sort();
    Ok(names)
}

async fn not_found(ctx: &ToolContext, path: &WorkspacePath) -> ToolResult {
    let abs = ctx.absolute(path);
    let name = path.file_name().to_lowercase();
    let parent = path.parent().unwrap_or_default();
    let similar: Vec<String> = ctx
        .env
        .list(&parent)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|e| {
            let n = e.name.to_lowercase();
            n.contains(&name) || name.contains(&n)
        })
        .take(3)
        .map(|e| ctx.absolute(&parent.join(&e.name)))
        .collect();
    if similar.is_empty() {
        return fail(format!("File not found: {abs}"));
    }
    fail(format!("File not found: {abs}\n\nDid you mean one of these?\n{}", similar.join("\n")))
}

#[async_trait]
impl Tool for Read {
    fn name(&self) -> &'static str {
        "read"
    }
    fn description(&self) -> &'static str {
        DESCRIPTION
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "filePath": {"type": "string", "description": "The absolute path to the file or directory to read"},
                "offset": {"type": "integer", "minimum": 1, "description": "The line number to start reading from (1-indexed)"},
                "limit": {"type": "integer", "minimum": 1, "description": "The maximum number of lines to read (defaults to 2000)"}
            },
            "required": ["filePath"]
        })
    }

    async fn run(&self, input: Value, ctx: &ToolContext) -> ToolResult {
        let a: Args = args("read", input)?;
        let offset = a.offset.unwrap_or(1).max(1);
        let limit = a.limit.unwrap_or(DEFAULT_LIMIT).max(1);
        if ctx.truncator.owns(&a.file_path) {
            // A saved over-long tool output: it lives on the server, not in the workspace.
            let text = tokio::fs::read_to_string(&a.file_path).await.map_err(|e| ToolError::Failed(format!("File not found: {}: {e}", a.file_path)))?;
            let (out, meta) = render_file(&a.file_path, &text, offset, limit).map_err(ToolError::Failed)?;
            return Ok(ToolOutput::new(a.file_path.clone(), out, meta));
        }
        let path = ctx.resolve(&a.file_path).await?;
        let abs = ctx.absolute(&path);
        ctx.ask(AskInput::new("read", vec![ctx.relative(&path)], vec!["*".into()], json!({}))).await?;
        let meta = match ctx.env.stat(&path).await {
            Ok(m) => m,
            Err(EnvError::NotFound(_)) => return not_found(ctx, &path).await,
            Err(e) => return Err(e.into()),
        };
        let title = ctx.relative(&path);
        if meta.kind == EntryKind::Directory {
            let all = list_dir(ctx, &path).await?;
            let page: Vec<String> = all.iter().skip(offset - 1).take(limit).cloned().collect();
            let more = offset - 1 + page.len() < all.len();
            let footer = if more {
                format!("\n(Showing {} of {} entries. Use 'offset' parameter to read beyond entry {})", page.len(), all.len(), offset + page.len())
            } else {
                format!("\n({} entries)", all.len())
            };
            let out =
                [format!("<path>{abs}</path>"), "<type>directory</type>".into(), "<entries>".into(), page.join("\n"), footer, "</entries>".into()].join("\n");
            let metadata = json!({
                "preview": page.iter().take(20).cloned().collect::<Vec<_>>().join("\n"),
                "truncated": more,
                "loaded": [],
                "display": {"type": "directory", "path": abs, "entries": page, "offset": offset, "totalEntries": all.len(), "truncated": more},
            });
            return Ok(ToolOutput::new(title, out, metadata));
        }
        let data = ctx.env.read(&path, MAX_FILE_BYTES).await?;
        if is_binary(&abs, &data) {
            return fail(format!("Cannot read binary file: {abs}"));
        }
        let text = String::from_utf8_lossy(&data);
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let (out, metadata) = render_file(&abs, text, offset, limit).map_err(ToolError::Failed)?;
        Ok(ToolOutput::new(title, out, metadata))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_numbered_window_with_footer() {
        let (out, meta) = render_file("/w/a.txt", "one\ntwo\nthree\n", 1, 2000).unwrap();
        assert_eq!(out, "<path>/w/a.txt</path>\n<type>file</type>\n<content>\n1: one\n2: two\n3: three\n\n(End of file - total 3 lines)\n</content>");
        assert_eq!(meta["preview"], "one\ntwo\nthree");
        let (out, meta) = render_file("/w/a.txt", "one\ntwo\nthree\n", 2, 1).unwrap();
        assert!(out.contains("2: two\n\n(Showing lines 2-2 of 3. Use offset=3 to continue.)"), "{out}");
        assert_eq!(meta["truncated"], true);
        assert_eq!(render_file("/w/a", "x\n", 5, 10).unwrap_err(), "Offset 5 is out of range for this file (1 lines)");
        assert!(render_file("/w/a", "", 1, 10).is_ok());
    }

    #[test]
    fn spots_binary() {
        assert!(is_binary("a.png.zip", b"text"));
        assert!(is_binary("a", b"ab\0cd"));
        assert!(!is_binary("a.rs", b"fn main() {}\n"));
    }
}
