//! The `mcp` key of OpenCode's config: one entry per server, local (a
//! command run over stdio) or remote (a streamable-HTTP URL).

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

/// How long connecting (initialize, then listing the tools) may take when the
/// config gives no `timeout`: OpenCode's default for listing.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a tool call may take when the config gives no `timeout`: the
/// MCP SDK's default request timeout, which OpenCode's calls inherit.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// One server's config (`McpLocalConfig` | `McpRemoteConfig`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerConfig {
    Local(LocalConfig),
    Remote(RemoteConfig),
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct LocalConfig {
    /// The program and its arguments.
    pub command: Vec<String>,
    /// Where it runs, relative to the directory (or absolute in the workspace).
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub environment: HashMap<String, String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub timeout: Option<u64>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct RemoteConfig {
    pub url: String,
    #[serde(default)]
    pub headers: HashMap<String, String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub timeout: Option<u64>,
    /// OAuth settings: Burrow runs no OAuth flows, so this is accepted and unused.
    #[serde(default)]
    pub oauth: Option<Value>,
}

impl ServerConfig {
    pub fn enabled(&self) -> bool {
        match self {
            ServerConfig::Local(l) => l.enabled,
            ServerConfig::Remote(r) => r.enabled,
        }
        .unwrap_or(true)
    }

    fn timeout_ms(&self) -> Option<u64> {
        match self {
            ServerConfig::Local(l) => l.timeout,
            ServerConfig::Remote(r) => r.timeout,
        }
        .filter(|t| *t > 0)
    }

    pub fn connect_timeout(&self) -> Duration {
        self.timeout_ms().map(Duration::from_millis).unwrap_or(CONNECT_TIMEOUT)
    }

    pub fn call_timeout(&self) -> Duration {
        self.timeout_ms().map(Duration::from_millis).unwrap_or(CALL_TIMEOUT)
    }
}

/// The servers of a merged config, in its order. An entry that is not a
/// server config is reported as the error its server fails with, so that
/// `GET /mcp` shows it rather than dropping it silently.
pub fn servers(config: Option<&Map<String, Value>>) -> Vec<(String, Result<ServerConfig, String>)> {
    let Some(config) = config else { return Vec::new() };
    config.iter().map(|(name, v)| (name.clone(), parse(v))).collect()
}

/// One entry; `{"enabled": false}` without a type (a later layer switching
/// an earlier server off) is a disabled server.
pub fn parse(v: &Value) -> Result<ServerConfig, String> {
    if v.get("type").is_none() && v.get("enabled") == Some(&Value::Bool(false)) {
        return Ok(ServerConfig::Local(LocalConfig { command: Vec::new(), cwd: None, environment: HashMap::new(), enabled: Some(false), timeout: None }));
    }
    let config: ServerConfig = serde_json::from_value(v.clone()).map_err(|e| format!("invalid MCP server config: {e}"))?;
    if let ServerConfig::Local(l) = &config {
        if l.command.is_empty() {
            return Err("invalid MCP server config: `command` is empty".into());
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_both_kinds_and_reports_bad_entries() {
        let cfg = json!({
            "files": {"type": "local", "command": ["npx", "server"], "environment": {"K": "V"}, "timeout": 1500},
            "web": {"type": "remote", "url": "http://h/mcp", "headers": {"A": "b"}, "enabled": false},
            "off": {"enabled": false},
            "bad": {"type": "local"},
        });
        let all = servers(cfg.as_object());
        let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["files", "web", "off", "bad"]);
        let ServerConfig::Local(files) = all[0].1.clone().unwrap() else { panic!("{:?}", all[0]) };
        assert_eq!(files.command, ["npx", "server"]);
        assert_eq!(all[0].1.as_ref().unwrap().connect_timeout(), Duration::from_millis(1500));
        assert!(!all[1].1.as_ref().unwrap().enabled());
        assert!(!all[2].1.as_ref().unwrap().enabled());
        assert!(all[3].1.as_ref().unwrap_err().contains("command"), "{:?}", all[3]);
    }
}
