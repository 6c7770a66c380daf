//! The Env contract: one suite of cases, each a function of a [`Workspace`]
//! (an environment serving the same small fixture tree), run over every way
//! Burrow serves files and processes: local, the helper in process (over an
//! in-memory pipe), Docker and SSH (each with the helper session and without
//! a helper), and object storage. `BURROW_TEST_ENVS` selects them (see
//! [`fixture`]); each test is named `<environment>::<case>`, so
//! `cargo test --test env_contract -- ssh::` runs one environment and
//! `-- a_pty_runs_a_shell` one case everywhere.
//!
//! Snapshots (undo) are kept by every variant: a store of Burrow's own, or
//! the environment's `git` where there is no helper.
//!
//! What an environment cannot do by design (object storage runs no
//! processes, keeps no symlinks, file modes or empty folders, and has no
//! change feed) is asserted as the documented difference, never skipped.
//! The HTTP API over the same environments is the conformance suite's.

#[path = "../support/mod.rs"]
mod support;

#[path = "../docker_support/mod.rs"]
mod docker_support;

mod files;
mod fixture;
mod processes;
mod search;
mod snapshots;
mod watch;

/// One test per environment and case: `contract!(env: Kind; cases)`.
macro_rules! contract {
    ($($env:ident: $kind:ident),* ; $cases:tt) => {
        $( contract!(@env $env $kind $cases); )*
    };
    (@env $env:ident $kind:ident [$($module:ident::$case:ident),* $(,)?]) => {
        mod $env {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(ws) = crate::fixture::open(crate::fixture::Kind::$kind).await else { return };
                    crate::$module::$case(&ws).await;
                }
            )*
        }
    };
}

contract!(
    local: Local, helper: Helper, docker: Docker, docker_scripts: DockerScripts, ssh: Ssh, ssh_channels: SshChannels, s3: S3;
    [
        files::the_root_is_where_the_fixture_is,
        files::writes_and_reads_cross_the_boundary,
        files::renames_and_removes,
        files::symlinks_out_of_the_root_are_refused,
        search::a_walk_applies_the_ignore_rules,
        search::a_search_finds_what_is_not_ignored,
        search::changes_through_burrow_show_in_walks_and_searches_at_once,
        processes::commands_run_where_the_files_are,
        processes::exec_passes_cwd_env_and_stdin_and_reports_exit_codes,
        processes::output_streams_before_the_exit,
        processes::kill_and_timeout_end_the_whole_process_group,
        processes::a_pty_runs_a_shell,
        watch::changes_behind_burrows_back_reach_the_watch_channel,
        snapshots::snapshots_name_every_change_and_put_it_back,
        snapshots::a_prune_keeps_young_and_referenced_snapshots,
    ]
);
