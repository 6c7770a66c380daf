//! The user's OpenCode config: global files where the server runs
//! (`$XDG_CONFIG_HOME/opencode`), project files where the code lives (read
//! through the environment), JSONC, substitutions, Markdown commands and
//! agents, and what /config, /config/providers, /provider, /agent and /command
//! make of them.

use std::path::Path;

use serde_json::{json, Value};

use crate::support::{for_each_env, Fixture, Served};

const GLOBAL: &str = r#"{
  // The global config, with comments and trailing commas.
  "$schema": "https://opencode.ai/config.json",
  "model": "local/qwen-coder",
  "small_model": "local/tiny",
  "provider": {
    "local": {
      "npm": "@ai-sdk/openai-compatible",
      "name": "Local LLM",
      /* a block comment */
      "options": { "baseURL": "http://127.0.0.1:9/v1", "apiKey": "{env:BURROW_TEST_KEY}" },
      "models": {
        "qwen-coder": { "name": "Qwen Coder", "limit": { "context": 32768, "output": 4096 }, "cost": { "input": 0.5, "output": 1 } },
        "tiny": {},
      },
    },
  },
  "permission": { "bash": "ask", "edit": { "*.md": "allow", "*": "ask" } },
  "command": { "hello": { "template": "Say hello to $ARGUMENTS", "description": "greets" } },
  "agent": {
    "build": { "temperature": 0.3 },
    "reviewer": { "description": "Reviews code", "mode": "subagent", "prompt": "{file:./reviewer.txt}" },
  },
}"#;

/// Variables that would let the developer's own setup leak into a check.
const CLEAN: [(&str, &str); 6] = [
    ("OPENAI_API_KEY", ""),
    ("ANTHROPIC_API_KEY", ""),
    ("OPENCODE_CONFIG", ""),
    ("OPENCODE_CONFIG_DIR", ""),
    ("OPENCODE_CONFIG_CONTENT", ""),
    ("OPENCODE_DISABLE_PROJECT_CONFIG", ""),
];

/// Writes the global config folder: `opencode.jsonc`, a file it includes, and a Markdown command.
fn write_global(xdg: &Path) {
    let dir = xdg.join("opencode");
    std::fs::create_dir_all(dir.join("commands/git")).unwrap();
    std::fs::write(dir.join("opencode.jsonc"), GLOBAL).unwrap();
    std::fs::write(dir.join("reviewer.txt"), "You review \"carefully\".\n").unwrap();
    std::fs::write(dir.join("commands/git/commit.md"), "---\ndescription: Commit the work\nsubtask: true\n---\nCommit with message $1.\n").unwrap();
}

/// Serves the standard fixture with `XDG_CONFIG_HOME` at `xdg` (not `~/.config`,
/// so the checks show it is honoured) and `extra` variables.
async fn served(env: crate::support::TestEnv, xdg: &Path, extra: &[(&str, &str)]) -> Served {
    let mut vars: Vec<(&str, &str)> = CLEAN.to_vec();
    vars.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    vars.extend_from_slice(extra);
    let xdg = xdg.to_str().unwrap();
    vars.push(("XDG_CONFIG_HOME", xdg));
    Served::new(env, Fixture::standard(), &vars).await
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array().expect("a list").iter().map(|v| v[key].as_str().expect("a name").to_string()).collect()
}

/// The action of the last rule for `permission` and `pattern` (the one that wins).
fn rule(agent: &Value, permission: &str, pattern: &str) -> Option<String> {
    let rules = agent["permission"].as_array()?;
    let last = rules.iter().rev().find(|r| r["permission"] == permission && r["pattern"] == pattern)?;
    Some(last["action"].as_str()?.to_string())
}

