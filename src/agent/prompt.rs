//! What the model is told besides the conversation: the agent's system
//! prompt, where it works, and the project's own instructions (`AGENTS.md`,
//! else `CLAUDE.md`), read through the environment because the project lives
//! there; plus the short title a session gets from its first message.

use futures::StreamExt;

use super::provider::{ChatMessage, ChatRequest, Provider, StreamEvent};
use crate::env::{Env, WorkspacePath};

/// The base prompt of the build agent when the agent config gives none.
pub const BUILD_PROMPT: &str =
    "You are an interactive coding agent. You help the user with software engineering tasks in the project described below, using the tools available to you.

- Use the tools to look at the code before changing it: read, glob and grep to find things, edit and write to change files, bash to run commands.
- Paths you pass to tools are absolute paths inside the working directory, or relative to it.
- Keep answers short and direct. Do what was asked, nothing more; do not add files or features the user did not ask for.
- After changing code, run the project's checks when you know them.
- When you are done, say briefly what you changed.";

/// The instructions of the hidden title agent.
pub const TITLE_PROMPT: &str = "You are a title generator. You output ONLY a thread title, nothing else.

Generate a brief title (at most 50 characters) that says what the user's message is about, in the user's language. One line, no quotes, no trailing punctuation, no explanations. Keep technical terms, numbers and file names as written.";

/// Files whose content becomes part of the system prompt, first found wins per folder.
const INSTRUCTION_FILES: [&str; 2] = ["AGENTS.md", "CLAUDE.md"];
const MAX_INSTRUCTION_BYTES: u64 = 256 * 1024;

/// Where the agent works, as OpenCode's `<env>` block tells it.
pub fn environment(directory: &str, is_git: bool, kind: &str) -> String {
    format!(
        "Here is some useful information about the environment you are running in:\n<env>\n  Working directory: {directory}\n  Is directory a git repo: {}\n  Platform: linux\n  Workspace: {kind}\n</env>",
        if is_git { "yes" } else { "no" }
    )
}

/// The project's instruction files from the workspace root down to `dir`
/// (one per folder: `AGENTS.md`, else `CLAUDE.md`), each headed by its path.
pub async fn instructions(env: &dyn Env, dir: &WorkspacePath) -> Vec<String> {
    let mut out = Vec::new();
    for folder in dir.ancestors().chain(std::iter::once(dir.clone())) {
        for name in INSTRUCTION_FILES {
            let path = folder.join(name);
            if let Ok(data) = env.read(&path, MAX_INSTRUCTION_BYTES).await {
                out.push(format!("Instructions from: {}\n{}", path.absolute(env.root()), String::from_utf8_lossy(&data)));
                break;
            }
        }
    }
    out
}

/// The system messages of a turn: the agent's prompt, the environment, the instructions.
pub async fn system(env: &dyn Env, dir: &WorkspacePath, agent_prompt: Option<&str>, is_git: bool) -> Vec<String> {
    let mut out = vec![agent_prompt.unwrap_or(BUILD_PROMPT).to_string(), environment(&dir.absolute(env.root()), is_git, env.kind())];
    out.extend(instructions(env, dir).await);
    out
}

/// Cleans what a model answered for a title: no reasoning tags, first
/// non-empty line, no quotes, at most 100 characters.
pub fn clean_title(raw: &str) -> Option<String> {
    let mut text = raw.to_string();
    while let (Some(a), Some(b)) = (text.find("<think>"), text.find("</think>")) {
        if b < a {
            break;
        }
        text.replace_range(a..b + "</think>".len(), "");
    }
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let line = line.trim_matches(|c| c == '"' || c == '\'' || c == '`').trim();
    let title: String = line.chars().take(100).collect();
    (!title.is_empty()).then_some(title)
}

/// Asks the (small) model for a session title; `None` when it fails or says nothing.
pub async fn title(provider: &dyn Provider, model: &str, first_message: &str) -> Option<String> {
    let req = ChatRequest {
        model: model.to_string(),
        system: vec![TITLE_PROMPT.to_string()],
        messages: vec![ChatMessage::User { text: format!("Generate a title for this conversation:\n{first_message}") }],
        max_tokens: Some(100),
        ..Default::default()
    };
    let mut stream = provider.stream(&req).await.ok()?;
    let mut text = String::new();
    while let Some(ev) = stream.next().await {
        match ev.ok()? {
            StreamEvent::TextDelta(d) => text.push_str(&d),
            StreamEvent::Finish { .. } => break,
            _ => {}
        }
    }
    clean_title(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::local::LocalEnv;

    #[test]
    fn titles_are_cleaned() {
        assert_eq!(clean_title("<think>hmm\nok</think>\n\n\"Fix the parser\"\nmore").as_deref(), Some("Fix the parser"));
        assert_eq!(clean_title("  \n").as_deref(), None);
        assert_eq!(clean_title(&"x".repeat(300)).map(|t| t.len()), Some(100));
    }

    #[tokio::test]
    async fn instructions_come_from_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("AGENTS.md"), "use tabs").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/CLAUDE.md"), "be brief").unwrap();
        let env = LocalEnv::new(dir.path()).unwrap();
        let sub = WorkspacePath::from_relative("sub").unwrap();
        let sys = system(&env, &sub, None, false).await;
        assert_eq!(sys.len(), 4);
        assert!(sys[1].contains(&format!("Working directory: {}/sub", env.root())), "{}", sys[1]);
        assert_eq!(sys[2], format!("Instructions from: {}/AGENTS.md\nuse tabs", env.root()));
        assert_eq!(sys[3], format!("Instructions from: {}/sub/CLAUDE.md\nbe brief", env.root()));
    }
}
