//! `burrow-helper`: the small static program Burrow uploads into containers and
//! onto SSH hosts, so that a whole walk or search costs one exec round trip and
//! the file bytes never cross the wire, and so that `serve` can keep the whole
//! local environment running next to the data.
//!
//! It links only the local environment, search, the helper protocol and the
//! watcher (`burrow-env` without its remote backends): no HTTP, no SQLite, no
//! TLS, no agent. `tests/build-helper.sh ARCH` builds it statically.
//!
//! Its build id is the SHA-256 of its own file: the server computes the same
//! digest of the binary it uploads, and refuses a helper that greets with another.

use std::io::{BufWriter, Read, Write};
use std::path::Path;

use burrow_env::helper::{protocol, serve};
use burrow_env::{EnvError, GrepRequest};
use clap::{Parser, Subcommand};
use sha2::{Digest, Sha256};

#[derive(Debug, Parser)]
#[command(name = "burrow-helper", about = "Runs next to the data for Burrow; not meant to be typed by hand")]
struct Cli {
    #[command(subcommand)]
    op: Op,
}

#[derive(Debug, Subcommand)]
enum Op {
    /// Print the helper's version line: version, architecture, protocol and build id.
    Version,
    /// List every file and directory below DIR (gitignore-aware), one per line.
    Walk { dir: String },
    /// Search below DIR; the request (JSON) comes on stdin, matches go out as JSON lines.
    Grep { dir: String },
    /// Print the canonical form of PATH: its nearest existing ancestor resolved, the rest appended.
    Realpath { path: String },
    /// Serve the workspace at ROOT over stdin/stdout (the framed protocol) until stdin closes.
    Serve {
        root: String,
        /// Keep no text index (the server was started with `--no-text-index`).
        #[arg(long)]
        no_text_index: bool,
    },
}

fn main() {
    std::process::exit(run(Cli::parse().op));
}

/// The SHA-256 of this very executable, hex: the build id the server expects.
fn build_id() -> Result<String, EnvError> {
    let exe = std::env::current_exe().map_err(io_err)?;
    let bytes = std::fs::read(exe).map_err(io_err)?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// Runs one operation; the process exit code tells the outcome.
fn run(op: Op) -> i32 {
    if let Op::Serve { root, no_text_index } = &op {
        configure_text_index(*no_text_index);
        return match build_id() {
            Ok(build) => serve_stdio(root, &build),
            Err(e) => fail(&e),
        };
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let result = match op {
        Op::Version => build_id().and_then(|build| writeln!(out, "{}", protocol::version_line(&build)).map_err(io_err)),
        Op::Walk { dir } => burrow_search::walk::walk(Path::new(&dir)).and_then(|entries| {
            for e in &entries {
                protocol::write_entry(&mut out, e).map_err(io_err)?;
            }
            writeln!(out, "{}", protocol::END).map_err(io_err)
        }),
        Op::Grep { dir } => read_request().and_then(|req| {
            let result = burrow_search::grep::grep(Path::new(&dir), &req)?;
            protocol::write_grep(&mut out, &result).map_err(io_err)
        }),
        Op::Realpath { path } => protocol::realpath(Path::new(&path)).and_then(|p| writeln!(out, "{p}").map_err(io_err)),
        Op::Serve { .. } => unreachable!("handled above"),
    };
    let flushed = out.flush();
    match result.and(flushed.map_err(io_err)) {
        Ok(()) => 0,
        Err(e) => fail(&e),
    }
}

/// Keeps the trigram index of the served tree in the environment's cache
/// folder, beside the helper's own (`~/.cache/burrow/text-index/`, inside the
/// private `~/.cache/burrow`): it survives a reconnect, and its bytes never
/// cross the wire. Off when the server says so (`--no-text-index`), when
/// `BURROW_NO_TEXT_INDEX` is set where the helper runs, or when the helper does
/// not run from its installed place.
fn configure_text_index(no_text_index: bool) {
    let off = no_text_index || std::env::var_os("BURROW_NO_TEXT_INDEX").is_some_and(|v| !v.is_empty() && v != "0" && v != "false");
    let dir = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("text-index")));
    let dir = dir.filter(|d| d.parent().is_some_and(|burrow| burrow.file_name() == Some(std::ffi::OsStr::new("burrow"))));
    burrow_search::trigram::live::configure(dir.filter(|_| !off).map(|dir| burrow_search::trigram::live::Settings { dir, build: Default::default() }));
}

/// Serves `root` over stdin and stdout until stdin closes.
fn serve_stdio(root: &str, build: &str) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(&EnvError::Io(format!("runtime: {e}"))),
    };
    let code = rt.block_on(serve::serve(root, build, tokio::io::stdin(), tokio::io::stdout()));
    // The stdin reader is a blocking thread that never returns: do not wait for it.
    rt.shutdown_background();
    code
}

/// Reports `e` on stderr the way the client decodes it; the exit code says its kind.
fn fail(e: &EnvError) -> i32 {
    eprintln!("{}", protocol::encode_error(e));
    protocol::exit_code(e)
}

fn read_request() -> Result<GrepRequest, EnvError> {
    let mut buf = String::new();
    std::io::stdin().read_to_string(&mut buf).map_err(io_err)?;
    serde_json::from_str(&buf).map_err(|e| EnvError::InvalidInput(format!("bad helper request: {e}")))
}

fn io_err(e: std::io::Error) -> EnvError {
    EnvError::Io(e.to_string())
}
