//! `/tui/*`: remote control of a running TUI. Each call publishes a `tui.*`
//! event on the bus; the TUI attached to the same directory acts on it.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::extract::State;
use axum::Json as JsonResponse;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio::sync::Notify;
use utoipa::ToSchema;

use super::DirectoryParams;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::server::extract::{Ctx, Json};
use crate::server::instance::Instance;
use crate::server::AppState;

/// How long a toast stays up unless the caller says otherwise (ms).
pub const TOAST_DURATION: u64 = 5000;

/// Legacy command names that `/tui/execute-command` translates to TUI command ids.
const LEGACY_COMMANDS: &[(&str, &str)] = &[
    ("session_new", "session.new"),
    ("session_share", "session.share"),
    ("session_interrupt", "session.interrupt"),
    ("session_compact", "session.compact"),
    ("messages_page_up", "session.page.up"),
    ("messages_page_down", "session.page.down"),
    ("messages_line_up", "session.line.up"),
    ("messages_line_down", "session.line.down"),
    ("messages_half_page_up", "session.half.page.up"),
    ("messages_half_page_down", "session.half.page.down"),
    ("messages_first", "session.first"),
    ("messages_last", "session.last"),
    ("agent_cycle", "agent.cycle"),
];

/// Requests waiting for a controlling client (`GET /tui/control/next`).
#[derive(Default)]
pub struct TuiControl {
    queue: std::sync::Mutex<VecDeque<Value>>,
    ready: Notify,
}

impl TuiControl {
    /// Queues `{path, body}` for the next `GET /tui/control/next`.
    pub fn push(&self, request: Value) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).push_back(request);
        self.ready.notify_one();
    }

    async fn next(&self) -> Value {
        loop {
            let notified = self.ready.notified();
            if let Some(v) = self.queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() {
                return v;
            }
            notified.await;
        }
    }
}

fn publish(st: &AppState, inst: &Instance, kind: &str, properties: Value) -> JsonResponse<bool> {
    st.runtime.bus.publish(Some(&inst.directory), Some(&inst.project.id), kind, properties);
    JsonResponse(true)
}

fn command(st: &AppState, inst: &Instance, command: &str) -> JsonResponse<bool> {
    publish(st, inst, "tui.command.execute", json!({ "command": command }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AppendPrompt {
    pub text: String,
}

#[utoipa::path(post, path = "/tui/append-prompt", tag = "tui", operation_id = "tui.appendPrompt", params(DirectoryParams),
    request_body = AppendPrompt, responses((status = 200, body = bool), (status = 400, body = ErrorBody)))]
pub async fn append_prompt(State(st): State<Arc<AppState>>, Ctx(inst): Ctx, Json(b): Json<AppendPrompt>) -> JsonResponse<bool> {
    publish(&st, &inst, "tui.prompt.append", json!({ "text": b.text }))
}

macro_rules! command_endpoint {
    ($name:ident, $path:literal, $op:literal, $command:literal, $what:literal) => {
        #[doc = $what]
        #[utoipa::path(post, path = $path, tag = "tui", operation_id = $op, params(DirectoryParams), responses((status = 200, body = bool)))]
        pub async fn $name(State(st): State<Arc<AppState>>, Ctx(inst): Ctx) -> JsonResponse<bool> {
            command(&st, &inst, $command)
        }
    };
}

command_endpoint!(open_help, "/tui/open-help", "tui.openHelp", "help.show", "Opens the help dialog.");
command_endpoint!(open_sessions, "/tui/open-sessions", "tui.openSessions", "session.list", "Opens the session list.");
// The reference sends `session.list` here; the theme dialog is `theme.switch`.
command_endpoint!(open_themes, "/tui/open-themes", "tui.openThemes", "theme.switch", "Opens the theme list.");
command_endpoint!(open_models, "/tui/open-models", "tui.openModels", "model.list", "Opens the model list.");
command_endpoint!(submit_prompt, "/tui/submit-prompt", "tui.submitPrompt", "prompt.submit", "Submits the prompt.");
command_endpoint!(clear_prompt, "/tui/clear-prompt", "tui.clearPrompt", "prompt.clear", "Clears the prompt.");

#[derive(Debug, Deserialize, ToSchema)]
pub struct ExecuteCommand {
    /// A TUI command id (`session.new`) or a legacy name (`session_new`).
    pub command: String,
}

#[utoipa::path(post, path = "/tui/execute-command", tag = "tui", operation_id = "tui.executeCommand", params(DirectoryParams),
    request_body = ExecuteCommand, responses((status = 200, body = bool), (status = 400, body = ErrorBody)))]
