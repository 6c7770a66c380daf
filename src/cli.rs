//! Command-line interface.

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Parser, Subcommand};

use crate::envs::{EnvSpec, Places, Request};

#[derive(Debug, Parser)]
#[command(
    name = "burrow",
    version,
    about = "One OpenCode-compatible HTTP API over code that lives anywhere",
    long_about = "Burrow serves the OpenCode server protocol (REST + SSE, OpenAPI at /doc) over a workspace \
                  that lives in a local folder, a Docker container, an SSH host or an object-storage bucket. \
                  OpenCode clients (`opencode attach <url>`, the SDKs) work against it unchanged."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// The arguments are parsed once at start; boxing ServeArgs would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the OpenCode API over a workspace (the current folder by default).
    Serve(ServeArgs),
    /// List the named environments `burrow serve --env NAME` can open, and
    /// where each definition comes from: the project's envs/ folder,
    /// ~/.config/burrow/envs/, or the definitions built into burrow.
    Envs(EnvsArgs),
    /// The watchdog `serve` starts: when the server dies, ends the commands it
    /// recorded in DIR (see burrow-env's groups.rs). Not meant to be typed by hand.
    #[command(hide = true)]
    Reap { dir: PathBuf },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where the workspace lives: a named definition (`python` reads python.toml
    /// from the project's envs/, then ~/.config/burrow/envs/, then the built-in
    /// ones; see `burrow envs`), or `local` (a folder on this machine), `docker`
    /// (a container; see --image and --container), `ssh` (a folder on a host
    /// reached over SSH; see --host), or a URL such as `s3://bucket/prefix` (also
    /// fs://, memory://, webdav://, gcs://, azblob://). [default: local]
    #[arg(long, value_name = "NAME|ENV")]
    pub env: Option<String>,

    /// Read the environment from this definition file (the format of envs/*.toml).
    /// Flags typed on the command line override its fields.
    #[arg(long, value_name = "FILE", conflicts_with = "env")]
    pub env_file: Option<PathBuf>,

    /// The workspace root. For `local`, a folder (default: the current folder).
    /// For `ssh`, a folder on the host: absolute, or relative to the login's home.
    /// For `docker`, the same as --workdir. Also the project: --env NAME looks in
    /// its envs/ folder first, and a definition's relative paths start there.
    #[arg(long, value_name = "PATH")]
    pub dir: Option<PathBuf>,

    /// SSH: the host, `[user@]host[:port]`. HostName, User, Port and IdentityFile
    /// come from ~/.ssh/config when not typed. Logs in with --identity, else
    /// ssh-agent (SSH_AUTH_SOCK), the config's IdentityFile and ~/.ssh/id_*;
    /// then a password from BURROW_SSH_PASSWORD (never from the command line).
    /// BURROW_SSH_KEY_PASSPHRASE unlocks an encrypted key file.
    #[arg(long, value_name = "[USER@]HOST[:PORT]")]
    pub host: Option<String>,

    /// SSH: log in with this private key (ed25519, ecdsa or rsa) and no other.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,

    /// SSH: verify the host key against this known_hosts file instead of
    /// ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts. Unknown hosts are refused.
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,

    /// SSH: trust a host seen for the first time and record its key in the
    /// known_hosts file. A key that differs from a recorded one is always refused.
    #[arg(long)]
    pub accept_new_host_key: bool,

    /// The port to listen on; 0 picks a free one. The URL is printed on start.
    #[arg(long, default_value_t = 4096)]
    pub port: u16,

    /// The address to listen on. A non-loopback address needs
    /// OPENCODE_SERVER_PASSWORD (or --insecure-no-auth): anyone who reaches the
    /// port can run commands.
    #[arg(long, default_value = "127.0.0.1")]
    pub hostname: String,

    /// Also allow browser pages from this origin (repeatable); localhost is always
    /// allowed. Without a password, the origin's host is also accepted as a Host.
    #[arg(long = "cors", value_name = "ORIGIN")]
    pub cors: Vec<String>,

    /// Serve a non-loopback address without a password. Anyone who reaches the
    /// port can then read the workspace and run commands in it.
    #[arg(long)]
    pub insecure_no_auth: bool,

    /// Server environment variables that a workspace's own config files may
    /// read with `{env:NAME}` (comma-separated). Others stay literal: a project
    /// must not read the server's secrets.
    #[arg(long, env = "BURROW_CONFIG_ENV_ALLOW", value_name = "VAR,...", value_delimiter = ',')]
    pub config_env_allow: Vec<String>,

    /// Where sessions and messages are stored (default: $XDG_DATA_HOME/burrow).
    #[arg(long, env = "BURROW_DATA_DIR", value_name = "PATH")]
    pub data_dir: Option<PathBuf>,

    /// Delete saved tool outputs (<data dir>/tool-output) older than this many days.
    #[arg(long, env = "BURROW_TOOL_OUTPUT_MAX_AGE", value_name = "DAYS", default_value_t = 7)]
    pub tool_output_max_age: u64,

    /// Keep at most this much in <data dir>/tool-output (e.g. 256M, 1G); the oldest outputs go first.
    #[arg(long, env = "BURROW_TOOL_OUTPUT_MAX_SIZE", value_name = "SIZE", default_value = "256M", value_parser = crate::env::object::options::parse_size)]
    pub tool_output_max_size: u64,

    /// Undo snapshots: objects that no session's snapshot reaches are removed
    /// once older than this many days (at start, then daily; at least an hour).
    #[arg(long, env = "BURROW_SNAPSHOT_MAX_AGE", value_name = "DAYS", default_value_t = 7.0)]
    pub snapshot_max_age: f64,

    /// Keep no trigram index of the workspace's text (searches then always
    /// scan). By default a local workspace is indexed in the background, under
    /// <data dir>/text-index, and searches whose pattern has trigrams read only
    /// the files that can match.
    #[arg(long, env = "BURROW_NO_TEXT_INDEX")]
    pub no_text_index: bool,

    /// Text searches (`/find`, the agent's grep) that may run at once (default: one per core).
    #[arg(long, env = "BURROW_SEARCH_CONCURRENCY", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub search_concurrency: Option<u32>,

    /// Text searches that may wait for a turn; past that a search answers 503
    /// with `Retry-After` (default: eight per core).
    #[arg(long, env = "BURROW_SEARCH_QUEUE", value_name = "N")]
    pub search_queue: Option<u32>,

    /// Let clients create workspaces (`POST /experimental/workspace`) on a
    /// loopback server without a password. With a password they always may.
    #[arg(long, env = "BURROW_ALLOW_WORKSPACES")]
    pub allow_workspaces: bool,

    /// A host folder that local workspaces (and a Docker workspace's copy or
    /// mount) may use, this folder or below (repeatable).
    #[arg(long = "workspace-root", value_name = "PATH")]
    pub workspace_roots: Vec<PathBuf>,

    /// At most this many workspaces besides the server's own.
    #[arg(long, env = "BURROW_MAX_WORKSPACES", value_name = "N", default_value_t = 16)]
    pub max_workspaces: usize,

    /// Stop a workspace unused for this many seconds (its container is stopped,
    /// its SSH connection closed); the next request starts it again. 0: never.
    #[arg(long, env = "BURROW_WORKSPACE_IDLE", value_name = "SECONDS", default_value_t = 900.0)]
    pub workspace_idle: f64,

    /// CPUs for a Docker workspace that sets none (e.g. 1.5).
    #[arg(long, value_name = "N")]
    pub workspace_cpus: Option<f64>,

    /// Memory for a Docker workspace that sets none (e.g. 1g).
    #[arg(long, value_name = "SIZE", value_parser = crate::env::docker::parse_memory)]
    pub workspace_memory: Option<i64>,

    #[command(flatten)]
    pub timeouts: crate::server::Timeouts,

    #[command(flatten)]
    pub object: crate::env::object::ObjectArgs,
    #[cfg(feature = "docker")]
    #[command(flatten)]
    pub docker: crate::env::docker::DockerArgs,
}

