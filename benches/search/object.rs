//! Object storage, first and repeated: every query runs first on a freshly
//! started Burrow over the bucket prefix (its listing and content caches are
//! empty, so it lists the bucket and downloads what it reads), then again on
//! the same server (the caches are warm, so it should download nothing).
//! Burrow's local environment over the same files, also freshly started, is
//! measured the same way beside it, interleaved.
//!
//! Downloads are counted in the S3 server's log (s3s-fs at debug level logs
//! one `resolved route, op: GetObject` line per request, with its key), so the
//! count comes from the server, not from Burrow; the S3 server's CPU time is
//! read from its process, to tell its share of a first search from Burrow's.
//!
//! Then the restarted row ([`measure_restarted`]): a server that finds the
//! disk cache and the text index an earlier server left, which should answer
//! its first search without downloading anything.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cpu::process_cpu_ms;
use crate::measure::{Http, Samples};
use crate::sample::Sample;
use crate::server::Server;
use crate::QUERIES;

/// The two targets of this section.
pub const TARGETS: [&str; 2] = ["s3", "local"];

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    First,
    Repeated,
}

pub struct ObjectResults {
    pub url: String,
    pub sample: Sample,
    pub first_runs: usize,
    pub repeat_runs: usize,
    /// (query, target, phase) → timings.
    pub cells: HashMap<(usize, usize, Phase), Samples>,
    /// (query, phase) → what the S3 server did for the s3 target's requests.
    pub server: HashMap<(usize, Phase), S3Work>,
    /// The S3 server alone, measured before each fresh server of the first
    /// (full scan) query: a listing of the prefix, and downloading every file.
    pub bare_list: Samples,
    pub bare_download: Samples,
}

/// What the S3 server did, summed over requests: `None` when it cannot be told.
#[derive(Clone, Copy, Default)]
pub struct S3Work {
    pub requests: usize,
    /// GetObject requests under the prefix (from its log).
    pub gets: Option<u64>,
    /// ListObjectsV2 pages of the prefix (from its log).
    pub lists: Option<u64>,
    /// Its CPU milliseconds (from its pid; other clients of a shared server count too).
    pub cpu_ms: Option<f64>,
}

/// The S3 server as the bench sees it: its log and its process.
pub struct S3Server {
    pub log: Option<PathBuf>,
    pub pid: Option<u32>,
}

/// Runs every query `first_runs` times on fresh servers, each followed by
/// `repeat_runs` repeats on the same server.
pub fn measure(http: &Http, burrow: &Path, url: &str, sample: Sample, s3: S3Server, first_runs: usize, repeat_runs: usize) -> anyhow::Result<ObjectResults> {
    let prefix = url.split_once("://").and_then(|(_, r)| r.split_once('/')).map_or("", |(_, p)| p.trim_matches('/'));
    let log = s3.log.map(|path| S3Log { path, key: format!("key: \"{prefix}/"), listing: format!("<Prefix>{prefix}/</Prefix>") });
    let args = [vec!["--env".to_string(), url.to_string()], vec!["--dir".to_string(), sample.dir.display().to_string()]];
    let mut cells: HashMap<(usize, usize, Phase), Samples> = HashMap::new();
    let mut server_work: HashMap<(usize, Phase), S3Work> = HashMap::new();
    let (mut bare_list, mut bare_download) = (Samples::default(), Samples::default());
    for (qi, q) in QUERIES.iter().enumerate() {
        for run in 0..first_runs {
            if qi == 0 {
                let (list, download) = crate::sample::bare_s3(url, &sample.files)?;
                bare_list.push(list, 0.0, 1);
                bare_download.push(download, 0.0, sample.files.len());
            }
            for ti in crate::rotation(TARGETS.len(), run) {
                let target = TARGETS[ti];
                let server = Server::burrow(http, &format!("burrow-{target}"), burrow, &args[ti], &sample.dir)?;
                for phase in [Phase::First, Phase::Repeated] {
                    let times = if phase == Phase::First { 1 } else { repeat_runs };
                    for _ in 0..times {
                        let mark = log.as_ref().map(S3Log::mark).transpose()?;
                        let s3_cpu = s3.pid.map(process_cpu_ms);
                        let before = server.cpu_ms();
                        let (t, n) = http.time(&crate::url(&server.base, q)).with_context(|| format!("burrow-{target}: {}", q.text))?;
                        cells.entry((qi, ti, phase)).or_default().push(t, server.cpu_ms() - before, n);
                        if ti == 0 {
                            let gets = match (&log, mark) {
                                (Some(log), Some(mark)) => Some(log.since(mark)?),
                                _ => None,
                            };
                            let cpu = s3_cpu.zip(s3.pid).map(|(before, pid)| process_cpu_ms(pid) - before);
                            let work = server_work.entry((qi, phase)).or_insert(S3Work { requests: 0, gets: Some(0), lists: Some(0), cpu_ms: Some(0.0) });
                            work.requests += 1;
                            work.gets = work.gets.zip(gets).map(|(a, (g, _))| a + g);
                            work.lists = work.lists.zip(gets).map(|(a, (_, l))| a + l);
                            work.cpu_ms = work.cpu_ms.zip(cpu).map(|(a, b)| a + b);
                        }
                    }
                }
            }
            crate::report::note_load();
            eprintln!("  s3: query {qi} ({}), fresh server {}/{first_runs} done", q.text, run + 1);
        }
    }
    Ok(ObjectResults { url: url.to_string(), sample, first_runs, repeat_runs, cells, server: server_work, bare_list, bare_download })
}