pub async fn execute_command(State(st): State<Arc<AppState>>, Ctx(inst): Ctx, Json(b): Json<ExecuteCommand>) -> JsonResponse<bool> {
    // Legacy names are translated; anything else goes through as a command id
    // (the reference drops those, so `session.new` did nothing there).
    let id = LEGACY_COMMANDS.iter().find(|(legacy, _)| *legacy == b.command).map(|(_, id)| *id).unwrap_or(&b.command);
    command(&st, &inst, id)
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ToastVariant {
    Info,
    Success,
    Warning,
    Error,
}

/// A toast: `message` and `variant` are required, `duration` defaults to five seconds.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ShowToast {
    /// A title, if any (a string: `null` is refused).
    #[serde(default, deserialize_with = "no_null")]
    #[schema(nullable = false)]
    pub title: Option<String>,
    pub message: String,
    pub variant: ToastVariant,
    /// Milliseconds, greater than 0.
    #[serde(default, deserialize_with = "crate::protocol::num::safe")]
    #[schema(exclusive_minimum = 0, maximum = 9007199254740991_u64)]
    pub duration: Option<u64>,
}

/// A field that may be absent but not `null`.
fn no_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// The toast as the `tui.toast.show` event carries it.
fn toast(t: ShowToast) -> ApiResult<Value> {
    let duration = match t.duration {
        None => TOAST_DURATION,
        Some(0) => return Err(ApiError::bad_request("duration must be a whole number of milliseconds greater than 0")),
        Some(d) => d,
    };
    let mut out = Map::new();
    if let Some(title) = t.title {
        out.insert("title".into(), json!(title));
    }
    out.insert("message".into(), json!(t.message));
    out.insert("variant".into(), json!(t.variant));
    out.insert("duration".into(), json!(duration));
    Ok(Value::Object(out))
}

#[utoipa::path(post, path = "/tui/show-toast", tag = "tui", operation_id = "tui.showToast", params(DirectoryParams),
    request_body = ShowToast, responses((status = 200, body = bool), (status = 400, body = ErrorBody)))]
pub async fn show_toast(State(st): State<Arc<AppState>>, Ctx(inst): Ctx, Json(b): Json<ShowToast>) -> ApiResult<JsonResponse<bool>> {
    Ok(publish(&st, &inst, "tui.toast.show", toast(b)?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SelectSession {
    #[serde(rename = "sessionID")]
    #[schema(pattern = "^ses")]
    pub session_id: String,
}

fn session_id(b: SelectSession) -> ApiResult<Value> {
    super::session::check_id(&b.session_id, "ses", "sessionID")?;
    Ok(json!({ "sessionID": b.session_id }))
}

#[utoipa::path(post, path = "/tui/select-session", tag = "tui", operation_id = "tui.selectSession", params(DirectoryParams),
    request_body = SelectSession, responses((status = 200, body = bool), (status = 400, body = ErrorBody)))]
pub async fn select_session(State(st): State<Arc<AppState>>, Ctx(inst): Ctx, Json(b): Json<SelectSession>) -> ApiResult<JsonResponse<bool>> {
    Ok(publish(&st, &inst, "tui.session.select", session_id(b)?))
}

/// An event for the TUI: its `type` says which `properties` it carries.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", content = "properties")]
pub enum PublishBody {
    #[serde(rename = "tui.prompt.append")]
    PromptAppend(AppendPrompt),
    #[serde(rename = "tui.command.execute")]
    CommandExecute(ExecuteCommand),
    #[serde(rename = "tui.toast.show")]
    ToastShow(ShowToast),
    #[serde(rename = "tui.session.select")]
    SessionSelect(SelectSession),
}

#[utoipa::path(post, path = "/tui/publish", tag = "tui", operation_id = "tui.publish", params(DirectoryParams),
    request_body = PublishBody, responses((status = 200, body = bool), (status = 400, body = ErrorBody)))]
pub async fn publish_event(State(st): State<Arc<AppState>>, Ctx(inst): Ctx, Json(b): Json<PublishBody>) -> ApiResult<JsonResponse<bool>> {
    let (kind, properties) = match b {
        PublishBody::PromptAppend(p) => ("tui.prompt.append", json!({ "text": p.text })),
        PublishBody::CommandExecute(c) => ("tui.command.execute", json!({ "command": c.command })),
        PublishBody::ToastShow(t) => ("tui.toast.show", toast(t)?),
        PublishBody::SessionSelect(s) => ("tui.session.select", session_id(s)?),
    };
    Ok(publish(&st, &inst, kind, properties))
}

#[utoipa::path(get, path = "/tui/control/next", tag = "tui", operation_id = "tui.control.next", params(DirectoryParams),
    responses((status = 200, description = "The next TUI request (waits until there is one)", body = Object)))]
pub async fn control_next(State(st): State<Arc<AppState>>, _ctx: Ctx) -> JsonResponse<Value> {
    JsonResponse(st.tui.next().await)
}

#[utoipa::path(post, path = "/tui/control/response", tag = "tui", operation_id = "tui.control.response", params(DirectoryParams),
    request_body = Object, responses((status = 200, body = bool), (status = 400, body = ErrorBody)))]
pub async fn control_response(_ctx: Ctx, Json(_answer): Json<Map<String, Value>>) -> JsonResponse<bool> {
    JsonResponse(true)
}
