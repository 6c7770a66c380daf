//! The command-line options of object-storage workspaces. Credentials and
//! endpoints come from the usual environment variables instead (see
//! `location.rs`), so that a command line never carries a secret.

use std::time::Duration;

use clap::Args;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Object storage (--env s3://bucket/prefix, fs://, memory://, webdav://, gcs://, azblob://)")]
pub struct ObjectArgs {
    /// Address S3 buckets by path (`endpoint/bucket/key`) instead of by host
    /// name (`bucket.endpoint/key`). Default: path style when AWS_ENDPOINT_URL
    /// names a custom server (MinIO, s3s, Ceph), host style for AWS itself.
    #[arg(long, env = "BURROW_S3_PATH_STYLE", value_name = "BOOL")]
    pub s3_path_style: Option<bool>,

    /// Also read credentials from cloud config files (~/.aws/config, gcloud)
    /// and instance metadata services. Off by default: only the environment
    /// variables are read, and nothing on the network but the storage itself.
    #[arg(long, env = "BURROW_OBJECT_LOAD_CONFIG")]
    pub object_load_config: bool,

    /// How old the cached listing of the bucket may get before a search lists
    /// it again (seconds). `POST /burrow/refresh` forgets it at once.
    #[arg(long, env = "BURROW_INDEX_MAX_AGE", value_name = "SECS", default_value_t = 10)]
    pub index_max_age: u64,

    /// Keep fetched file contents on disk in this folder (so they survive a
    /// restart) instead of in memory.
    #[arg(long, env = "BURROW_OBJECT_CACHE_DIR", value_name = "PATH")]
    pub object_cache_dir: Option<std::path::PathBuf>,

    /// The most file content the cache keeps, e.g. `256M`, `2G` or a byte
    /// count; the least recently used files go first. `0` turns caching off.
    #[arg(long, env = "BURROW_OBJECT_CACHE_SIZE", value_name = "SIZE", default_value = "256M", value_parser = parse_size)]
    pub object_cache_size: u64,

    /// Object reads (and listings) in flight at once during a search.
    #[arg(long, env = "BURROW_OBJECT_CONCURRENCY", value_name = "N", default_value_t = 16)]
    pub object_concurrency: usize,
}

impl ObjectArgs {
    pub fn index_max_age(&self) -> Duration {
        Duration::from_secs(self.index_max_age)
    }
}

impl Default for ObjectArgs {
    fn default() -> Self {
        Self { s3_path_style: None, object_load_config: false, index_max_age: 10, object_cache_dir: None, object_cache_size: 256 << 20, object_concurrency: 16 }
    }
}

/// A byte count with an optional binary suffix: `512K`, `256M`, `2G`, `1GiB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a size like 256M or 1048576"))?;
    let shift = match unit.trim().to_ascii_lowercase().trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use K, M, G or T)")),
    };
    n.checked_mul(1 << shift).ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("M").is_err());
    }
}
