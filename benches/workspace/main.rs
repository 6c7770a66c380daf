//! `cargo bench --bench workspace`: the time from `POST /experimental/workspace`
//! (a Docker workspace from an image present on this machine, a small folder
//! copied in) to the first answered `/find` in it, then the same after the
//! workspace was stopped for being idle (the container is started again).
//! The goal for the first is under 1.5 s. Prints markdown (benches/README.md).
//!
//! The image is `BURROW_BENCH_IMAGE`, else `BURROW_TEST_DOCKER_IMAGE`, else
//! `burrow-test-busybox:latest` (tests/support/services.sh builds it); the
//! search helper is `BURROW_HELPER_BIN` as for the tests. The server is
//! `BURROW_BIN`, else the release binary that `cargo bench` builds. Without
//! `--bench` this prints a note and exits. Nothing here asserts a time.

#[path = "../support/served.rs"]
mod served;

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const RUNS: usize = 5;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("benches/workspace runs with `cargo bench --bench workspace`");
        return;
    }
    tokio::runtime::Runtime::new().unwrap().block_on(run());
}

async fn run() {
    let image =
        ["BURROW_BENCH_IMAGE", "BURROW_TEST_DOCKER_IMAGE"].iter().find_map(|k| std::env::var(k).ok()).unwrap_or_else(|| "burrow-test-busybox:latest".into());
    let tree = tempfile::Builder::new().prefix("burrow-ws-bench-").tempdir().unwrap();
    for i in 0..50 {
        std::fs::create_dir_all(tree.path().join(format!("src/m{i}"))).unwrap();
        std::fs::write(tree.path().join(format!("src/m{i}/lib.rs")), format!("pub fn item{i}() -> u32 {{ {i} }}\n// needle {i}\n")).unwrap();
    }
    let root = std::env::temp_dir();
    let args = [
        OsStr::new("--allow-workspaces"),
        OsStr::new("--workspace-idle"),
        OsStr::new("1"),
        OsStr::new("--workspace-root"),
        root.as_os_str(),
        OsStr::new("--dir"),
        tree.path().as_os_str(),
    ];
    // `served` keeps the data folder until the end of the run.
    let served = served::start(args).await;
    let (url, mut child) = (served.url.clone(), served.child);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let mut first = Vec::new();
    let mut woken = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let body = json!({ "type": "docker", "extra": { "image": image, "copy": tree.path(), "network": "none" } });
        let created: Value = client.post(format!("{url}/experimental/workspace")).json(&body).send().await.unwrap().json().await.unwrap();
        let id = created["id"].as_str().unwrap_or_else(|| panic!("no workspace: {created}")).to_string();
        let find = || async {
            let res = client.get(format!("{url}/find")).query(&[("pattern", "needle 7"), ("workspace", id.as_str())]).send().await.unwrap();
            assert_eq!(res.status(), 200, "{}", res.text().await.unwrap_or_default());
        };
        find().await;
        first.push(started.elapsed());
        // Wait for the idle stop, then time the wake-up.
        loop {
            let rows: Value = client.get(format!("{url}/experimental/workspace/status")).send().await.unwrap().json().await.unwrap();
            // Still `connected` (it wakes on demand); `running` says it is stopped.
            if rows.as_array().unwrap().iter().any(|r| r["workspaceID"] == id.as_str() && r["running"] == false) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let started = Instant::now();
        find().await;
        woken.push(started.elapsed());
        client.delete(format!("{url}/experimental/workspace/{id}")).send().await.unwrap();
    }
    let show = |name: &str, mut v: Vec<Duration>| {
        v.sort();
        let ms = |d: Duration| format!("{:.0}", d.as_secs_f64() * 1000.0);
        println!("| {name} | {} | {} | {} |", ms(v[0]), ms(v[v.len() / 2]), ms(v[v.len() - 1]));
    };
    println!("Docker workspace from `{image}` with 50 files copied in, {RUNS} runs (ms):\n");
    println!("| | min | median | max |\n|---|---|---|---|");
    show("`POST /experimental/workspace` → first `/find`", first);
    show("idle-stopped → first `/find`", woken);
    let _ = child.kill().await;
}
