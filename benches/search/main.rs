//! Search benchmark: Burrow's `/find` and `/find/file` against ripgrep run
//! directly and against the OpenCode reference server, side by side in one
//! run on the Linux kernel source. Prints a markdown table.
//!
//! Run: `cargo bench --bench search` (see benches/README.md for the knobs).
//! Without `--bench` (as `cargo test --all-targets` runs it) it exits at once,
//! so test runs never download the corpus.

mod corpus;
mod cpu;
mod measure;
mod object;
mod report;
mod report_envs;
mod sample;
mod server;
mod shell;

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;

use cpu::children_cpu_ms;
use measure::{time_rg, Http, Samples};
use server::Server;

/// OpenCode's `/find` keeps this many matches and reads one more before it
/// stops ripgrep; Burrow's `/find` does the same.
const FIND_LIMIT: usize = 10;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Text,
    File,
}

pub struct Query {
    pub endpoint: Endpoint,
    pub what: &'static str,
    pub text: &'static str,
}

const QUERIES: &[Query] = &[
    Query { endpoint: Endpoint::Text, what: "no match (full scan)", text: "burrowNoSuchToken9f3a" },
    Query { endpoint: Endpoint::Text, what: "rare (6 lines)", text: "CONFIG_BURROW|mem_cgroup_swapout" },
    Query { endpoint: Endpoint::Text, what: "rare", text: "PM_RESUME" },
    Query { endpoint: Endpoint::Text, what: "common", text: "static" },
    Query { endpoint: Endpoint::Text, what: "regex", text: r"spin_lock_irq(save|restore)\(" },
    Query { endpoint: Endpoint::File, what: "fuzzy", text: "main" },
    Query { endpoint: Endpoint::File, what: "fuzzy", text: "sched/core" },
    Query { endpoint: Endpoint::File, what: "fuzzy", text: "Kconfig" },
    Query { endpoint: Endpoint::File, what: "fuzzy", text: "drivers/net/eth" },
    Query { endpoint: Endpoint::File, what: "fuzzy", text: "mm.c" },
];

/// A column of measurements: an HTTP server, or ripgrep run directly.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    Server(usize),
    RgFull,
    RgBounded,
}

pub struct Results {
    pub servers: Vec<(String, Option<u64>)>,
    pub cells: HashMap<(usize, Column), Samples>,
    pub text_runs: usize,
    pub file_runs: usize,
}

fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("benches/search runs only under `cargo bench --bench search`; skipping.");
        return Ok(());
    }
    // `cargo bench --bench search -- --prepare-corpus`: prepare the corpus,
    // print its folder and stop (benches/envs.sh needs it before it starts).
    if std::env::args().any(|a| a == "--prepare-corpus") {
        println!("{}", corpus::prepare()?.display());
        return Ok(());
    }
    let text_runs: usize = env_number("BURROW_BENCH_RUNS", 10)?;
    let file_runs = text_runs * 5;
    let sections = std::env::var("BURROW_BENCH_SECTIONS").unwrap_or_else(|_| "search,shell,s3".into());
    let section = |name: &str| sections.split(',').any(|s| s.trim() == name);
    let corpus = corpus::prepare()?;
    let http = Http::new()?;
    let load_before = report::load_average();
    let mut out = String::new();
    let mut results = Results { servers: Vec::new(), cells: HashMap::new(), text_runs, file_runs };
    if section("search") || section("shell") {
        let servers = start_servers(&http, &corpus)?;
        if section("search") {
            results.cells = search(&http, &servers, &corpus, text_runs, file_runs)?;
        }
        results.servers = servers.iter().map(|s| (s.label.clone(), s.peak_rss_kib())).collect();
        if section("search") {
            out.push_str(&report::render(&results));
            out.push('\n');
            out.push_str(&report_envs::environments(&results));
        }
        if section("shell") {
            eprintln!("shell round trips ...");
            let rows = shell::measure(&http, &servers, env_number("BURROW_BENCH_SHELL_RUNS", 20)?);
            out.push('\n');
            out.push_str(&report_envs::shell(&rows));
        }
    }
    match std::env::var("BURROW_BENCH_S3").ok().filter(|u| !u.is_empty()) {
        Some(url) if section("s3") => {
            let folders = std::env::var("BURROW_BENCH_S3_SAMPLE").unwrap_or_else(|_| sample::DEFAULT_FOLDERS.into());
            let sample = sample::prepare(&corpus, &folders, &url)?;
            eprintln!("object storage: {} files under {url} ...", sample.files.len());
            let log = std::env::var_os("BURROW_BENCH_S3_LOG").filter(|v| !v.is_empty()).map(PathBuf::from);
            let pid = std::env::var("BURROW_BENCH_S3_PID").ok().and_then(|p| p.trim().parse().ok());
            let first = env_number("BURROW_BENCH_S3_FIRST", 3)?;
            let repeat = env_number("BURROW_BENCH_S3_REPEAT", 5)?;
            let s3 = object::S3Server { log, pid };
            let restarted = object::measure_restarted(&http, &burrow_bin(), &url, &sample, &s3, env_number("BURROW_BENCH_S3_RESTARTED", 3)?)?;
            let o = object::measure(&http, &burrow_bin(), &url, sample, s3, first, repeat)?;
            out.push('\n');
            out.push_str(&report_envs::object(&o));
            out.push('\n');
            out.push_str(&report_envs::restarted(&o, &restarted));
        }
        _ if section("s3") => eprintln!("BURROW_BENCH_S3 is not set: no object-storage section"),
        _ => {}
    }
    let load_after = report::load_average();
    print!("{}\n{out}", report::header(&results, &corpus, &load_before, &load_after));
    Ok(())
}

