use super::*;

#[test]
fn exact_unique_and_all() {
    assert_eq!(replace("a b a", "b", "c", false).unwrap(), "a c a");
    assert!(replace("a b a", "a", "c", false).unwrap_err().starts_with("Found multiple matches"));
    assert_eq!(replace("a b a", "a", "c", true).unwrap(), "c b c");
    assert!(replace("abc", "zzz", "y", false).unwrap_err().starts_with("Could not find oldString"));
    assert!(replace("abc", "b", "b", false).unwrap_err().starts_with("No changes"));
    assert!(replace("abc", "", "x", false).unwrap_err().starts_with("oldString cannot be empty"));
}

#[test]
fn tolerates_trailing_whitespace_per_line() {
    let content = "fn main() {  \n    println!(\"hi\");\n}\n";
    let out = replace(content, "fn main() {\n    println!(\"hi\");", "fn main() {\n    println!(\"bye\");", false).unwrap();
    assert_eq!(out, "fn main() {\n    println!(\"bye\");\n}\n");
}

#[test]
fn tolerates_different_indentation() {
    let content = "impl A {\n        fn f() {\n            x();\n        }\n}\n";
    // The whole matched lines are replaced, indentation included, as in OpenCode.
    let out = replace(content, "fn f() {\n    x();\n}", "        fn g() {}", false).unwrap();
    assert_eq!(out, "impl A {\n        fn g() {}\n}\n");
    assert_eq!(indentation_flexible(content, "fn f() {\n    x();\n}"), vec!["        fn f() {\n            x();\n        }".to_string()]);
}

#[test]
fn tolerates_collapsed_whitespace_and_escapes() {
    assert_eq!(replace("let  x =   1;\n", "let x = 1;", "let x = 2;", false).unwrap(), "let x = 2;\n");
    assert_eq!(replace("a\tb\n", "a\\tb", "c", false).unwrap(), "c\n");
}

#[test]
fn anchors_blocks_with_a_changed_middle() {
    let content = "start\nalpha one\nbeta two\ngamma three\nend\nrest\n";
    let out = replace(content, "start\nalpha one\nbeta twoo\ngamma three\nend", "X", false).unwrap();
    assert_eq!(out, "X\nrest\n");
}

#[test]
fn refuses_a_span_much_larger_than_asked() {
    let content = "a {\n1\n2\n3\n4\n5\n6\n}\n";
    let err = replace(content, "a {\nzz\n}", "b", false);
    assert!(err.is_err());
}
