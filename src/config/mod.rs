//! The user's OpenCode configuration, read the way OpenCode reads it, so an
//! existing setup works against Burrow unchanged.
//!
//! Layers, later ones winning (objects merge key by key):
//! 1. global: `config.json`, `opencode.json`, `opencode.jsonc` in
//!    `$XDG_CONFIG_HOME/opencode` (`~/.config/opencode`);
//! 2. the file `OPENCODE_CONFIG` names;
//! 3. the project: `opencode.json` and `opencode.jsonc` in every folder from
//!    the worktree (or the workspace root) down to the directory, read through
//!    the environment, so a project in a container or a bucket brings its own
//!    config (skipped with `OPENCODE_DISABLE_PROJECT_CONFIG`);
//! 4. `.opencode/opencode.json(c)` in those folders, and in `OPENCODE_CONFIG_DIR`;
//! 5. the JSON in `OPENCODE_CONFIG_CONTENT`.
//!
//! Files may use comments, trailing commas, `{env:NAME}` and `{file:path}`.
//! Global files live where the server runs; project files where the code lives.
//!
//! A workspace is not trusted with the server's secrets: in project files
//! `{env:NAME}` is filled only for variables the operator allowed
//! (`--config-env-allow`) and otherwise stays as written, and a provider
//! whose base URL a project file chose gets no key from the server (see
//! [`Config::project_endpoints`] and [`provider::endpoint`]).

pub mod agent;
pub mod auth;
pub mod command;
pub mod jsonc;
pub mod markdown;
pub mod permission;
pub mod provider;
pub mod secret;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::env::{Env, WorkspacePath};
pub use jsonc::ConfigError;

/// What OpenCode's `$schema` key points at.
pub const SCHEMA_URL: &str = "https://opencode.ai/config.json";
/// The largest config file Burrow reads.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;
/// Keys that belong to the TUI's own config file, not the server's.
const TUI_KEYS: [&str; 3] = ["theme", "keybinds", "tui"];

/// The process environment, captured once per load so one request sees one view.
pub type Vars = HashMap<String, String>;

/// The merged configuration of one directory.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Every layer merged.
    pub data: Map<String, Value>,
    /// The global layers only (`GET /global/config`).
    pub global: Map<String, Value>,
    pub vars: Vars,
    /// Provider id to the workspace files' own entry for it, for each
    /// provider whose endpoint (`options.baseURL`, `api`, a model's
    /// `provider.api`) a workspace file chose.
    pub project_endpoints: Map<String, Value>,
    /// The server's stored provider keys (`auth.json`, see [`auth`]); the
    /// runtime fills them, a bare [`load`] leaves them empty.
    pub stored_keys: auth::StoredKeys,
}

impl Config {
    pub fn str(&self, key: &str) -> Option<&str> {
        self.data.get(key).and_then(Value::as_str)
    }

    pub fn object(&self, key: &str) -> Option<&Map<String, Value>> {
        self.data.get(key).and_then(Value::as_object)
    }
}

/// Where a directory's config comes from.
pub struct Sources<'a> {
    pub env: &'a dyn Env,
    /// The global config folder (`$XDG_CONFIG_HOME/opencode`).
    pub global_dir: PathBuf,
    pub home: PathBuf,
    /// The directory, and the top of its project (the worktree, or the workspace root).
    pub dir: WorkspacePath,
    pub top: WorkspacePath,
    pub vars: Vars,
    /// The variables workspace files may read with `{env:NAME}`.
    pub env_allow: Vec<String>,
}

