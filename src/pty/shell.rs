//! Which shell a terminal runs, chosen where the terminal runs.
//!
//! Like OpenCode: the user's `$SHELL` when it resolves, else `bash` from the
//! PATH, else `/bin/sh`, and login shells get `-l`. The choice is made inside
//! the environment (a container may have no bash at all), once per server.

use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use crate::env::{Env, ExecRequest, WorkspacePath};

const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
const PROBE_MAX_BYTES: usize = 64 * 1024;

/// Prints the preferred shell's path.
const PREFERRED: &str = r#"for s in "$SHELL" bash; do
  [ -n "$s" ] || continue
  p=$(command -v "$s" 2>/dev/null) && [ -n "$p" ] && [ -f "$p" ] && { printf '%s' "$p"; exit 0; }
done
printf /bin/sh"#;

/// Prints the shells of `/etc/shells` (or a default list) that exist, one a line.
const LIST: &str = r#"list=$(grep -v '^#' /etc/shells 2>/dev/null | grep .)
[ -n "$list" ] || list='/bin/bash
/bin/zsh
/bin/sh'
printf '%s\n' "$list" | while IFS= read -r s; do
  [ -f "$s" ] && printf '%s\t%s\n' "$s" "$(command -v "$(basename "$s")" 2>/dev/null)"
done"#;

/// Shells that take `-l` for a login shell.
const LOGIN: &[&str] = &["bash", "dash", "fish", "ksh", "sh", "zsh"];
/// Shells OpenCode will not offer as a terminal default.
const DENIED: &[&str] = &["fish", "nu"];

fn base_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_lowercase()
}

/// The arguments for `command`: `args`, plus `-l` for a login shell.
pub fn login_args(command: &str, mut args: Vec<String>) -> Vec<String> {
    if LOGIN.contains(&base_name(command).as_str()) {
        args.push("-l".into());
    }
    args
}

async fn run(env: &dyn Env, script: &str) -> Option<String> {
    let req = ExecRequest::shell(script, WorkspacePath::root());
    let out = env.exec(req).await.ok()?.collect(PROBE_MAX_BYTES, Some(PROBE_TIMEOUT)).await.ok()?;
    out.status.filter(|s| s.success())?;
    String::from_utf8(out.stdout).ok()
}

/// Whether `program` can be started in `env` (a path to an executable file, or
/// a name on the PATH). Asked where the terminal will run, because a remote
/// PTY channel only reports a missing program after it has "started".
pub async fn runnable(env: &dyn Env, program: &str) -> bool {
    let Ok(quoted) = shlex::try_quote(program) else { return false };
    run(env, &format!("p=$(command -v -- {quoted}) && [ -x \"$p\" ]")).await.is_some()
}

/// The preferred shell in `env`; `/bin/sh` when the environment cannot tell.
pub async fn preferred(env: &dyn Env) -> String {
    match run(env, PREFERRED).await {
        Some(p) if p.starts_with('/') => p.trim_end().to_string(),
        _ => "/bin/sh".to_string(),
    }
}

/// A shell installed in the environment, as `GET /pty/shells` lists it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ShellInfo {
    pub path: String,
    /// The short name when it resolves on the PATH, else the path.
    pub name: String,
    /// False for shells OpenCode does not use as a terminal default.
    pub acceptable: bool,
}

pub async fn list(env: &dyn Env) -> Vec<ShellInfo> {
    let Some(out) = run(env, LIST).await else { return Vec::new() };
    let mut seen = std::collections::HashSet::new();
    out.lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(path, _)| seen.insert(path.to_string()))
        .map(|(path, found)| {
            let base = base_name(path);
            let name = if found.is_empty() { path.to_string() } else { base.clone() };
            ShellInfo { path: path.to_string(), name, acceptable: !DENIED.contains(&base.as_str()) }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_shells_get_dash_l() {
        assert_eq!(login_args("/bin/bash", vec![]), vec!["-l"]);
        assert_eq!(login_args("/bin/sh", vec!["-c".into(), "x".into()]), vec!["-c", "x", "-l"]);
        assert_eq!(login_args("/usr/bin/python3", vec![]), Vec::<String>::new());
    }
}
