//! The `edit` tool's matching: the exact text first, then OpenCode's fallback
//! replacers, each more tolerant of what models get wrong (trailing spaces,
//! indentation, escaped characters, slightly different middle lines). Each
//! replacer proposes spans of the file; the first span found exactly once wins.

/// Similarity needed for a block anchored by its first and last lines.
const ANCHOR_THRESHOLD: f64 = 0.65;

fn levenshtein(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.is_empty() || b.is_empty() {
        return a.len().max(b.len());
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn lines_of(find: &str) -> Vec<&str> {
    let mut v: Vec<&str> = find.split('\n').collect();
    if v.last() == Some(&"") {
        v.pop();
    }
    v
}

/// The text of lines `start..=end` of `content`.
fn span(lines: &[&str], start: usize, end: usize) -> String {
    lines[start..=end].join("\n")
}

fn simple(_: &str, find: &str) -> Vec<String> {
    vec![find.to_string()]
}

fn line_trimmed(content: &str, find: &str) -> Vec<String> {
    let lines: Vec<&str> = content.split('\n').collect();
    let want = lines_of(find);
    if want.is_empty() || want.len() > lines.len() {
        return Vec::new();
    }
    (0..=lines.len() - want.len())
        .filter(|&i| want.iter().enumerate().all(|(j, w)| lines[i + j].trim() == w.trim()))
        .map(|i| span(&lines, i, i + want.len() - 1))
        .collect()
}

fn block_anchor(content: &str, find: &str) -> Vec<String> {
    let lines: Vec<&str> = content.split('\n').collect();
    let want = lines_of(find);
    if want.len() < 3 {
        return Vec::new();
    }
    let (first, last) = (want[0].trim(), want[want.len() - 1].trim());
    let tolerance = (want.len() / 4).max(1);
    let mut candidates = Vec::new();
    for a in 0..lines.len() {
        if lines[a].trim() != first {
            continue;
        }
        if let Some(b) = (a + 2..lines.len()).find(|&b| lines[b].trim() == last) {
            if (b - a + 1).abs_diff(want.len()) <= tolerance {
                candidates.push((a, b));
            }
        }
    }
    let similarity = |a: usize, b: usize| {
        let n = (want.len() - 2).min(b - a - 1);
        if n == 0 {
            return 1.0;
        }
        let mut total = 0.0;
        for k in 1..=n {
            let (x, y) = (lines[a + k].trim(), want[k].trim());
            let longest = x.chars().count().max(y.chars().count());
            if longest > 0 {
                total += 1.0 - levenshtein(x, y) as f64 / longest as f64;
            }
        }
        total / n as f64
    };
    let best = candidates.iter().map(|&(a, b)| (similarity(a, b), a, b)).fold(None::<(f64, usize, usize)>, |best, c| match best {
        Some(b) if b.0 >= c.0 => Some(b),
        _ => Some(c),
    });
    match best {
        Some((score, a, b)) if score >= ANCHOR_THRESHOLD => vec![span(&lines, a, b)],
        _ => Vec::new(),
    }
}

fn normalize_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn whitespace_normalized(content: &str, find: &str) -> Vec<String> {
    let want = normalize_ws(find);
    let lines: Vec<&str> = content.split('\n').collect();
    let mut out: Vec<String> = lines.iter().filter(|l| normalize_ws(l) == want).map(|l| l.to_string()).collect();
    let n = find.split('\n').count();
    if n > 1 && n <= lines.len() {
        out.extend((0..=lines.len() - n).map(|i| span(&lines, i, i + n - 1)).filter(|s| normalize_ws(s) == want));
    }
    out
}

fn dedent(s: &str) -> String {
    let lines: Vec<&str> = s.split('\n').collect();
    let min = lines.iter().filter(|l| !l.trim().is_empty()).map(|l| l.len() - l.trim_start().len()).min().unwrap_or(0);
    lines.iter().map(|l| if l.trim().is_empty() { l.to_string() } else { l[min..].to_string() }).collect::<Vec<_>>().join("\n")
}

fn indentation_flexible(content: &str, find: &str) -> Vec<String> {
    let want = dedent(find);
    let lines: Vec<&str> = content.split('\n').collect();
    let n = find.split('\n').count();
    if n > lines.len() {
        return Vec::new();
    }
    (0..=lines.len() - n).map(|i| span(&lines, i, i + n - 1)).filter(|s| dedent(s) == want).collect()
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(q @ ('\'' | '"' | '`' | '\\' | '\n' | '$')) => out.push(q),
            _ => {
                out.push('\\');
                continue;
            }
        }
        chars.next();
    }
    out
}

