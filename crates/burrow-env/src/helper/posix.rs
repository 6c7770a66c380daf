//! The last fallback that still searches next to the data: plain `find` and
//! `grep`, present on any POSIX host, when neither the helper nor `rg` runs.
//!
//! The server does what those tools cannot: ripgrep's ignore rules (the
//! ignore files are fetched with one `cat`), the include glob, and ripgrep's
//! regex semantics. The pattern is translated to an ERE for `grep -E`, and each
//! line grep reports is checked again with the real regex, which also finds the
//! submatches; so an approximate translation costs speed, never correctness,
//! as long as grep's ERE matches a superset. Names containing a newline are
//! not supported.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use grep_matcher::Matcher;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;

use super::client::{finish, quote, run, HelperHost};
use crate::env::{EntryKind, EnvError, EnvResult, GrepMatch, GrepRequest, GrepResult, IndexEntry, Output, Submatch};
use crate::search::grep::{clip_line, compile, MAX_SUBMATCHES};

/// Separates directories from other entries in the listing (`find` never prints it).
const SPLIT: &str = "//";
/// Quoted file names per `grep` command line, well under any ARG_MAX.
const BATCH_BYTES: usize = 64 * 1024;
/// The script's exit code when grep refuses the translated pattern.
const BAD_PATTERN: i32 = 3;

/// The probe: `grep -n -b -E` works and prints `line:offset:text`.
pub const PROBE: &str = "command -v find >/dev/null && printf 'ab\\n' | grep -n -b -E -e 'b$'";
pub const PROBE_EXPECT: &str = "1:0:ab";

/// Every entry below `dir` (absolute) that ignore rules keep, sorted: what
/// the in-process walk gives (`.git` and symlinks left out).
pub async fn walk(host: &dyn HelperHost, dir: &str) -> EnvResult<Vec<IndexEntry>> {
    Ok(listing(host, dir).await?.0)
}

/// The walk, and which of its files are not regular files (FIFOs, sockets,
/// devices): text search skips those, as ripgrep does, since reading one can block.
async fn listing(host: &dyn HelperHost, dir: &str) -> EnvResult<(Vec<IndexEntry>, HashSet<String>)> {
    let find = |test: &str| format!("find . -name .git -prune -o {test} -print");
    // The repository roots: below `dir`, and `.` when `dir` or an ancestor holds
    // a `.git` (as ripgrep looks upwards too).
    let repos =
        "find . -name .git -prune -print; d=$PWD; while :; do [ -e \"$d/.git\" ] && echo ./.git && break; [ \"$d\" = / ] && break; d=$(dirname \"$d\"); done";
    let cmd = format!(
        "cd {} && {} && echo {SPLIT} && {} && echo {SPLIT} && {} && echo {SPLIT} && {{ {repos}; }}",
        quote(dir),
        find("-type d"),
        find("-type f"),
        find("! -type d ! -type f ! -type l")
    );
    let out = finish(run(host, cmd, None).await?)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let parts: Vec<&str> = text.split(&format!("{SPLIT}\n")).collect();
    let [dirs, files, special, repos] = parts[..] else { return Err(EnvError::Io("find printed no listing".into())) };
    let repos: HashSet<String> =
        repos.lines().filter_map(|l| l.strip_prefix("./")).filter_map(|l| l.strip_suffix(".git")).map(|p| p.trim_end_matches('/').to_string()).collect();
    let paths = |part: &str| part.lines().filter_map(|l| l.strip_prefix("./")).map(str::to_string).collect::<Vec<_>>();
    let special: HashSet<String> = paths(special).into_iter().collect();
    let mut entries: Vec<IndexEntry> = paths(dirs).into_iter().map(|path| IndexEntry { path, kind: EntryKind::Directory }).collect();
    entries.extend(paths(files).into_iter().chain(special.iter().cloned()).map(|path| IndexEntry { path, kind: EntryKind::File }));
    let rules = Rules::load(host, dir, &entries, repos).await?;
    entries.retain(|e| !rules.ignored(&e.path, e.kind));
    entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    Ok((entries, special))
}

