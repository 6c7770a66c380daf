//! Timing: one keep-alive HTTP client for every server, and ripgrep as a
//! process, timed by the wall clock from spawn to exit.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A blocking front to one reqwest client, so every server is measured with
/// the same connection pool (keep-alive) and the same JSON decoding.
pub struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    pub fn new() -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let client = reqwest::Client::builder().pool_max_idle_per_host(4).timeout(Duration::from_secs(600)).build()?;
        Ok(Self { rt, client })
    }

    /// Times one GET from sending it to the last byte of the body, and counts
    /// the entries of the JSON array it returns.
    pub fn time(&self, url: &str) -> anyhow::Result<(Duration, usize)> {
        let (elapsed, value) = self.timed("GET", url, self.client.get(url))?;
        Ok((elapsed, value.as_array().map_or(0, Vec::len)))
    }

    /// One GET's JSON answer.
    pub fn get(&self, url: &str) -> anyhow::Result<serde_json::Value> {
        Ok(self.timed("GET", url, self.client.get(url))?.1)
    }

    /// Times one POST of `body` as JSON, to the last byte of the answer, and
    /// returns the answer.
    pub fn post(&self, url: &str, body: &serde_json::Value) -> anyhow::Result<(Duration, serde_json::Value)> {
        self.timed("POST", url, self.client.post(url).json(body))
    }

    /// Sends `req` and reads its JSON answer; a status other than 2xx is an error.
    fn timed(&self, method: &str, url: &str, req: reqwest::RequestBuilder) -> anyhow::Result<(Duration, serde_json::Value)> {
        self.rt.block_on(async {
            let started = Instant::now();
            let resp = req.send().await.with_context(|| format!("{method} {url}"))?;
            let status = resp.status();
            let body = resp.bytes().await.with_context(|| format!("{method} {url}: body"))?;
            let elapsed = started.elapsed();
            if !status.is_success() {
                bail!("{method} {url}: {status}: {}", String::from_utf8_lossy(&body));
            }
            let value = serde_json::from_slice(&body).with_context(|| format!("{method} {url}: not JSON"))?;
            Ok((elapsed, value))
        })
    }

    /// Polls `url` until it answers 200.
    pub fn wait_ready(&self, url: &str, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let ok = self.rt.block_on(async { self.client.get(url).send().await.is_ok_and(|r| r.status().is_success()) });
            if ok {
                return Ok(());
            }
            if started.elapsed() > timeout {
                bail!("{url} did not answer within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Runs `rg` with OpenCode's flags in `dir` and reads its JSON output. With
/// `stop_after`, it is killed once that many matches have been read, as
/// OpenCode does (it reads `limit + 1` matches, then closes the stream).
/// Returns the wall-clock time and the number of matches read.
pub fn time_rg(dir: &Path, pattern: &str, stop_after: Option<usize>) -> anyhow::Result<(Duration, usize)> {
    let started = Instant::now();
    let mut child = Command::new("rg")
        .args(["--no-config", "--json", "--hidden", "--no-messages", "--glob=!**/.git/**", "--", pattern, "."])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run rg (apt-get install ripgrep)")?;
    let mut out = BufReader::with_capacity(1 << 16, child.stdout.take().context("no stdout")?);
    let mut matches = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        if out.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line.starts_with(br#"{"type":"match""#) {
            matches += 1;
            if stop_after.is_some_and(|n| matches >= n) {
                let _ = child.kill();
                break;
            }
        }
    }
    // Drain whatever is left so a bounded run does not count a blocked pipe.
    let _ = out.read_to_end(&mut Vec::new());
    let status = child.wait()?;
    let elapsed = started.elapsed();
    // 0: matches, 1: none; a kill ends it by signal.
    if stop_after.is_none_or(|n| matches < n) && !matches!(status.code(), Some(0 | 1)) {
        bail!("rg {pattern:?} failed: {status}");
    }
    Ok((elapsed, matches))
}

/// The timings of one (query, target) cell.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    times: Vec<Duration>,
    /// CPU milliseconds used over all runs (see [`process_cpu_ms`]).
    cpu_ms: f64,
    /// Results of the last run: JSON array entries, or rg matches.
    pub results: usize,
}

impl Samples {
    pub fn push(&mut self, time: Duration, cpu_ms: f64, results: usize) {
        self.times.push(time);
        self.cpu_ms += cpu_ms.max(0.0);
        self.results = results;
    }

    /// Mean CPU milliseconds per run. Ticks are 10 ms, so only the mean over
    /// many runs is meaningful.
    pub fn cpu_ms(&self) -> Option<f64> {
        (!self.times.is_empty()).then(|| self.cpu_ms / self.times.len() as f64)
    }

    /// The `p`-th percentile (nearest rank) in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        if self.times.is_empty() {
            return None;
        }
        let mut sorted = self.times.clone();
        sorted.sort();
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        Some(sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0)
    }

    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn p50(&self) -> Option<f64> {
        self.percentile_ms(50.0)
    }

    pub fn p95(&self) -> Option<f64> {
        self.percentile_ms(95.0)
    }
}
