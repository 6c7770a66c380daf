//! `edit`: replaces a string in a file, tolerating the whitespace and
//! escaping mistakes models make (see [`super::replace`]), keeping the file's
//! line endings and byte-order mark.

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::fs::current_text;
use super::{args, diff, fail, replace, Tool, ToolContext, ToolError, ToolOutput, ToolResult};
use crate::agent::permission::AskInput;

const BOM: char = '\u{feff}';

pub struct Edit;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Args {
    file_path: String,
    old_string: String,
    new_string: String,
    #[serde(default)]
    replace_all: bool,
}

#[async_trait]
impl Tool for Edit {
    fn name(&self) -> &'static str {
        "edit"
    }
    fn description(&self) -> &'static str {
        "Performs exact string replacements in files.\n\nUsage:\n- You must use your `Read` tool at least once in the conversation before editing.\n- When editing text from Read tool output, ensure you preserve the exact indentation (tabs/spaces) as it appears AFTER the line number prefix (`1: `). Never include any part of the line number prefix in the oldString or newString.\n- The edit will FAIL if `oldString` is not found in the file.\n- The edit will FAIL if `oldString` is found multiple times in the file. Either provide a larger string with more surrounding context to make it unique or use `replaceAll` to change every instance of `oldString`."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "filePath": {"type": "string", "description": "The absolute path to the file to modify"},
                "oldString": {"type": "string", "description": "The text to replace"},
                "newString": {"type": "string", "description": "The text to replace it with (must be different from oldString)"},
                "replaceAll": {"type": "boolean", "description": "Replace all occurrences of oldString (default false)"}
            },
            "required": ["filePath", "oldString", "newString"]
        })
    }

    async fn run(&self, input: Value, ctx: &ToolContext) -> ToolResult {
        let a: Args = args("edit", input)?;
        if a.file_path.is_empty() {
            return fail("filePath is required");
        }
        if a.old_string == a.new_string {
            return fail("No changes to apply: oldString and newString are identical.");
        }
        let path = ctx.resolve(&a.file_path).await?;
        let abs = ctx.absolute(&path);
        let current = current_text(ctx, &path).await?;
        let (old_text, new_text) = match (&current, a.old_string.is_empty()) {
            (Some(_), true) => {
                return fail("oldString cannot be empty when editing an existing file. Provide the exact text to replace, or use write for an intentional full-file replacement.")
            }
            (None, true) => (String::new(), a.new_string.clone()),
            (None, false) => return fail(format!("File {abs} not found")),
            (Some(text), false) => {
                let (bom, body) = match text.strip_prefix(BOM) {
                    Some(rest) => (true, rest),
                    None => (false, text.as_str()),
                };
                let crlf = body.contains("\r\n");
                let ending = |s: &str| {
                    let s = s.replace("\r\n", "\n");
                    if crlf { s.replace('\n', "\r\n") } else { s }
                };
                let replaced = replace::replace(body, &ending(&a.old_string), &ending(&a.new_string), a.replace_all).map_err(ToolError::Failed)?;
                (text.clone(), if bom { format!("{BOM}{replaced}") } else { replaced })
            }
        };
        let (old_lf, new_lf) = (old_text.replace("\r\n", "\n"), new_text.replace("\r\n", "\n"));
        let patch = diff::patch(&abs, &old_lf, &new_lf);
        ctx.ask(AskInput::new("edit", vec![ctx.relative(&path)], vec!["*".into()], json!({"filepath": abs, "diff": patch}))).await?;
        ctx.changes.record(&path, current.as_deref());
        ctx.env.write(&path, Bytes::from(new_text)).await?;
        let (additions, deletions) = diff::counts(&old_lf, &new_lf);
        let metadata = json!({
            "diagnostics": {},
            "diff": patch,
            "filediff": {"file": abs, "patch": patch, "additions": additions, "deletions": deletions},
        });
        let mut out = ToolOutput::new(ctx.relative(&path), "Edit applied successfully.", metadata);
        out.edited.push(abs);
        Ok(out)
    }
}
