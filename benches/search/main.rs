//! Search benchmark: Burrow's `/find` and `/find/file` against ripgrep run
//! directly and against the OpenCode reference server, side by side in one
//! run on the Linux kernel source. Prints a markdown table.
//!
//! Run: `cargo bench --bench search` (see benches/README.md for the knobs).
//! Without `--bench` (as `cargo test --all-targets` runs it) it exits at once,
//! so test runs never download the corpus.

mod corpus;
mod measure;
mod report;
mod server;

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;

use measure::{children_cpu_ticks, cpu_ticks, time_rg, Http, Samples};
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
    pub ms_per_tick: f64,
}

fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("benches/search runs only under `cargo bench --bench search`; skipping.");
        return Ok(());
    }
    let text_runs: usize = env_number("BURROW_BENCH_RUNS", 10)?;
    let file_runs = text_runs * 5;
    let corpus = corpus::prepare()?;
    let http = Http::new()?;
    let load_before = report::load_average();
    let servers = start_servers(&http, &corpus)?;

    eprintln!("warming up (page cache, file indexes) ...");
    for (qi, q) in QUERIES.iter().enumerate() {
        if q.endpoint == Endpoint::Text {
            time_rg(&corpus, q.text, None)?;
        }
        for s in &servers {
            http.time(&url(&s.base, q)).with_context(|| format!("{}: {}", s.label, q.text))?;
        }
        eprintln!("  warm: query {qi} done");
    }

    let mut cells: HashMap<(usize, Column), Samples> = HashMap::new();
    for run in 0..file_runs {
        for (qi, q) in QUERIES.iter().enumerate() {
            let runs = if q.endpoint == Endpoint::Text { text_runs } else { file_runs };
            if run >= runs {
                continue;
            }
            // Interleaved, so load changes on the machine hit every column alike.
            for (si, s) in servers.iter().enumerate() {
                let before = cpu_ticks(s.pid());
                let (t, n) = http.time(&url(&s.base, q))?;
                let cpu = cpu_ticks(s.pid()).saturating_sub(before);
                cells.entry((qi, Column::Server(si))).or_default().push(t, cpu, n);
            }
            if q.endpoint == Endpoint::Text {
                for (column, stop_after) in [(Column::RgFull, None), (Column::RgBounded, Some(FIND_LIMIT + 1))] {
                    let before = children_cpu_ticks();
                    let (t, n) = time_rg(&corpus, q.text, stop_after)?;
                    let cpu = children_cpu_ticks().saturating_sub(before);
                    cells.entry((qi, column)).or_default().push(t, cpu, n);
                }
            }
        }
        if run < text_runs || (run + 1) % 10 == 0 {
            eprintln!("  run {}/{} done", run + 1, file_runs);
        }
    }

    let results = Results {
        servers: servers.iter().map(|s| (s.label.clone(), s.peak_rss_kib())).collect(),
        cells,
        text_runs,
        file_runs,
        ms_per_tick: measure::ms_per_tick(),
    };
    drop(servers);
    let load_after = report::load_average();
    print!("{}", report::render(&results, &corpus, &load_before, &load_after));
    Ok(())
}

/// Burrow on the corpus, each extra environment of `BURROW_BENCH_ENVS`, and
/// the reference when `OPENCODE_BIN` is set.
fn start_servers(http: &Http, corpus: &std::path::Path) -> anyhow::Result<Vec<Server>> {
    let burrow = std::env::var_os("BURROW_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_burrow")));
    let mut servers = Vec::new();
    eprintln!("starting burrow ({}) ...", burrow.display());
    servers.push(Server::burrow(http, "burrow", &burrow, &["--dir".into(), corpus.display().to_string()], corpus)?);
    // `label=ARGS;label=ARGS`: extra `burrow serve` flags per environment,
    // e.g. `docker=--env docker --container c --dir /src`.
    for spec in std::env::var("BURROW_BENCH_ENVS").unwrap_or_default().split(';').filter(|s| !s.trim().is_empty()) {
        let (label, args) = spec.split_once('=').with_context(|| format!("BURROW_BENCH_ENVS entry {spec:?} is not label=ARGS"))?;
        let args = shlex::split(args).with_context(|| format!("cannot split the arguments of {label:?}"))?;
        eprintln!("starting burrow-{} ...", label.trim());
        servers.push(Server::burrow(http, &format!("burrow-{}", label.trim()), &burrow, &args, corpus)?);
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

fn url(base: &str, q: &Query) -> String {
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