#[tokio::test]
async fn global_and_project_config_are_merged_like_opencode() {
    for_each_env(|env| async move {
        let xdg = tempfile::tempdir().unwrap();
        write_global(xdg.path());
        let t = served(env, xdg.path(), &[("BURROW_TEST_KEY", "sekrit")]).await;
        let project = r#"{"model": "local/tiny", "command": {"proj": {"template": "project $1"}}}"#;
        t.ws.write_behind("opencode.json", project.as_bytes()).await.unwrap();
        t.ws.write_behind(".opencode/agent/docs.md", b"---\nmode: subagent\ntools:\n  bash: false\n---\nYou write docs.\n").await.unwrap();
        let srv = &t.srv;

        let (status, config) = srv.get("/config").await;
        assert_eq!(status, 200, "{config}");
        assert_eq!(config["$schema"], "https://opencode.ai/config.json");
        assert_eq!(config["model"], "local/tiny", "the project overrides the global model");
        assert_eq!(config["small_model"], "local/tiny");
        // The global file's `{env:}` was filled (the key is set), and the key itself is never shown.
        assert_eq!(config["provider"]["local"]["options"], json!({"baseURL": "http://127.0.0.1:9/v1", "apiKey": "[redacted]"}));
        assert_eq!(config["command"]["hello"]["template"], "Say hello to $ARGUMENTS");
        assert_eq!(config["command"]["proj"]["template"], "project $1");
        assert_eq!(config["agent"]["reviewer"]["prompt"], "You review \"carefully\".");
        assert_eq!(config["plugin"], json!([]));

        let (_, global) = srv.get("/global/config").await;
        assert_eq!(global["model"], "local/qwen-coder", "the global layer alone");
        assert!(global["command"].get("proj").is_none());

        let (status, cp) = srv.get("/config/providers").await;
        assert_eq!(status, 200, "{cp}");
        assert_eq!(names(&cp["providers"], "id"), ["local"]);
        let local = &cp["providers"][0];
        assert_eq!((local["name"].as_str(), local["source"].as_str()), (Some("Local LLM"), Some("config")));
        let qwen = &local["models"]["qwen-coder"];
        assert_eq!(qwen["api"], json!({"id": "qwen-coder", "url": "", "npm": "@ai-sdk/openai-compatible"}));
        assert_eq!(qwen["limit"], json!({"context": 32768, "output": 4096}));
        assert_eq!(qwen["cost"], json!({"input": 0.5, "output": 1, "cache": {"read": 0, "write": 0}}));
        assert_eq!(qwen["capabilities"]["toolcall"], true);
        assert_eq!(local["models"]["tiny"]["name"], "tiny");
        assert_eq!(cp["default"], json!({"local": "tiny"}));

        let (_, providers) = srv.get("/provider").await;
        assert_eq!(names(&providers["all"], "id"), ["local"]);
        assert_eq!(providers["connected"], json!(["local"]));
        assert_eq!(providers["default"], json!({"local": "tiny"}));

        let (status, agents) = srv.get("/agent").await;
        assert_eq!(status, 200, "{agents}");
        let list = names(&agents, "name");
        for want in ["build", "plan", "general", "explore", "compaction", "summary", "title", "reviewer", "docs"] {
            assert!(list.contains(&want.to_string()), "{want} in {list:?}");
        }
        assert_eq!(list[0], "build", "the default agent comes first");
        let find = |n: &str| agents.as_array().unwrap().iter().find(|a| a["name"] == n).unwrap().clone();
        let build = find("build");
        assert_eq!((build["mode"].as_str(), build["native"].as_bool()), (Some("primary"), Some(true)));
        assert_eq!(build["temperature"], 0.3);
        assert_eq!(rule(&build, "bash", "*").as_deref(), Some("ask"), "the user's rules apply");
        assert_eq!(rule(&build, "edit", "*.md").as_deref(), Some("allow"));
        assert_eq!(rule(&build, "read", "*.env").as_deref(), Some("ask"), "the built-in defaults stay");
        assert_eq!(rule(&find("plan"), "edit", "*").as_deref(), Some("ask"), "plan denies edits, then the user's rule comes last");
        assert!(find("plan")["permission"].as_array().unwrap().contains(&json!({"permission": "edit", "pattern": "*", "action": "deny"})));
        let reviewer = find("reviewer");
        assert_eq!((reviewer["mode"].as_str(), reviewer["native"].as_bool()), (Some("subagent"), Some(false)));
        assert_eq!(find("title")["hidden"], true);
        let docs = find("docs");
        assert_eq!((docs["mode"].as_str(), docs["prompt"].as_str()), (Some("subagent"), Some("You write docs.")), "a Markdown agent");
        assert_eq!(rule(&docs, "bash", "*").as_deref(), Some("deny"), "tools: {{bash: false}} denies bash");

        let (_, commands) = srv.get("/command").await;
        let list = names(&commands, "name");
        assert_eq!(&list[..5], ["init", "review", "hello", "git/commit", "proj"]);
        let by_name = |n: &str| commands.as_array().unwrap().iter().find(|c| c["name"] == n).unwrap().clone();
        assert_eq!(by_name("proj")["hints"], json!(["$1"]));
        let commit = by_name("git/commit");
        assert_eq!(
            (commit["template"].as_str(), commit["description"].as_str(), commit["subtask"].as_bool()),
            (Some("Commit with message $1."), Some("Commit the work"), Some(true)),
            "a Markdown command from the global folder"
        );
    })
    .await;
}