/// Searches below `dir` (absolute) with the host's `grep`.
pub async fn grep(host: &dyn HelperHost, dir: &str, req: &GrepRequest) -> EnvResult<GrepResult> {
    let matcher = compile(req)?;
    let include = match req.include.as_deref().filter(|g| !g.is_empty()) {
        Some(glob) => {
            let mut b = ignore::overrides::OverrideBuilder::new("/");
            b.add(glob).map_err(|e| EnvError::InvalidInput(format!("invalid glob {glob:?}: {e}")))?;
            Some(b.build().map_err(|e| EnvError::InvalidInput(format!("invalid glob {glob:?}: {e}")))?)
        }
        None => None,
    };
    let (entries, special) = listing(host, dir).await?;
    let files: Vec<String> = entries
        .into_iter()
        .filter(|e| e.kind == EntryKind::File && !special.contains(&e.path))
        .filter(|e| include.as_ref().is_none_or(|o| o.matched(Path::new("/").join(&e.path), false).is_whitelist()))
        .map(|e| e.path)
        .collect();
    if files.is_empty() {
        return Ok(GrepResult::default());
    }
    let known: HashSet<&str> = files.iter().map(String::as_str).collect();
    let script = grep_script(req, &files);
    let mut process = host.run(format!("cd {} && exec /bin/sh", quote(dir)), Some(Bytes::from(script))).await?;
    let mut matches = Vec::new();
    let mut pending = Vec::new();
    let mut stderr = Vec::new();
    let mut cut = false;
    while let Some(chunk) = process.output.recv().await {
        let b = match chunk {
            Output::Stdout(b) => b,
            Output::Stderr(b) => {
                stderr.extend_from_slice(&b);
                continue;
            }
        };
        pending.extend_from_slice(&b);
        while let Some(nl) = pending.iter().position(|&c| c == b'\n') {
            let line: Vec<u8> = pending.drain(..=nl).collect();
            matches.extend(parse_line(&line, &known, &matcher));
        }
        if matches.len() > req.limit {
            cut = true;
            process.control.kill().await?;
            break;
        }
    }
    if !cut {
        match (&mut process.exit).await {
            Err(_) => return Err(EnvError::Unavailable("grep ended without an exit status".into())),
            Ok(s) if s.code == Some(BAD_PATTERN) => {
                let why = String::from_utf8_lossy(&stderr).trim().to_string();
                return Err(EnvError::Unsupported(format!("the pattern with the host's grep (no helper or rg there): {why}")));
            }
            Ok(_) => {}
        }
    }
    matches.sort_unstable_by(|a, b| a.path.cmp(&b.path).then(a.line_number.cmp(&b.line_number)));
    let truncated = matches.len() > req.limit;
    matches.truncate(req.limit);
    Ok(GrepResult { matches, truncated })
}

/// A shell script running grep over the files, a batch per command line.
/// `/dev/null` makes grep print the file name even for a batch of one.
fn grep_script(req: &GrepRequest, files: &[String]) -> String {
    let (ere, fold) = to_ere(&req.pattern);
    let flags = if req.case_insensitive || fold { "-n -b -E -i" } else { "-n -b -E" };
    let pattern = quote(&ere);
    let head = format!("grep -s {flags} -e {pattern} --");
    // Check the translated pattern once, so grep's refusal is an error rather than no matches.
    let mut script = format!("grep {flags} -e {pattern} /dev/null; [ $? -le 1 ] || exit {BAD_PATTERN}\n");
    let mut line = String::new();
    for f in files {
        if line.len() > BATCH_BYTES {
            script.push_str(&format!("{head}{line} /dev/null\n"));
            line.clear();
        }
        line.push(' ');
        line.push_str(&quote(f));
    }
    script.push_str(&format!("{head}{line} /dev/null\n"));
    script
}

