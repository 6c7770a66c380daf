//! `burrow serve` started for a benchmark: the binary named by `BURROW_BIN`
//! (else this build's), a scratch data folder and home, and the URL it prints.

use std::ffi::OsStr;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

pub struct Served {
    pub url: String,
    pub child: tokio::process::Child,
    _data: tempfile::TempDir,
}

/// Starts `burrow serve --port 0` with `args`; its stdout is drained after the
/// URL line, so the server never blocks on a full pipe.
pub async fn start<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(args: I) -> Served {
    let bin = std::env::var("BURROW_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_burrow").to_string());
    let data = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(bin)
        .args(["serve", "--port", "0"])
        .args(args)
        .env("BURROW_DATA_DIR", data.path())
        .env("HOME", data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("burrow starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().expect("the URL line");
    let url = line.rsplit(' ').next().unwrap().to_string();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Served { url, child, _data: data }
}
