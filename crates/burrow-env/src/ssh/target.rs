//! Where to connect and as whom: the `--host` argument, completed from
//! `~/.ssh/config` the way `ssh` does (HostName, User, Port, IdentityFile).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ssh2_config::{ParseRule, SshConfig};

/// A fully resolved SSH destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// What the user typed (the alias `~/.ssh/config` was queried with).
    pub alias: String,
    /// The host to connect to and to look up in known_hosts.
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Keys named by `IdentityFile` in the SSH config, in order.
    pub identity_files: Vec<PathBuf>,
}

impl Target {
    /// `host:port` as shown in messages.
    pub fn display(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }
}

/// The parts of `[user@]host[:port]`; `[v6addr]:port` is accepted too.
#[derive(Debug, PartialEq, Eq)]
struct Spec<'a> {
    user: Option<&'a str>,
    host: &'a str,
    port: Option<u16>,
}

fn parse_spec(spec: &str) -> anyhow::Result<Spec<'_>> {
    let spec = spec.trim();
    let (user, rest) = match spec.rsplit_once('@') {
        Some((u, r)) if !u.is_empty() => (Some(u), r),
        Some(_) => bail!("empty user name in {spec:?}"),
        None => (None, spec),
    };
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (addr, after) = inner.split_once(']').with_context(|| format!("missing ']' in {spec:?}"))?;
        match after.strip_prefix(':') {
            Some(p) => (addr, Some(p)),
            None if after.is_empty() => (addr, None),
            None => bail!("unexpected {after:?} after the address in {spec:?}"),
        }
    } else if rest.matches(':').count() == 1 {
        let (h, p) = rest.split_once(':').unwrap_or((rest, ""));
        (h, Some(p))
    } else {
        // No colon, or a bare IPv6 address.
        (rest, None)
    };
    if host.is_empty() {
        bail!("no host in {spec:?}; expected [user@]host[:port]");
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0).with_context(|| format!("bad port {p:?} in {spec:?}"))?),
        None => None,
    };
    Ok(Spec { user, host, port })
}

/// Resolves `spec` against the SSH config at `config` (usually `~/.ssh/config`;
/// a missing file is fine). What the user typed wins over the config.
pub fn resolve(spec: &str, config: Option<&Path>) -> anyhow::Result<Target> {
    let parsed = parse_spec(spec)?;
    let params = match config.filter(|p| p.exists()) {
        Some(path) => {
            let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
            let rules = ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS;
            let parsed_config = SshConfig::default()
                .parse(&mut std::io::BufReader::new(file), rules)
                .with_context(|| format!("cannot parse the SSH config {}", path.display()))?;
            Some(parsed_config.query(parsed.host))
        }
        None => None,
    };
    let host = params.as_ref().and_then(|p| p.host_name.clone()).unwrap_or_else(|| parsed.host.to_string());
    let port = parsed.port.or(params.as_ref().and_then(|p| p.port)).unwrap_or(22);
    let user = match parsed.user.map(str::to_string).or_else(|| params.as_ref().and_then(|p| p.user.clone())) {
        Some(u) => u,
        None => local_user().context("no user name given and none found in the SSH config or $USER; use --host user@host")?,
    };
    let identity_files = params.and_then(|p| p.identity_file).unwrap_or_default();
    Ok(Target { alias: parsed.host.to_string(), host, port, user, identity_files })
}

/// The default SSH config: `~/.ssh/config`.
pub fn default_config() -> Option<PathBuf> {
    dirs::home_dir().map(|h| h.join(".ssh/config"))
}

fn local_user() -> Option<String> {
    std::env::var("USER").ok().or_else(|| std::env::var("LOGNAME").ok()).filter(|u| !u.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(parse_spec("me@h:2222").unwrap(), Spec { user: Some("me"), host: "h", port: Some(2222) });
        assert_eq!(parse_spec("h").unwrap(), Spec { user: None, host: "h", port: None });
        assert_eq!(parse_spec("a@b@[::1]:22").unwrap(), Spec { user: Some("a@b"), host: "::1", port: Some(22) });
        assert_eq!(parse_spec("::1").unwrap(), Spec { user: None, host: "::1", port: None });
        for bad in ["", "me@", "@h", "h:0", "h:x", "[::1"] {
            assert!(parse_spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_fills_what_was_not_typed() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config");
        std::fs::write(
            &cfg,
            "Host box\n  HostName 127.0.0.1\n  User alice\n  Port 2200\n  IdentityFile /keys/box\n\nHost *\n  IdentityFile /keys/any\n  ServerAliveInterval 10\n",
        )
        .unwrap();
        let t = resolve("box", Some(&cfg)).unwrap();
        assert_eq!((t.host.as_str(), t.port, t.user.as_str()), ("127.0.0.1", 2200, "alice"));
        assert_eq!(t.identity_files, vec![PathBuf::from("/keys/box"), PathBuf::from("/keys/any")]);
        let t = resolve("bob@box:22", Some(&cfg)).unwrap();
        assert_eq!((t.port, t.user.as_str()), (22, "bob"));
        let t = resolve("carol@elsewhere", Some(&dir.path().join("missing"))).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("elsewhere", 22));
    }
}