pub async fn load(src: Sources<'_>) -> Result<Config, ConfigError> {
    let mut data = Map::new();
    for name in ["config.json", "opencode.json", "opencode.jsonc"] {
        jsonc::merge(&mut data, read_local(&src, &src.global_dir.join(name)).await?);
    }
    jsonc::merge(&mut data, markdown_local(&src.global_dir).await);
    let global = data.clone();
    if let Some(file) = src.vars.get("OPENCODE_CONFIG").filter(|f| !f.is_empty()) {
        jsonc::merge(&mut data, read_local(&src, &expand_home(file, &src.home)).await?);
    }
    let folders: Vec<WorkspacePath> = src.dir.ancestors().chain(std::iter::once(src.dir.clone())).filter(|d| d.starts_with(&src.top)).collect();
    // Every workspace layer, merged on its own too, to tell what the workspace chose.
    let mut project = Map::new();
    let mut add_project = |data: &mut Map<String, Value>, layer: Map<String, Value>| {
        jsonc::merge(&mut project, layer.clone());
        jsonc::merge(data, layer);
    };
    if src.vars.get("OPENCODE_DISABLE_PROJECT_CONFIG").is_none_or(|v| v.is_empty()) {
        for folder in &folders {
            for name in ["opencode.json", "opencode.jsonc"] {
                add_project(&mut data, read_remote(&src, &folder.join(name)).await?);
            }
        }
    }
    for folder in &folders {
        let dot = folder.join(".opencode");
        for name in ["opencode.json", "opencode.jsonc"] {
            add_project(&mut data, read_remote(&src, &dot.join(name)).await?);
        }
        add_project(&mut data, markdown_remote(src.env, &dot).await);
    }
    if let Some(dir) = src.vars.get("OPENCODE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        let dir = expand_home(dir, &src.home);
        for name in ["opencode.json", "opencode.jsonc"] {
            jsonc::merge(&mut data, read_local(&src, &dir.join(name)).await?);
        }
        jsonc::merge(&mut data, markdown_local(&dir).await);
    }
    if let Some(content) = src.vars.get("OPENCODE_CONFIG_CONTENT").filter(|c| !c.trim().is_empty()) {
        let text = jsonc::substitute(content, &|n| Some(src.vars.get(n).cloned().unwrap_or_default()), &|_| None);
        jsonc::merge(&mut data, jsonc::parse(&text, "OPENCODE_CONFIG_CONTENT")?);
    }
    let project_endpoints = project_endpoints(&project, &data);
    Ok(Config { data, global, vars: src.vars, project_endpoints, stored_keys: Default::default() })
}

/// Where a provider entry says its endpoint is: `options.baseURL`, `api`, and
/// each model's `provider.api`.
fn endpoint_fields(entry: &Value) -> Vec<(String, &Value)> {
    let mut out: Vec<(String, &Value)> = ["/options/baseURL", "/api"].iter().filter_map(|p| Some((p.to_string(), entry.pointer(p)?))).collect();
    for (id, model) in entry.get("models").and_then(Value::as_object).into_iter().flatten() {
        if let Some(api) = model.pointer("/provider/api") {
            out.push((format!("/models/{id}/provider/api"), api));
        }
    }
    out
}

/// The providers whose endpoint, in the merged config, is one a workspace
/// file set (a server file merged later may have set it back).
fn project_endpoints(project: &Map<String, Value>, merged: &Map<String, Value>) -> Map<String, Value> {
    let providers = project.get("provider").and_then(Value::as_object).into_iter().flatten();
    providers
        .filter(|(id, entry)| {
            let merged_entry = merged.get("provider").and_then(|p| p.get(id.as_str()));
            endpoint_fields(entry).iter().any(|(pointer, value)| merged_entry.and_then(|m| m.pointer(pointer)) == Some(*value))
        })
        .map(|(id, entry)| (id.clone(), entry.clone()))
        .collect()
}

fn expand_home(path: &str, home: &Path) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None => PathBuf::from(path),
    }
}

/// Parses one file's text, resolving `{env:}` through `env` and `{file:}`
/// references through `read`.
async fn parse_file<E, F, Fut>(text: &str, name: &str, env: &E, read: F) -> Result<Map<String, Value>, ConfigError>
where
    E: Fn(&str) -> Option<String> + Sync,
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    let mut files = HashMap::new();
    for r in jsonc::file_refs(text) {
        let content = read(r.trim().to_string()).await;
        files.insert(r.trim().to_string(), content);
    }
    let text = jsonc::substitute(text, env, &|p| files.get(p).cloned().flatten());
    let mut map = jsonc::parse(&text, name)?;
    for key in TUI_KEYS {
        map.remove(key);
    }
    Ok(map)
}

/// A config file on the server's machine; a missing one is empty.
async fn read_local(src: &Sources<'_>, path: &Path) -> Result<Map<String, Value>, ConfigError> {
    let name = path.display().to_string();
    let text = match tokio::fs::read_to_string(path).await {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(e) => return Err(ConfigError { source_name: name, message: e.to_string() }),
    };
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    // The server's own file: any of its variables, empty when unset.
    let env = |n: &str| Some(src.vars.get(n).cloned().unwrap_or_default());
    parse_file(&text, &name, &env, |r| {
        let p = if r.starts_with('/') || r.starts_with("~/") { expand_home(&r, &src.home) } else { base.join(&r) };
        async move { tokio::fs::read_to_string(p).await.ok() }
    })
    .await
}

