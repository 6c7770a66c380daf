//! `cargo bench -p burrow-search --bench trigram [-- CORPUS]`: the trigram
//! index against the scan it replaces and against ripgrep, in process, on a
//! large tree (default /usr/src/linux, see benches/README.md). It prints a
//! markdown table: build time next to one full `rg` scan, the index's size
//! next to the text it covers, p50 per pattern for `rg`, the scan and the
//! index, with each one's match count (the scan's and the index's must be
//! equal: the run stops if not), and the process's peak RSS. Nothing is asserted about time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use burrow_protocol::env::GrepRequest;
use burrow_search::grep::{grep, open_regular};
use burrow_search::trigram::{build, grep as indexed, BuildOptions, Dirty, TrigramIndex};

const RUNS: usize = 7;

fn p50(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() - 1) / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// CPU seconds used so far by this process and by its waited-for children
/// (`/proc/self/stat` fields 14 to 17, in clock ticks of 1/100 s): the load of
/// other jobs on the machine inflates the wall clock, not this.
fn cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<f64> = after.split_whitespace().map(|v| v.parse().unwrap_or(0.0)).collect();
    let tick = |i: usize| f.get(i).copied().unwrap_or(0.0) / 100.0;
    // After the ")" the fields start at 3 (state), so utime (14) is index 11.
    (tick(11) + tick(12), tick(13) + tick(14))
}

/// One full `rg` run, timed, and the number of matching lines (what `/find` counts).
fn rg(corpus: &Path, pattern: &str) -> (Duration, usize) {
    let started = Instant::now();
    let out = Command::new("rg")
        .args(["--no-config", "--count", "--hidden", "--no-messages", "--glob=!**/.git/**", "--", pattern, "."])
        .current_dir(corpus)
        .output()
        .expect("rg runs");
    let elapsed = started.elapsed();
    let lines = String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.rsplit(':').next()?.parse::<usize>().ok()).sum();
    (elapsed, lines)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("trigram bench: run with `cargo bench -p burrow-search --bench trigram`");
        return;
    }
    let corpus = std::env::args().skip(1).find(|a| !a.starts_with('-')).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/src/linux"));
    let corpus = std::fs::canonicalize(&corpus).expect("the corpus exists (see benches/README.md)");
    let out = std::env::temp_dir().join("burrow-trigram-bench.tri");
    eprintln!("corpus {}", corpus.display());

    // Warm the page cache, then time one full rg scan.
    let _ = rg(&corpus, "a_pattern_that_never_matches_xyzzy");
    let (_, rg_cpu_before) = cpu();
    let (rg_scan, _) = rg(&corpus, "a_pattern_that_never_matches_xyzzy");
    let rg_cpu = cpu().1 - rg_cpu_before;
    let rss_before = status_kib("VmRSS:");
    let (build_cpu_before, _) = cpu();
    let started = Instant::now();
    let stats = build(&corpus, &out, &BuildOptions::default(), &open_regular).expect("the index builds");
    let build_time = started.elapsed();
    let build_cpu = cpu().0 - build_cpu_before;
    let build_hwm = status_kib("VmHWM:");
    let index = TrigramIndex::open(&out).expect("the index opens");
    let open_rss = status_kib("VmRSS:");

    println!("| corpus | files | indexed files | indexed text | index size | size / text | trigrams | build | one rg scan | build / rg | build CPU | rg CPU | CPU build / rg |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {} | {:.0} MiB | {:.0} MiB | {:.1}% | {} | {} ms | {} ms | {:.2}x | {:.1} s | {:.1} s | {:.2}x |",
        corpus.display(),
        stats.files,
        stats.indexed_files,
        stats.text_bytes as f64 / (1 << 20) as f64,
        stats.index_bytes as f64 / (1 << 20) as f64,
        100.0 * stats.index_bytes as f64 / stats.text_bytes.max(1) as f64,
        stats.trigrams,
        ms(build_time),
        ms(rg_scan),
        build_time.as_secs_f64() / rg_scan.as_secs_f64(),
        build_cpu,
        rg_cpu,
        build_cpu / rg_cpu.max(0.01)
    );
    println!();
    println!("| pattern | limit | rg full p50 | scan p50 | index p50 | rg lines | scan matches | index matches |");
    println!("|---|---|---|---|---|---|---|---|");
    let patterns: [(&str, &str, bool); 5] = [
        ("no match", "a_pattern_that_never_matches_xyzzy", false),
        ("rare", "PM_RESUME", false),
        ("rare, -i", "pm_resume", true),
        ("common", "static", false),
        ("regex", "spin_lock_irq(save)?\\(", false),
    ];
    for (label, pattern, ci) in patterns {
        for limit in [10usize, 100_000] {
            let req = GrepRequest { dir: String::new(), pattern: pattern.into(), include: None, limit, case_insensitive: ci };
            let (mut t_rg, mut t_scan, mut t_index) = (Vec::new(), Vec::new(), Vec::new());
            let (mut n_rg, mut n_scan, mut n_index) = (0, 0, 0);
            for _ in 0..RUNS {
                if limit > 10 && !ci {
                    let (d, n) = rg(&corpus, pattern);
                    t_rg.push(d);
                    n_rg = n;
                }
                let s = Instant::now();
                let scanned = grep(&corpus, &req).expect("scan");
                t_scan.push(s.elapsed());
                let s = Instant::now();
                let found = indexed(&corpus, &index, &Dirty::default(), &req, &open_regular).expect("indexed").expect("the index answers");
                t_index.push(s.elapsed());
                if !scanned.truncated {
                    assert_eq!(found, scanned, "{pattern}: the index and the scan disagree");
                }
                n_scan = scanned.matches.len();
                n_index = found.matches.len();
            }
            let rg_col = if t_rg.is_empty() { "".to_string() } else { format!("{} ms", ms(p50(t_rg))) };
            let rg_n = if limit > 10 && !ci { n_rg.to_string() } else { String::new() };
            println!("| {label} | {limit} | {rg_col} | {} ms | {} ms | {rg_n} | {n_scan} | {n_index} |", ms(p50(t_scan)), ms(p50(t_index)));
        }
    }
    println!();
    println!(
        "RSS: {} MiB before the build, peak {} MiB during it, {} MiB with the index open, {} MiB after the searches (peak over the run: {} MiB).",
        rss_before / 1024,
        build_hwm / 1024,
        open_rss / 1024,
        status_kib("VmRSS:") / 1024,
        status_kib("VmHWM:") / 1024
    );
    let _ = std::fs::remove_file(&out);
}
