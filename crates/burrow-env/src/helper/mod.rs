//! `burrow helper`: the same binary, running next to the data.
//!
//! Inside a container or on a remote host, Burrow uploads a statically linked
//! build of itself and runs `burrow helper <op>` there, so that a whole walk or
//! search costs one exec round trip and the file bytes never cross the wire.
//! [`protocol`] defines the compact line protocol; [`run`] is the helper side;
//! [`client`] is the server side (installing, calling, falling back to `rg`,
//! then to [`posix`] `find` and `grep`). `helper serve` ([`serve`]) keeps one
//! helper running and answers many requests over one stream; [`remote`] is its
//! client, an [`crate::env::Env`].

pub mod client;
mod posix;
pub mod protocol;
pub mod remote;
pub mod serve;
#[cfg(test)]
mod session_tests;
pub mod slot;

use std::io::{BufWriter, Read, Write};
use std::path::Path;

use clap::{Args, Subcommand};

use crate::env::{EnvError, GrepRequest};
use crate::search;

#[derive(Debug, Args)]
pub struct HelperArgs {
    #[command(subcommand)]
    pub op: HelperOp,
}

#[derive(Debug, Subcommand)]
pub enum HelperOp {
    /// Print the helper's version and architecture.
    Version,
    /// List every file and directory below DIR (gitignore-aware), one per line.
    Walk { dir: String },
    /// Search below DIR; the request (JSON) comes on stdin, matches go out as JSON lines.
    Grep { dir: String },
    /// Print the canonical form of PATH: its nearest existing ancestor resolved, the rest appended.
    Realpath { path: String },
    /// Serve the workspace at ROOT over stdin/stdout (the framed protocol) until stdin closes.
    Serve { root: String },
}

/// Runs one helper operation; the process exit code tells the outcome.
pub fn run(args: HelperArgs) -> i32 {
    if let HelperOp::Serve { root } = &args.op {
        return serve::run(root);
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let result = match args.op {
        HelperOp::Version => writeln!(out, "{}", protocol::version_line()).map_err(io_err),
        HelperOp::Walk { dir } => search::walk::walk(Path::new(&dir)).and_then(|entries| {
            for e in &entries {
                protocol::write_entry(&mut out, e).map_err(io_err)?;
            }
            writeln!(out, "{}", protocol::END).map_err(io_err)
        }),
        HelperOp::Grep { dir } => read_request().and_then(|req| {
            let result = search::grep::grep(Path::new(&dir), &req)?;
            protocol::write_grep(&mut out, &result).map_err(io_err)
        }),
        HelperOp::Realpath { path } => protocol::realpath(Path::new(&path)).and_then(|p| writeln!(out, "{p}").map_err(io_err)),
        HelperOp::Serve { .. } => unreachable!("handled above"),
    };
    let flushed = out.flush();
    match result.and(flushed.map_err(io_err)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{}", protocol::encode_error(&e));
            protocol::exit_code(&e)
        }
    }
}

fn read_request() -> Result<GrepRequest, EnvError> {
    let mut buf = String::new();
    std::io::stdin().read_to_string(&mut buf).map_err(io_err)?;
    serde_json::from_str(&buf).map_err(|e| EnvError::InvalidInput(format!("bad helper request: {e}")))
}

fn io_err(e: std::io::Error) -> EnvError {
    EnvError::Io(e.to_string())
}
