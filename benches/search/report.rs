//! The markdown report: a side-by-side table for local Burrow, ripgrep and the
//! reference, then one row per HTTP target (more environments, more rows).

use std::fmt::Write;
use std::path::Path;
use std::process::Command;

use crate::measure::Samples;
use crate::{Column, Endpoint, Query, Results, FIND_LIMIT, QUERIES};

/// The date, machine, load and corpus.
pub fn header(r: &Results, corpus: &Path, load_before: &str, load_after: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Date: {} · machine: {} · {} cores · load average before {load_before}, after {load_after}; 1-minute load between runs {}",
        today(),
        cpu_model(),
        cores(),
        load_range()
    );
    let _ = writeln!(
        out,
        "Corpus: {} ({} files seen by `rg --files`) · {} runs per `/find` query, {} per `/find/file` query · warm cache",
        corpus.display(),
        corpus_files(corpus),
        r.text_runs,
        r.file_runs
    );
    out
}

/// The search tables.
pub fn render(r: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Wall clock, ms p50 / p95:");
    side_by_side(&mut out, r, &ms, &p50, true);
    let _ = writeln!(out);
    let _ = writeln!(out, "CPU time per request, ms (mean over the runs, children included; load on the machine does not inflate it):");
    side_by_side(&mut out, r, &|s| fmt_ms(cpu(s)), &cpu, false);
    let _ = writeln!(out);
    let _ = writeln!(out, "By target, p50 ms · mean CPU ms (one row per server; more environments add rows; the CPU is the server process's, plus its container's for docker and its sshd session's for ssh, where the helper runs):");
    let _ = writeln!(out);
    let mut header = String::from("| target |");
    let mut rule = String::from("|---|");
    for q in QUERIES {
        let _ = write!(header, " `{}` |", q.text.replace('|', "\\|"));
        rule.push_str("--:|");
    }
    let _ = writeln!(out, "{header} peak RSS |");
    let _ = writeln!(out, "{rule}--:|");
    for (si, (label, peak)) in r.servers.iter().enumerate() {
        let _ = write!(out, "| {label} |");
        for qi in 0..QUERIES.len() {
            let s = r.cells.get(&(qi, Column::Server(si)));
            let _ = write!(out, " {} · {} |", fmt_ms(p50(s)), fmt_ms(cpu(s)));
        }
        let _ = writeln!(out, " {} |", mib(*peak));
    }
    out
}

/// Rows = queries; columns = burrow, rg full, rg first 11, reference, the two
/// ratios of `value`, and (with `results`) how many results each returned.
/// With `results`, the last row is the peak RSS.
fn side_by_side(out: &mut String, r: &Results, show: &dyn Fn(Option<&Samples>) -> String, value: &dyn Fn(Option<&Samples>) -> Option<f64>, results: bool) {
    let burrow = r.servers.iter().position(|(l, _)| l == "burrow").map(Column::Server);
    let reference = r.servers.iter().position(|(l, _)| l == "reference").map(Column::Server);
    let first = FIND_LIMIT + 1;
    let _ = writeln!(out);
    let (extra_head, extra_rule) = if results { (" results burrow · rg full · reference |", "--:|") } else { ("", "") };
    let _ =
        writeln!(out, "| endpoint | query | burrow | rg full | rg first {first} | reference | burrow / rg first {first} | reference / burrow |{extra_head}");
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|{extra_rule}");
    for (qi, q) in QUERIES.iter().enumerate() {
        let cell = |c: Option<Column>| c.and_then(|c| r.cells.get(&(qi, c)));
        let (b, full, bounded, reff) = (cell(burrow), cell(Some(Column::RgFull)), cell(Some(Column::RgBounded)), cell(reference));
        let _ = write!(
            out,
            "{} {} | {} | {} | {} | {} | {} |",
            query_cells(q),
            show(b),
            show(full),
            show(bounded),
            show(reff),
            ratio(value(b), value(bounded)),
            ratio(value(reff), value(b)),
        );
        if results {
            let _ = write!(out, " {} · {} · {} |", count(b), count(full), count(reff));
        }
        let _ = writeln!(out);
    }
    if !results {
        return;
    }
    let rss = |c: Option<Column>| match c {
        Some(Column::Server(i)) => r.servers[i].1,
        _ => None,
    };
    let (b_rss, ref_rss) = (rss(burrow), rss(reference));
    let _ = writeln!(
        out,
        "| peak RSS (VmHWM) | after all runs | {} | | | {} | | {} | |",
        mib(b_rss),
        mib(ref_rss),
        ratio(ref_rss.map(|v| v as f64), b_rss.map(|v| v as f64))
    );
}

fn cpu(s: Option<&Samples>) -> Option<f64> {
    s.and_then(Samples::cpu_ms)
}

/// The first two cells of a query's row: "| `/find` | common `static` |".
pub fn query_cells(q: &Query) -> String {
    format!("| `{}` | {} `{}` |", endpoint(q.endpoint), q.what, q.text.replace('|', "\\|"))
}

fn endpoint(e: Endpoint) -> &'static str {
    match e {
        Endpoint::Text => "/find",
        Endpoint::File => "/find/file",
    }
}

pub fn p50(s: Option<&Samples>) -> Option<f64> {
    s.and_then(Samples::p50)
}

pub fn ms(s: Option<&Samples>) -> String {
    match s {
        Some(s) => format!("{} / {}", fmt_ms(s.p50()), fmt_ms(s.p95())),
        None => "—".into(),
    }
}

pub fn fmt_ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v < 10.0 => format!("{v:.2}"),
        Some(v) if v < 100.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.0}"),
        None => "—".into(),
    }
}

pub fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "—".into(),
    }
}

fn count(s: Option<&Samples>) -> String {
    s.map_or("—".into(), |s| s.results.to_string())
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("—".into(), |k| format!("{:.0} MB", k as f64 / 1024.0))
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_else(|_| "?".into())
}

/// The 1-minute load averages seen by [`note_load`].
static LOADS: std::sync::Mutex<Vec<f64>> = std::sync::Mutex::new(Vec::new());

/// Records the 1-minute load average now (called between runs), so the
/// report can say how busy the machine was during the whole run.
pub fn note_load() {
    if let Some(load) = load_average().split_whitespace().next().and_then(|l| l.parse().ok()) {
        LOADS.lock().unwrap_or_else(|e| e.into_inner()).push(load);
    }
}

fn load_range() -> String {
    let loads = LOADS.lock().unwrap_or_else(|e| e.into_inner());
    let min = loads.iter().copied().fold(f64::INFINITY, f64::min);
    let max = loads.iter().copied().fold(0.0, f64::max);
    if loads.is_empty() {
        "?".into()
    } else {
        format!("{min:.2} to {max:.2} ({} samples)", loads.len())
    }
}

fn today() -> String {
    shell(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|m| m.trim().to_string()))
        .unwrap_or_else(|| "?".into())
}

fn corpus_files(corpus: &Path) -> String {
    let out = shell(Command::new("rg").args(["--no-config", "--files", "--hidden", "--glob=!**/.git/**"]).current_dir(corpus));
    out.lines().count().to_string()
}

fn shell(cmd: &mut Command) -> String {
    cmd.output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_else(|_| "?".into())
}