/// One `path:line:offset:text` line, if the real regex agrees it matches.
fn parse_line(line: &[u8], known: &HashSet<&str>, matcher: &grep_regex::RegexMatcher) -> Option<GrepMatch> {
    let text = String::from_utf8_lossy(line);
    // The path may itself contain ':'; the right split is the one naming a file we asked about.
    let (path, rest) = text.match_indices(':').map(|(i, _)| (&text[..i], &text[i + 1..])).find(|(p, _)| known.contains(p))?;
    let (number, rest) = rest.split_once(':')?;
    let (offset, _) = rest.split_once(':')?;
    let prefix = path.len() + number.len() + offset.len() + 3;
    let bytes = line.get(prefix..)?;
    let content = bytes.strip_suffix(b"\n").map(|b| b.strip_suffix(b"\r").unwrap_or(b)).unwrap_or(bytes);
    if content.contains(&0) {
        return None;
    }
    let mut submatches = Vec::new();
    let _ = matcher.find_iter(content, |m| {
        if m.start() < m.end() {
            submatches.push(Submatch { text: String::from_utf8_lossy(&content[m.start()..m.end()]).into_owned(), start: m.start(), end: m.end() });
        }
        submatches.len() < MAX_SUBMATCHES
    });
    if !matcher.is_match(content).unwrap_or(false) {
        return None;
    }
    Some(GrepMatch { path: path.to_string(), line_number: number.parse().ok()?, absolute_offset: offset.parse().ok()?, line: clip_line(bytes), submatches })
}