#[tokio::test]
async fn no_config_means_no_providers_and_still_valid_answers() {
    for_each_env(|env| async move {
        let xdg = tempfile::tempdir().unwrap();
        let t = served(env, xdg.path(), &[]).await;
        let srv = &t.srv;
        assert_eq!(srv.get("/config/providers").await, (200, json!({"providers": [], "default": {}})));
        assert_eq!(srv.get("/provider").await, (200, json!({"all": [], "default": {}, "connected": []})));
        let (status, config) = srv.get("/config").await;
        assert_eq!(status, 200);
        assert_eq!((config["agent"].clone(), config["command"].clone(), config["mode"].clone()), (json!({}), json!({}), json!({})));
        let (_, agents) = srv.get("/agent").await;
        assert_eq!(names(&agents, "name"), ["build", "compaction", "explore", "general", "plan", "summary", "title"]);
    })
    .await;
}

#[tokio::test]
async fn environment_keys_and_inline_config_bring_providers() {
    for_each_env(|env| async move {
        let xdg = tempfile::tempdir().unwrap();
        let content = r#"{"model": "anthropic/claude-test", "small_model": "openai/gpt-test"}"#;
        let vars = [("ANTHROPIC_API_KEY", "a-key"), ("OPENAI_API_KEY", "o-key"), ("OPENCODE_CONFIG_CONTENT", content)];
        let t = served(env, xdg.path(), &vars).await;
        let (_, cp) = t.srv.get("/config/providers").await;
        assert_eq!(names(&cp["providers"], "id"), ["anthropic", "openai"]);
        let anthropic = &cp["providers"][0];
        assert_eq!((anthropic["source"].as_str(), anthropic["env"].clone()), (Some("env"), json!(["ANTHROPIC_API_KEY"])));
        assert!(anthropic.get("key").is_none(), "the key itself is never sent");
        assert_eq!(anthropic["models"]["claude-test"]["api"]["npm"], "@ai-sdk/anthropic");
        assert_eq!(cp["default"], json!({"anthropic": "claude-test", "openai": "gpt-test"}));
    })
    .await;
}

#[tokio::test]
async fn a_broken_config_file_is_a_clear_error() {
    for_each_env(|env| async move {
        let xdg = tempfile::tempdir().unwrap();
        let t = served(env, xdg.path(), &[]).await;
        t.ws.write_behind("opencode.json", b"{ \"model\": }").await.unwrap();
        let (status, body) = t.srv.get("/config").await;
        assert_eq!(status, 400);
        assert_eq!(body["name"], "ConfigJsonError");
        assert!(body["data"]["message"].as_str().unwrap().contains("opencode.json"), "{body}");
    })
    .await;
}

