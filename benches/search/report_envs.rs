//! The report's environment tables: Burrow's other environments against its
//! local one, the shell round trip, and object storage first and repeated.

use std::fmt::Write;

use crate::measure::Samples;
use crate::object::{ObjectResults, Phase, Restarted, TARGETS};
use crate::report::{fmt_ms, ms as p50_p95, p50, query_cells, ratio};
use crate::shell::ShellRow;
use crate::{Column, Results, QUERIES};

/// One column per extra Burrow environment (`BURROW_BENCH_ENVS`), its p50
/// beside local Burrow's and the ratio. Empty when there are none.
pub fn environments(r: &Results) -> String {
    let mut out = String::new();
    let Some(local) = r.servers.iter().position(|(l, _)| l == "burrow") else { return out };
    let envs: Vec<usize> = (0..r.servers.len()).filter(|&i| i != local && r.servers[i].0.starts_with("burrow-")).collect();
    if envs.is_empty() {
        return out;
    }
    let _ = writeln!(out, "Environments against local Burrow, same run, wall clock ms p50 / p95 (p50 ratio to local):");
    let _ = writeln!(out);
    let mut header = String::from("| endpoint | query | burrow (local) |");
    let mut rule = String::from("|---|---|--:|");
    for &i in &envs {
        let _ = write!(header, " {} | {} / local |", r.servers[i].0, r.servers[i].0.trim_start_matches("burrow-"));
        rule.push_str("--:|--:|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    for (qi, q) in QUERIES.iter().enumerate() {
        let cell = |si: usize| r.cells.get(&(qi, Column::Server(si)));
        let _ = write!(out, "{} {} |", query_cells(q), p50_p95(cell(local)));
        for &i in &envs {
            let _ = write!(out, " {} | {} |", p50_p95(cell(i)), ratio(p50(cell(i)), p50(cell(local))));
        }
        let _ = writeln!(out);
    }
    out
}

/// The shell round trip of every server that runs commands.
pub fn shell(rows: &[ShellRow]) -> String {
    let mut out = String::new();
    let local = rows.iter().find(|r| r.label == "burrow").and_then(|r| r.result.as_ref().ok());
    let runs = rows.iter().filter_map(|r| r.result.as_ref().ok()).map(Samples::len).max().unwrap_or(0);
    let _ = writeln!(out, "Shell round trip, `echo hi` through `POST /session/{{id}}/shell`, warm ({runs} runs each after 3 untimed), ms:");
    let _ = writeln!(out);
    let _ = writeln!(out, "| target | p50 | p95 | mean CPU (server, plus container or sshd) | p50 / local |");
    let _ = writeln!(out, "|---|--:|--:|--:|--:|");
    for row in rows {
        match &row.result {
            Ok(s) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    row.label,
                    fmt_ms(s.p50()),
                    fmt_ms(s.p95()),
                    fmt_ms(s.cpu_ms()),
                    ratio(s.p50(), local.and_then(Samples::p50))
                );
            }
            Err(e) => {
                let _ = writeln!(out, "| {} | — | — | — | runs no commands: {} |", row.label, one_line(e));
            }
        }
    }
    out
}