/// Translates the common Rust regex escapes and groups into POSIX ERE, and
/// says whether an inline `i` flag asks for `grep -i`. What it cannot
/// translate it leaves alone; the real regex checks every line.
pub fn to_ere(pattern: &str) -> (String, bool) {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut fold = false;
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match (chars.next(), in_class) {
                (Some('d'), false) => out.push_str("[0-9]"),
                (Some('d'), true) => out.push_str("0-9"),
                (Some('D'), false) => out.push_str("[^0-9]"),
                (Some('s'), false) => out.push_str("[[:space:]]"),
                (Some('s'), true) => out.push_str("[:space:]"),
                (Some('S'), false) => out.push_str("[^[:space:]]"),
                (Some('w'), false) => out.push_str("[[:alnum:]_]"),
                (Some('w'), true) => out.push_str("[:alnum:]_"),
                (Some('W'), false) => out.push_str("[^[:alnum:]_]"),
                (Some('A'), false) => out.push('^'),
                (Some('z'), false) => out.push('$'),
                (Some(other), _) => {
                    out.push('\\');
                    out.push(other);
                }
                (None, _) => out.push_str("\\\\"),
            },
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                // A leading ']' (after an optional '^') is literal inside the class.
                if chars.peek() == Some(&'^') {
                    out.push(chars.next().unwrap_or('^'));
                }
                if chars.peek() == Some(&']') {
                    out.push(chars.next().unwrap_or(']'));
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '(' if !in_class && chars.peek() == Some(&'?') => {
                chars.next();
                // `(?flags)` adds no group, `(?flags:` and `(?P<name>` open a plain one.
                let mut head = String::new();
                while let Some(&n) = chars.peek() {
                    chars.next();
                    if n == ':' || n == ')' || (n == '>' && head.contains('<')) {
                        if n != ')' {
                            out.push('(');
                        }
                        break;
                    }
                    head.push(n);
                }
                if !head.contains('<') {
                    fold |= head.split('-').next().is_some_and(|on| on.contains('i'));
                }
            }
            // Lazy quantifiers become greedy: a superset on one line.
            '?' | '*' | '+' | '}' if !in_class && chars.peek() == Some(&'?') => {
                out.push(c);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    (out, fold)
}

/// The ignore files ripgrep reads, in its order of precedence: a match in an
/// earlier kind wins over any match in a later one, whatever the depth.
const KINDS: [&str; 4] = [".rgignore", ".ignore", ".gitignore", ".git/info/exclude"];
/// The kinds from here on apply only inside a git repository, from its root down.
const FIRST_GIT_KIND: usize = 2;

/// The ignore rules found in the listing, by directory and kind, with
/// ripgrep's semantics (see `search::ignore_rules`): `.rgignore` and `.ignore`
/// everywhere, `.gitignore` and `.git/info/exclude` only inside a repository.
struct Rules {
    /// Directory (relative, "" for the walked one) → its rules, one slot per kind of [`KINDS`].
    levels: BTreeMap<String, [Option<Gitignore>; 4]>,
    /// Directories holding a `.git`: repository roots.
    repos: HashSet<String>,
}

impl Rules {
    /// `repos` are the repository roots of the listing ("" when the walked
    /// directory is inside a repository whose root is at or above it).
    async fn load(host: &dyn HelperHost, dir: &str, entries: &[IndexEntry], repos: HashSet<String>) -> EnvResult<Self> {
        let mut files: Vec<String> = entries
            .iter()
            .filter(|e| e.kind == EntryKind::File && KINDS[..FIRST_GIT_KIND + 1].contains(&e.path.rsplit('/').next().unwrap_or("")))
            .map(|e| e.path.clone())
            .collect();
        // `find` prunes `.git`, so the excludes are asked for by name; `cat` skips those missing.
        files.extend(repos.iter().map(|r| if r.is_empty() { KINDS[3].to_string() } else { format!("{r}/{}", KINDS[3]) }));
        let mut levels = BTreeMap::new();
        if files.is_empty() {
            return Ok(Self { levels, repos });
        }
        // Unpredictable, so that no ignore file's content can fake the boundary.
        let marker = format!("@@burrow-{:016x}@@", u64::from_le_bytes(crate::id::random()));
        let mut cmd = format!("cd {} && for f in", quote(dir));
        for f in &files {
            cmd.push(' ');
            cmd.push_str(&quote(f));
        }
        cmd.push_str(&format!("; do printf '\\n{marker} %s\\n' \"$f\"; cat -- \"$f\" 2>/dev/null || :; done"));
        let out = finish(run(host, cmd, None).await?)?;
        let text = String::from_utf8_lossy(&out.stdout);
        for section in text.split(&format!("\n{marker} ")).skip(1) {
            let (file, body) = section.split_once('\n').unwrap_or((section, ""));
            let Some((kind, parent)) = KINDS.iter().enumerate().find_map(|(i, k)| {
                let parent = if file == *k { Some("") } else { file.strip_suffix(k).and_then(|p| p.strip_suffix('/')) };
                parent.map(|p| (i, p.to_string()))
            }) else {
                continue;
            };
            let mut builder = GitignoreBuilder::new(fake_abs(&parent));
            for line in body.lines() {
                let _ = builder.add_line(None, line);
            }
            if let Ok(gi) = builder.build() {
                let slots: &mut [Option<Gitignore>; 4] = levels.entry(parent).or_default();
                slots[kind] = Some(gi);
            }
        }
        Ok(Self { levels, repos })
    }

    /// Kinds rank first; within a kind the deepest file that says anything
    /// decides, and git's kinds stop at the innermost repository root.
    fn ignored(&self, path: &str, kind: EntryKind) -> bool {
        let abs = fake_abs(path);
        let mut ancestors: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
        ancestors.insert(0, "");
        let in_repo = ancestors.iter().any(|d| self.repos.contains(*d));
        for (k, _) in KINDS.iter().enumerate() {
            if k >= FIRST_GIT_KIND && !in_repo {
                break;
            }
            for dir in ancestors.iter().rev() {
                if let Some(gi) = self.levels.get(*dir).and_then(|slots| slots[k].as_ref()) {
                    match gi.matched_path_or_any_parents(&abs, kind == EntryKind::Directory) {
                        Match::Ignore(_) => return true,
                        Match::Whitelist(_) => return false,
                        Match::None => {}
                    }
                }
                if k >= FIRST_GIT_KIND && self.repos.contains(*dir) {
                    break;
                }
            }
        }
        false
    }
}

fn fake_abs(path: &str) -> PathBuf {
    PathBuf::from("/").join(path)
}

#[cfg(test)]
#[path = "posix_tests.rs"]
pub(crate) mod tests;