/// Fresh servers over the bucket that find a disk content cache and a text
/// index from an earlier run.
pub struct Restarted {
    pub runs: usize,
    /// How long the warm-up server took: the first search of each query
    /// (downloading the sample into the disk cache) and the index build.
    pub warm_up: std::time::Duration,
    /// The index the warm-up built: files, bytes.
    pub index: (u64, u64),
    /// query → the first request of each restarted server.
    pub cells: HashMap<usize, Samples>,
    /// query → what the S3 server did for those requests.
    pub server: HashMap<usize, S3Work>,
    /// query → matching lines `rg` finds in the local copy of the sample.
    pub rg_lines: HashMap<usize, usize>,
}

/// One server over `url` with a disk cache (`--object-cache-dir`) and a data
/// folder kept across restarts runs every query once (which downloads the
/// sample into the cache) and builds its text index; then, for every query,
/// `runs` fresh servers over the same folders each answer it once, timed,
/// with the GetObject requests and listing pages the S3 server logged for it.
pub fn measure_restarted(http: &Http, burrow: &Path, url: &str, sample: &Sample, s3: &S3Server, runs: usize) -> anyhow::Result<Restarted> {
    let prefix = url.split_once("://").and_then(|(_, r)| r.split_once('/')).map_or("", |(_, p)| p.trim_matches('/'));
    let log = s3.log.clone().map(|path| S3Log { path, key: format!("key: \"{prefix}/"), listing: format!("<Prefix>{prefix}/</Prefix>") });
    let kept = tempfile::tempdir()?;
    let data = kept.path().join("data");
    let args = vec!["--env".to_string(), url.to_string(), "--object-cache-dir".to_string(), kept.path().join("cache").display().to_string()];
    let started = std::time::Instant::now();
    let index = {
        let server = Server::burrow_in(http, "burrow-s3-warm-up", burrow, &args, &sample.dir, Some(&data))?;
        for q in QUERIES {
            http.time(&crate::url(&server.base, q)).with_context(|| format!("burrow-s3 warm-up: {}", q.text))?;
        }
        let index = crate::wait_for_text_indexes(http, std::slice::from_ref(&server))?;
        index.first().copied().flatten().context("the s3 server reports no text index")?
    };
    let warm_up = started.elapsed();
    let mut out = Restarted { runs, warm_up, index, cells: HashMap::new(), server: HashMap::new(), rg_lines: HashMap::new() };
    for (qi, q) in QUERIES.iter().enumerate() {
        if q.endpoint == crate::Endpoint::Text {
            out.rg_lines.insert(qi, crate::measure::time_rg(&sample.dir, q.text, None)?.1);
        }
        for _ in 0..runs {
            let server = Server::burrow_in(http, "burrow-s3-restarted", burrow, &args, &sample.dir, Some(&data))?;
            // The index is read from disk in the background at start: measure
            // the search it answers, not the scan that answers meanwhile.
            crate::wait_for_text_indexes(http, std::slice::from_ref(&server))?;
            let mark = log.as_ref().map(S3Log::mark).transpose()?;
            let s3_cpu = s3.pid.map(process_cpu_ms);
            let before = server.cpu_ms();
            let (t, n) = http.time(&crate::url(&server.base, q)).with_context(|| format!("burrow-s3-restarted: {}", q.text))?;
            out.cells.entry(qi).or_default().push(t, server.cpu_ms() - before, n);
            let work = out.server.entry(qi).or_insert(S3Work { requests: 0, gets: Some(0), lists: Some(0), cpu_ms: Some(0.0) });
            let logged = match (&log, mark) {
                (Some(log), Some(mark)) => Some(log.since(mark)?),
                _ => None,
            };
            let cpu = s3_cpu.zip(s3.pid).map(|(before, pid)| process_cpu_ms(pid) - before);
            work.requests += 1;
            work.gets = work.gets.zip(logged).map(|(a, (g, _))| a + g);
            work.lists = work.lists.zip(logged).map(|(a, (_, l))| a + l);
            work.cpu_ms = work.cpu_ms.zip(cpu).map(|(a, b)| a + b);
        }
        eprintln!("  s3 restarted: query {qi} ({}) done", q.text);
    }
    Ok(out)
}

/// The S3 server's log, read from a mark to its end.
struct S3Log {
    path: PathBuf,
    /// `key: "PREFIX/`, as the line of a GetObject shows the object key.
    key: String,
    /// `<Prefix>PREFIX/</Prefix>`, as the logged answer to a listing shows it.
    listing: String,
}

impl S3Log {
    fn mark(&self) -> anyhow::Result<u64> {
        Ok(std::fs::metadata(&self.path).with_context(|| format!("cannot read the S3 log {}", self.path.display()))?.len())
    }

    /// GetObject requests for keys below the prefix, and listing pages of
    /// the prefix, logged since `mark`.
    fn since(&self, mark: u64) -> anyhow::Result<(u64, u64)> {
        let mut file = std::fs::File::open(&self.path)?;
        file.seek(SeekFrom::Start(mark))?;
        let mut text = Vec::new();
        file.read_to_end(&mut text)?;
        let text = String::from_utf8_lossy(&text);
        let gets = text.lines().filter(|l| l.contains("resolved route, op: GetObject,") && l.contains(&self.key)).count();
        let lists = text.lines().filter(|l| l.contains("<ListBucketResult") && l.contains(&self.listing)).count();
        Ok((gets as u64, lists as u64))
    }
}
