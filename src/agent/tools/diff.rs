//! Unified diffs in the shape OpenCode's tools report (jsdiff's
//! `createTwoFilesPatch`: an `Index:` header, counts on every hunk range),
//! so the TUI renders edit and write results as it renders OpenCode's.

use similar::{ChangeTag, TextDiff};

/// A patch of `old` → `new` for `name`, with 3 lines of context.
pub fn patch(name: &str, old: &str, new: &str) -> String {
    let diff = TextDiff::from_lines(old, new);
    let mut out = format!("Index: {name}\n===================================================================\n--- {name}\t\n+++ {name}\t\n");
    for group in diff.grouped_ops(3) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else { continue };
        let (o0, o1) = (first.old_range().start, last.old_range().end);
        let (n0, n1) = (first.new_range().start, last.new_range().end);
        let start = |s: usize, len: usize| if len == 0 { s } else { s + 1 };
        out.push_str(&format!("@@ -{},{} +{},{} @@\n", start(o0, o1 - o0), o1 - o0, start(n0, n1 - n0), n1 - n0));
        for op in &group {
            for change in diff.iter_changes(op) {
                let sign = match change.tag() {
                    ChangeTag::Equal => ' ',
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                };
                out.push(sign);
                out.push_str(change.value());
                if change.missing_newline() {
                    out.push_str("\n\\ No newline at end of file\n");
                }
            }
        }
    }
    out
}

/// Lines added and removed.
pub fn counts(old: &str, new: &str) -> (usize, usize) {
    let diff = TextDiff::from_lines(old, new);
    diff.iter_all_changes().fold((0, 0), |(a, d), c| match c.tag() {
        ChangeTag::Insert => (a + 1, d),
        ChangeTag::Delete => (a, d + 1),
        ChangeTag::Equal => (a, d),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_file_patch_matches_opencode() {
        assert_eq!(
            patch("hello.txt", "", "hello from fake llm\n"),
            "Index: hello.txt\n===================================================================\n--- hello.txt\t\n+++ hello.txt\t\n@@ -0,0 +1,1 @@\n+hello from fake llm\n"
        );
    }

    #[test]
    fn edit_patch_has_context_and_counts() {
        let p = patch("a", "1\n2\n3\n", "1\ntwo\n3\n");
        assert!(p.ends_with("@@ -1,3 +1,3 @@\n 1\n-2\n+two\n 3\n"), "{p}");
        assert_eq!(counts("1\n2\n3\n", "1\ntwo\n3\nfour\n"), (2, 1));
    }
}
