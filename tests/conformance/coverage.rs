//! Every operation of OpenCode 1.18.33's OpenAPI is answered: either Burrow's
//! `/doc` describes it, or it is on the 501 list (`NOT_SERVED` in
//! `src/server/routes/not_served.rs`), answers a `NotImplementedError` JSON
//! 501 rather than a 404, and the README's table names it.

use std::collections::BTreeSet;

use burrow::server::routes::not_served::{Why, NOT_SERVED};
use reqwest::Method;
use serde_json::Value;

use crate::assert_error;
use crate::support::calls::call;
use crate::support::{Served, TestEnv};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// (METHOD, path) of every operation a document describes.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths is an object");
    paths.iter().flat_map(|(path, item)| METHODS.iter().filter(|m| item.get(**m).is_some()).map(move |m| (m.to_uppercase(), path.clone()))).collect()
}

fn reference() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/opencode-1.18.33-openapi.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).expect("the reference OpenAPI is JSON")
}

/// A concrete request path for a documented one: parameters filled with ids
/// of the right shape.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    for seg in path.split('/').skip(1) {
        out.push('/');
        out.push_str(match seg {
            "*" => "some/file.txt",
            "{sessionID}" => "ses_0000000000000000000000000a",
            "{messageID}" => "msg_0000000000000000000000000a",
            "{partID}" => "prt_0000000000000000000000000a",
            s if s.starts_with('{') => "x1",
            s => s,
        });
    }
    out
}

#[tokio::test]
async fn every_reference_operation_is_served_or_on_the_501_list() {
    let reference = operations(&reference());
    let t = Served::standard(TestEnv::from_name("local").unwrap()).await;
    let (status, doc) = t.srv.get("/doc").await;
    assert_eq!(status, 200);
    let served = operations(&doc);
    let listed: BTreeSet<(String, String)> = NOT_SERVED.iter().map(|o| (o.method.to_string(), o.path.to_string())).collect();
    assert_eq!(listed.len(), NOT_SERVED.len(), "the 501 list names each operation once");

    let missing: Vec<_> = reference.iter().filter(|op| !served.contains(*op) && !listed.contains(*op)).collect();
    assert!(missing.is_empty(), "operations of the reference neither in /doc nor on the 501 list: {missing:#?}");
    let stale: Vec<_> = listed.iter().filter(|op| served.contains(*op) || !reference.contains(*op)).collect();
    assert!(stale.is_empty(), "on the 501 list but served, or not in the reference: {stale:#?}");

    for op in NOT_SERVED {
        let method = Method::from_bytes(op.method.as_bytes()).unwrap();
        let got = call(&t.srv, method, &concrete(op.path), None).await;
        assert_error(&format!("{} {}", op.method, op.path), got.clone(), 501, "NotImplementedError");
        let message = got.1["data"]["message"].as_str().unwrap_or_default().to_string();
        assert!(message.contains(op.operation_id), "the message names the operation: {message}");
        if let Why::ByDesign(reason) = op.why {
            assert!(message.contains(reason), "the message says why: {message}");
        }
    }
}

/// The README heading above the table of 501 operations.
const SECTION: &str = "### Operations answered with 501";

#[test]
fn the_readme_lists_exactly_the_501_operations() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let section = readme.split(SECTION).nth(1).unwrap_or_else(|| panic!("README.md has a {SECTION:?} section"));
    let section = section.split("\n#").next().unwrap_or_default();
    let rows: BTreeSet<(String, String, String)> = section
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim().strip_prefix('|')?.strip_suffix('|')?.split('|').map(str::trim).collect();
            let [op, id, why] = cells[..] else { return None };
            let (method, path) = op.trim_matches('`').split_once(' ')?;
            if !METHODS.contains(&method.to_lowercase().as_str()) {
                return None;
            }
            Some((format!("{method} {path}"), id.trim_matches('`').to_string(), why.to_string()))
        })
        .collect();
    let want: BTreeSet<(String, String, String)> = NOT_SERVED
        .iter()
        .map(|o| {
            let why = match o.why {
                Why::ByDesign(_) => "by design",
                Why::NotBuiltYet => "not built yet",
            };
            (format!("{} {}", o.method, o.path), o.operation_id.to_string(), why.to_string())
        })
        .collect();
    assert_eq!(rows, want, "README.md's 501 table and NOT_SERVED differ");
}
