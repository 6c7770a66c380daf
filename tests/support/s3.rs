//! The S3 test service (started by tests/support/services.sh): its settings,
//! and uploads that bypass Burrow.

use std::collections::{BTreeMap, HashMap};

/// The variables of the services file that tests/support/services.sh writes.
fn services_env() -> HashMap<String, String> {
    let file = std::env::var("BURROW_TEST_SERVICES_ENV").unwrap_or_else(|_| format!("{}/target/test-services.env", env!("CARGO_MANIFEST_DIR")));
    let mut vars = HashMap::new();
    if let Ok(text) = std::fs::read_to_string(&file) {
        for line in text.lines() {
            let line = line.trim().trim_start_matches("export ").trim();
            if let Some((k, v)) = line.split_once('=').filter(|_| !line.starts_with('#')) {
                vars.insert(k.to_string(), v.trim_matches(|c| c == '"' || c == '\'').to_string());
            }
        }
    }
    // Variables already set (a CI step that sourced the file) win.
    for (k, v) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("BURROW_TEST_") {
            vars.insert(k, v);
        }
    }
    vars
}

/// The S3 test service.
#[derive(Clone, Debug)]
pub struct S3 {
    pub endpoint: String,
    pub key: String,
    pub secret: String,
    pub region: String,
    pub bucket: String,
}

impl S3 {
    /// The service, or `None` (with a note) when it is not running; in CI a
    /// missing service fails the test instead.
    pub fn require() -> Option<Self> {
        let vars = services_env();
        let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
        match (get("AWS_ENDPOINT_URL"), get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY"), get("BURROW_TEST_S3_BUCKET")) {
            (Some(endpoint), Some(key), Some(secret), Some(bucket)) => {
                let region = get("AWS_REGION").unwrap_or_else(|| "us-east-1".into());
                Some(Self { endpoint, key, secret, region, bucket })
            }
            _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("the S3 test service is not running: start it with `bash tests/support/services.sh s3`")
            }
            _ => {
                eprintln!("skipping: no S3 test service (run `bash tests/support/services.sh s3`)");
                None
            }
        }
    }

    /// The variables a Burrow process needs to reach the service.
    pub fn env(&self) -> HashMap<String, String> {
        self.env_with_endpoint(&self.endpoint)
    }

    pub fn env_with_endpoint(&self, endpoint: &str) -> HashMap<String, String> {
        HashMap::from([
            ("AWS_ENDPOINT_URL".to_string(), endpoint.to_string()),
            ("AWS_ACCESS_KEY_ID".to_string(), self.key.clone()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), self.secret.clone()),
            ("AWS_REGION".to_string(), self.region.clone()),
        ])
    }

    /// The folder where the service keeps the bucket's objects as files, when
    /// it is s3s-fs (its `Last-Modified` is a file's modification time, which
    /// a test can set); `None` for another service. (tests/text_index.rs
    /// includes this file on its own and never ages objects.)
    #[allow(dead_code)]
    pub fn files(&self) -> Option<std::path::PathBuf> {
        let vars = services_env();
        let root = vars.get("BURROW_TEST_S3_ROOT").filter(|_| vars.get("BURROW_TEST_S3_BACKEND").is_some_and(|b| b == "s3s-fs"))?;
        Some(std::path::Path::new(root).join(&self.bucket))
    }

    /// A key prefix no other test (or run) uses.
    pub fn unique_prefix(&self, name: &str) -> String {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        format!("test-{name}-{}-{nanos}", std::process::id())
    }

    /// An operator on `prefix`, independent of Burrow's own code paths.
    pub fn operator(&self, prefix: &str) -> opendal::Operator {
        let b = opendal::services::S3::default()
            .bucket(&self.bucket)
            .root(&format!("/{prefix}"))
            .endpoint(&self.endpoint)
            .region(&self.region)
            .access_key_id(&self.key)
            .secret_access_key(&self.secret)
            .disable_config_load()
            .disable_ec2_metadata();
        // Retried like Burrow's own requests: a test server may drop an idle connection.
        opendal::Operator::new(b).unwrap().finish().layer(opendal::layers::RetryLayer::new())
    }

    pub async fn upload(&self, prefix: &str, files: &BTreeMap<&str, Vec<u8>>) {
        let op = self.operator(prefix);
        for (path, data) in files {
            op.write(path, data.clone()).await.unwrap_or_else(|e| panic!("upload {path}: {e}"));
        }
    }
}
