use anyhow::Context;
use burrow::cli::{Cli, Command, ServeArgs};
use burrow::server::{self, AppState, Credentials, Dirs, Policy};
use clap::{CommandFactory, FromArgMatches};
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    // The matches are kept: which flags were typed decides what overrides an
    // envs/ definition (`ServeArgs::env_request`).
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::Reap { dir } => std::process::exit(burrow::env::groups::watchdog(&dir)),
        Command::Envs(args) => {
            print!("{}", burrow::envs::listing(&args.places()?)?);
            return Ok(());
        }
        Command::Serve(_) => {}
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("BURROW_LOG").unwrap_or_else(|_| "burrow=info".into()))
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve(args) => {
            let serve_matches = matches.subcommand_matches("serve").context("the serve arguments are missing")?;
            // A broken definition is refused here, before anything is created.
            let resolved = burrow::envs::resolve(args.env_request(serve_matches), &args.places()?)?;
            let runtime = tokio::runtime::Runtime::new()?;
            let served = runtime.block_on(serve(args, resolved));
            // Blocking work still running (a search deep in a large tree) must
            // not hold the exit; the process ends and the OS frees the rest.
            runtime.shutdown_timeout(std::time::Duration::from_millis(500));
            served
        }
        Command::Reap { .. } | Command::Envs(_) => unreachable!("handled above"),
    }
}

async fn serve(args: ServeArgs, resolved: burrow::envs::Resolved) -> anyhow::Result<()> {
    let dirs = dirs_for(args.data_dir.clone());
    burrow::session::datadir::create_private_dir(std::path::Path::new(&dirs.state)).with_context(|| format!("cannot create the data folder {}", dirs.state))?;
    burrow::session::datadir::set_retention(burrow::session::datadir::Retention {
        max_age: std::time::Duration::from_secs(args.tool_output_max_age.saturating_mul(24 * 3600)),
        max_bytes: args.tool_output_max_size,
    });
    burrow::env::groups::init(std::path::Path::new(&dirs.state));
    burrow::env::snapshot::init(&std::path::Path::new(&dirs.state).join("snapshot"));
    tracing::info!("environment: {}", resolved.describe());
    // Before the environment opens: a Docker or SSH one may start its helper
    // session (told whether to keep an index) while opening, a local one its
    // index once watched.
    burrow::search::trigram::live::configure(
        (!args.no_text_index)
            .then(|| burrow::search::trigram::live::Settings { dir: std::path::Path::new(&dirs.state).join("text-index"), build: Default::default() }),
    );
    let env = burrow::env::open::open(&resolved.spec).await?;
    let defaults = burrow::search::gate::Limits::default();
    burrow::search::gate::configure(burrow::search::gate::Limits {
        concurrency: args.search_concurrency.map_or(defaults.concurrency, |n| n as usize),
        queue: args.search_queue.map_or(defaults.queue, |n| n as usize),
    });
    let policy = Policy {
        hostname: args.hostname.clone(),
        cors: args.cors.clone(),
        config_env_allow: args.config_env_allow.iter().map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect(),
    };
    let credentials = Credentials::from_env();
    let loopback = args.hostname == "localhost" || args.hostname.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    let workspaces = burrow::workspace::Options {
        allow_create: credentials.is_some() || (loopback && args.allow_workspaces),
        roots: args.workspace_roots.clone(),
        max: args.max_workspaces,
        idle: (args.workspace_idle > 0.0).then(|| std::time::Duration::from_secs_f64(args.workspace_idle)),
        cpus: args.workspace_cpus,
        memory: args.workspace_memory,
        places: Some(args.places()?),
    };
    if args.allow_workspaces && !loopback && credentials.is_none() {
        tracing::warn!("--allow-workspaces is ignored on the non-loopback address {} without a password", args.hostname);
    }
    let state = AppState::new(env.clone(), dirs, credentials, policy, workspaces).await?;
    let registry = state.workspaces.clone();
    let mcp = state.runtime.mcp.clone();
    let workspaces = registry.clone();
    let server_env = state.runtime.env.clone();
    let max_age = std::time::Duration::try_from_secs_f64(args.snapshot_max_age * 24.0 * 3600.0).context("--snapshot-max-age must be a number of days")?;
    let pruning = burrow::session::snapshots::spawn(state.runtime.sessions.store.clone(), max_age, move || {
        let (workspaces, server_env) = (workspaces.clone(), server_env.clone());
        async move {
            let mut envs = workspaces.open_envs().await;
            envs.push(server_env);
            envs
        }
    });
    let served = server::serve(state, &args.hostname, args.port, args.insecure_no_auth, args.timeouts).await;
    pruning.abort();
    registry.shutdown().await;
    // The MCP servers of the server's own environment end before it does.
    mcp.close_all().await;
    env.shutdown().await;
    served
}

fn dirs_for(data_dir: Option<PathBuf>) -> Dirs {
    let home = dirs::home_dir().unwrap_or_else(|| PathBuf::from("/"));
    let state = data_dir.unwrap_or_else(|| dirs::data_dir().unwrap_or_else(|| home.join(".local/share")).join("burrow"));
    let config = dirs::config_dir().unwrap_or_else(|| home.join(".config")).join("opencode");
    let s = |p: PathBuf| p.to_string_lossy().into_owned();
    Dirs { home: s(home), state: s(state), config: s(config) }
}
