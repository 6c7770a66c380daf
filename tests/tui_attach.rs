//! End to end with the real OpenCode TUI: `opencode attach <url>` runs in a
//! pseudo-terminal against a Docker-backed Burrow (container networking off)
//! whose model is the scripted OpenAI-compatible provider, configured by
//! opencode.json content. The test types a prompt as a user would; the
//! model's `write` and `edit` change a file inside the container, read back
//! with `docker exec`, and the TUI shows the answer. Then `/compact` in the
//! TUI has the model summarise the session (`POST /session/{id}/summarize`).
//! A second prompt typed while the first turn runs shows "QUEUED" and runs
//! after it; `/undo` and `/redo` restore and bring back files in the container.
//!
//! With `OPENCODE_EXPERIMENTAL_WORKSPACES`, the TUI's workspace commands:
//! `/workspaces` lists the server's workspaces, `/warp` picks one for the next
//! session, and that session's tools run in the picked workspace; `/warp`
//! inside an open session moves it into a Docker workspace, and its next
//! turn's tools run in the container.
//!
//! The TUI binary comes from `BURROW_OPENCODE_BIN` (tests/tui/install.sh
//! installs it and prints its path; tests/run.sh sets the variable), else from
//! tests/tui/node_modules. Without it, or without Docker, the test says why
//! and passes; in CI (`CI=true`) it fails.

// For the image check and `docker exec`.
mod docker_support;
mod support;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, Child, CommandBuilder, PtySize};
use serde_json::{json, Value};
use support::agent::{part, AgentServer};
use support::llm::{ScriptedLlm, Turn};
use support::{Fixture, Server, TestEnv};

const ROWS: u16 = 40;
const COLS: u16 = 120;
/// A bound on waiting for the TUI (start-up, a turn): a hang fails the test.
const PATIENCE: Duration = Duration::from_secs(90);

/// The TUI binary, or `None` (with the reason) outside CI; in CI, a failure.
fn opencode() -> Option<PathBuf> {
    let given = std::env::var_os("BURROW_OPENCODE_BIN").map(PathBuf::from);
    let installed = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tui/node_modules"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin/opencode"))
        .find(|p| package_of(p).starts_with("opencode-linux") && p.exists());
    if let Some(bin) = given.filter(|p| p.exists()).or(installed) {
        return Some(bin);
    }
    let problem = "no OpenCode TUI: set BURROW_OPENCODE_BIN or run tests/tui/install.sh";
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{problem}");
    eprintln!("skipping: {problem}");
    None
}

