//! The HTTP server: shared state, the router and its OpenAPI document, and
//! start-up and shutdown.

mod auth;
pub(crate) mod cors;
pub mod extract;
pub mod guard;
/// Kept here too: routes name it `server::instance`.
pub use crate::instance;
mod listen;
pub mod openapi;
pub mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::FromRef;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::Credentials;
pub use guard::Policy;
pub use listen::{Disconnect, Timeouts};
use routes::{
    api, api_permission, api_revert, api_session_event, app, config, control, control_plane, credential, environment, event, file, find, lifecycle, mcp,
    message, meta, permission, permission_saved, project, prompt, pty, pty_connect, session, sync, tools, tui, v2, workspace, worktree,
};

use crate::agent::permission::Permissions;
use crate::agent::question::Questions;
use crate::config::auth::AuthStore;
use crate::env::SharedEnv;
use crate::error::ApiError;
use crate::event::Bus;
use crate::session::runtime::Runtime;
use crate::session::service::Sessions;
use crate::workspace::{Options as WsOptions, Registry, Scope};

pub use crate::session::runtime::Dirs;

/// Everything handlers share: the [`Runtime`] the runners take too
/// (environment, store, bus, permissions, folders), and what only HTTP needs
/// beyond it. A handler that needs one part takes it as its state
/// (`State<Arc<Runtime>>`, `State<Bus>`, ...) through [`FromRef`].
pub struct AppState {
    /// The default workspace's runtime (the server's own `--env`); sessions,
    /// bus and permissions are shared by every workspace.
    pub runtime: Arc<Runtime>,
    /// The default workspace: its instances, index, watcher and terminals.
    pub scope: Arc<Scope>,
    /// The workspaces clients created.
    pub workspaces: Arc<Registry>,
    pub credentials: Option<Credentials>,
    /// Which hosts, origins and server variables the operator allowed.
    pub policy: Policy,
    pub started_ms: u64,
    pub tui: routes::tui::TuiControl,
}

impl FromRef<Arc<AppState>> for Bus {
    fn from_ref(state: &Arc<AppState>) -> Self {
        state.runtime.bus.clone()
    }
}

pub use crate::workspace::UNWATCHED_INDEX_TTL;

impl AppState {
    pub async fn new(env: SharedEnv, dirs: Dirs, credentials: Option<Credentials>, policy: Policy, workspaces: WsOptions) -> anyhow::Result<Arc<Self>> {
        let started_ms = crate::now_ms();
        let bus = Bus::new();
        let sessions = Sessions::open(std::path::Path::new(&dirs.state), bus.clone()).await?;
        let saved = sessions.store.saved_permissions().await.context("reading the saved permission answers")?;
        let permissions = Permissions::with_store(bus.clone(), saved, Arc::new(sessions.store.clone()));
        let auth = Arc::new(AuthStore::new(std::path::Path::new(&dirs.state)));
        let runtime = Arc::new(Runtime {
            env: env.clone(),
            sessions,
            questions: Questions::new(bus.clone()),
            bus,
            permissions,
            dirs,
            config_env_allow: policy.config_env_allow.clone(),
            auth,
            mcp: Arc::new(crate::mcp::Mcp::new(env)),
        });
        let scope = Scope::with_runtime(runtime.clone(), None).await;
        let workspaces = Registry::load(scope.clone(), workspaces).await?;
        Ok(Arc::new(Self { runtime, scope, workspaces, credentials, policy, started_ms, tui: Default::default() }))
    }
}

#[derive(OpenApi)]
#[openapi(info(title = "burrow", description = "The OpenCode server API, served by Burrow over local, Docker, SSH and object-storage workspaces."))]
struct ApiDoc;

