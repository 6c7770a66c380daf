//! Git worktrees ("sandboxes" in OpenCode's words) made **in the
//! environment**: every step is a git command run through the environment's
//! exec, like [`crate::vcs`], so local, Docker and SSH workspaces behave the
//! same. Object storage runs nothing and has no worktrees.
//!
//! Where they live: OpenCode puts them in its data folder, outside the
//! repository; an environment can only reach what is under its root, so
//! Burrow keeps them in `.burrow-worktrees/` at the top of the main worktree
//! (or at the environment's root when the repository's top lies above it),
//! and adds that folder to the repository's `info/exclude`, so that the
//! main tree's status, diff and searches do not see them. The list is what
//! `git worktree list` says lies in that folder, so it survives a restart
//! without a record of its own. Each worktree has its own branch
//! `opencode/<name>`, as in OpenCode. Below the HTTP layer.

use std::time::Duration;

use serde::Serialize;

use crate::env::{Env, EnvError, ExecRequest, SharedEnv, WorkspacePath};
use crate::event::Bus;
use crate::vcs;

/// The folder, at the top of the main worktree, that holds the worktrees.
pub const FOLDER: &str = ".burrow-worktrees";
/// Every worktree's branch is this plus its name.
pub const BRANCH_PREFIX: &str = "opencode/";
/// How many names are tried before giving up, as in OpenCode.
const NAME_ATTEMPTS: usize = 26;
/// How long a start command may run, and how much of its output is kept for the log.
const START_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const START_OUTPUT: usize = 64 << 10;

/// OpenCode's `Worktree` shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Worktree {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Absolute, as the environment names it.
    pub directory: String,
}

/// Which of OpenCode's `WorktreeError`s a failure is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    NotGit,
    NameGeneration,
    Create,
    Remove,
    Reset,
    List,
    /// A project copy could not be made, removed or refreshed.
    Copy,
    /// A project copy holds changes: removing it needs `force`.
    CopyForceRequired,
}

impl Failure {
    /// The error's `name`, as OpenCode spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::NotGit => "WorktreeNotGitError",
            Self::NameGeneration => "WorktreeNameGenerationFailedError",
            Self::Create => "WorktreeCreateFailedError",
            Self::Remove => "WorktreeRemoveFailedError",
            Self::Reset => "WorktreeResetFailedError",
            Self::List => "WorktreeListFailedError",
            Self::Copy | Self::CopyForceRequired => "ProjectCopyError",
        }
    }
}

#[derive(Debug)]
pub enum WorktreeError {
    /// OpenCode's `WorktreeError`: a 400 with its name.
    Failed(Failure, String),
    /// The environment could not run the command at all.
    Env(EnvError),
}

impl From<EnvError> for WorktreeError {
    fn from(e: EnvError) -> Self {
        Self::Env(e)
    }
}

fn failed(kind: Failure, message: impl Into<String>) -> WorktreeError {
    WorktreeError::Failed(kind, message.into())
}

pub type WorktreeResult<T> = Result<T, WorktreeError>;

/// A repository and where its worktrees go.
pub struct Repo {
    /// The main worktree (the first `git worktree list` names), in the workspace.
    pub main: WorkspacePath,
    /// The main worktree as the environment names it (absolute).
    pub main_abs: String,
    /// The folder of the worktrees, in the workspace and absolute.
    pub folder: WorkspacePath,
    pub folder_abs: String,
    /// Every worktree git lists but the main one (absolute): OpenCode's project copies.
    pub others: Vec<String>,
}

/// One entry of `git worktree list --porcelain`.
#[derive(Debug, PartialEq, Eq)]
struct Listed {
    path: String,
    branch: Option<String>,
}

fn parse_list(text: &str) -> Vec<Listed> {
    let mut out: Vec<Listed> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(path) = line.strip_prefix("worktree ") {
            out.push(Listed { path: path.trim().to_string(), branch: None });
        } else if let (Some(branch), Some(last)) = (line.strip_prefix("branch "), out.last_mut()) {
            last.branch = Some(branch.trim().trim_start_matches("refs/heads/").to_string());
        }
    }
    out
}