/// A config file in the workspace, read through the environment.
async fn read_remote(src: &Sources<'_>, path: &WorkspacePath) -> Result<Map<String, Value>, ConfigError> {
    let name = path.absolute(src.env.root());
    let bytes = match src.env.read(path, MAX_CONFIG_BYTES).await {
        Ok(b) => b,
        Err(crate::env::EnvError::NotFound(_)) | Err(crate::env::EnvError::IsADirectory(_)) => return Ok(Map::new()),
        Err(e @ (crate::env::EnvError::Escape(_) | crate::env::EnvError::PermissionDenied(_))) => {
            tracing::warn!("skipping config {name}: {e}");
            return Ok(Map::new());
        }
        Err(e) => return Err(ConfigError { source_name: name, message: e.to_string() }),
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let base = path.parent().unwrap_or_else(WorkspacePath::root);
    // Only files inside the workspace and allowed variables: a project's
    // config must not read the server's own files or environment (its home,
    // its keys) into an API response or a request to a host it chose.
    let env = |n: &str| src.env_allow.iter().any(|a| a == n).then(|| src.vars.get(n).cloned().unwrap_or_default());
    parse_file(&text, &name, &env, |r| {
        let target = if r.starts_with('/') { WorkspacePath::parse(src.env.root(), &r).ok() } else { base.join_checked(&r).ok() };
        async move {
            let bytes = src.env.read(&target?, MAX_CONFIG_BYTES).await.ok()?;
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
    })
    .await
}

/// How deep Markdown command and agent folders are searched.
const MARKDOWN_DEPTH: usize = 4;

/// The Markdown commands and agents of a config folder on the server's machine.
async fn markdown_local(dir: &Path) -> Map<String, Value> {
    let mut layer = Map::new();
    for (section, folders, body_key) in markdown::SECTIONS {
        for folder in folders {
            let mut stack = vec![(dir.join(folder), String::new(), 0)];
            while let Some((path, prefix, depth)) = stack.pop() {
                let Ok(mut entries) = tokio::fs::read_dir(&path).await else { continue };
                let mut found = Vec::new();
                while let Ok(Some(e)) = entries.next_entry().await {
                    found.push(e);
                }
                found.sort_by_key(|e| e.file_name());
                for e in found {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let is_dir = e.file_type().await.map(|t| t.is_dir()).unwrap_or(false);
                    if is_dir && depth < MARKDOWN_DEPTH {
                        stack.push((e.path(), format!("{prefix}{name}/"), depth + 1));
                    } else if let Some(stem) = name.strip_suffix(".md") {
                        if let Ok(text) = tokio::fs::read_to_string(e.path()).await {
                            markdown::add(&mut layer, section, body_key, &format!("{prefix}{stem}"), &text);
                        }
                    }
                }
            }
        }
    }
    layer
}

/// The Markdown commands and agents of a `.opencode` folder in the workspace.
async fn markdown_remote(env: &dyn Env, dir: &WorkspacePath) -> Map<String, Value> {
    let mut layer = Map::new();
    for (section, folders, body_key) in markdown::SECTIONS {
        for folder in folders {
            let mut stack = vec![(dir.join(folder), String::new(), 0)];
            while let Some((path, prefix, depth)) = stack.pop() {
                let Ok(mut entries) = env.list(&path).await else { continue };
                entries.sort_by(|a, b| a.name.cmp(&b.name));
                for e in entries {
                    if e.kind == crate::env::EntryKind::Directory && depth < MARKDOWN_DEPTH {
                        stack.push((path.join(&e.name), format!("{prefix}{}/", e.name), depth + 1));
                    } else if let Some(stem) = e.name.strip_suffix(".md") {
                        if let Ok(bytes) = env.read(&path.join(&e.name), MAX_CONFIG_BYTES).await {
                            markdown::add(&mut layer, section, body_key, &format!("{prefix}{stem}"), &String::from_utf8_lossy(&bytes));
                        }
                    }
                }
            }
        }
    }
    layer
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn endpoints_a_workspace_chose() {
        let as_map = |v: Value| v.as_object().cloned().unwrap();
        let project = as_map(json!({"provider": {
            "a": {"options": {"baseURL": "http://ws-a"}},
            "b": {"options": {"baseURL": "http://ws-b"}},
            "c": {"options": {"timeout": 5}},
            "d": {"models": {"m": {"provider": {"api": "http://ws-d"}}}}
        }}));
        let merged = as_map(json!({"provider": {
            "a": {"options": {"baseURL": "http://ws-a", "apiKey": "k"}},
            "b": {"options": {"baseURL": "http://server-b"}},
            "c": {"options": {"baseURL": "http://server-c", "timeout": 5}},
            "d": {"models": {"m": {"provider": {"api": "http://ws-d"}}}}
        }}));
        let chosen = project_endpoints(&project, &merged);
        assert_eq!(chosen.keys().collect::<Vec<_>>(), ["a", "d"], "b was set back by a server file, c only tuned");
        assert_eq!(chosen["a"], json!({"options": {"baseURL": "http://ws-a"}}), "the workspace's own entry, without the server's key");
    }
}