fn escape_normalized(content: &str, find: &str) -> Vec<String> {
    let want = unescape(find);
    let mut out = Vec::new();
    if content.contains(&want) {
        out.push(want.clone());
    }
    let lines: Vec<&str> = content.split('\n').collect();
    let n = want.split('\n').count();
    if n <= lines.len() {
        out.extend((0..=lines.len() - n).map(|i| span(&lines, i, i + n - 1)).filter(|s| unescape(s) == want));
    }
    out
}

fn trimmed_boundary(content: &str, find: &str) -> Vec<String> {
    let trimmed = find.trim();
    if trimmed == find {
        return Vec::new();
    }
    let mut out = Vec::new();
    if content.contains(trimmed) {
        out.push(trimmed.to_string());
    }
    let lines: Vec<&str> = content.split('\n').collect();
    let n = find.split('\n').count();
    if n <= lines.len() {
        out.extend((0..=lines.len() - n).map(|i| span(&lines, i, i + n - 1)).filter(|s| s.trim() == trimmed));
    }
    out
}

fn context_aware(content: &str, find: &str) -> Vec<String> {
    let want = lines_of(find);
    if want.len() < 3 {
        return Vec::new();
    }
    let lines: Vec<&str> = content.split('\n').collect();
    let (first, last) = (want[0].trim(), want[want.len() - 1].trim());
    for a in 0..lines.len() {
        if lines[a].trim() != first {
            continue;
        }
        let Some(b) = (a + 2..lines.len()).find(|&b| lines[b].trim() == last) else { continue };
        let block = &lines[a..=b];
        if block.len() == want.len() {
            let (mut same, mut counted) = (0, 0);
            for k in 1..block.len() - 1 {
                let (x, y) = (block[k].trim(), want[k].trim());
                if !x.is_empty() || !y.is_empty() {
                    counted += 1;
                    same += usize::from(x == y);
                }
            }
            if counted == 0 || same * 2 >= counted {
                return vec![block.join("\n")];
            }
        }
        break;
    }
    Vec::new()
}

/// A fuzzy match that spans far more than `find` is a wrong match, not a fix.
fn too_large(matched: &str, find: &str) -> bool {
    let n = find.split('\n').count();
    if matched.split('\n').count() >= (n + 3).max(n * 2) {
        return true;
    }
    if n == 1 {
        return false;
    }
    let (m, f) = (matched.trim().len(), find.trim().len());
    m > (f + 500).max(f * 4)
}

/// Replaces `old` with `new` in `content` (every occurrence with `all`).
pub fn replace(content: &str, old: &str, new: &str, all: bool) -> Result<String, String> {
    if old == new {
        return Err("No changes to apply: oldString and newString are identical.".into());
    }
    if old.is_empty() {
        return Err("oldString cannot be empty when editing an existing file. Provide the exact text to replace, or use write for an intentional full-file replacement.".into());
    }
    type Replacer = fn(&str, &str) -> Vec<String>;
    let replacers: [Replacer; 8] =
        [simple, line_trimmed, block_anchor, whitespace_normalized, indentation_flexible, escape_normalized, trimmed_boundary, context_aware];
    let mut found = false;
    for replacer in replacers {
        for candidate in replacer(content, old) {
            let Some(first) = content.find(&candidate) else { continue };
            found = true;
            if too_large(&candidate, old) {
                return Err("Refusing replacement because the matched span is much larger than oldString. Re-read the file and provide the full exact oldString for the intended replacement.".into());
            }
            if all {
                return Ok(content.replace(&candidate, new));
            }
            if content.rfind(&candidate) != Some(first) {
                continue;
            }
            return Ok(format!("{}{new}{}", &content[..first], &content[first + candidate.len()..]));
        }
    }
    if !found {
        return Err("Could not find oldString in the file. It must match exactly, including whitespace, indentation, and line endings.".into());
    }
    Err("Found multiple matches for oldString. Provide more surrounding context to make the match unique.".into())
}

#[cfg(test)]
mod tests;
