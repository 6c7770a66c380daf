//! `Sessions`: the store and the runs together, and the rules OpenCode applies
//! when it creates, changes and deletes sessions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::db::Db;
use super::error::{StoreError, StoreResult};
use super::events::Scope;
use super::runs::Runs;
use super::store::Store;
use super::{datadir, output, slug};
use crate::event::Bus;
use crate::id::{self, Prefix};
use crate::instance::Instance;
use crate::protocol::message::{Message, ModelRef};
use crate::protocol::part::PartBody;
use crate::protocol::session::{PermissionRule, Session, SessionModel, SessionTime, Tokens};

/// The database file inside the data directory.
pub const DB_FILE: &str = "burrow.db";

/// The model a message names when neither the request, the session nor an
/// earlier message chose one (OpenCode's default with no provider configured).
pub fn default_model() -> ModelRef {
    ModelRef { provider_id: "opencode".into(), model_id: "big-pickle".into(), variant: None }
}

/// What `POST /session` may set.
#[derive(Clone, Debug, Default)]
pub struct NewSession {
    /// The id the client chose (`ses...`); a new one when absent.
    pub id: Option<String>,
    pub parent_id: Option<String>,
    pub title: Option<String>,
    pub agent: Option<String>,
    pub model: Option<SessionModel>,
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    pub permission: Option<Vec<PermissionRule>>,
    pub workspace_id: Option<String>,
}

pub struct Sessions {
    pub store: Store,
    pub runs: Arc<Runs>,
    data_dir: PathBuf,
}