/// OpenCode's slug of a requested name: lower case, runs of anything but
/// ASCII letters and digits as one `-`, none at either end.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// A short random name for a worktree nobody named.
fn random_name() -> String {
    let bytes: [u8; 3] = crate::id::random();
    format!("wt-{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

impl Repo {
    /// The repository `dir` belongs to; `NotGit` where there is none (or nothing runs).
    pub async fn find(env: &dyn Env, dir: &WorkspacePath) -> WorktreeResult<(Self, Vec<Worktree>)> {
        if !env.capabilities().exec {
            return Err(failed(Failure::NotGit, format!("the {} environment runs no git, so it has no worktrees", env.kind())));
        }
        let run = vcs::git_run(env, dir, &["worktree", "list", "--porcelain"], None).await?;
        if !run.ok {
            return Err(failed(Failure::NotGit, "Worktrees are only supported for git projects"));
        }
        let listed = parse_list(&run.stdout);
        let main_abs = listed.first().map(|l| l.path.clone()).ok_or_else(|| failed(Failure::List, "git worktree list named no worktree"))?;
        let root = env.root().trim_end_matches('/');
        let (main, folder) = match WorkspacePath::parse(env.root(), &main_abs) {
            Ok(main) => {
                let folder = main.join_checked(FOLDER)?;
                (main, folder)
            }
            // The repository's top lies above the environment's root: the root is inside it.
            Err(_) => (WorkspacePath::root(), WorkspacePath::root().join_checked(FOLDER)?),
        };
        let folder_abs = folder.absolute(root);
        let others = listed.iter().skip(1).map(|l| l.path.clone()).collect();
        let repo = Self { main, main_abs, folder, folder_abs, others };
        let worktrees = listed.into_iter().filter_map(|l| repo.ours(l)).collect();
        Ok((repo, worktrees))
    }

    /// The entry as a [`Worktree`] when it is one of ours (in the folder).
    fn ours(&self, l: Listed) -> Option<Worktree> {
        let name = l.path.strip_prefix(&self.folder_abs)?.strip_prefix('/')?;
        if name.is_empty() || name.contains('/') {
            return None;
        }
        Some(Worktree { name: name.to_string(), branch: l.branch, directory: l.path.clone() })
    }

    async fn git(&self, env: &dyn Env, cwd: &WorkspacePath, args: &[&str], kind: Failure, what: &str) -> WorktreeResult<vcs::GitRun> {
        let run = vcs::git_run(env, cwd, args, None).await?;
        if run.ok {
            Ok(run)
        } else {
            Err(failed(kind, run.error(what)))
        }
    }

    /// Keeps the folder out of the main tree's status and searches: a line
    /// in the repository's `info/exclude` (shared by all its worktrees),
    /// written once.
    async fn exclude_folder(&self, env: &dyn Env) -> WorktreeResult<()> {
        let Some(rel) = self.folder_abs.strip_prefix(&self.main_abs).and_then(|r| r.strip_prefix('/')) else { return Ok(()) };
        let pattern = format!("/{rel}/");
        let dir = self.git(env, &self.main, &["rev-parse", "--git-common-dir"], Failure::Create, "cannot find the repository's git folder").await?;
        let file = format!("{}/info/exclude", dir.stdout.trim());
        let quoted = |s: &str| shlex::try_quote(s).map(|q| q.into_owned()).map_err(|_| failed(Failure::Create, format!("{s:?} cannot be quoted")));
        let (p, f) = (quoted(&pattern)?, quoted(&file)?);
        let command = format!("mkdir -p \"$(dirname {f})\" && {{ grep -qxF {p} {f} 2>/dev/null || printf '%s\\n' {p} >> {f}; }}");
        let out = env.exec(ExecRequest::shell(command, self.main.clone())).await?.collect(START_OUTPUT, Some(Duration::from_secs(30))).await?;
        if out.status.is_some_and(|s| s.success()) {
            Ok(())
        } else {
            Err(failed(Failure::Create, format!("cannot add {pattern} to {file}: {}", String::from_utf8_lossy(&out.stderr).trim())))
        }
    }

    /// The first free name: `name` itself, then `name-<random>`; a random one
    /// when none was asked for. Free means no folder and no branch of that name.
    async fn free_name(&self, env: &dyn Env, name: &str) -> WorktreeResult<String> {
        for attempt in 0..NAME_ATTEMPTS {
            let candidate = match (name.is_empty(), attempt) {
                (true, _) => random_name(),
                (false, 0) => name.to_string(),
                (false, _) => format!("{name}-{}", random_name().trim_start_matches("wt-")),
            };
            let dir = self.folder.join_checked(&candidate)?;
            match env.stat(&dir).await {
                Ok(_) => continue,
                Err(EnvError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
            let branch = format!("refs/heads/{BRANCH_PREFIX}{candidate}");
            if vcs::git_run(env, &self.main, &["show-ref", "--verify", "--quiet", &branch], None).await?.ok {
                continue;
            }
            return Ok(candidate);
        }
        Err(failed(Failure::NameGeneration, "Failed to generate a unique worktree name"))
    }

    /// Makes a worktree on a new branch from HEAD, without its files yet:
    /// [`populate`] checks them out (OpenCode does that after answering).
    pub async fn create(&self, env: &dyn Env, name: Option<&str>) -> WorktreeResult<Worktree> {
        let name = self.free_name(env, &name.map(slug).unwrap_or_default()).await?;
        self.exclude_folder(env).await?;
        let directory = format!("{}/{name}", self.folder_abs);
        let branch = format!("{BRANCH_PREFIX}{name}");
        self.git(env, &self.main, &["worktree", "add", "--no-checkout", "-b", &branch, &directory], Failure::Create, "Failed to create git worktree").await?;
        Ok(Worktree { name, branch: Some(branch), directory })
    }

    /// The worktree of ours at `dir`, if there is one.
    fn find_ours<'a>(&self, worktrees: &'a [Worktree], dir: &WorkspacePath, root: &str) -> Option<&'a Worktree> {
        let abs = dir.absolute(root);
        worktrees.iter().find(|w| w.directory.trim_end_matches('/') == abs.trim_end_matches('/'))
    }

    /// Removes one of our worktrees (files and all) and deletes its branch.
    /// A directory that is not one of them is an error, never deleted.
    pub async fn remove(&self, env: &dyn Env, worktrees: &[Worktree], dir: &WorkspacePath) -> WorktreeResult<()> {
        let Some(w) = self.find_ours(worktrees, dir, env.root()) else {
            return Err(failed(Failure::Remove, format!("{} is not a worktree of this project", dir.absolute(env.root()))));
        };
        let run = vcs::git_run(env, &self.main, &["worktree", "remove", "--force", &w.directory], None).await?;
        if !run.ok {
            let again = vcs::git_run(env, &self.main, &["worktree", "list", "--porcelain"], None).await?;
            if !again.ok || parse_list(&again.stdout).iter().any(|l| l.path == w.directory) {
                return Err(failed(Failure::Remove, run.error("Failed to remove git worktree")));
            }
        }
        if let Some(branch) = &w.branch {
            self.git(env, &self.main, &["branch", "-D", branch], Failure::Remove, "Failed to delete worktree branch").await?;
        }
        Ok(())
    }

    /// Puts one of our worktrees back at the default branch: its commit, no
    /// changes, no untracked or ignored files. The main worktree is refused.
    pub async fn reset(&self, env: &dyn Env, worktrees: &[Worktree], dir: &WorkspacePath) -> WorktreeResult<WorkspacePath> {
        if dir.absolute(env.root()).trim_end_matches('/') == self.main_abs.trim_end_matches('/') {
            return Err(failed(Failure::Reset, "Cannot reset the primary workspace"));
        }
        let Some(w) = self.find_ours(worktrees, dir, env.root()) else { return Err(failed(Failure::Reset, "Worktree not found")) };
        let wdir = WorkspacePath::parse(env.root(), &w.directory)?;
        let remote = vcs::git(env, &self.main, &["symbolic-ref", "--short", "refs/remotes/origin/HEAD"]).await.is_some();
        let Some(default) = vcs::default_branch(env, &self.main).await else { return Err(failed(Failure::Reset, "Default branch not found")) };
        let target = if remote {
            self.git(env, &self.main, &["fetch", "origin", &default], Failure::Reset, &format!("Failed to fetch origin/{default}")).await?;
            format!("origin/{default}")
        } else {
            default
        };
        self.git(env, &wdir, &["reset", "--hard", &target], Failure::Reset, "Failed to reset worktree to target").await?;
        self.git(env, &wdir, &["clean", "-ffdx"], Failure::Reset, "Failed to clean worktree").await?;
        // Only with submodules: a minimal git (a small container image) may have no `git submodule` at all.
        if env.stat(&wdir.join_checked(".gitmodules")?).await.is_ok() {
            self.git(env, &wdir, &["submodule", "update", "--init", "--recursive", "--force"], Failure::Reset, "Failed to update submodules").await?;
        }
        let status = self.git(env, &wdir, &["-c", "core.fsmonitor=false", "status", "--porcelain=v1"], Failure::Reset, "Failed to read git status").await?;
        if !status.stdout.trim().is_empty() {
            return Err(failed(Failure::Reset, format!("Worktree reset left local changes:\n{}", status.stdout.trim())));
        }
        Ok(wdir)
    }
}

/// The only way Burrow makes a project copy (OpenCode's `git_worktree`
/// strategy): a worktree on a detached HEAD.
pub const COPY_STRATEGY: &str = "git_worktree";
/// How many `<name>-<n>` a copy tries when its name is taken, as in OpenCode.
const COPY_ATTEMPTS: usize = 10;

impl Repo {
    /// Makes a project copy in `parent` (made if missing), named `name` (a
    /// random one if none; `-2`, `-3`... when taken): a worktree of the main
    /// one's HEAD, detached. Answers its directory (absolute).
    pub async fn copy(&self, env: &dyn Env, parent: &WorkspacePath, name: Option<&str>) -> WorktreeResult<String> {
        env.mkdir_all(parent).await?;
        let base = name.map(str::trim).filter(|n| !n.is_empty()).map(str::to_string).unwrap_or_else(random_name);
        let mut chosen = None;
        for n in 1..=COPY_ATTEMPTS {
            let candidate = if n == 1 { base.clone() } else { format!("{base}-{n}") };
            let dir = parent.join_checked(&candidate)?;
            match env.stat(&dir).await {
                Ok(_) => continue,
                Err(EnvError::NotFound(_)) => {
                    chosen = Some(dir);
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let Some(dir) = chosen else {
            return Err(failed(Failure::Copy, format!("Project copy destination already exists: {}", parent.join_checked(&base)?.absolute(env.root()))));
        };
        let directory = dir.absolute(env.root());
        self.git(env, &self.main, &["worktree", "add", "--detach", &directory, "HEAD"], Failure::Copy, "Failed to create git worktree").await?;
        Ok(directory)
    }

    /// Removes a project copy: any worktree of the repository but the main
    /// one. One with changes needs `force` (the error says `forceRequired`).
    pub async fn remove_copy(&self, env: &dyn Env, dir: &WorkspacePath, force: bool) -> WorktreeResult<()> {
        let abs = dir.absolute(env.root());
        let Some(path) = self.others.iter().find(|p| p.trim_end_matches('/') == abs.trim_end_matches('/')) else {
            return Err(failed(Failure::Copy, format!("Invalid project copy directory: {abs}")));
        };
        let mut args = vec!["worktree", "remove"];
        if force {
            args.push("--force");
        }
        args.push(path);
        let run = vcs::git_run(env, &self.main, &args, None).await?;
        if run.ok {
            return Ok(());
        }
        let kind = if !force && run.stderr.contains("--force") { Failure::CopyForceRequired } else { Failure::Copy };
        Err(failed(kind, run.error("Failed to remove git worktree")))
    }

    /// Forgets the copies whose folders are gone (`git worktree prune`).
    pub async fn prune(&self, env: &dyn Env) -> WorktreeResult<()> {
        self.git(env, &self.main, &["worktree", "prune"], Failure::Copy, "Failed to prune git worktrees").await?;
        Ok(())
    }
}

/// A short name for a project copy from what the task is about: the first
/// words of `context`, slugged; a random one when that leaves nothing.
/// (OpenCode asks a model; a name from the words needs none.)
pub fn copy_name(context: Option<&str>) -> String {
    const WORDS: usize = 4;
    const MAX: usize = 32;
    let words: Vec<String> = context.unwrap_or("").split_whitespace().map(slug).filter(|w| !w.is_empty()).take(WORDS).collect();
    let mut name = String::new();
    for w in words {
        if !name.is_empty() && name.len() + 1 + w.len() > MAX {
            break;
        }
        if !name.is_empty() {
            name.push('-');
        }
        name.push_str(&w);
    }
    name.truncate(MAX);
    let name = name.trim_matches('-').to_string();
    if name.is_empty() {
        random_name()
    } else {
        name
    }
}

/// Checks out a new worktree's files, then says `worktree.ready` (or
/// `worktree.failed`) for its directory, then runs the start commands (the
/// project's, then the request's) in it. Run after the create answered, as
/// OpenCode does: a large checkout does not hold the request.
pub async fn populate(env: SharedEnv, bus: Bus, project: String, worktree: Worktree, start: Vec<String>) {
    let dir = match WorkspacePath::parse(env.root(), &worktree.directory) {
        Ok(d) => d,
        Err(e) => {
            bus.publish(Some(&worktree.directory), Some(&project), "worktree.failed", serde_json::json!({ "message": e.to_string() }));
            return;
        }
    };
    match vcs::git_run(&*env, &dir, &["reset", "--hard"], None).await {
        Ok(run) if run.ok => {}
        Ok(run) => {
            let message = run.error("Failed to populate worktree");
            tracing::warn!(directory = %worktree.directory, "worktree checkout failed: {message}");
            bus.publish(Some(&worktree.directory), Some(&project), "worktree.failed", serde_json::json!({ "message": message }));
            return;
        }
        Err(e) => {
            tracing::warn!(directory = %worktree.directory, "worktree checkout failed: {e}");
            bus.publish(Some(&worktree.directory), Some(&project), "worktree.failed", serde_json::json!({ "message": e.to_string() }));
            return;
        }
    }
    let mut ready = serde_json::json!({ "name": worktree.name });
    if let Some(branch) = &worktree.branch {
        ready["branch"] = branch.clone().into();
    }
    bus.publish(Some(&worktree.directory), Some(&project), "worktree.ready", ready);
    run_start(&*env, &dir, &start).await;
}

/// Runs each start command in `dir` in turn, stopping at the first that fails
/// (which is logged: OpenCode does not report it to the client either).
pub async fn run_start(env: &dyn Env, dir: &WorkspacePath, commands: &[String]) {
    for command in commands.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
        let result = async { env.exec(ExecRequest::shell(command, dir.clone())).await?.collect(START_OUTPUT, Some(START_TIMEOUT)).await }.await;
        match result {
            Ok(out) if out.status.is_some_and(|s| s.success()) => {}
            Ok(out) => {
                tracing::warn!(directory = %dir, command, "worktree start command failed: {}", String::from_utf8_lossy(&out.stderr).trim());
                return;
            }
            Err(e) => {
                tracing::warn!(directory = %dir, command, "worktree start command could not run: {e}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_like_opencode() {
        assert_eq!(slug("  My Feature: Login!  "), "my-feature-login");
        assert_eq!(slug("---"), "");
        assert_eq!(slug("a__b"), "a-b");
    }

    #[test]
    fn names_copies_from_the_first_words() {
        assert_eq!(copy_name(Some("Fix the login page, then deploy it")), "fix-the-login-page");
        assert!(copy_name(Some("  !!! ")).starts_with("wt-"));
        assert!(copy_name(None).starts_with("wt-"));
        assert!(copy_name(Some(&"abcdefghij ".repeat(10))).len() <= 32);
    }

    #[test]
    fn parses_the_porcelain_list() {
        let text = "worktree /w\nHEAD 1\nbranch refs/heads/main\n\nworktree /w/.burrow-worktrees/x\nHEAD 2\nbranch refs/heads/opencode/x\n\nworktree /d\nHEAD 3\ndetached\n";
        assert_eq!(
            parse_list(text),
            vec![
                Listed { path: "/w".into(), branch: Some("main".into()) },
                Listed { path: "/w/.burrow-worktrees/x".into(), branch: Some("opencode/x".into()) },
                Listed { path: "/d".into(), branch: None },
            ]
        );
    }
}