/// The API routes and the OpenAPI document generated from their annotations.
pub fn api() -> (Router<Arc<AppState>>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(meta::health))
        .routes(routes!(meta::root))
        .routes(routes!(meta::path))
        .routes(routes!(meta::projects))
        .routes(routes!(meta::current_project))
        .routes(routes!(meta::vcs_info))
        .routes(routes!(meta::capabilities))
        .routes(routes!(meta::refresh))
        .routes(routes!(environment::recreate))
        .routes(routes!(file::list))
        .routes(routes!(file::read))
        .routes(routes!(file::status))
        .routes(routes!(find::text))
        .routes(routes!(find::files))
        .routes(routes!(find::symbols))
        .routes(routes!(find::fs_find))
        .routes(routes!(event::subscribe))
        .routes(routes!(event::global))
        .routes(routes!(permission::list))
        .routes(routes!(permission::reply))
        .routes(routes!(permission::respond))
        .routes(routes!(pty::list, pty::create))
        .routes(routes!(pty::shells))
        .routes(routes!(pty::get, pty::update, pty::remove))
        .routes(routes!(pty_connect::connect))
        .routes(routes!(pty::connect_token))
        .routes(routes!(config::get, config::update))
        .routes(routes!(config::global, config::global_update))
        .routes(routes!(config::providers))
        .routes(routes!(config::provider_list))
        .routes(routes!(config::provider_auth))
        .routes(routes!(app::agents))
        .routes(routes!(app::commands))
        .routes(routes!(app::skills))
        .routes(routes!(app::lsp))
        .routes(routes!(app::formatter))
        .routes(routes!(mcp::status, mcp::add))
        .routes(routes!(mcp::connect))
        .routes(routes!(mcp::disconnect))
        .routes(routes!(app::resources))
        .routes(routes!(app::capabilities))
        .routes(routes!(app::session_background))
        .routes(routes!(app::console))
        .routes(routes!(workspace::list, workspace::create))
        .routes(routes!(workspace::adapters))
        .routes(routes!(workspace::status))
        .routes(routes!(workspace::remove))
        .routes(routes!(workspace::sync_list))
        .routes(routes!(workspace::warp))
        .routes(routes!(sync::start))
        .routes(routes!(sync::replay))
        .routes(routes!(sync::steal))
        .routes(routes!(sync::history))
        .routes(routes!(control_plane::move_session))
        .routes(routes!(app::tool_ids))
        .routes(routes!(tools::list))
        .routes(routes!(control::log))
        .routes(routes!(control::questions))
        .routes(routes!(control::question_reply))
        .routes(routes!(control::question_reject))
        .routes(routes!(meta::git_init))
        .routes(routes!(lifecycle::instance_dispose))
        .routes(routes!(lifecycle::global_dispose))
        .routes(routes!(lifecycle::vcs_status))
        .routes(routes!(lifecycle::vcs_diff))
        .routes(routes!(lifecycle::vcs_diff_raw))
        .routes(routes!(worktree::vcs_apply))
        .routes(routes!(worktree::list, worktree::create, worktree::remove))
        .routes(routes!(worktree::reset))
        .routes(routes!(project::update))
        .routes(routes!(project::copy_create, project::copy_remove))
        .routes(routes!(project::copy_refresh))
        .routes(routes!(project::copy_generate_name))
        .routes(routes!(app::project_directories))
        .routes(routes!(api::health))
        .routes(routes!(api::fs_list))
        .routes(routes!(api::fs_read))
        .routes(routes!(api::session_list, api::session_create))
        .routes(routes!(api::session_active))
        .routes(routes!(api::session_get))
        .routes(routes!(api::switch_agent))
        .routes(routes!(api::switch_model))
        .routes(routes!(api::session_prompt))
        .routes(routes!(api::session_compact))
        .routes(routes!(api::session_wait))
        .routes(routes!(api::session_interrupt))
        .routes(routes!(api::session_context))
        .routes(routes!(api::session_messages))
        .routes(routes!(api::session_message))
        .routes(routes!(api::session_history))
        .routes(routes!(api::permission_requests))
        .routes(routes!(api::session_permission_list, api_permission::create))
        .routes(routes!(api::session_permission_get))
        .routes(routes!(api::session_permission_reply))
        .routes(routes!(api::question_requests))
        .routes(routes!(api::session_question_list))
        .routes(routes!(api::session_question_reply))
        .routes(routes!(api::session_question_reject))
        .routes(routes!(api::provider_get))
        .routes(routes!(api::pty_list, api::pty_create))
        .routes(routes!(api::pty_get, api::pty_update, api::pty_remove))
        .routes(routes!(api::pty_connect_token))
        .routes(routes!(pty_connect::connect_v2))
        .routes(routes!(v2::location))
        .routes(routes!(v2::agents))
        .routes(routes!(v2::providers))
        .routes(routes!(v2::models))
        .routes(routes!(event::subscribe_v2))
        .routes(routes!(api_session_event::session_events))
        .routes(routes!(api_revert::stage))
        .routes(routes!(api_revert::commit))
        .routes(routes!(api_revert::clear))
        .routes(routes!(permission_saved::list))
        .routes(routes!(permission_saved::remove))
        .routes(routes!(credential::integrations))
        .routes(routes!(credential::integration_get))
        .routes(routes!(credential::connect_key))
        .routes(routes!(credential::credential_update, credential::credential_remove))
        .routes(routes!(credential::auth_set, credential::auth_remove))
        .routes(routes!(v2::references))
        .routes(routes!(v2::commands))
        .routes(routes!(v2::skills))
        .routes(routes!(tui::append_prompt))
        .routes(routes!(tui::open_help))
        .routes(routes!(tui::open_sessions))
        .routes(routes!(tui::open_themes))
        .routes(routes!(tui::open_models))
        .routes(routes!(tui::submit_prompt))
        .routes(routes!(tui::clear_prompt))
        .routes(routes!(tui::execute_command))
        .routes(routes!(tui::show_toast))
        .routes(routes!(tui::select_session))
        .routes(routes!(tui::publish_event))
        .routes(routes!(tui::control_next))
        .routes(routes!(tui::control_response))
        .routes(routes!(session::list, session::create))
        .routes(routes!(session::status))
        .routes(routes!(session::experimental_list))
        .routes(routes!(session::get, session::update, session::delete))
        .routes(routes!(session::children))
        .routes(routes!(session::todo))
        .routes(routes!(session::diff))
        .routes(routes!(session::abort))
        .routes(routes!(session::fork))
        .routes(routes!(session::revert))
        .routes(routes!(session::unrevert))
        .routes(routes!(message::list))
        .routes(routes!(message::get, message::delete))
        .routes(routes!(message::part_delete, message::part_update))
        .routes(routes!(message::shell))
        .routes(routes!(prompt::message))
        .routes(routes!(prompt::prompt_async))
        .routes(routes!(prompt::prompt_alias))
        .routes(routes!(prompt::interrupt))
        .routes(routes!(prompt::command))
        .routes(routes!(prompt::summarize))
        .routes(routes!(prompt::init))
        .split_for_parts()
}