impl Sessions {
    /// Opens the database under `data_dir` and settles what a previous server
    /// left unfinished.
    pub async fn open(data_dir: &Path, bus: Bus) -> StoreResult<Arc<Self>> {
        let path = data_dir.join(DB_FILE);
        let dir = data_dir.to_path_buf();
        let db = tokio::task::spawn_blocking(move || {
            datadir::secure(&dir).map_err(|e| StoreError::Db(format!("cannot make the data folder {} private: {e}", dir.display())))?;
            Db::open(&path)
        })
        .await
        .map_err(|e| StoreError::Db(format!("cannot open the session store: {e}")))??;
        let store = Store::new(db, bus.clone());
        let (repaired, queued) = store.settle_interrupted().await?;
        if repaired > 0 {
            tracing::info!(parts = repaired, "marked tool calls cut short by the last shutdown as failed");
        }
        if queued > 0 {
            tracing::info!(prompts = queued, "answered prompts still queued at the last shutdown with an error");
        }
        datadir::prune_in_background(&data_dir.join(output::SPOOL_DIR), None);
        Ok(Arc::new(Self { store, runs: Runs::new(bus), data_dir: data_dir.to_path_buf() }))
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Creates a session in the request's directory.
    pub async fn create(&self, inst: &Instance, input: NewSession) -> StoreResult<Session> {
        let now = crate::now_ms();
        let title = input.title.unwrap_or_else(|| {
            let prefix = if input.parent_id.is_some() { "Child session - " } else { "New session - " };
            format!("{prefix}{}", iso_time(now))
        });
        let session = Session {
            id: input.id.unwrap_or_else(|| id::descending(Prefix::Session)),
            slug: slug::create(),
            project_id: inst.project.id.clone(),
            workspace_id: input.workspace_id,
            directory: inst.directory.clone(),
            path: Some(relative(&inst.project.worktree, &inst.directory)),
            parent_id: input.parent_id,
            summary: None,
            cost: 0.0,
            tokens: Tokens::default(),
            share: None,
            title,
            agent: input.agent,
            model: input.model,
            version: crate::OPENCODE_VERSION.to_string(),
            metadata: input.metadata,
            time: SessionTime { created: now, updated: now, compacting: None, archived: None },
            permission: input.permission,
            revert: None,
        };
        self.store.create_session(&Scope::of(inst), session).await
    }

    /// A new session with the messages of session `id` that come before
    /// `before` (all of them without it), as OpenCode's `fork`: the title gets
    /// "(fork #N)", the copies get new ids (answers point at the copied user
    /// messages), and nothing else carries over (no parent, agent, model or
    /// permission). Each copy is published like any new message.
    pub async fn fork(&self, inst: &Instance, id: &str, before: Option<&str>) -> StoreResult<Session> {
        let original = self.store.session(id).await?;
        let messages = self.store.messages(id, None, None).await?.messages;
        let input = NewSession { title: Some(fork_title(&original.title)), workspace_id: original.workspace_id, ..Default::default() };
        let session = self.create(inst, input).await?;
        let scope = Scope::of(inst);
        let mut ids: HashMap<String, String> = HashMap::new();
        for m in messages {
            if before.is_some_and(|b| m.info.id() >= b) {
                break;
            }
            let new_id = id::ascending(Prefix::Message);
            ids.insert(m.info.id().to_string(), new_id.clone());
            let mut info = m.info;
            match &mut info {
                Message::User(u) => (u.id, u.session_id) = (new_id.clone(), session.id.clone()),
                Message::Assistant(a) => {
                    (a.id, a.session_id) = (new_id.clone(), session.id.clone());
                    if let Some(parent) = ids.get(&a.parent_id) {
                        a.parent_id = parent.clone();
                    }
                }
            }
            self.store.put_message(&scope, info).await?;
            for mut part in m.parts {
                (part.id, part.session_id, part.message_id) = (id::ascending(Prefix::Part), session.id.clone(), new_id.clone());
                if let PartBody::Compaction(c) = &mut part.body {
                    c.tail_start_id = c.tail_start_id.as_ref().and_then(|t| ids.get(t).cloned());
                }
                self.store.put_part(&scope, part).await?;
            }
        }
        Ok(session)
    }

    /// Stops whatever runs in the session and its children, then deletes them.
    pub async fn delete(&self, scope: &Scope, id: &str) -> StoreResult<Vec<Session>> {
        for session_id in self.store.tree(id).await? {
            if self.runs.is_busy(&session_id) {
                self.runs.abort(scope, &session_id).await;
            }
        }
        self.store.delete_session(scope, id).await
    }

    /// The model a new message in this session uses when the request names none:
    /// the session's, else the last user message's, else the default.
    pub async fn model_for(&self, session: &Session) -> StoreResult<ModelRef> {
        if let Some(m) = &session.model {
            let variant = m.variant.clone().filter(|v| v != "default");
            return Ok(ModelRef { provider_id: m.provider_id.clone(), model_id: m.id.clone(), variant });
        }
        Ok(self.store.last_user_model(&session.id).await?.unwrap_or_else(default_model))
    }
}

/// OpenCode's title of a fork: "T (fork #1)", then "T (fork #2)" for a fork of that.
fn fork_title(title: &str) -> String {
    let numbered = title.strip_suffix(')').and_then(|t| t.rsplit_once(" (fork #")).and_then(|(base, n)| {
        let digits = !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
        Some((base, n.parse::<u64>().ok().filter(|_| digits)?))
    });
    match numbered {
        Some((base, n)) if !base.is_empty() && n < u64::MAX => format!("{base} (fork #{})", n + 1),
        _ => format!("{title} (fork #1)"),
    }
}

/// `directory` relative to `worktree`, `/`-separated ("" when equal).
/// Moves a session to `inst`'s folder (and path below its worktree), as a
/// warp to another workspace does. The project stays, as OpenCode keeps it:
/// its TUI lists the sessions of its project at the new folder's path, and
/// draws an empty screen for an open session missing from that list.
pub fn place_in(session: &mut Session, inst: &Instance) {
    session.directory = inst.directory.clone();
    session.path = Some(relative(&inst.project.worktree, &inst.directory));
}

pub fn relative(worktree: &str, directory: &str) -> String {
    let root = worktree.trim_end_matches('/');
    match directory.strip_prefix(root) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.trim_start_matches('/').to_string(),
        _ => directory.trim_start_matches('/').to_string(),
    }
}

/// Milliseconds since the epoch as JavaScript's `toISOString()` prints them.
pub fn iso_time(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_time_matches_javascript() {
        // From the reference captures: "New session - 2026-11-21T05:37:39.145Z".
        assert_eq!(iso_time(1795239459145), "2026-11-21T05:37:39.145Z");
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn fork_titles_count_up() {
        assert_eq!(fork_title("Fix the bug"), "Fix the bug (fork #1)");
        assert_eq!(fork_title("Fix the bug (fork #1)"), "Fix the bug (fork #2)");
        assert_eq!(fork_title("Fix the bug (fork #12)"), "Fix the bug (fork #13)");
        assert_eq!(fork_title("(fork #1)"), "(fork #1) (fork #1)");
        assert_eq!(fork_title("Fix (fork #x)"), "Fix (fork #x) (fork #1)");
        assert_eq!(fork_title("Fix (fork #+1)"), "Fix (fork #+1) (fork #1)");
    }

    #[test]
    fn paths_relative_to_the_worktree() {
        assert_eq!(relative("/tmp/ocproj", "/tmp/ocproj"), "");
        assert_eq!(relative("/tmp/ocproj", "/tmp/ocproj/src"), "src");
        assert_eq!(relative("/", "/tmp/gone_dir"), "tmp/gone_dir");
        assert_eq!(relative("/tmp/oc", "/tmp/ocproj"), "tmp/ocproj");
    }
}
