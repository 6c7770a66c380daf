//! The `sh` script that runs a user's command the way their own shell would.
//!
//! OpenCode runs `$SHELL -l -c` with the user's rc file sourced and aliases on
//! (bash, zsh), and plain `-c` for other shells. It pastes the command into the
//! script inside double quotes, so `$HOME` in single quotes expands and
//! `$(seq 1 3)` breaks the line. Burrow passes the command on standard input
//! and `eval`s it verbatim: not in argv, where the kernel refuses any single
//! argument of 128 KiB or more (`Argument list too long`). The command's own
//! standard input is then empty, as with `/dev/null`. The choice of shell happens inside the environment
//! (which may be a container or a remote host), so it needs only `sh`.
//! Standard error joins standard output, so the two stay in the order the
//! command wrote them, as in a terminal (and as OpenCode merges them).

/// Takes the command from standard input into `$1` (the `x` keeps trailing
/// newlines, which `$(...)` would strip), then gives the command an empty one.
/// No `exec` or argv is involved, so any length works in the shells that
/// can `eval` it (bash, zsh and the POSIX family); others (fish, ...) get it as
/// an argument, up to the kernel's 128 KiB.
const READ_COMMAND: &str = r#"c=$(cat; printf x); set -- "${c%x}"; unset c; exec </dev/null"#;

/// Bash and zsh: sourced rc files and aliases, like an interactive prompt.
const BASH: &str = r#"shopt -s expand_aliases
[[ -f ~/.bashrc ]] && source ~/.bashrc >/dev/null 2>&1 || true
eval "$1""#;

const ZSH: &str = r#"[[ -f ~/.zshenv ]] && source ~/.zshenv >/dev/null 2>&1 || true
[[ -f "${ZDOTDIR:-$HOME}/.zshrc" ]] && source "${ZDOTDIR:-$HOME}/.zshrc" >/dev/null 2>&1 || true
eval "$1""#;

/// The script for `sh -c`, which reads the command from standard input, or
/// `None` when the command holds a NUL byte (no shell can receive one).
pub fn for_command(command: &str) -> Option<String> {
    if command.contains('\0') {
        return None;
    }
    Some(format!(
        r#"exec 2>&1
s=${{SHELL:-}}
case "$s" in /*) [ -x "$s" ] || s= ;; *) s= ;; esac
[ -n "$s" ] || s=$(command -v bash 2>/dev/null) || s=
[ -n "$s" ] || s=/bin/sh
case "${{s##*/}}" in
bash) exec "$s" -l -c '{READ_COMMAND}
{BASH}' burrow ;;
zsh) exec "$s" -l -c '{READ_COMMAND}
{ZSH}' burrow ;;
sh|dash|ash|ksh|mksh|yash|posh) exec "$s" -c '{READ_COMMAND}; eval "$1"' burrow ;;
*) {READ_COMMAND}; exec "$s" -c "$1" ;;
esac"#
    ))
}

#[cfg(test)]
mod tests {
    use super::for_command;

    fn run(command: &str, shell: &str) -> String {
        use std::io::Write;
        let mut child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(for_command(command).unwrap())
            .env("SHELL", shell)
            .env("HOME", std::env::temp_dir())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let command = command.to_string();
        let feeder = std::thread::spawn(move || stdin.write_all(command.as_bytes()));
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap().unwrap();
        assert!(out.stderr.is_empty(), "stderr joins stdout");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn commands_reach_the_shell_verbatim() {
        for shell in ["/bin/bash", "/bin/sh", "", "/nonexistent/shell"] {
            assert_eq!(run("echo '$HOME'", shell), "$HOME\n", "{shell}");
            assert_eq!(run("for i in $(seq 1 3); do echo n$i; done", shell), "n1\nn2\nn3\n", "{shell}");
            assert_eq!(run(r#"printf '%s\n' "a  b" "it's""#, shell), "a  b\nit's\n", "{shell}");
        }
    }

    #[test]
    fn stderr_keeps_its_place() {
        assert_eq!(run("echo out; echo err >&2; echo out2; exit 3", "/bin/bash"), "out\nerr\nout2\n");
    }

    #[test]
    fn bash_gets_aliases_and_the_burrow_name() {
        assert_eq!(run("echo $0; shopt -q expand_aliases && echo aliases", "/bin/bash"), "burrow\naliases\n");
    }

    #[test]
    fn a_command_longer_than_any_argument_runs_and_reads_nothing_else() {
        // Past MAX_ARG_STRLEN (128 KiB): it would never fit in argv.
        let long = format!("x='{}'; echo ${{#x}}; cat; echo end\n\n", "a".repeat(1 << 20));
        for shell in ["/bin/bash", "/bin/sh"] {
            assert_eq!(run(&long, shell), format!("{}\nend\n", 1 << 20), "{shell}");
        }
    }

    #[test]
    fn nul_bytes_are_refused() {
        assert!(for_command("echo \0").is_none());
    }
}