#[derive(Debug, Args)]
pub struct EnvsArgs {
    /// The project whose envs/ folder is searched first (default: the current folder).
    #[arg(long, value_name = "PATH")]
    pub dir: Option<PathBuf>,
}

impl EnvsArgs {
    pub fn places(&self) -> anyhow::Result<Places> {
        Ok(Places::new(project(&self.dir)?))
    }
}

/// The project folder: `--dir`, else the current folder.
fn project(dir: &Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match dir {
        Some(d) => Ok(d.clone()),
        None => std::env::current_dir().map_err(|e| anyhow::anyhow!("cannot read the current folder: {e}")),
    }
}

impl ServeArgs {
    /// Where named definitions are looked up: the project is `--dir`, else the current folder.
    pub fn places(&self) -> anyhow::Result<Places> {
        Ok(Places::new(project(&self.dir)?))
    }

    /// The environment the command line asks for. `matches` (the `serve`
    /// subcommand's) tells which flags were given: only those override a
    /// definition; a flag left at its default does not. A value from an
    /// environment variable counts as given.
    pub fn env_request(&self, matches: &ArgMatches) -> Request {
        let given = |id: &str| matches!(matches.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable));
        let o = &self.object;
        #[allow(unused_mut)]
        let mut flags = EnvSpec {
            dir: self.dir.clone(),
            host: self.host.clone(),
            identity: self.identity.clone(),
            known_hosts: self.known_hosts.clone(),
            accept_new_host_key: given("accept_new_host_key").then_some(self.accept_new_host_key),
            s3_path_style: o.s3_path_style,
            object_load_config: given("object_load_config").then_some(o.object_load_config),
            index_max_age: given("index_max_age").then_some(o.index_max_age),
            object_cache_dir: o.object_cache_dir.clone(),
            object_cache_size: given("object_cache_size").then_some(o.object_cache_size),
            object_concurrency: given("object_concurrency").then_some(o.object_concurrency),
            ..Default::default()
        };
        #[cfg(feature = "docker")]
        {
            let d = &self.docker;
            flags.image = d.image.clone();
            flags.container = d.container.clone();
            flags.workdir = d.workdir.clone();
            flags.mount = d.mount.clone();
            flags.copy = d.copy.clone();
            flags.network = d.network.clone();
            flags.name = d.container_name.clone();
            flags.keep = given("keep").then_some(d.keep);
            flags.cpus = d.cpus;
            flags.memory = d.memory;
        }
        Request { env: self.env.clone(), env_file: self.env_file.clone(), flags }
    }
}