/// `PATCH path` with a JSON body, as (status, JSON body or null).
async fn patch(t: &Served, path: &str, body: Value) -> (u16, Value) {
    let r = t.srv.send(t.srv.request(reqwest::Method::PATCH, path).json(&body)).await;
    (r.status, serde_json::from_str::<Value>(&r.text).unwrap_or(Value::Null))
}

/// A workspace file's JSON, read through the API (so through the environment).
async fn file_json(t: &Served, rel: &str) -> Value {
    let (status, c) = t.srv.get(&format!("/file/content?path={rel}")).await;
    assert_eq!(status, 200, "{c}");
    serde_json::from_str(c["content"].as_str().unwrap()).unwrap()
}

/// `PATCH /config` merges into `config.json` of the request's directory, in
/// the environment (where OpenCode writes it), and answers with the change.
#[tokio::test]
async fn patch_config_merges_into_the_directory_config_json() {
    for_each_env(|env| async move {
        let xdg = tempfile::tempdir().unwrap();
        let t = served(env, xdg.path(), &[]).await;
        let first = json!({ "username": "someone", "provider": { "x": { "name": "X" } } });
        assert_eq!(patch(&t, "/config", first.clone()).await, (200, first.clone()));
        assert_eq!(file_json(&t, "config.json").await, first);
        let second = json!({ "provider": { "x": { "models": { "m": {} } } }, "username": "other" });
        assert_eq!(patch(&t, "/config", second.clone()).await, (200, second));
        assert_eq!(file_json(&t, "config.json").await, json!({ "username": "other", "provider": { "x": { "name": "X", "models": { "m": {} } } } }));
        let sub = json!({ "small_model": "x/m" });
        assert_eq!(patch(&t, &format!("/config?directory={}", t.abs("src")), sub.clone()).await, (200, sub.clone()));
        assert_eq!(file_json(&t, "src/config.json").await, sub);

        assert_eq!(patch(&t, "/config", json!([1])).await.0, 400, "not an object");
        t.ws.write_behind("docs/config.json", b"{ // a comment\n \"a\": 1 }\n").await.unwrap();
        let (status, body) = patch(&t, &format!("/config?directory={}", t.abs("docs")), json!({ "b": 2 })).await;
        assert_eq!(status, 409, "rewriting would lose the comment: {body}");
    })
    .await;
}

/// `PATCH /global/config` merges into the global file on the server's host
/// (`opencode.jsonc` when there is none yet) and answers with the new content.
#[tokio::test]
async fn patch_global_config_writes_the_global_file() {
    let xdg = tempfile::tempdir().unwrap();
    let t = served(crate::support::TestEnv::from_name("local").unwrap(), xdg.path(), &[]).await;
    let (status, answer) = patch(&t, "/global/config", json!({ "small_model": "a/b", "provider": { "a": { "options": { "apiKey": "k1" } } } })).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({ "small_model": "a/b", "provider": { "a": { "options": { "apiKey": "[redacted]" } } } }));
    let written = xdg.path().join("opencode/opencode.jsonc");
    let on_disk: Value = serde_json::from_str(&std::fs::read_to_string(&written).unwrap()).unwrap();
    assert_eq!(on_disk["provider"]["a"]["options"]["apiKey"], "k1", "the file keeps the key");
    let (_, answer) = patch(&t, "/global/config", json!({ "model": "a/c" })).await;
    assert_eq!((&answer["model"], &answer["small_model"]), (&json!("a/c"), &json!("a/b")));
    assert_eq!(t.srv.get("/global/config").await.1["model"], "a/c");
    assert_eq!(patch(&t, "/global/config", json!("x")).await.0, 400);
    std::fs::write(&written, "{ /* kept */ \"model\": \"a/c\" }").unwrap();
    assert_eq!(patch(&t, "/global/config", json!({ "model": "a/d" })).await.0, 409, "a comment would be lost");
}
