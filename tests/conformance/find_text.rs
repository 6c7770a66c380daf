//! `GET /find?pattern=`: text search, in ripgrep's `--json` match shape.

use serde_json::{json, Value};

use crate::support::fixture::{self, LINE_CLIP_CHARS};
use crate::support::{for_each_env, Served};

/// One match in ripgrep's shape; `subs` are (text, start byte, end byte) in the line.
fn hit(path: &str, line: &str, line_number: u64, offset: u64, subs: &[(&str, usize, usize)]) -> Value {
    let submatches: Vec<Value> = subs.iter().map(|(text, start, end)| json!({"match": {"text": text}, "start": start, "end": end})).collect();
    json!({"path": {"text": path}, "lines": {"text": line}, "line_number": line_number, "absolute_offset": offset, "submatches": submatches})
}

async fn find(t: &Served, pattern: &str) -> Value {
    let (status, body) = t.srv.get_q("/find", &[("pattern", pattern)]).await;
    assert_eq!(status, 200, "GET /find?pattern={pattern}: {body}");
    body
}

#[tokio::test]
async fn matches_have_ripgreps_shape_and_byte_offsets() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        // Sorted by path, then line (OpenCode returns ripgrep's walk order).
        let want = json!([
            hit("README.md", "hello from the readme\n", 2, 10, &[("hello", 0, 5)]),
            hit("docs/guide.md", "hello from docs\n", 2, 8, &[("hello", 0, 5)]),
            hit("src/lib.rs", "    \"hello\"\n", 2, 33, &[("hello", 5, 10)]),
            hit("src/main.rs", "    println!(\"hello world\");\n", 2, 12, &[("hello", 14, 19)]),
            // Offsets count bytes, not characters.
            hit("日本語.md", "こんにちは hello\n", 2, 12, &[("hello", 16, 21)]),
        ]);
        assert_eq!(find(&t, "hello").await, want);
        assert_eq!(find(&t, "été").await, json!([hit("données/été.txt", fixture::ETE_TXT, 1, 0, &[("été", 16, 21)])]));
        let regex = json!([
            hit("README.md", "hello from the readme\n", 2, 10, &[("hello from", 0, 10)]),
            hit("docs/guide.md", "hello from docs\n", 2, 8, &[("hello from", 0, 10)]),
            hit("src/main.rs", "    println!(\"hello world\");\n", 2, 12, &[("hello world", 14, 25)]),
        ]);
        assert_eq!(find(&t, r"hel+o\s\w+").await, regex, "a regex, not matching across lines");
        let two = json!([hit("src/main.rs", "    println!(\"hello world\");\n", 2, 12, &[("println", 4, 11), ("world", 20, 25)])]);
        assert_eq!(find(&t, "world|println").await, two, "every match in a line is a submatch");
        assert_eq!(find(&t, "HELLO").await, json!([]), "case-sensitive");
        assert_eq!(find(&t, "no such text anywhere").await, json!([]));
    })
    .await;
}

#[tokio::test]
async fn hidden_files_are_searched_ignored_binary_and_git_files_are_not() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        // `xyz` is in .hidden, in the ignored node_modules/ and debug.log, and in the
        // binary bin.dat (bytes 0..=255); only the hidden file is a result.
        assert_eq!(find(&t, "xyz").await, json!([hit(".hidden", fixture::HIDDEN, 1, 0, &[("xyz", 7, 10)])]));
        assert_eq!(find(&t, "refs/heads").await, json!([]), ".git is never searched");
        assert_eq!(find(&t, "module.exports").await, json!([]), "gitignored folders are skipped");
    })
    .await;
}

#[tokio::test]
async fn long_lines_are_clipped_to_2000_characters() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        let line = fixture::long_line();
        let clipped: String = line.chars().take(LINE_CLIP_CHARS).collect::<String>() + "...";
        // "short line\n" is 11 bytes; the clipped text has no line terminator.
        assert_eq!(find(&t, "needle_long").await, json!([hit("long.txt", &clipped, 2, 11, &[("needle_long", 0, 11)])]));
        // Submatch offsets still point into the whole line, past the clip.
        let end = line.len();
        assert_eq!(find(&t, "ééé$").await, json!([hit("long.txt", &clipped, 2, 11, &[("ééé", end - 6, end)])]));
    })
    .await;
}

#[tokio::test]
async fn at_most_ten_matching_lines() {
    for_each_env(|env| async move {
        let t = Served::standard(env).await;
        // `e` is on more than ten lines of the fixture.
        for (query, want) in [(vec![("pattern", "e")], 10), (vec![("pattern", "e"), ("limit", "3")], 3)] {
            let (status, body) = t.srv.get_q("/find", &query).await;
            assert_eq!(status, 200, "{body}");
            let matches = body.as_array().unwrap();
            assert_eq!(matches.len(), want, "{query:?}: {body}");
            let keys: Vec<(String, u64)> =
                matches.iter().map(|m| (m["path"]["text"].as_str().unwrap().to_string(), m["line_number"].as_u64().unwrap())).collect();
            let mut sorted = keys.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(keys, sorted, "distinct lines, sorted by path and line");
            for m in matches {
                assert!(m["lines"]["text"].as_str().unwrap().contains('e'), "{m}");
                assert!(m["submatches"].as_array().is_some_and(|s| !s.is_empty() && s.iter().all(|s| s["match"]["text"] == "e")), "{m}");
            }
        }
        // Burrow's `limit` extension lifts the cap: `e` is on 17 lines.
        let (status, all) = t.srv.get_q("/find", &[("pattern", "e"), ("limit", "1000")]).await;
        assert_eq!(status, 200);
        assert_eq!(all.as_array().unwrap().len(), 17, "{all}");
    })
    .await;
}
