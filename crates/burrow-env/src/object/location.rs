//! Where an object-storage workspace lives: `s3://bucket/prefix` and its
//! siblings, turned into an opendal operator with settings from the usual
//! environment variables.
//!
//! Nothing is read from cloud config files or instance metadata unless
//! `--object-load-config` asks for it: a server that quietly picks up the
//! machine's cloud identity is a surprise nobody wants.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::{services, Operator};

use super::options::ObjectArgs;

/// The services a workspace URL can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    S3,
    Gcs,
    Azblob,
    Webdav { tls: bool },
    Fs,
    Memory,
}

/// A parsed workspace URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub service: Service,
    /// The bucket, container or `host[:port]`; empty for fs and memory.
    pub authority: String,
    /// The key prefix (or folder) inside it, without leading or trailing `/`.
    pub prefix: String,
}

impl Location {
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| anyhow!("{url:?} is not a URL like s3://bucket/prefix"))?;
        let service = match scheme.to_ascii_lowercase().as_str() {
            "s3" => Service::S3,
            "gcs" | "gs" => Service::Gcs,
            "azblob" => Service::Azblob,
            "webdav" => Service::Webdav { tls: false },
            "webdavs" => Service::Webdav { tls: true },
            "fs" | "file" => Service::Fs,
            "memory" => Service::Memory,
            other => bail!("unknown storage scheme {other:?}; expected s3, gcs, azblob, webdav, webdavs, fs or memory"),
        };
        let (authority, path) = match service {
            Service::Fs | Service::Memory => ("", rest),
            _ => rest.split_once('/').unwrap_or((rest, "")),
        };
        if authority.is_empty() && !matches!(service, Service::Fs | Service::Memory) {
            bail!("{url:?} names no bucket, container or host");
        }
        if service == Service::Fs && !path.starts_with('/') {
            bail!("{url:?}: an fs:// URL needs an absolute folder, like fs:///srv/code");
        }
        let prefix = crate::env::WorkspacePath::from_relative(path).map_err(|e| anyhow!("{url:?}: {e}"))?;
        Ok(Self { service, authority: authority.to_string(), prefix: prefix.as_str().to_string() })
    }

    /// The workspace root as clients see it, e.g. `s3://bucket/prefix`.
    pub fn url(&self) -> String {
        let scheme = match self.service {
            Service::S3 => "s3",
            Service::Gcs => "gcs",
            Service::Azblob => "azblob",
            Service::Webdav { tls: false } => "webdav",
            Service::Webdav { tls: true } => "webdavs",
            Service::Fs => "fs",
            Service::Memory => "memory",
        };
        match self.service {
            Service::Fs => format!("fs:///{}", self.prefix),
            _ if self.prefix.is_empty() => format!("{scheme}://{}", self.authority),
            _ => format!("{scheme}://{}/{}", self.authority, self.prefix),
        }
    }

    fn root(&self) -> String {
        format!("/{}", self.prefix)
    }

    /// Builds the operator; `var` reads an environment variable.
    pub fn operator(&self, args: &ObjectArgs, var: &(dyn Fn(&str) -> Option<String> + Sync)) -> anyhow::Result<Operator> {
        let any = |names: &[&str]| names.iter().find_map(|n| var(n).filter(|v| !v.is_empty()));
        let builder = match self.service {
            Service::S3 => {
                let endpoint = any(&["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]);
                let mut b = services::S3::default().bucket(&self.authority).root(&self.root());
                // A custom server rarely cares about the region, but requests are signed with one.
                match any(&["AWS_REGION", "AWS_DEFAULT_REGION"]) {
                    Some(region) => b = b.region(&region),
                    None if endpoint.is_some() => b = b.region("us-east-1"),
                    None if !args.object_load_config => bail!("set AWS_REGION to the bucket's region (or AWS_ENDPOINT_URL for an S3-compatible server)"),
                    None => {}
                }
                if let Some(e) = &endpoint {
                    b = b.endpoint(e);
                }
                if !args.s3_path_style.unwrap_or(endpoint.is_some()) {
                    b = b.enable_virtual_host_style();
                }
                let key = any(&["AWS_ACCESS_KEY_ID"]);
                let secret = any(&["AWS_SECRET_ACCESS_KEY"]);
                match (&key, &secret) {
                    (Some(k), Some(s)) => b = b.access_key_id(k).secret_access_key(s),
                    (None, None) => {}
                    _ => bail!("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither"),
                }
                if let Some(token) = any(&["AWS_SESSION_TOKEN"]) {
                    b = b.session_token(&token);
                }
                if !args.object_load_config {
                    b = b.disable_config_load().disable_ec2_metadata();
                    if key.is_none() {
                        // Without keys only a public bucket can answer.
                        b = b.allow_anonymous();
                    }
                }
                Operator::new(b)?.finish()
            }
            Service::Gcs => {
                let mut b = services::Gcs::default().bucket(&self.authority).root(&self.root());
                if let Some(e) = any(&["STORAGE_EMULATOR_HOST", "GCS_ENDPOINT"]) {
                    b = b.endpoint(&e);
                }
                if let Some(path) = any(&["GOOGLE_APPLICATION_CREDENTIALS"]) {
                    b = b.credential_path(&path);
                }
                if !args.object_load_config {
                    b = b.disable_config_load().disable_vm_metadata();
                    if any(&["GOOGLE_APPLICATION_CREDENTIALS"]).is_none() {
                        b = b.allow_anonymous();
                    }
                }
                Operator::new(b)?.finish()
            }
            Service::Azblob => {
                let account = any(&["AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_ACCOUNT_NAME"]);
                let endpoint = any(&["AZURE_STORAGE_ENDPOINT"])
                    .or_else(|| account.as_ref().map(|a| format!("https://{a}.blob.core.windows.net")))
                    .ok_or_else(|| anyhow!("set AZURE_STORAGE_ACCOUNT (or AZURE_STORAGE_ENDPOINT)"))?;
                let mut b = services::Azblob::default().container(&self.authority).root(&self.root()).endpoint(&endpoint);
                if let Some(a) = &account {
                    b = b.account_name(a);
                }
                if let Some(k) = any(&["AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_KEY"]) {
                    b = b.account_key(&k);
                }
                if let Some(sas) = any(&["AZURE_STORAGE_SAS_TOKEN"]) {
                    b = b.sas_token(&sas);
                }
                Operator::new(b)?.finish()
            }
            Service::Webdav { tls } => {
                let endpoint = format!("{}://{}", if tls { "https" } else { "http" }, self.authority);
                let mut b = services::Webdav::default().endpoint(&endpoint).root(&self.root());
                if let Some(u) = any(&["BURROW_WEBDAV_USERNAME"]) {
                    b = b.username(&u);
                }
                if let Some(p) = any(&["BURROW_WEBDAV_PASSWORD"]) {
                    b = b.password(&p);
                }
                if let Some(t) = any(&["BURROW_WEBDAV_TOKEN"]) {
                    b = b.token(&t);
                }
                Operator::new(b)?.finish()
            }
            Service::Fs => {
                let root = self.root();
                let meta = std::fs::metadata(&root).with_context(|| format!("cannot serve {root}"))?;
                if !meta.is_dir() {
                    bail!("cannot serve {root}: not a folder");
                }
                Operator::new(services::Fs::default().root(&root))?.finish()
            }
            Service::Memory => Operator::new(services::Memory::default().root(&self.root()))?.finish(),
        };
        // Transient failures (5xx, resets, SlowDown) are retried a couple of
        // times; a request that hangs is cut off rather than hanging a search.
        Ok(builder
            .layer(TimeoutLayer::new().with_timeout(Duration::from_secs(60)).with_io_timeout(Duration::from_secs(30)))
            .layer(RetryLayer::new().with_max_times(2).with_min_delay(Duration::from_millis(100)).with_jitter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let l = Location::parse("s3://bucket/some/prefix/").unwrap();
        assert_eq!((l.service, l.authority.as_str(), l.prefix.as_str()), (Service::S3, "bucket", "some/prefix"));
        assert_eq!(l.url(), "s3://bucket/some/prefix");
        assert_eq!(Location::parse("s3://bucket").unwrap().url(), "s3://bucket");
        assert_eq!(Location::parse("fs:///tmp/x").unwrap().url(), "fs:///tmp/x");
        assert_eq!(Location::parse("memory://").unwrap().prefix, "");
        assert_eq!(Location::parse("webdavs://host:8443/dav").unwrap().service, Service::Webdav { tls: true });
        for bad in ["bucket/prefix", "s3://", "s3:///prefix", "ftp://x", "fs://relative", "s3://b/../x"] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn s3_settings_come_from_the_environment() {
        let vars = |n: &str| match n {
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:9".to_string()),
            "AWS_ACCESS_KEY_ID" => Some("k".to_string()),
            _ => None,
        };
        let l = Location::parse("s3://b/p").unwrap();
        let err = l.operator(&ObjectArgs::default(), &vars).unwrap_err().to_string();
        assert!(err.contains("AWS_SECRET_ACCESS_KEY"), "{err}");
        let none = |_: &str| None;
        let err = l.operator(&ObjectArgs::default(), &none).unwrap_err().to_string();
        assert!(err.contains("AWS_REGION"), "{err}");
    }
}
