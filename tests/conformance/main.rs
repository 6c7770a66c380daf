//! The conformance suite: the OpenCode file, search and project API, checked
//! over HTTP against a real `burrow serve` on the standard fixture tree, once
//! per environment that `BURROW_TEST_ENVS` selects (default `local`).
//!
//! Every check states the exact answer. Where environments differ (object
//! storage runs no processes, so no git; it stores no symlinks) the check
//! reads `GET /burrow/capabilities` and expects the documented difference.
//! Where Burrow deliberately differs from OpenCode 1.18.33 (a 400 for a bad
//! regex, 403 for an escape, 404 for a missing file, where OpenCode answers
//! 500 or an empty 200), the check asserts Burrow's answer and says so.

#[path = "../support/mod.rs"]
mod support;

mod api_doc;
mod api_fs;
mod auth;
mod config;
mod content;
mod control;
mod coverage;
mod credentials;
mod directory;
mod errors;
mod event_v2;
mod find_file;
mod find_text;
mod ignore_rules;
mod listing;
mod load;
mod meta;
mod permission_create;
mod permission_saved;
mod pty;
mod revert_v2;
mod session_events_v2;
mod status;
mod sync;
mod tui;
mod worktree;

use serde_json::Value;

/// The OpenCode server version whose protocol Burrow speaks.
pub const OPENCODE_VERSION: &str = "1.18.33";

/// Asserts an error answer: the status, and the body `{name, data: {message}}`
/// with a message that says something.
#[track_caller]
pub fn assert_error(what: &str, got: (u16, Value), status: u16, name: &str) {
    let (got_status, body) = got;
    assert_eq!(got_status, status, "{what}: status (body {body})");
    assert_eq!(body["name"], name, "{what}: error name in {body}");
    let mut keys: Vec<&str> = body.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
    keys.sort_unstable();
    assert_eq!(keys, ["data", "name"], "{what}: error body has exactly name and data: {body}");
    let message = body["data"]["message"].as_str().unwrap_or_else(|| panic!("{what}: data.message is a string in {body}"));
    assert!(!message.trim().is_empty(), "{what}: the message says what went wrong: {body}");
}
