//! The shell scripts Burrow runs in a container when its helper cannot run
//! there: file operations and process wrappers in POSIX sh, plus `readlink -f`
//! and `stat -c` (busybox and coreutils both have them).
//!
//! Every script is the [`PRELUDE`] followed by one operation, run as
//! `sh -c SCRIPT burrow ROOT REL ...`: arguments travel as argv, never pasted
//! into the script, so no name needs quoting. Confinement happens in the same
//! exec as the operation, against paths resolved inside the container.
//! Errors use the helper's stderr line and exit codes (`helper::protocol`),
//! so one decoder reads both.

/// Functions every script shares.
///
/// - `b_fail KIND MESSAGE CODE`: report an error the helper's way and exit.
/// - `b_real PATH`: sets `P` to the canonical path: nearest existing ancestor
///   resolved, the missing rest appended; status 5 for a dangling symlink.
///   It sets a variable rather than printing, because `$(...)` drops every
///   trailing newline: `a<newline>` would be checked as itself but used as `a`.
/// - `b_in ROOT REL`: sets `R` to the resolved absolute path of REL, or fails
///   with `Escape` when it leaves ROOT. Also sets `A` (unresolved) and `N` (REL or `.`).
/// - `b_link ROOT REL`: after `b_in`, sets `L` to the entry itself (its
///   folder resolved, its own name kept, so a symlink is not followed), checking
///   that folder too.
pub const PRELUDE: &str = r#"
b_fail() { printf 'error\t%s\t%s\n' "$1" "$2" >&2; exit "$3"; }
b_real() {
  p=$1 rest=
  while [ ! -e "$p" ]; do
    [ -L "$p" ] && return 5
    rest=/${p##*/}$rest
    p=${p%/*}
    [ -n "$p" ] || p=/
  done
  r=$(readlink -f -- "$p" && echo .) || return 1
  r=${r%.}; r=${r%?}
  [ "$r" = / ] && r=
  P=$r$rest
}
b_inside() { case $2/ in "${1%/}"/*) return 0 ;; esac; return 1; }
b_in() {
  N=${2:-.}
  if [ -z "$2" ]; then A=$1; else A=${1%/}/$2; fi
  b_real "$A" || b_fail Escape "$N" 5
  R=$P
  b_inside "$1" "$R" || b_fail Escape "$N" 5
}
b_link() {
  if [ -z "$2" ]; then L=$R; return; fi
  b_real "${A%/*}" || b_fail Escape "$N" 5
  d=$P
  b_inside "$1" "$d" || b_fail Escape "$N" 5
  L=$d/${A##*/}
}
b_exists() { [ -e "$1" ] || [ -L "$1" ] || b_fail NotFound "$N" 3; }
"#;

/// `DIR`: the workspace root, resolved; it must be an existing folder.
pub const ROOT: &str = r#"
b_real "$1" || b_fail Escape "$1" 5
R=$P
[ -e "$R" ] || b_fail NotFound "$1" 3
[ -d "$R" ] || b_fail NotADirectory "$1" 6
printf '%s\n' "${R:-/}"
"#;

/// `ROOT REL`: checks, and prints the resolved path.
pub const CONFINE: &str = r#"b_in "$1" "$2"; printf '%s\n' "${R:-/}""#;

/// `ROOT REL`: `d\tNAME\0` or `f\tNAME\0` per entry; symlinks are left
/// out, as `Env::list` says.
pub const LIST: &str = r#"
b_in "$1" "$2"; b_exists "$R"
[ -d "$R" ] || b_fail NotADirectory "$N" 6
cd -- "$R" 2>/dev/null || b_fail PermissionDenied "$N" 9
for f in * .[!.]* ..?*; do
  if [ -L "$f" ]; then continue
  elif [ -d "$f" ]; then printf 'd\t%s\0' "$f"
  elif [ -e "$f" ]; then printf 'f\t%s\0' "$f"
  fi
done
"#;

/// `ROOT REL`: `KIND SIZE MTIME_SECONDS`.
pub const STAT: &str = r#"
b_in "$1" "$2"; [ -e "$R" ] || b_fail NotFound "$N" 3
if [ -d "$R" ]; then k=d; else k=f; fi
stat -L -c "$k %s %Y" -- "$R" || b_fail Io "cannot stat $N" 1
"#;

/// `ROOT REL MAX`: the file's bytes.
pub const READ: &str = r#"
b_in "$1" "$2"; [ -e "$R" ] || b_fail NotFound "$N" 3
[ -d "$R" ] && b_fail IsADirectory "$N" 7
n=$(stat -L -c %s -- "$R") || b_fail Io "cannot stat $N" 1
[ "$n" -le "$3" ] || b_fail TooLarge "$n $3 $N" 10
[ -r "$R" ] || b_fail PermissionDenied "$N" 9
exec cat -- "$R"
"#;

/// `ROOT REL` with the bytes on stdin: temp file beside the target, then rename,
/// keeping the mode of the file it replaces. A file where a folder of the path
/// should be is `NotADirectory`, as the other environments say.
pub const WRITE: &str = r#"
b_in "$1" "$2"; b_link "$1" "$2"
[ -d "$R" ] && b_fail IsADirectory "$N" 7
d=${L%/*}; [ -n "$d" ] || d=/
if ! mkdir -p -- "$d" 2>/dev/null; then
  e=$d; while [ -n "$e" ] && [ ! -e "$e" ]; do e=${e%/*}; done
  [ -z "$e" ] || [ -d "$e" ] || b_fail NotADirectory "$N" 6
  b_fail Io "cannot create the folder of $N" 1
fi
t=$(mktemp "$d/.burrow-XXXXXX") || b_fail PermissionDenied "$N" 9
m=$(stat -L -c %a -- "$R" 2>/dev/null) || m=$(printf %o $((0666 & ~0$(umask))))
if cat > "$t" && chmod "$m" "$t" && mv -f -- "$t" "$L"; then exit 0; fi
rm -f -- "$t"; b_fail Io "cannot write $N" 1
"#;

/// `ROOT REL`.
pub const MKDIR: &str = r#"
b_in "$1" "$2"
[ -e "$R" ] && [ ! -d "$R" ] && b_fail AlreadyExists "$N" 8
mkdir -p -- "$R" 2>/dev/null || b_fail PermissionDenied "$N" 9
"#;

/// `ROOT REL`: a file, a symlink (not its target) or a whole folder.
pub const REMOVE: &str = r#"
b_in "$1" "$2"; b_link "$1" "$2"; b_exists "$L"
rm -rf -- "$L" 2>/dev/null || b_fail PermissionDenied "$N" 9
"#;

/// `ROOT FROM TO`: rename semantics (a file replaces a file, a folder an empty folder).
pub const RENAME: &str = r#"
b_in "$1" "$2"; b_link "$1" "$2"; b_exists "$L"; from=$L
b_in "$1" "$3"; b_link "$1" "$3"
mkdir -p -- "${L%/*}" 2>/dev/null
mv -f -T -- "$from" "$L" 2>/dev/null || b_fail Io "cannot rename $2 to $N" 1
"#;

/// `ROOT REL COMMAND`: runs COMMAND in REL. The first stdout line is the pid,
/// which is also the process group and session (docker exec starts a new session).
pub const SPAWN: &str = r#"
b_in "$1" "$2"; [ -d "$R" ] || b_fail NotADirectory "$N" 6
cd -- "$R" || b_fail PermissionDenied "$N" 9
echo $$
exec /bin/sh -c "$3"
"#;

/// `ROOT REL PROGRAM ARGS...`: like [`SPAWN`], for a program with arguments (PTYs).
pub const SPAWN_ARGV: &str = r#"
b_in "$1" "$2"; [ -d "$R" ] || b_fail NotADirectory "$N" 6
cd -- "$R" || b_fail PermissionDenied "$N" 9
echo $$
shift 2
exec "$@"
"#;

/// `COMMAND`: an unconfined command line (helper install, probes), pid first.
pub const RUN: &str = r#"echo $$; exec /bin/sh -c "$1""#;

/// Lists the processes Burrow started, one `PID SID OWNER` line each: every
/// exec carries `BURROW_OWNER` (the owning Burrow's label) in its
/// environment, and children inherit it.
pub const OWNED: &str = r#"
for d in /proc/[0-9]*; do
  o=$(tr '\0' '\n' < "$d/environ" 2>/dev/null | sed -n 's/^BURROW_OWNER=//p')
  [ -n "$o" ] || continue
  read -r line < "$d/stat" 2>/dev/null || continue
  set -- ${line##*\) }
  echo "${d#/proc/} $4 $o"
done
exit 0
"#;

/// `PID`: kills every process in PID's process group or session, twice to
/// catch what was forked in between. Job-control shells move jobs into other
/// groups but not out of the session.
pub const KILL: &str = r#"
P=$1
for pass in 1 2; do
  for d in /proc/[0-9]*; do
    read -r line < "$d/stat" 2>/dev/null || continue
    set -- ${line##*\) }
    if [ "$3" = "$P" ] || [ "$4" = "$P" ]; then kill -KILL "${d#/proc/}" 2>/dev/null; fi
  done
done
exit 0
"#;

/// The argv of `sh -c` running `op` with the prelude and `args`.
pub fn argv(op: &str, args: &[&str]) -> Vec<String> {
    let mut v = vec!["/bin/sh".to_string(), "-c".to_string(), format!("{PRELUDE}\n{op}"), "burrow".to_string()];
    v.extend(args.iter().map(|a| a.to_string()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a script with this machine's `/bin/sh`, as a container would.
    fn run(op: &str, args: &[&str]) -> std::process::Output {
        let argv = argv(op, args);
        std::process::Command::new(&argv[0]).args(&argv[1..]).output().unwrap()
    }

    #[test]
    fn a_trailing_newline_is_kept_not_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "OUTSIDE").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join("a")).unwrap();
        let root = root.to_str().unwrap();
        // `a<newline>` does not exist; before, it resolved to `ROOT/a<newline>`,
        // lost the newline in `$(...)` and was read through the link `a`.
        let out = run(READ, &[root, "a\n", "1000"]);
        assert!(!String::from_utf8_lossy(&out.stdout).contains("OUTSIDE"), "{out:?}");
        assert_ne!(out.status.code(), Some(0), "{out:?}");
        // The resolved path keeps its newline.
        let out = run(CONFINE, &[root, "b\n"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{root}/b\n\n"), "{out:?}");
        // A name that ends in a newline and exists is read as itself.
        std::fs::write(format!("{root}/c\n"), "INSIDE").unwrap();
        let out = run(READ, &[root, "c\n", "1000"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "INSIDE", "{out:?}");
        // The link itself is still refused.
        let out = run(READ, &[root, "a", "1000"]);
        assert_eq!(out.status.code(), Some(5), "{out:?}");
    }
}
