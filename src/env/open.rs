//! Opening the environment named on the command line.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};

use super::local::LocalEnv;
use super::SharedEnv;
use crate::cli::ServeArgs;

/// Opens the environment `args.env` names. Each backend adds one arm here and
/// takes its own options from `args`.
pub async fn open(args: &ServeArgs) -> anyhow::Result<SharedEnv> {
    match args.env.as_str() {
        "local" => {
            let dir = match &args.dir {
                Some(d) => d.clone(),
                None => std::env::current_dir().context("cannot read the current folder")?,
            };
            open_local(dir)
        }
        #[cfg(feature = "docker")]
        "docker" => super::docker::open(args).await,
        other => bail!("unknown environment {other:?}; expected local{}", if cfg!(feature = "docker") { " or docker" } else { "" }),
    }
}

fn open_local(dir: PathBuf) -> anyhow::Result<SharedEnv> {
    Ok(Arc::new(LocalEnv::new(&dir).with_context(|| format!("cannot serve {}", dir.display()))?))
}
