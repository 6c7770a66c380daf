//! `bash`: runs a command in the environment's shell, streaming its output
//! into the part's metadata, with a timeout, and killed on abort.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::truncate::{cut, MAX_BYTES, MAX_LINES};
use super::{args, fail, Tool, ToolContext, ToolOutput, ToolResult};
use crate::agent::permission::AskInput;
use crate::env::{ExecRequest, Output, ProcessControl};

pub const DEFAULT_TIMEOUT_MS: u64 = 120_000;
/// How much output the running part's metadata carries (OpenCode's 30 000 characters).
const METADATA_CHARS: usize = 30_000;

pub struct Bash;

#[derive(Deserialize)]
struct Args {
    command: String,
    timeout: Option<i64>,
    workdir: Option<String>,
}

const DESCRIPTION: &str = "Executes a given bash command with optional timeout, ensuring proper handling and security measures.

All commands run in the current working directory by default. Use the `workdir` parameter if you need to run a command in a different directory. AVOID using `cd <directory> && <command>` patterns - use `workdir` instead.

Usage notes:
  - The command argument is required.
  - You can specify an optional timeout in milliseconds. If not specified, commands will time out after 120000ms (2 minutes).
  - Write a clear, concise description of what the command does in 5-10 words.
  - If the output exceeds 2000 lines or 51200 bytes, it will be truncated and the full output will be written to a file.
  - Avoid using bash to find, search or read files: use the Glob, Grep and Read tools instead.";

/// How many words of a command name the program and its subcommand, for
/// `always` patterns (`git status` approves `git *`, `npm run x` approves `npm run *`).
fn arity(words: &[&str]) -> usize {
    const THREE: [&str; 12] = [
        "npm run",
        "yarn run",
        "pnpm run",
        "bun run",
        "cargo run",
        "docker compose",
        "git config",
        "git remote",
        "git stash",
        "kubectl rollout",
        "npm exec",
        "pnpm exec",
    ];
    const TWO: [&str; 22] = [
        "git",
        "cargo",
        "npm",
        "yarn",
        "pnpm",
        "bun",
        "docker",
        "go",
        "make",
        "pip",
        "python",
        "kubectl",
        "helm",
        "terraform",
        "gradle",
        "mvn",
        "poetry",
        "deno",
        "rustup",
        "systemctl",
        "brew",
        "podman",
    ];
    if words.len() >= 2 && THREE.contains(&words[..2].join(" ").as_str()) {
        return 3;
    }
    if words.first().is_some_and(|w| TWO.contains(w)) {
        return 2;
    }
    1
}

/// The simple commands of a command line (split on `&&`, `||`, `;`, `|` and
/// newlines), each with the pattern an `always` reply would approve.
pub fn command_patterns(command: &str) -> (Vec<String>, Vec<String>) {
    let mut patterns = Vec::new();
    let mut always = Vec::new();
    let normalized = command.replace("&&", "\n").replace("||", "\n").replace([';', '|'], "\n");
    for part in normalized.lines().map(str::trim).filter(|p| !p.is_empty()) {
        let words: Vec<&str> = part.split_whitespace().collect();
        if matches!(words.first(), Some(&"cd") | Some(&"pushd") | Some(&"popd")) {
            continue;
        }
        let n = arity(&words).min(words.len());
        patterns.push(part.to_string());
        let prefix = format!("{} *", words[..n].join(" "));
        if !always.contains(&prefix) {
            always.push(prefix);
        }
    }
    (patterns, always)
}

/// Kills the process if the call is dropped before it ended (an abort).
struct KillOnDrop(Option<Arc<dyn ProcessControl>>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(control) = self.0.take() {
            tokio::spawn(async move {
                let _ = control.kill().await;
            });
        }
    }
}

fn tail_chars(s: &str, n: usize) -> String {
    let count = s.chars().count();
    if count <= n {
        return s.to_string();
    }
    format!("...\n\n{}", s.chars().skip(count - n).collect::<String>())
}