/// First (fresh server) and repeated (same server) searches over the bucket
/// prefix, beside local Burrow on the same files.
pub fn object(o: &ObjectResults) -> String {
    let mut out = String::new();
    let mb = o.sample.bytes as f64 / (1024.0 * 1024.0);
    let _ = writeln!(
        out,
        "Object storage: `{}`, a sample of {} files ({mb:.0} MB: `{}` of the corpus), beside `burrow --dir` on a local copy of the same files.",
        o.url,
        o.sample.files.len(),
        o.sample.folders
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "First: the first request to a freshly started server ({} servers per query and target); repeated: {} more of the same request on that server. ms p50 (mean CPU ms of the Burrow process). For the s3 target, per request: GetObject requests and listing pages (ListObjectsV2, 1,000 keys each) of the prefix, from the S3 server's log, and the S3 server's CPU ms (the test server is shared: other clients' work counts too).", o.first_runs, o.repeat_runs);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "The S3 server alone (opendal from the bench, no Burrow), measured before each fresh server of the first query, p50 of {}: one recursive listing of the prefix {} ms; downloading all {} files, 16 at a time, {} ms.",
        o.bare_list.len(),
        fmt_ms(o.bare_list.p50()),
        o.sample.files.len(),
        fmt_ms(o.bare_download.p50())
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "| endpoint | query | s3 first | s3 repeated, p50 / max | local first | local repeated | s3 repeated / local repeated | GETs first · repeated | LIST pages first · repeated | S3 server CPU first · repeated | results s3 · local |");
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    let (s3, local) = (0, 1);
    debug_assert_eq!(TARGETS, ["s3", "local"]);
    for (qi, q) in QUERIES.iter().enumerate() {
        let cell = |t: usize, p: Phase| o.cells.get(&(qi, t, p));
        let show = |s: Option<&Samples>| format!("{} ({})", fmt_ms(p50(s)), fmt_ms(s.and_then(Samples::cpu_ms)));
        let work = |p: Phase| o.server.get(&(qi, p)).copied().unwrap_or_default();
        let per = |v: Option<f64>, p: Phase| v.filter(|_| work(p).requests > 0).map(|v| v / work(p).requests as f64);
        let gets = |p: Phase| per(work(p).gets.map(|g| g as f64), p).map_or("—".into(), fmt_count);
        let lists = |p: Phase| per(work(p).lists.map(|g| g as f64), p).map_or("—".into(), fmt_count);
        let repeated = cell(s3, Phase::Repeated);
        let p50_max =
            format!("{} / {} ({})", fmt_ms(p50(repeated)), fmt_ms(repeated.and_then(|s| s.percentile_ms(100.0))), fmt_ms(repeated.and_then(Samples::cpu_ms)));
        let cpu = |p: Phase| fmt_ms(per(work(p).cpu_ms, p));
        let count = |s: Option<&Samples>| s.map_or("—".into(), |s| s.results.to_string());
        let _ = writeln!(
            out,
            "{} {} | {} | {} | {} | {} | {} · {} | {} · {} | {} · {} | {} · {} |",
            query_cells(q),
            show(cell(s3, Phase::First)),
            p50_max,
            show(cell(local, Phase::First)),
            show(cell(local, Phase::Repeated)),
            ratio(p50(cell(s3, Phase::Repeated)), p50(cell(local, Phase::Repeated))),
            gets(Phase::First),
            gets(Phase::Repeated),
            lists(Phase::First),
            lists(Phase::Repeated),
            cpu(Phase::First),
            cpu(Phase::Repeated),
            count(cell(s3, Phase::Repeated)),
            count(cell(local, Phase::Repeated)),
        );
    }
    out
}

/// The restarted rows: a fresh server whose disk cache and text index are
/// there, beside the first request of a server with empty caches and of the
/// local environment (from `o`, the same run).
pub fn restarted(o: &ObjectResults, r: &Restarted) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Restarted: a freshly started `burrow serve --env {} --object-cache-dir DIR` whose disk cache and text index (in its data folder) an earlier server left: that one ran every query once and built its index ({} files, {} bytes) in {:.1} s. ms p50 of the first request of {} servers per query (mean CPU ms of the Burrow process), and per request the GetObject requests and listing pages (ListObjectsV2) of the prefix from the S3 server's log, and the S3 server's CPU ms; beside it the first request with empty caches and locally, from the table above.",
        o.url,
        r.index.0,
        r.index.1,
        r.warm_up.as_secs_f64(),
        r.runs
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "| endpoint | query | s3 restarted first | s3 first, empty caches | local first | GETs | LIST pages | S3 server CPU | results s3 restarted · local · `rg` lines on the sample |");
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|");
    let (s3, local) = (0, 1);
    for (qi, q) in QUERIES.iter().enumerate() {
        let cell = r.cells.get(&qi);
        let show = |s: Option<&Samples>| format!("{} ({})", fmt_ms(p50(s)), fmt_ms(s.and_then(Samples::cpu_ms)));
        let work = r.server.get(&qi).copied().unwrap_or_default();
        let per = |v: Option<f64>| v.filter(|_| work.requests > 0).map(|v| v / work.requests as f64);
        let count = |s: Option<&Samples>| s.map_or("—".into(), |s| s.results.to_string());
        let _ = writeln!(
            out,
            "{} {} | {} | {} | {} | {} | {} | {} · {} · {} |",
            query_cells(q),
            show(cell),
            show(o.cells.get(&(qi, s3, Phase::First))),
            show(o.cells.get(&(qi, local, Phase::First))),
            per(work.gets.map(|g| g as f64)).map_or("—".into(), fmt_count),
            per(work.lists.map(|l| l as f64)).map_or("—".into(), fmt_count),
            fmt_ms(per(work.cpu_ms)),
            count(cell),
            count(o.cells.get(&(qi, local, Phase::First))),
            r.rg_lines.get(&qi).map_or("—".into(), usize::to_string),
        );
    }
    out
}

fn fmt_count(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn one_line(s: &str) -> String {
    let s = s.replace(['\n', '|'], " ");
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s
    }
}
