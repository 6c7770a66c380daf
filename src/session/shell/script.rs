//! The `sh` script that runs a user's command the way their own shell would.
//!
//! OpenCode runs `$SHELL -l -c` with the user's rc file sourced and aliases on
//! (bash, zsh), and plain `-c` for other shells. It pastes the command into the
//! script inside double quotes, so `$HOME` in single quotes expands and
//! `$(seq 1 3)` breaks the line. Burrow passes the command as an argument and
//! `eval`s it verbatim. The choice of shell happens inside the environment
//! (which may be a container or a remote host), so it needs only `sh`.
//! Standard error joins standard output, so the two stay in the order the
//! command wrote them, as in a terminal (and as OpenCode merges them).

/// Bash and zsh: sourced rc files and aliases, like an interactive prompt.
const BASH: &str = r#"shopt -s expand_aliases
[[ -f ~/.bashrc ]] && source ~/.bashrc >/dev/null 2>&1 || true
eval "$1""#;

const ZSH: &str = r#"[[ -f ~/.zshenv ]] && source ~/.zshenv >/dev/null 2>&1 || true
[[ -f "${ZDOTDIR:-$HOME}/.zshrc" ]] && source "${ZDOTDIR:-$HOME}/.zshrc" >/dev/null 2>&1 || true
eval "$1""#;

/// The script for `sh -c`, or `None` when the command holds a NUL byte
/// (no shell can receive one).
pub fn for_command(command: &str) -> Option<String> {
    let quoted = shlex::try_quote(command).ok()?;
    Some(format!(
        r#"exec 2>&1
s=${{SHELL:-}}
case "$s" in /*) [ -x "$s" ] || s= ;; *) s= ;; esac
[ -n "$s" ] || s=$(command -v bash 2>/dev/null) || s=
[ -n "$s" ] || s=/bin/sh
set -- {quoted}
case "${{s##*/}}" in
bash) exec "$s" -l -c '{BASH}' burrow "$1" ;;
zsh) exec "$s" -l -c '{ZSH}' burrow "$1" ;;
*) exec "$s" -c "$1" ;;
esac"#
    ))
}

#[cfg(test)]
mod tests {
    use super::for_command;

    fn run(command: &str, shell: &str) -> String {
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(for_command(command).unwrap())
            .env("SHELL", shell)
            .env("HOME", std::env::temp_dir())
            .output()
            .unwrap();
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
    fn nul_bytes_are_refused() {
        assert!(for_command("echo \0").is_none());
    }
}