pub fn router(state: Arc<AppState>) -> Router {
    let (api, doc) = api();
    let doc = Arc::new(openapi::document(&doc));
    routes::not_served::add(api)
        .route(
            "/doc",
            get(move || {
                let doc = doc.clone();
                async move { axum::Json((*doc).clone()) }
            }),
        )
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "BadRequest", "method not allowed") })
        .layer(axum::middleware::from_fn(extract::refuse_control_in_directory))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_auth))
        .layer(cors::layer(&state.policy.cors))
        // Outermost, so a rebinding page's preflight is refused too.
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::check))
        .with_state(state)
}

/// Binds, prints the URL like `opencode serve` does, and serves until SIGINT or SIGTERM.
/// Without a password only a loopback address is served, unless
/// `insecure_no_auth`: anyone who reaches the port could run commands.
pub async fn serve(state: Arc<AppState>, host: &str, port: u16, insecure_no_auth: bool, timeouts: Timeouts) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind((host, port)).await.map_err(|e| anyhow::anyhow!("cannot listen on {host}:{port}: {e}"))?;
    let addr: SocketAddr = listener.local_addr()?;
    if state.credentials.is_none() && !addr.ip().is_loopback() {
        if !insecure_no_auth {
            anyhow::bail!(
                "refusing to listen on {} without a password: anyone who reaches the port could run commands. \
                 Set OPENCODE_SERVER_PASSWORD, keep a loopback --hostname, or pass --insecure-no-auth",
                addr.ip()
            );
        }
        eprintln!("warning: --insecure-no-auth: the server is unsecured on the non-loopback address {}", addr.ip());
    }
    let shutdown = shutdown_signal();
    let shown = if addr.is_ipv6() { format!("[{}]", addr.ip()) } else { addr.ip().to_string() };
    println!("burrow server listening on http://{shown}:{}", addr.port());
    let (bus, runs) = (state.runtime.bus.clone(), state.runtime.sessions.runs.clone());
    let app = router(state);
    // Stop running commands (so their requests finish) and end event streams
    // and WebSockets (which never finish by themselves); then the accept loop
    // lets in-flight requests drain for a bounded time.
    let shutdown = async move {
        shutdown.await;
        if tokio::time::timeout(ABORT_GRACE, runs.abort_all()).await.is_err() {
            tracing::warn!("running commands did not stop within {ABORT_GRACE:?}");
        }
        bus.close();
    };
    listen::serve(listener, app, timeouts, shutdown).await;
    Ok(())
}

/// How long shutdown waits for running commands to wind down (then
/// [`listen::SHUTDOWN_GRACE`] for connections): the server exits within 5 s.
const ABORT_GRACE: Duration = Duration::from_secs(2);

/// Waits for SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when it is first polled, so a signal that arrives right after
/// the URL is printed still shuts down cleanly (removing containers).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut int, mut term) = (signal(SignalKind::interrupt()).ok(), signal(SignalKind::terminate()).ok());
    async move {
        let wait = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! { _ = wait(int.take()) => {}, _ = wait(term.take()) => {} }
        tracing::info!("shutting down");
    }
}
