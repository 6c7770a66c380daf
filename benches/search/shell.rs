//! Shell round trips: `echo hi` through the API, the way a client runs a
//! command (`POST /session`, then `POST /session/{id}/shell` with `{agent,
//! command}`), timed from sending the request to the last byte of the answer,
//! which OpenCode sends once the command has finished.

use anyhow::{bail, Context};
use serde_json::json;

use crate::measure::{Http, Samples};
use crate::server::Server;

const COMMAND: &str = "echo hi";
/// Untimed runs first: the first command may set up a session's shell, start
/// an exec channel or a helper, and is not what "warm" measures.
const WARM_UP: usize = 3;

/// One server's round trips, or why it runs no commands (object storage
/// answers 501, for instance).
pub struct ShellRow {
    pub label: String,
    pub result: Result<Samples, String>,
}

/// Opens a session on every server, warms it up, then runs `echo hi` `runs`
/// times per server, interleaved across servers.
pub fn measure(http: &Http, servers: &[Server], runs: usize) -> Vec<ShellRow> {
    let mut sessions: Vec<Result<String, String>> = servers
        .iter()
        .map(|s| {
            eprintln!("  shell: warming up {} ...", s.label);
            open(http, &s.base).map_err(|e| format!("{e:#}"))
        })
        .collect();
    for s in servers {
        let _ = s.cpu_ms();
    }
    let mut samples: Vec<Samples> = vec![Samples::default(); servers.len()];
    for run in 0..runs {
        crate::report::note_load();
        for si in crate::rotation(servers.len(), run) {
            let s = &servers[si];
            let Ok(id) = &sessions[si] else { continue };
            let before = s.cpu_ms();
            match echo(http, &s.base, id) {
                Ok(t) => samples[si].push(t, s.cpu_ms() - before, 1),
                Err(e) => sessions[si] = Err(format!("run {run}: {e:#}")),
            }
        }
    }
    servers.iter().zip(sessions).zip(samples).map(|((s, session), samples)| ShellRow { label: s.label.clone(), result: session.map(|_| samples) }).collect()
}

/// A new session on `base`, after [`WARM_UP`] untimed commands.
fn open(http: &Http, base: &str) -> anyhow::Result<String> {
    let (_, session) = http.post(&format!("{base}/session"), &json!({ "title": "bench shell" }))?;
    let id = session["id"].as_str().context("POST /session answered no id")?.to_string();
    for _ in 0..WARM_UP {
        echo(http, base, &id)?;
    }
    Ok(id)
}

/// One timed `echo hi`; fails unless the answer carries its output.
fn echo(http: &Http, base: &str, session: &str) -> anyhow::Result<std::time::Duration> {
    let (t, answer) = http.post(&format!("{base}/session/{session}/shell"), &json!({ "agent": "build", "command": COMMAND }))?;
    let output = &answer["parts"][0]["state"]["output"];
    if output.as_str().map(str::trim) != Some("hi") {
        bail!("`{COMMAND}` answered output {output}");
    }
    Ok(t)
}
