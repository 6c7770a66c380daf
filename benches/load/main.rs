//! `cargo bench --bench load`: 200 clients run `/find` text searches on a large
//! tree without pause while one client measures `/global/health` and another
//! `/find/file`, one request after the other. Prints the latencies, the
//! answers to the searches (only 200 and 503 with `Retry-After` are allowed)
//! and the server's peak RSS, as markdown (benches/README.md).
//!
//! The tree is `BURROW_LOAD_TREE`, else the Linux source at `/usr/src/linux`
//! when present, else a generated one under `target/load-tree`. The server is
//! `BURROW_BIN`, else the release binary that `cargo bench` builds. Without
//! `--bench` (as `cargo test --all-targets` runs it) this prints a note and
//! exits. Nothing here asserts a time.

#[path = "../support/served.rs"]
mod served;

use served::Served;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Clients that search at once.
const SEARCHERS: usize = 200;
/// How long the load runs.
const DURATION: Duration = Duration::from_secs(30);
/// A pattern found nowhere: every search is a full scan, the worst case.
const PATTERN: &str = "q7x-never-found-zz";
/// Pause between two probes of one prober.
const PROBE_PAUSE: Duration = Duration::from_millis(20);

/// The generated tree: this many folders of this many files of this many lines.
const GEN_DIRS: usize = 220;
const GEN_FILES: usize = 100;
const GEN_LINES: usize = 120;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("benches/load runs with `cargo bench --bench load`");
        return;
    }
    tokio::runtime::Runtime::new().unwrap().block_on(run());
}

fn tree() -> (PathBuf, String) {
    if let Some(dir) = std::env::var_os("BURROW_LOAD_TREE") {
        let dir = PathBuf::from(dir);
        let shown = format!("`{}`", dir.display());
        return (dir, shown);
    }
    let linux = Path::new("/usr/src/linux");
    if linux.join("Makefile").exists() {
        return (linux.to_path_buf(), "the Linux source (`/usr/src/linux`)".into());
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/load-tree");
    let done = dir.join(".complete");
    if !done.exists() {
        eprintln!("generating {} files under {}", GEN_DIRS * GEN_FILES, dir.display());
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut word = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            format!("w{:x}", seed % 0xfffff)
        };
        for d in 0..GEN_DIRS {
            let sub = dir.join(format!("src/mod{d:03}"));
            std::fs::create_dir_all(&sub).unwrap();
            for f in 0..GEN_FILES {
                let text: String = (0..GEN_LINES).map(|_| format!("let {} = {}({}, {});\n", word(), word(), word(), word())).collect();
                std::fs::write(sub.join(format!("file{f:03}.rs")), text).unwrap();
            }
        }
        std::fs::write(&done, "").unwrap();
    }
    let bytes: u64 = walk_size(&dir);
    (dir, format!("a generated tree of {} files in {GEN_DIRS} folders, {} MB", GEN_DIRS * GEN_FILES, bytes / 1_000_000))
}

fn walk_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => walk_size(&e.path()),
                    _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                })
                .sum()
        })
        .unwrap_or(0)
}

async fn start(dir: &Path) -> Served {
    served::start([OsStr::new("--dir"), dir.as_os_str()]).await
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// Requests `path` one after the other until `stop`; returns the latencies and
/// the count of answers other than 200.
async fn probe(client: reqwest::Client, url: String, stop: Arc<AtomicBool>) -> (Vec<Duration>, u64) {
    let (mut times, mut failed) = (Vec::new(), 0);
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        match client.get(&url).send().await {
            Ok(res) if res.status() == 200 => {
                let _ = res.bytes().await;
                times.push(started.elapsed());
            }
            _ => failed += 1,
        }
        tokio::time::sleep(PROBE_PAUSE).await;
    }
    times.sort();
    (times, failed)
}

#[derive(Default)]
struct Answers {
    ok: AtomicU64,
    busy: AtomicU64,
    other: AtomicU64,
}

async fn search(client: reqwest::Client, url: String, stop: Arc<AtomicBool>, answers: Arc<Answers>) {
    while !stop.load(Ordering::Relaxed) {
        match client.get(&url).send().await {
            Ok(res) if res.status() == 200 => {
                let _ = res.bytes().await;
                answers.ok.fetch_add(1, Ordering::Relaxed);
            }
            Ok(res) if res.status() == 503 && res.headers().contains_key("retry-after") => {
                answers.busy.fetch_add(1, Ordering::Relaxed);
                // A polite client waits a little before it tries again.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ => {
                answers.other.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0)
}

async fn run() {
    let (dir, shown) = tree();
    let served = start(&dir).await;
    let pid = served.child.id().unwrap();
    let client = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(SEARCHERS + 4).build().unwrap();
    let health = format!("{}/global/health", served.url);
    let files = format!("{}/find/file?query=main", served.url);
    let find = format!("{}/find?pattern={PATTERN}", served.url);

    // Warm up: the file index, the page cache, and idle latencies.
    eprintln!("warming up on {shown}");
    client.get(&files).send().await.unwrap().bytes().await.unwrap();
    client.get(&find).send().await.unwrap().bytes().await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let idle = tokio::spawn(probe(client.clone(), health.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let (idle, _) = idle.await.unwrap();

    eprintln!("{SEARCHERS} clients searching for {DURATION:?}");
    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(Answers::default());
    let searchers: Vec<_> = (0..SEARCHERS).map(|_| tokio::spawn(search(client.clone(), find.clone(), stop.clone(), answers.clone()))).collect();
    let health_probe = tokio::spawn(probe(client.clone(), health, stop.clone()));
    let files_probe = tokio::spawn(probe(client.clone(), files, stop.clone()));
    tokio::time::sleep(DURATION).await;
    stop.store(true, Ordering::Relaxed);
    let (health, health_failed) = health_probe.await.unwrap();
    let (files, files_failed) = files_probe.await.unwrap();
    for s in searchers {
        let _ = s.await;
    }
    let rss = peak_rss_kib(pid);

    println!(
        "Load: {SEARCHERS} clients running `/find?pattern={PATTERN}` (a full scan) without pause for {}s on {shown}, {} cores.\n",
        DURATION.as_secs(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!("| measure | goal | result |");
    println!("|---|---|---|");
    println!("| `/global/health` p50 idle | | {} ms |", ms(percentile(&idle, 50.0)));
    println!("| `/global/health` p50 under load | | {} ms |", ms(percentile(&health, 50.0)));
    println!("| `/global/health` p99 under load | < 50 ms | {} ms ({} requests, {} failed) |", ms(percentile(&health, 99.0)), health.len(), health_failed);
    println!("| `/find/file` p50 under load | | {} ms |", ms(percentile(&files, 50.0)));
    println!("| `/find/file` p99 under load | < 100 ms | {} ms ({} requests, {} failed) |", ms(percentile(&files, 99.0)), files.len(), files_failed);
    println!(
        "| `/find` answers | only 200 and 503 + `Retry-After` | {} × 200, {} × 503, {} other |",
        answers.ok.load(Ordering::Relaxed),
        answers.busy.load(Ordering::Relaxed),
        answers.other.load(Ordering::Relaxed)
    );
    println!("| peak RSS (VmHWM) | | {} MiB |", rss / 1024);
}
