//! Host-key verification against known_hosts files, as `ssh` does it with
//! `StrictHostKeyChecking=yes` (or `accept-new` with `--accept-new-host-key`).

use std::path::{Path, PathBuf};

use russh::keys::{HashAlg, PublicKey};

/// The known_hosts files `ssh` reads by default.
pub fn default_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(home) = dirs::home_dir() {
        files.push(home.join(".ssh/known_hosts"));
    }
    files.push(PathBuf::from("/etc/ssh/ssh_known_hosts"));
    files
}

/// How known_hosts names a host: `host`, or `[host]:port` off port 22.
fn host_pattern(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Accepts `key` for `host:port` when a file records it. A recorded key of the
/// same type that differs is a mismatch and always refused. An unknown host is
/// refused, or recorded in the first file when `accept_new` is set.
pub fn verify(host: &str, port: u16, key: &PublicKey, files: &[PathBuf], accept_new: bool) -> Result<(), String> {
    let fingerprint = format!("{} {}", key.algorithm().as_str(), key.fingerprint(HashAlg::Sha256));
    let name = host_pattern(host, port);
    for file in files {
        match russh::keys::check_known_hosts_path(host, port, key, file) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(russh::keys::Error::KeyChanged { line }) => {
                return Err(format!(
                    "HOST KEY MISMATCH for {name}: the server presented {fingerprint}, which differs from the key \
                     recorded in {} line {line}. Someone could be intercepting the connection, or the host key was \
                     changed. Refusing to connect; if the change is expected, remove the old entry \
                     (ssh-keygen -R '{name}' -f {}) and connect again.",
                    file.display(),
                    file.display()
                ));
            }
            Err(e) => tracing::warn!("cannot read known_hosts file {}: {e}", file.display()),
        }
    }
    if accept_new {
        let Some(first) = files.first() else { return Err("no known_hosts file to record the new host key in".into()) };
        return match learn(host, port, key, first) {
            Ok(()) => {
                tracing::warn!("recorded the new host key of {name} ({fingerprint}) in {}", first.display());
                Ok(())
            }
            Err(e) => Err(format!("cannot record the host key of {name} in {}: {e}", first.display())),
        };
    }
    let shown: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    Err(format!(
        "the host key of {name} ({fingerprint}) is not in known_hosts ({}). Verify the fingerprint, then add it \
         (ssh-keyscan -p {port} {host} >> ~/.ssh/known_hosts), pass --known-hosts FILE, or trust it on first use \
         with --accept-new-host-key.",
        shown.join(", ")
    ))
}

fn learn(host: &str, port: u16, key: &PublicKey, file: &Path) -> Result<(), russh::keys::Error> {
    russh::keys::known_hosts::learn_known_hosts_path(host, port, key, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAICU8pdBuOre8wUYmjmyMQMX7c4D1vNI+zaJjgIzzC0+U";
    const KEY_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIKbdZRaoP6JMfaJcCXdn4bKPn8+9MEH6jmyD+Qvz8FU8";

    fn key(b64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b64).unwrap()
    }

    #[test]
    fn known_unknown_and_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        std::fs::write(&file, format!("[127.0.0.1]:2222 ssh-ed25519 {KEY_A}\n")).unwrap();
        let files = vec![file.clone()];
        assert!(verify("127.0.0.1", 2222, &key(KEY_A), &files, false).is_ok());
        let err = verify("127.0.0.1", 2222, &key(KEY_B), &files, false).unwrap_err();
        assert!(err.contains("HOST KEY MISMATCH") && err.contains("line 1"), "{err}");
        // A mismatch is refused even when new keys are accepted.
        assert!(verify("127.0.0.1", 2222, &key(KEY_B), &files, true).is_err());
        let err = verify("127.0.0.1", 2223, &key(KEY_A), &files, false).unwrap_err();
        assert!(err.contains("not in known_hosts"), "{err}");
        // Trust on first use records the key, which then verifies.
        verify("127.0.0.1", 2223, &key(KEY_B), &files, true).unwrap();
        assert!(verify("127.0.0.1", 2223, &key(KEY_B), &files, false).is_ok());
        assert!(verify("127.0.0.1", 2223, &key(KEY_A), &files, false).unwrap_err().contains("MISMATCH"));
    }
}