/// Warms every target up, then times every query on each, interleaved.
fn search(http: &Http, servers: &[Server], corpus: &std::path::Path, text_runs: usize, file_runs: usize) -> anyhow::Result<HashMap<(usize, Column), Samples>> {
    wait_for_text_indexes(http, servers)?;
    eprintln!("warming up (page cache, file indexes) ...");
    for (qi, q) in QUERIES.iter().enumerate() {
        if q.endpoint == Endpoint::Text {
            time_rg(corpus, q.text, None)?;
        }
        for s in servers {
            http.time(&url(&s.base, q)).with_context(|| format!("{}: {}", s.label, q.text))?;
        }
        eprintln!("  warm: query {qi} done");
    }
    // The connections are open now: find the remote sides' processes.
    for s in servers {
        let _ = s.cpu_ms();
    }

    let mut cells: HashMap<(usize, Column), Samples> = HashMap::new();
    for run in 0..file_runs {
        for (qi, q) in QUERIES.iter().enumerate() {
            let runs = if q.endpoint == Endpoint::Text { text_runs } else { file_runs };
            if run >= runs {
                continue;
            }
            // Interleaved, so load changes on the machine hit every column
            // alike, and in an order that rotates from run to run, so no
            // server always follows one that keeps working after it answered.
            for si in rotation(servers.len(), run) {
                let s = &servers[si];
                let before = s.cpu_ms();
                let (t, n) = http.time(&url(&s.base, q)).with_context(|| format!("{}: {}", s.label, q.text))?;
                let cpu = s.cpu_ms() - before;
                cells.entry((qi, Column::Server(si))).or_default().push(t, cpu, n);
            }
            if q.endpoint == Endpoint::Text {
                for (column, stop_after) in [(Column::RgFull, None), (Column::RgBounded, Some(FIND_LIMIT + 1))] {
                    let before = children_cpu_ms();
                    let (t, n) = time_rg(corpus, q.text, stop_after)?;
                    let cpu = children_cpu_ms() - before;
                    cells.entry((qi, column)).or_default().push(t, cpu, n);
                }
            }
        }
        report::note_load();
        if run < text_runs || (run + 1) % 10 == 0 {
            eprintln!("  run {}/{} done", run + 1, file_runs);
        }
    }
    Ok(cells)
}

/// Where an environment runs its helper, so its CPU time can be counted: the
/// container named by `--name` or `--container`, or the sshd of `--host`.
fn remote_side(server: &Server, args: &[String]) -> anyhow::Result<Option<cpu::Remote>> {
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1));
    if let Some(name) = value("--name").or_else(|| value("--container")) {
        return Ok(Some(cpu::Remote::Container(cpu::ContainerCpu::find(name).with_context(|| server.label.clone())?)));
    }
    if value("--env").is_some_and(|e| e == "ssh") {
        let port = value("--host").and_then(|h| h.rsplit_once(':')).and_then(|(_, p)| p.parse().ok()).unwrap_or(22);
        return Ok(Some(cpu::Remote::Ssh(cpu::SshPeer::new(server.pid(), port))));
    }
    Ok(None)
}