/// The package folder a binary sits in (`.../opencode-linux-x64/bin/opencode`).
fn package_of(p: &std::path::Path) -> String {
    p.parent().and_then(|b| b.parent()).and_then(|d| d.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The TUI in a pseudo-terminal, its output fed to a terminal emulator so
/// the test reads the screen a user would see.
struct Tui {
    child: Box<dyn Child + Send + Sync>,
    keys: Box<dyn Write + Send>,
    screen: Arc<Mutex<vt100::Parser>>,
}

impl Tui {
    fn attach(bin: &PathBuf, url: &str, cwd: &std::path::Path, home: &std::path::Path) -> Self {
        Self::attach_with(bin, url, cwd, home, &[])
    }

    /// [`Tui::attach`] with more environment variables for the TUI.
    fn attach_with(bin: &PathBuf, url: &str, cwd: &std::path::Path, home: &std::path::Path, vars: &[(&str, &str)]) -> Self {
        let pty = native_pty_system().openpty(PtySize { rows: ROWS, cols: COLS, pixel_width: 0, pixel_height: 0 }).expect("a pty");
        let mut cmd = CommandBuilder::new(bin);
        cmd.args(["attach", url]);
        cmd.cwd(cwd);
        cmd.env_clear();
        cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
        cmd.env("HOME", home);
        cmd.env("TERM", "xterm-256color");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = pty.slave.spawn_command(cmd).expect("opencode attach starts");
        drop(pty.slave);
        let mut output = pty.master.try_clone_reader().expect("pty reader");
        let answers = Arc::new(Mutex::new(pty.master.take_writer().expect("pty writer")));
        let size = |n: u16| std::num::NonZeroU16::new(n).unwrap();
        let screen = Arc::new(Mutex::new(vt100::Parser::new(size(ROWS), size(COLS), 0)));
        let (feed, replies) = (screen.clone(), answers.clone());
        // Keeps the master open for the child's life.
        let master = pty.master;
        std::thread::spawn(move || {
            let _master = master;
            let mut buf = [0u8; 65536];
            while let Ok(n) = output.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let chunk = &buf[..n];
                let mut screen = feed.lock().unwrap();
                screen.process(chunk);
                // Answers the queries a terminal answers: the cursor position, then the device attributes.
                let mut reply = Vec::new();
                if contains(chunk, b"\x1b[6n") {
                    let (row, col) = screen.screen().cursor_position();
                    reply.extend(format!("\x1b[{};{}R", row + 1, col + 1).into_bytes());
                }
                if contains(chunk, b"\x1b[c") {
                    reply.extend(b"\x1b[?62;22c");
                }
                if !reply.is_empty() {
                    let _ = replies.lock().unwrap().write_all(&reply);
                }
            }
        });
        let keys = Box::new(SharedWriter(answers));
        Self { child, keys, screen }
    }

    fn text(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// Waits until the screen shows every one of `needles`.
    fn wait_for(&mut self, needles: &[&str]) {
        self.wait_until(&format!("showing {needles:?}"), |text| needles.iter().all(|n| text.contains(n)));
    }

    /// Waits until the screen satisfies `ok`; `what` names the state for the failure message.
    fn wait_until(&mut self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let text = self.text();
            if ok(&text) {
                return text;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the TUI exited ({status:?}) before {what}; its screen:\n{text}");
            }
            assert!(start.elapsed() < PATIENCE, "the TUI never got to {what}; its screen:\n{text}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the screen no longer shows `needle` (a dialog closed).
    fn wait_without(&mut self, needle: &str) {
        self.wait_until(&format!("no longer showing {needle:?}"), |text| !text.contains(needle));
    }

    /// The background colour where `needle` first shows on the screen.
    fn background_of(&self, needle: &str) -> Option<vt100::Color> {
        let parser = self.screen.lock().unwrap();
        let screen = parser.screen();
        let (row, col) = screen.rows(0, COLS).enumerate().find_map(|(r, line)| line.find(needle).map(|at| (r, line[..at].chars().count())))?;
        screen.cell(row as u16, col as u16).map(|c| c.bgcolor())
    }

    /// Waits until the row showing `needle` is the highlighted one of a list:
    /// drawn on another background than both rows in `others`, of which at
    /// most one is highlighted at any time.
    fn wait_highlighted(&mut self, needle: &str, others: [&str; 2]) {
        let start = Instant::now();
        loop {
            let bg = self.background_of(needle);
            if bg.is_some() && others.iter().all(|o| self.background_of(o).is_some_and(|other| Some(other) != bg)) {
                return;
            }
            assert!(start.elapsed() < PATIENCE, "{needle:?} is never highlighted:\n{}", self.text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn escape(&mut self) {
        self.keys.write_all(b"\x1b").unwrap();
    }

    /// Types like a user: one key at a time.
    fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            let mut b = [0u8; 4];
            self.keys.write_all(c.encode_utf8(&mut b).as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(15));
        }
    }

    fn enter(&mut self) {
        self.keys.write_all(b"\r").unwrap();
    }

    /// Ctrl+U: deletes the prompt box's line up to the cursor (after `/undo`
    /// the TUI puts the undone prompt back there).
    fn clear_line(&mut self) {
        self.keys.write_all(b"\x15").unwrap();
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct SharedWriter(Arc<Mutex<Box<dyn Write + Send>>>);

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap().flush()
    }
}

/// A Burrow serving a Docker workspace to a scripted model that plays
/// `turns`, and a folder and home for the TUI, all kept alive together.
struct InContainer {
    _llm: ScriptedLlm,
    a: AgentServer,
    container: String,
    _scratch: tempfile::TempDir,
    cwd: PathBuf,
    home: PathBuf,
}

async fn in_a_container(turns: Vec<Turn>) -> InContainer {
    let llm = ScriptedLlm::openai(turns).await;
    let a = AgentServer::start(TestEnv::from_name("docker").unwrap(), &llm.url, json!({})).await;
    let at = a.ws.args.iter().position(|x| x == "--name").unwrap();
    let container = a.ws.args[at + 1].clone();
    let scratch = tempfile::tempdir().unwrap();
    let (cwd, home) = (scratch.path().join("cwd"), scratch.path().join("home"));
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    InContainer { _llm: llm, a, container, _scratch: scratch, cwd, home }
}

/// A Burrow that serves workspaces (`--allow-workspaces`, local folders
/// under `roots/`), over the standard fixture, with the scripted model, and
/// the TUI's own folders: what the workspace tests share.
struct WithWorkspaces {
    _llm: ScriptedLlm,
    fx: Fixture,
    ws: support::env::Workspace,
    srv: Server,
    _data: tempfile::TempDir,
    _scratch: tempfile::TempDir,
    cwd: PathBuf,
    home: PathBuf,
    /// `roots/<folder>`, made and holding `marker.txt` with the given text.
    folder: PathBuf,
}

async fn with_workspaces(turns: Vec<Turn>, folder: &str, marker: &str) -> WithWorkspaces {
    use support::agent::config;
    use support::llm::unreachable_url;
    let llm = ScriptedLlm::openai(turns).await;
    let fx = Fixture::standard();
    let mut ws = TestEnv::from_name("local").unwrap().place(&fx).await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let (cwd, home, roots) = (scratch.path().join("cwd"), scratch.path().join("home"), scratch.path().join("roots"));
    let folder = roots.join(folder);
    for dir in [&cwd, &home, &folder] {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(folder.join("marker.txt"), marker).unwrap();
    ws.args.extend(["--allow-workspaces", "--workspace-root", &roots.display().to_string(), "--workspace-idle", "0"].map(String::from));
    let data = tempfile::tempdir().unwrap();
    let cfg = config(&llm.url, &unreachable_url().await).to_string();
    let srv = Server::start_with(&ws, &[("OPENCODE_CONFIG_CONTENT", cfg.as_str()), ("BURROW_DATA_DIR", data.path().to_str().unwrap())]).await;
    WithWorkspaces { _llm: llm, fx, ws, srv, _data: data, _scratch: scratch, cwd, home, folder }
}

impl WithWorkspaces {
    /// `POST /experimental/workspace` with `body`: the new workspace's id and name.
    async fn create(&self, body: Value) -> (String, String) {
        let created = self.srv.send(self.srv.request(reqwest::Method::POST, "/experimental/workspace").json(&body)).await;
        assert_eq!(created.status, 200, "{}", created.text);
        let created = created.json();
        (created["id"].as_str().unwrap().to_string(), created["name"].as_str().unwrap().to_string())
    }

    /// How many rows the `/warp` list has above the workspaces: the adapters
    /// ("New workspace") and "None".
    async fn rows_above_workspaces(&self) -> usize {
        let (status, adapters) = self.srv.get("/experimental/workspace/adapter").await;
        assert_eq!(status, 200, "{adapters}");
        adapters.as_array().unwrap().len() + 1
    }
}

impl Tui {
    /// Types `/warp` and picks the workspace shown as `shown`, `below` rows
    /// down (the list has no filter), once that row is the highlighted one.
    fn warp_to(&mut self, shown: &str, below: usize) {
        self.type_text("/warp");
        self.wait_for(&["/warp", "Change the workspace"]);
        self.enter();
        self.wait_for(&["Choose workspace", "None", shown]);
        for _ in 0..below {
            self.keys.write_all(b"\x1b[B").unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
        self.wait_highlighted(shown, ["Local folder", "None"]);
        self.enter();
        self.wait_without("Choose workspace");
    }
}

/// Removes a container when dropped, whether the test passed or not.
struct RemovedAtTheEnd(String);

impl Drop for RemovedAtTheEnd {
    fn drop(&mut self) {
        let _ = docker_support::docker(&["rm", "-f", &self.0]);
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prompt_typed_in_opencode_attach_edits_a_file_in_a_container() {
    let Some(bin) = opencode() else { return };
    if docker_support::image().is_none() {
        return;
    }
    let t = in_a_container(vec![
        Turn::tool("call_w", "write", json!({"filePath": "agent/tui.txt", "content": "typed in the TUI\n"})),
        Turn::tool("call_e", "edit", json!({"filePath": "agent/tui.txt", "oldString": "typed in", "newString": "edited through"})),
        Turn::text("All done: agent/tui.txt is edited."),
        Turn::text("Summary: agent/tui.txt was written, then edited."),
    ])
    .await;
    let (a, container) = (&t.a, t.container.clone());
    let (cwd, home) = (t.cwd.clone(), t.home.clone());

    let url = a.srv.url.clone();
    let prompt = "please write and then edit agent/tui.txt";
    let screen = tokio::task::spawn_blocking(move || {
        let mut tui = Tui::attach(&bin, &url, &cwd, &home);
        // Ready once the prompt box shows the model the config chose.
        tui.wait_for(&["Ask anything", "fake-model"]);
        tui.type_text(prompt);
        tui.wait_for(&[prompt]);
        tui.enter();
        tui.wait_for(&["All done: agent/tui.txt is edited."]);
        let screen = tui.text();
        tui.type_text("/compact");
        // Every key is in (the whole word shows) and the menu offers the command.
        tui.wait_for(&["/compact", "Compact session"]);
        tui.enter();
        tui.wait_for(&["Summary: agent/tui.txt was written, then edited."]);
        screen
    })
    .await
    .unwrap();
    assert!(screen.contains("agent/tui.txt"), "{screen}");

    assert_eq!(docker_support::sh(&container, "cat /workspace/agent/tui.txt"), "edited through the TUI");
    let (_, sessions) = a.srv.get("/session").await;
    let id = sessions.as_array().unwrap()[0]["id"].as_str().unwrap().to_string();
    let list = a.messages(&id).await;
    assert_eq!(part(&list[0], "text")["text"], prompt, "the server got what was typed");
    for (i, tool) in [(1, "write"), (2, "edit")] {
        let state = &part(&list[i], "tool")["state"];
        assert_eq!((part(&list[i], "tool")["tool"].as_str(), state["status"].as_str()), (Some(tool), Some("completed")), "{state}");
    }
    assert_eq!(list[3]["info"]["finish"], "stop");
    // `/compact`: a compaction request and its summary.
    assert_eq!(part(&list[4], "compaction")["auto"], false);
    let summary = &list[5]["info"];
    assert_eq!((summary["summary"].as_bool(), summary["agent"].as_str()), (Some(true), Some("compaction")), "{summary}");
}

/// OpenCode 1.18.33's TUI shows workspaces only with
/// `OPENCODE_EXPERIMENTAL_WORKSPACES` (or `OPENCODE_EXPERIMENTAL`) set: the
/// `/workspaces` command ("Manage workspaces": `experimental.workspace.list`
/// and `.status`, a workspace's folder, delete) and `/warp` ("Change the
/// workspace for the session": `experimental.workspace.syncList`,
/// `.adapter.list`, then the adapters, "None" and the `connected`
/// workspaces). Picked on the home screen, the workspace goes into the next
/// `session.create` (`?workspace=`), and the session's turns run there.
#[tokio::test(flavor = "multi_thread")]
async fn the_tui_lists_a_second_workspace_and_a_session_picked_there_writes_its_files() {
    let Some(bin) = opencode() else { return };
    let turns = vec![
        Turn::tool("call_w", "write", json!({"filePath": "agent/warped.txt", "content": "written in the workspace\n"})),
        Turn::text("Wrote agent/warped.txt in the workspace."),
    ];
    // A name the TUI's filter picks out of the adapters' names and descriptions.
    let w = with_workspaces(turns, "warpzone", "the second workspace\n").await;
    let (fx, ws, srv, other) = (&w.fx, &w.ws, &w.srv, w.folder.clone());
    let (cwd, home) = (w.cwd.clone(), w.home.clone());
    let (id, name) = w.create(json!({ "type": "local", "extra": { "dir": other } })).await;
    assert!(name.contains("warpzone"), "a local workspace is named by its folder: {name}");

    // The /warp list: the adapters ("New workspace"), "None", then the workspace.
    let below = w.rows_above_workspaces().await;
    let url = srv.url.clone();
    let prompt = "please write agent/warped.txt";
    let shown = name.clone();
    tokio::task::spawn_blocking(move || {
        let mut tui = Tui::attach_with(&bin, &url, &cwd, &home, &[("OPENCODE_EXPERIMENTAL_WORKSPACES", "true")]);
        tui.wait_for(&["Ask anything", "fake-model"]);
        // `/workspaces`: the list shows the second workspace by name.
        tui.type_text("/workspaces");
        tui.wait_for(&["/workspaces", "Manage workspaces"]);
        tui.enter();
        tui.wait_for(&["Workspaces", &shown]);
        tui.escape();
        tui.wait_without(&shown);
        // `/warp` on the home screen: pick it for the next session.
        tui.warp_to(&shown, below);
        tui.type_text(prompt);
        tui.wait_for(&[prompt]);
        tui.enter();
        tui.wait_for(&["Wrote agent/warped.txt in the workspace."]);
    })
    .await
    .unwrap();

    // The tool wrote in the picked workspace's folder, not in the server's own.
    assert_eq!(std::fs::read_to_string(other.join("agent/warped.txt")).unwrap(), "written in the workspace\n");
    assert!(!fx.path().join("agent/warped.txt").exists() && !std::path::Path::new(&ws.abs("agent/warped.txt")).exists(), "nothing in the server's own folder");
    let (status, sessions) = srv.get_q("/session", &[("workspace", &id)]).await;
    assert_eq!(status, 200, "{sessions}");
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["workspaceID"], id.as_str(), "the TUI made the session in the workspace");
    let list = {
        let sid = sessions[0]["id"].as_str().unwrap();
        let (status, list) = srv.get(&format!("/session/{sid}/message")).await;
        assert_eq!(status, 200, "{list}");
        list.as_array().unwrap().clone()
    };
    assert_eq!(part(&list[0], "text")["text"], prompt, "the server got what was typed");
    let tool = part(&list[1], "tool");
    assert_eq!((tool["tool"].as_str(), tool["state"]["status"].as_str()), (Some("write"), Some("completed")), "{tool}");
}

/// `/warp` inside an open session, as OpenCode 1.18.33's TUI runs it: it
/// asks whether to move the uncommitted changes too (`vcs.status` of the
/// session's workspace), calls `experimental.workspace.warp`, makes the
/// picked workspace its current one and loads everything again through it
/// (`?workspace=`: config, providers, agents, and the session list of the
/// workspace's folder, where the session must now be filed or the TUI draws
/// an empty screen), then sends a synthetic `noReply` prompt naming the new
/// folder. A prompt is refused ("Workspace Unavailable") unless the
/// session's workspace is `connected`, which a Burrow workspace stays while
/// its container starts. The screen keeps the session, and its next turn's
/// tools run in the picked Docker workspace's container.
#[tokio::test(flavor = "multi_thread")]
async fn warp_inside_a_session_moves_its_next_turn_into_a_docker_workspace() {
    let Some(bin) = opencode() else { return };
    let Some(image) = docker_support::image() else { return };
    let turns = vec![
        Turn::tool("call_h", "write", json!({"filePath": "agent/home.txt", "content": "written at home\n"})),
        Turn::text("Wrote agent/home.txt at home."),
        Turn::tool("call_b", "write", json!({"filePath": "agent/boxed.txt", "content": "written in the container\n"})),
        Turn::text("Wrote agent/boxed.txt in the box."),
    ];
    let w = with_workspaces(turns, "boxed", "copied into the container\n").await;
    let (ws, srv) = (&w.ws, &w.srv);
    let (cwd, home) = (w.cwd.clone(), w.home.clone());
    let (id, name) = w.create(json!({ "type": "docker", "extra": { "image": image, "copy": w.folder, "network": "none" } })).await;
    let container = format!("burrow-{}", id.to_ascii_lowercase());
    // A workspace's container outlives its server by design: a failing run must not leave it behind.
    let _cleanup = RemovedAtTheEnd(container.clone());

    // Inside a session the list has the adapters, "None", then the workspace.
    let below = w.rows_above_workspaces().await;
    let url = srv.url.clone();
    let (first, second) = ("please write agent/home.txt", "now write agent/boxed.txt");
    let shown = name.clone();
    let screen = tokio::task::spawn_blocking(move || {
        let mut tui = Tui::attach_with(&bin, &url, &cwd, &home, &[("OPENCODE_EXPERIMENTAL_WORKSPACES", "true")]);
        tui.wait_for(&["Ask anything", "fake-model"]);
        tui.type_text(first);
        tui.wait_for(&[first]);
        tui.enter();
        tui.wait_for(&["Wrote agent/home.txt at home."]);
        tui.warp_to(&shown, below);
        // The fixture's uncommitted changes: the TUI asks whether to move
        // them too (`copyChanges`); "no", the left button, as Burrow does not.
        tui.wait_for(&["File Changes Found", "no    yes"]);
        let highlight = tui.background_of("yes");
        tui.keys.write_all(b"\x1b[D").unwrap();
        let start = Instant::now();
        while !(tui.background_of("no    yes") == highlight && tui.background_of("yes") != highlight) {
            assert!(start.elapsed() < PATIENCE, "\"no\" is never highlighted:\n{}", tui.text());
            std::thread::sleep(Duration::from_millis(100));
        }
        tui.enter();
        tui.wait_without("File Changes Found");
        // Warped once the TUI has loaded the workspace: its footer names the
        // container's folder. The session stays on the screen.
        tui.wait_for(&["/workspace", first, "Wrote agent/home.txt at home."]);
        tui.type_text(second);
        tui.wait_for(&[second]);
        tui.enter();
        tui.wait_for(&["Wrote agent/boxed.txt in the box."]);
        tui.text()
    })
    .await
    .unwrap();
    assert!(screen.contains(first) && !screen.contains("Failed to warp"), "{screen}");

    let (status, sessions) = srv.get_q("/session", &[("workspace", &id)]).await;
    assert_eq!(status, 200, "{sessions}");
    let sessions = sessions.as_array().unwrap();
    assert_eq!((sessions.len(), sessions[0]["workspaceID"].as_str()), (1, Some(id.as_str())), "the session moved: {sessions:?}");
    assert_eq!(sessions[0]["directory"], "/workspace", "filed under the container's folder, as one made there");
    let (status, list) = srv.get(&format!("/session/{}/message", sessions[0]["id"].as_str().unwrap())).await;
    assert_eq!(status, 200, "{list}");
    let tools: Vec<&Value> = list.as_array().unwrap().iter().flat_map(|m| m["parts"].as_array().unwrap()).filter(|p| p["type"] == "tool").collect();
    assert_eq!(tools.len(), 2, "{list}");
    assert_eq!(tools[1]["state"]["status"], "completed", "the second write: {}", tools[1]);
    // The first turn wrote at home, the second in the container only.
    assert_eq!(std::fs::read_to_string(ws.abs("agent/home.txt")).unwrap(), "written at home\n");
    assert_eq!(docker_support::sh(&container, "cat /workspace/agent/boxed.txt"), "written in the container", "{}", tools[1]);
    assert_eq!(docker_support::sh(&container, "cat /workspace/marker.txt"), "copied into the container");
    assert!(!std::path::Path::new(&ws.abs("agent/boxed.txt")).exists(), "nothing of the second turn at home");
    let reply = srv.send(srv.request(reqwest::Method::DELETE, &format!("/experimental/workspace/{id}"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(!docker_support::exists(&container), "deleting the workspace removes its container");
}

/// `/undo` and `/redo` typed in the TUI, as OpenCode 1.18.33 runs them: `/undo`
/// calls `session.revert` with the last user message's id (aborting first if
/// the session is busy) and puts that prompt back in the input box; the TUI
/// then shows "1 message reverted" with the reverted files and hides the
/// turn. `/redo`, with no later user message, calls `session.unrevert` and the
/// turn shows again. Both only show once the server publishes the session's
/// new `revert` state, which it does after the files are restored, so the
/// `docker exec` checks after each screen need no retry.
#[tokio::test(flavor = "multi_thread")]
async fn undo_and_redo_typed_in_opencode_attach_restore_files_in_a_container() {
    let Some(bin) = opencode() else { return };
    if docker_support::image().is_none() {
        return;
    }
    let t = in_a_container(vec![
        Turn::tool("call_e", "edit", json!({"filePath": "README.md", "oldString": "hello from the readme", "newString": "edited in the container"})),
        Turn::tool("call_w", "write", json!({"filePath": "agent/undo.txt", "content": "made by the model\n"})),
        Turn::text("Edited README.md and wrote agent/undo.txt."),
    ])
    .await;
    let (a, container) = (&t.a, t.container.clone());
    let (cwd, home) = (t.cwd.clone(), t.home.clone());
    let readme = "cat /workspace/README.md";
    let created = "cat /workspace/agent/undo.txt 2>/dev/null || echo absent";
    let original = support::fixture::README.trim_end().to_string();
    let edited = original.replace("hello from the readme", "edited in the container");

    let url = a.srv.url.clone();
    let prompt = "please edit README.md and write agent/undo.txt";
    let answer = "Edited README.md and wrote agent/undo.txt.";
    let (c, (orig, edit)) = (container.clone(), (original.clone(), edited.clone()));
    let (undone, redone) = tokio::task::spawn_blocking(move || {
        let mut tui = Tui::attach(&bin, &url, &cwd, &home);
        tui.wait_for(&["Ask anything", "fake-model"]);
        tui.type_text(prompt);
        tui.wait_for(&[prompt]);
        tui.enter();
        tui.wait_for(&[answer]);
        assert_eq!((docker_support::sh(&c, readme), docker_support::sh(&c, created)), (edit.clone(), "made by the model".to_string()));

        tui.type_text("/undo");
        tui.wait_for(&["/undo", "Undo previous message"]);
        tui.enter();
        // The banner, the turn hidden, and the undone prompt back in the input box.
        let undone = tui.wait_until("the revert banner", |t| t.contains("1 message reverted") && t.contains("/redo to restore") && !t.contains(answer));
        assert_eq!((docker_support::sh(&c, readme), docker_support::sh(&c, created)), (orig, "absent".to_string()), "{undone}");
        assert!(undone.contains(prompt), "the prompt is back in the input box:\n{undone}");

        tui.clear_line();
        tui.wait_until("an empty input box", |t| !t.contains(prompt));
        tui.type_text("/redo");
        tui.wait_for(&["/redo", "Redo"]);
        tui.enter();
        let redone = tui.wait_until("the turn shown again", |t| t.contains(answer) && !t.contains("message reverted"));
        assert_eq!((docker_support::sh(&c, readme), docker_support::sh(&c, created)), (edit, "made by the model".to_string()), "{redone}");
        (undone, redone)
    })
    .await
    .unwrap();
    // Under the banner, the files the undo changed, read from the revert's
    // diff (the prompt names them too, so the counts tell the list apart).
    assert!(undone.contains("README.md +1 -1") && undone.contains("agent/undo.txt -1"), "{undone}");
    assert!(redone.contains(prompt) && redone.contains("Edit README.md"), "the turn and its tools show again:\n{redone}");

    let (_, sessions) = a.srv.get("/session").await;
    let session = &sessions.as_array().unwrap()[0];
    assert!(session.get("revert").is_none_or(Value::is_null), "redo clears the revert state: {session}");
    let list = a.messages(session["id"].as_str().unwrap()).await;
    assert_eq!(part(&list[0], "text")["text"], prompt, "the undone turn is kept after redo");
    assert_eq!(list.last().unwrap()["info"]["finish"], "stop");
}

/// A prompt typed while the session works, as OpenCode 1.18.33's TUI shows
/// it: the TUI sends it at once, the server stores it behind the running
/// turn, and the TUI marks a user message that comes after the unfinished
/// assistant message " QUEUED " (its session view compares the message's
/// index with the pending one's). The scripted model holds its first answer
/// open until the test has seen the second prompt queued on screen, so the
/// check never races the first turn's end; once released, both turns run,
/// in order, and the queued mark goes.
#[tokio::test(flavor = "multi_thread")]
async fn a_prompt_typed_while_the_first_runs_is_queued_in_opencode_attach_and_both_run() {
    let Some(bin) = opencode() else { return };
    if docker_support::image().is_none() {
        return;
    }
    let (open, gate) = tokio::sync::watch::channel(false);
    let (first_answer, second_answer) = ("The first answer, held open by the model.", "The second answer, after the first.");
    let t = in_a_container(vec![Turn::held(first_answer, gate), Turn::text(second_answer)]).await;
    let a = &t.a;
    let (cwd, home) = (t.cwd.clone(), t.home.clone());

    let url = a.srv.url.clone();
    let (first, second) = ("please answer slowly", "and then this one");
    let (queued, done) = tokio::task::spawn_blocking(move || {
        let mut tui = Tui::attach(&bin, &url, &cwd, &home);
        tui.wait_for(&["Ask anything", "fake-model"]);
        tui.type_text(first);
        tui.wait_for(&[first]);
        tui.enter();
        // The first turn runs: its text streamed, its end held by the model.
        tui.wait_for(&[first_answer]);
        tui.type_text(second);
        tui.wait_for(&[second]);
        tui.enter();
        let queued = tui.wait_until("the second prompt queued", |t| t.contains(" QUEUED ") && t.contains(second));
        open.send_replace(true);
        let done = tui.wait_until("both answers, nothing queued", |t| t.contains(first_answer) && t.contains(second_answer) && !t.contains(" QUEUED "));
        (queued, done)
    })
    .await
    .unwrap();
    assert!(!queued.contains(second_answer), "the second turn waited for the first:\n{queued}");
    assert!(done.contains(first) && done.contains(second), "{done}");

    let (_, sessions) = a.srv.get("/session").await;
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 1, "both prompts went to one session: {sessions:?}");
    let list = a.messages(sessions[0]["id"].as_str().unwrap()).await;
    let users: Vec<&Value> = list.iter().filter(|m| m["info"]["role"] == "user").collect();
    assert_eq!(users.iter().map(|u| part(u, "text")["text"].as_str().unwrap()).collect::<Vec<_>>(), [first, second], "{list:#?}");
    // Each prompt answered once, in order, and both turns finished.
    let mut answered = Vec::new();
    for (user, reply) in users.iter().zip([first_answer, second_answer]) {
        let answers: Vec<&Value> = list.iter().filter(|m| m["info"]["parentID"] == user["info"]["id"]).collect();
        assert_eq!(answers.len(), 1, "one answer to {}: {list:#?}", user["info"]["id"]);
        assert_eq!((part(answers[0], "text")["text"].as_str(), answers[0]["info"]["finish"].as_str()), (Some(reply), Some("stop")), "{}", answers[0]);
        answered.push(list.iter().position(|m| m["info"]["id"] == answers[0]["info"]["id"]).unwrap());
    }
    assert!(answered[0] < answered[1], "the first prompt's answer comes first: {list:#?}");
    let (_, status) = a.srv.get("/session/status").await;
    assert_eq!(status, json!({}), "idle once the queue is empty");
}