#[async_trait]
impl Tool for Bash {
    fn name(&self) -> &'static str {
        "bash"
    }
    fn description(&self) -> &'static str {
        DESCRIPTION
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "The command to execute"},
                "timeout": {"type": "number", "description": "Optional timeout in milliseconds"},
                "workdir": {"type": "string", "description": "The working directory to run the command in. Defaults to the current directory. Use this instead of 'cd' commands."},
                "description": {"type": "string", "description": "Clear, concise description of what this command does in 5-10 words."}
            },
            "required": ["command", "description"]
        })
    }

    async fn run(&self, input: Value, ctx: &ToolContext) -> ToolResult {
        let a: Args = args("bash", input)?;
        if let Some(t) = a.timeout.filter(|t| *t < 0) {
            return fail(format!("Invalid timeout value: {t}. Timeout must be a positive number."));
        }
        let timeout = a.timeout.map(|t| t as u64).unwrap_or(DEFAULT_TIMEOUT_MS);
        let cwd = match &a.workdir {
            Some(w) => ctx.resolve(w).await?,
            None => ctx.cwd.clone(),
        };
        let (patterns, always) = command_patterns(&a.command);
        if !patterns.is_empty() {
            ctx.ask(AskInput::new("bash", patterns, always, json!({"command": a.command}))).await?;
        }
        if !ctx.env.capabilities().exec {
            return fail(format!("this {} workspace cannot run commands", ctx.env.kind()));
        }
        ctx.report(json!({"output": ""}));
        let mut process = ctx.env.exec(ExecRequest::shell(a.command.clone(), cwd)).await?;
        let mut guard = KillOnDrop(Some(process.control.clone()));
        let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout + 100);
        let mut all = Vec::<u8>::new();
        let mut timed_out = false;
        loop {
            tokio::select! {
                chunk = process.output.recv() => match chunk {
                    Some(Output::Stdout(d)) | Some(Output::Stderr(d)) => {
                        all.extend_from_slice(&d);
                        // Keep memory bounded: past twice the limit only the tail matters.
                        if all.len() > 4 * MAX_BYTES {
                            all.drain(..all.len() - 2 * MAX_BYTES);
                        }
                        ctx.report(json!({"output": tail_chars(&String::from_utf8_lossy(&all), METADATA_CHARS)}));
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => { timed_out = true; break; }
            }
        }
        let exit = if timed_out {
            let _ = process.control.kill().await;
            None
        } else {
            tokio::select! {
                s = &mut process.exit => s.ok(),
                _ = tokio::time::sleep_until(deadline) => { timed_out = true; let _ = process.control.kill().await; None }
            }
        };
        guard.0 = None;
        let text = String::from_utf8_lossy(&all).into_owned();
        let metadata_output = tail_chars(&text, METADATA_CHARS);
        let mut truncated = false;
        let mut output_path = None;
        let mut output = match cut(&text, MAX_LINES, MAX_BYTES, super::truncate::Keep::Tail) {
            Some((kept, _, _)) => {
                truncated = true;
                output_path = ctx.truncator.save(&text).await;
                match &output_path {
                    Some(p) => format!("...output truncated...\n\nFull output saved to: {p}\n\n{kept}"),
                    None => format!("...output truncated...\n\n{kept}"),
                }
            }
            None => text.clone(),
        };
        if output.is_empty() {
            output = "(no output)".into();
        }
        if timed_out {
            output.push_str(&format!("\n\n<shell_metadata>\nshell tool terminated command after exceeding timeout {timeout} ms. If this command is expected to take longer and is not waiting for interactive input, retry with a larger timeout value in milliseconds.\n</shell_metadata>"));
        }
        let code = exit.and_then(|s| s.code);
        let mut metadata = json!({"output": if metadata_output.is_empty() { output.clone() } else { metadata_output }, "exit": code, "truncated": truncated});
        if let Some(p) = output_path {
            metadata["outputPath"] = json!(p);
        }
        Ok(ToolOutput::new(a.command, output, metadata))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_split_compound_commands() {
        let (p, a) = command_patterns("cd src && git status | head -5; cargo test --all");
        assert_eq!(p, vec!["git status", "head -5", "cargo test --all"]);
        assert_eq!(a, vec!["git status *", "head *", "cargo test *"]);
        assert_eq!(command_patterns("npm run build").1, vec!["npm run build *"]);
        assert_eq!(command_patterns("echo hi").1, vec!["echo *"]);
    }
}
