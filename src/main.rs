use anyhow::Context;
use burrow::cli::{Cli, Command, ServeArgs};
use burrow::server::{self, AppState, Credentials, Dirs};
use clap::Parser;
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("BURROW_LOG").unwrap_or_else(|_| "burrow=info".into()))
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve(args) => tokio::runtime::Runtime::new()?.block_on(serve(args)),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let dirs = dirs_for(args.data_dir.clone());
    std::fs::create_dir_all(&dirs.state).with_context(|| format!("cannot create the data folder {}", dirs.state))?;
    let env = burrow::env::open::open(&args).await?;
    let state = AppState::new(env.clone(), dirs, Credentials::from_env()).await?;
    let served = server::serve(state, &args.hostname, args.port, &args.cors).await;
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
