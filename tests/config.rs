//! The user's OpenCode config as the real binary reads it: global and project
//! layers, JSONC, substitutions, and what /config, /config/providers,
//! /provider, /agent and /command make of it.

mod common;

use std::path::Path;

use common::{project, Server};
use serde_json::{json, Value};

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

fn write_global(home: &Path) {
    let dir = home.join("xdg-config/opencode");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("opencode.jsonc"), GLOBAL).unwrap();
    std::fs::write(dir.join("reviewer.txt"), "You review \"carefully\".\n").unwrap();
    std::fs::create_dir_all(dir.join("commands/git")).unwrap();
    std::fs::write(dir.join("commands/git/commit.md"), "---\ndescription: Commit the work\nsubtask: true\n---\nCommit with message $1.\n").unwrap();
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array().expect("a list").iter().map(|v| v[key].as_str().expect("a name").to_string()).collect()
}

fn rule(agent: &Value, permission: &str, pattern: &str) -> Option<String> {
    agent["permission"]
        .as_array()?
        .iter()
        .rev()
        .find(|r| r["permission"] == permission && r["pattern"] == pattern)
        .map(|r| r["action"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn global_and_project_config_are_merged_like_opencode() {
    let dir = project(true);
    std::fs::write(dir.path().join("opencode.json"), r#"{"model": "local/tiny", "command": {"proj": {"template": "project $1"}}}"#).unwrap();
    std::fs::create_dir_all(dir.path().join(".opencode/agent")).unwrap();
    std::fs::write(dir.path().join(".opencode/agent/docs.md"), "---\nmode: subagent\ntools:\n  bash: false\n---\nYou write docs.\n").unwrap();
    let server = Server::start_with(dir.path(), write_global, &[("BURROW_TEST_KEY", "sekrit")]);

    let (status, config) = server.get("/config").await;
    assert_eq!(status, 200, "{config}");
    assert_eq!(config["$schema"], "https://opencode.ai/config.json");
    assert_eq!(config["model"], "local/tiny", "the project overrides the global model");
    assert_eq!(config["small_model"], "local/tiny");
    assert_eq!(config["provider"]["local"]["options"], json!({"baseURL": "http://127.0.0.1:9/v1", "apiKey": "sekrit"}));
    assert_eq!(config["command"]["hello"]["template"], "Say hello to $ARGUMENTS");
    assert_eq!(config["command"]["proj"]["template"], "project $1");
    assert_eq!(config["agent"]["reviewer"]["prompt"], "You review \"carefully\".");
    assert_eq!(config["plugin"], json!([]));

    let (_, global) = server.get("/global/config").await;
    assert_eq!(global["model"], "local/qwen-coder", "the global layer alone");
    assert!(global["command"].get("proj").is_none());

    let (status, cp) = server.get("/config/providers").await;
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

    let (_, providers) = server.get("/provider").await;
    assert_eq!(names(&providers["all"], "id"), ["local"]);
    assert_eq!(providers["connected"], json!(["local"]));
    assert_eq!(providers["default"], json!({"local": "tiny"}));

    let (status, agents) = server.get("/agent").await;
    assert_eq!(status, 200, "{agents}");
    let list = names(&agents, "name");
    for want in ["build", "plan", "general", "explore", "compaction", "summary", "title", "reviewer"] {
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
    let plan = find("plan");
    assert!(plan["permission"].as_array().unwrap().contains(&json!({"permission": "edit", "pattern": "*", "action": "deny"})));
    let reviewer = find("reviewer");
    assert_eq!((reviewer["mode"].as_str(), reviewer["native"].as_bool()), (Some("subagent"), Some(false)));
    assert_eq!(find("title")["hidden"], true);
    let docs = find("docs");
    assert_eq!((docs["mode"].as_str(), docs["prompt"].as_str()), (Some("subagent"), Some("You write docs.")), "a Markdown agent");
    assert_eq!(rule(&docs, "bash", "*").as_deref(), Some("deny"), "tools: {{bash: false}} denies bash");

    let (_, commands) = server.get("/command").await;
    let list = names(&commands, "name");
    assert_eq!(&list[..5], ["init", "review", "hello", "git/commit", "proj"]);
    let proj = commands.as_array().unwrap().iter().find(|c| c["name"] == "proj").unwrap();
    assert_eq!(proj["hints"], json!(["$1"]));
    let commit = commands.as_array().unwrap().iter().find(|c| c["name"] == "git/commit").unwrap();
    assert_eq!(
        (commit["template"].as_str(), commit["description"].as_str(), commit["subtask"].as_bool()),
        (Some("Commit with message $1."), Some("Commit the work"), Some(true)),
        "a Markdown command from the global folder"
    );
}

#[tokio::test]
async fn no_config_means_no_providers_and_still_valid_answers() {
    let dir = project(true);
    let server = Server::start(dir.path());
    assert_eq!(server.get("/config/providers").await, (200, json!({"providers": [], "default": {}})));
    assert_eq!(server.get("/provider").await, (200, json!({"all": [], "default": {}, "connected": []})));
    let (status, config) = server.get("/config").await;
    assert_eq!(status, 200);
    assert_eq!((config["agent"].clone(), config["command"].clone(), config["mode"].clone()), (json!({}), json!({}), json!({})));
    let (_, agents) = server.get("/agent").await;
    assert_eq!(names(&agents, "name"), ["build", "compaction", "explore", "general", "plan", "summary", "title"]);
}

#[tokio::test]
async fn environment_keys_and_inline_config_bring_providers() {
    let dir = project(false);
    let content = r#"{"model": "anthropic/claude-test", "small_model": "openai/gpt-test"}"#;
    let env = [("ANTHROPIC_API_KEY", "a-key"), ("OPENAI_API_KEY", "o-key"), ("OPENCODE_CONFIG_CONTENT", content)];
    let server = Server::start_with(dir.path(), |_| {}, &env);
    let (_, cp) = server.get("/config/providers").await;
    assert_eq!(names(&cp["providers"], "id"), ["anthropic", "openai"]);
    assert_eq!(cp["providers"][0]["source"], "env");
    assert_eq!(cp["providers"][0]["env"], json!(["ANTHROPIC_API_KEY"]));
    assert!(cp["providers"][0].get("key").is_none(), "the key itself is never sent");
    assert_eq!(cp["providers"][0]["models"]["claude-test"]["api"]["npm"], "@ai-sdk/anthropic");
    assert_eq!(cp["default"], json!({"anthropic": "claude-test", "openai": "gpt-test"}));
}

#[tokio::test]
async fn a_broken_config_file_is_a_clear_error() {
    let dir = project(false);
    std::fs::write(dir.path().join("opencode.json"), "{ \"model\": }").unwrap();
    let server = Server::start(dir.path());
    let (status, body) = server.get("/config").await;
    assert_eq!(status, 400);
    assert_eq!(body["name"], "ConfigJsonError");
    assert!(body["data"]["message"].as_str().unwrap().contains("opencode.json"), "{body}");
}