/// `0..n`, starting at `run % n`.
pub fn rotation(n: usize, run: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |k| (k + run) % n)
}

/// Waits until each Burrow server that keeps a text index reports it ready,
/// so that its rows measure the index, not the scan it answers with meanwhile;
/// prints how long each took (from this call, after the server started).
/// Returns each server's index (files, bytes), None for a server without one.
fn wait_for_text_indexes(http: &Http, servers: &[Server]) -> anyhow::Result<Vec<Option<(u64, u64)>>> {
    let started = std::time::Instant::now();
    let mut out = Vec::new();
    for s in servers.iter().filter(|s| s.label.starts_with("burrow")) {
        loop {
            let caps = http.get(&format!("{}/burrow/capabilities", s.base))?;
            let index = &caps["text_index"];
            if index.is_null() {
                eprintln!("  {}: no text index", s.label);
                out.push(None);
                break;
            }
            if index["state"] == "ready" && index["rebuilding"] == false {
                eprintln!(
                    "  {}: text index ready after {:.1} s: {} files, {} bytes",
                    s.label,
                    started.elapsed().as_secs_f64(),
                    index["entries"],
                    index["bytes"]
                );
                out.push(Some((index["entries"].as_u64().unwrap_or(0), index["bytes"].as_u64().unwrap_or(0))));
                break;
            }
            anyhow::ensure!(index["state"] != "failed", "{}: the text index failed: {index}", s.label);
            anyhow::ensure!(started.elapsed() < std::time::Duration::from_secs(1800), "{}: the text index is not ready after 30 min: {index}", s.label);
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    Ok(out)
}

fn burrow_bin() -> PathBuf {
    std::env::var_os("BURROW_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_burrow")))
}

/// Burrow on the corpus, each extra environment of `BURROW_BENCH_ENVS`, and
/// the reference when `OPENCODE_BIN` is set.
fn start_servers(http: &Http, corpus: &std::path::Path) -> anyhow::Result<Vec<Server>> {
    let burrow = burrow_bin();
    let mut servers = Vec::new();
    eprintln!("starting burrow ({}) ...", burrow.display());
    servers.push(Server::burrow(http, "burrow", &burrow, &["--dir".into(), corpus.display().to_string()], corpus)?);
    // `label=ARGS;label=ARGS`: extra `burrow serve` flags per environment,
    // e.g. `docker=--env docker --container c --dir /src`.
    for spec in std::env::var("BURROW_BENCH_ENVS").unwrap_or_default().split(';').filter(|s| !s.trim().is_empty()) {
        let (label, args) = spec.split_once('=').with_context(|| format!("BURROW_BENCH_ENVS entry {spec:?} is not label=ARGS"))?;
        let args = shlex::split(args).with_context(|| format!("cannot split the arguments of {label:?}"))?;
        eprintln!("starting burrow-{} ...", label.trim());
        let mut server = Server::burrow(http, &format!("burrow-{}", label.trim()), &burrow, &args, corpus)?;
        if let Some(remote) = remote_side(&server, &args)? {
            server.follow(remote);
        }
        servers.push(server);
    }
    match std::env::var_os("OPENCODE_BIN") {
        Some(bin) => {
            eprintln!("starting the reference ({}) ...", PathBuf::from(&bin).display());
            servers.push(Server::reference(http, &PathBuf::from(bin), corpus)?);
        }
        None => eprintln!("OPENCODE_BIN is not set: no reference column"),
    }
    Ok(servers)
}

pub fn url(base: &str, q: &Query) -> String {
    let (path, key) = match q.endpoint {
        Endpoint::Text => ("find", "pattern"),
        Endpoint::File => ("find/file", "query"),
    };
    format!("{base}/{path}?{}", serde_urlencoded::to_string([(key, q.text)]).unwrap_or_default())
}

fn env_number(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v.parse().ok().filter(|&n| n > 0).with_context(|| format!("{name}={v:?} is not a positive number")),
        Err(_) => Ok(default),
    }
}
