//! What only a container can show, through the real server: files and search
//! inside it, freshness after changes made behind Burrow's back, the container
//! lifecycle (clean shutdown, orphans of a killed Burrow, a container that
//! dies mid-session and its recreation), and attach and mount modes.

use std::path::Path;

use crate::docker_support::*;

fn base_args<'a>(image: &'a str, fx: &'a Path) -> Vec<&'a str> {
    vec!["--image", image, "--copy", fx.to_str().unwrap(), "--network", "none"]
}

/// Files, search and index freshness, with or without the helper.
async fn files_and_search(helper: Option<&Path>) {
    let _turn = serial().await;
    let Some(image) = image() else { return };
    let fx = fixture();
    let name = unique("burrow-files");
    let srv = Server::start(Some(&name), &base_args(&image, fx.path()), helper);

    let (status, caps) = srv.get("/burrow/capabilities").await;
    assert_eq!(status, 200);
    assert_eq!((caps["env"].as_str(), caps["root"].as_str()), (Some("docker"), Some("/workspace")), "{caps}");

    let (status, listing) = srv.get("/file?path=src").await;
    assert_eq!(status, 200, "{listing}");
    let mut names: Vec<&str> = listing.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["lib.rs", "main.rs"]);
    let (status, content) = srv.get("/file/content?path=src/lib.rs").await;
    assert_eq!((status, content["content"].as_str()), (200, Some("pub fn helper() -> u32 {\n    42 // needle\n}\n")));

    // The copy in the container has the fixture's symlink, which leaves the
    // root there too: refused, as resolved inside the container.
    let (status, body) = srv.get("/file/content?path=etc-link/passwd").await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = srv.get("/file/content?path=nothing-here.txt").await;
    assert_eq!(status, 404);

    // A file made by a command inside the container, behind Burrow's back,
    // is readable through the API at once.
    sh(&name, "mkdir -p /workspace/made && echo 'made inside' > /workspace/made/inside.txt");
    let (status, content) = srv.get("/file/content?path=made/inside.txt").await;
    assert_eq!((status, content["content"].as_str()), (200, Some("made inside\n")));

    // Busybox has neither rg nor a grep with byte offsets: without the helper,
    // search streams the files out of the container and matches them here.
    let want = if helper.is_some() { "helper" } else { "stream" };
    let (_, caps) = srv.get("/burrow/capabilities").await;
    assert_eq!(caps["capabilities"]["search"], want, "{caps}");
    let (status, found) = srv.get("/find?pattern=needle").await;
    assert_eq!(status, 200, "{found}");
    let mut paths: Vec<&str> = found.as_array().unwrap().iter().map(|m| m["path"]["text"].as_str().unwrap()).collect();
    paths.sort();
    assert_eq!(paths, ["src/lib.rs", "src/main.rs"], "ignored target/ is not searched");
    assert!(srv.find_files("guide").await.contains(&"docs/guide.md".to_string()));
    // A file created by a command in the container, behind Burrow's back: the
    // helper's watcher reports it, so the very next query finds it; without the
    // helper, the periodic rescan (every 2 s) does.
    let fresh = helper.is_some();
    sh(&name, "echo new > /workspace/docs/brand-new-notes.md");
    assert!(index_shows(&srv, "docs/brand-new-notes.md", true, fresh).await);
    sh(&name, "rm /workspace/docs/brand-new-notes.md");
    assert!(index_shows(&srv, "docs/brand-new-notes.md", false, fresh).await);
}

/// Whether `/find/file` shows (`present`) or stops showing `path`: at once when
/// `now`, else within a few rescans.
async fn index_shows(srv: &Server, path: &str, present: bool, now: bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(if now { 0 } else { 30 });
    loop {
        if srv.find_files("brand-new").await.iter().any(|p| p == path) == present {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn files_and_search_with_the_helper() {
    if let Some(helper) = static_helper() {
        files_and_search(Some(&helper)).await;
    }
}

#[tokio::test]
async fn files_without_the_helper() {
    files_and_search(None).await;
}

#[tokio::test]
async fn sigterm_removes_the_container() {
    let _turn = serial().await;
    let Some(image) = image() else { return };
    let fx = fixture();
    let name = unique("burrow-term");
    let mut srv = Server::start(Some(&name), &base_args(&image, fx.path()), static_helper().as_deref());
    assert!(running(&name));
    // Labels say who owns it.
    let labels = docker_ok(&["inspect", "-f", "{{index .Config.Labels \"burrow.managed\"}} {{index .Config.Labels \"burrow.owner\"}}", &name]);
    assert!(labels.starts_with("1 ") && labels.contains(&format!("/{}/", srv.run.child.id())), "{labels}");
    let status = srv.terminate();
    assert!(status.success(), "clean exit: {status:?}");
    assert!(!exists(&name), "the container is gone after a clean shutdown");
}

#[tokio::test]
async fn keep_leaves_the_container_and_attach_serves_it() {
    let _turn = serial().await;
    let Some(image) = image() else { return };
    let fx = fixture();
    let name = unique("burrow-keep");
    let mut args = base_args(&image, fx.path());
    args.push("--keep");
    let mut first = Server::start(Some(&name), &args, None);
    assert!(first.terminate().success());
    assert!(running(&name), "--keep leaves the container running: {}", String::from_utf8_lossy(&docker(&["inspect", "-f", "{{json .State}}", &name]).stdout));

    // Attach to it: the files are still there; Burrow leaves it running at exit.
    let mut attached = attach(&name);
    let (status, content) = attached.get("/file/content?path=README.md").await;
    assert_eq!((status, content["content"].as_str()), (200, Some("# Fixture\n")));
    assert!(attached.terminate().success());
    assert!(running(&name), "an attached container is left running");
    docker_ok(&["rm", "-f", &name]);
}

/// `burrow serve --env docker --container NAME`; dropping it leaves the container.
fn attach(name: &str) -> Server {
    Server::start(None, &["--container", name], None)
}

#[tokio::test]
async fn an_orphan_of_a_killed_burrow_is_reaped_on_the_next_start() {
    let _turn = serial().await;
    let Some(image) = image() else { return };
    let fx = fixture();
    let orphan = unique("burrow-orphan");
    let mut killed = Server::start(Some(&orphan), &base_args(&image, fx.path()), None);
    killed.run.child.kill().unwrap(); // SIGKILL: no cleanup
    killed.run.child.wait().unwrap();
    assert!(exists(&orphan), "a killed Burrow leaves its container behind");
    // A container of a live Burrow is not touched.
    let alive = unique("burrow-alive");
    let _keeper = Server::start(Some(&alive), &base_args(&image, fx.path()), None);

    let next = unique("burrow-next");
    let _srv = Server::start(Some(&next), &base_args(&image, fx.path()), None);
    assert!(!exists(&orphan), "the next Burrow reaped the orphan");
    assert!(running(&alive), "the live Burrow's container stays");
}

#[tokio::test]
async fn a_stopped_container_is_a_clear_error_until_recreated() {
    let _turn = serial().await;
    let Some(image) = image() else { return };
    let fx = fixture();
    let name = unique("burrow-stop");
    let srv = Server::start(Some(&name), &base_args(&image, fx.path()), static_helper().as_deref());
    let (status, _) = srv.get("/file/content?path=README.md").await;
    assert_eq!(status, 200);

    docker_ok(&["kill", &name]);
    for path in ["/file/content?path=README.md", "/file?path=src", "/find/file?query=main", "/find?pattern=needle"] {
        let (status, body) = srv.get(path).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert_eq!(body["name"], "EnvironmentUnavailableError", "{body}");
        let message = body["data"]["message"].as_str().unwrap();
        assert!(message.contains(&name) && message.contains("POST /burrow/env/recreate"), "{message}");
    }

    let (status, body) = srv.post("/burrow/env/recreate").await;
    assert_eq!(status, 200, "{body}");
    let (status, content) = srv.get("/file/content?path=README.md").await;
    assert_eq!((status, content["content"].as_str()), (200, Some("# Fixture\n")), "--copy is uploaded again");
    assert!(srv.find_files("main").await.contains(&"src/main.rs".to_string()));
}

#[tokio::test]
async fn a_mounted_folder_is_shared_with_the_host_under_limits() {
    let _turn = serial().await;
    let Some(image) = image() else { return };
    let fx = fixture();
    let name = unique("burrow-mount");
    let mount = fx.path().to_str().unwrap();
    let args = ["--image", &image, "--mount", mount, "--network", "none", "--workdir", "/src", "--cpus", "1.5", "--memory", "256m"];
    let srv = Server::start(Some(&name), &args, static_helper().as_deref());
    let (_, caps) = srv.get("/burrow/capabilities").await;
    assert_eq!(caps["root"], "/src");
    std::fs::write(fx.path().join("from-host.txt"), "host\n").unwrap();
    let (status, content) = srv.get("/file/content?path=from-host.txt").await;
    assert_eq!((status, content["content"].as_str()), (200, Some("host\n")));
    sh(&name, "echo container > /src/from-container.txt");
    assert_eq!(std::fs::read_to_string(fx.path().join("from-container.txt")).unwrap(), "container\n");
    let limits = docker_ok(&["inspect", "-f", "{{.HostConfig.NetworkMode}} {{.HostConfig.NanoCpus}} {{.HostConfig.Memory}}", &name]);
    assert_eq!(limits, format!("none 1500000000 {}", 256 << 20));
}

#[tokio::test]
async fn a_missing_image_that_cannot_be_pulled_is_a_clear_error() {
    let _turn = serial().await;
    if image().is_none() {
        return;
    }
    let name = unique("burrow-nopull");
    let result = Server::try_start(Some(&name), &["--image", "burrow-no-such-image-anywhere:1"], None);
    let Err((code, stderr)) = result.map(|_| ()) else { panic!("serving an image that does not exist cannot work") };
    assert_ne!(code, Some(0));
    assert!(stderr.contains("cannot pull burrow-no-such-image-anywhere:1"), "{stderr}");
    assert!(!exists(&name));
}

/// Waits until `ps` in the container shows `needle` (`present`) or stops
/// showing it; fails after a long bound instead of hanging.
async fn until_ps(container: &str, needle: &str, present: bool, why: &str) {
    let seen = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while ps(container).contains(needle) != present {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(seen.is_ok(), "{why}:\n{}", ps(container));
}

/// `kill -9` of Burrow with a command running in a kept container, then a
/// new Burrow attached to it: no process of the old one is left.
async fn kill_9_leaves_no_command(helper: Option<&Path>) {
    let _turn = serial().await;
    let Some(image) = image() else { return };
    let fx = fixture();
    let name = unique("burrow-kill9");
    let mut args = base_args(&image, fx.path());
    args.push("--keep");
    let mut srv = Server::start(Some(&name), &args, helper);
    // Removed at the end whatever happens; the servers leave it alone.
    srv.name = None;
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            docker(&["rm", "-f", &self.0]);
        }
    }
    let _remove = Remove(name.clone());

    let session = srv.client.post(format!("{}/session", srv.url)).json(&serde_json::json!({})).send().await.unwrap();
    let session: serde_json::Value = session.json().await.unwrap();
    let id = session["id"].as_str().unwrap().to_string();
    let needle = format!("{}", 400_000 + fastrand::u32(..99_999));
    // A command with a child in the background: the whole group must go.
    let shell = srv
        .client
        .post(format!("{}/session/{id}/shell", srv.url))
        .json(&serde_json::json!({ "agent": "build", "command": format!("sleep {needle} & wait") }))
        .send();
    let running = tokio::spawn(shell);
    until_ps(&name, &format!("sleep {needle}"), true, "the command never started").await;

    srv.run.child.kill().unwrap(); // SIGKILL: no cleanup
    srv.run.child.wait().unwrap();
    let _ = running.await;
    let _next = Server::start(None, &["--container", &name], helper);
    until_ps(&name, &format!("sleep {needle}"), false, "a command of the killed Burrow still runs").await;
}

#[tokio::test]
async fn kill_9_leaves_no_command_with_the_helper() {
    let helper = static_helper();
    kill_9_leaves_no_command(helper.as_deref()).await;
}

#[tokio::test]
async fn kill_9_leaves_no_command_without_the_helper() {
    kill_9_leaves_no_command(None).await;
}

/// `/find`'s paths for `pattern`, sorted.
async fn found(srv: &Server, pattern: &str) -> Vec<String> {
    let (status, hits) = srv.get(&format!("/find?pattern={pattern}")).await;
    assert_eq!(status, 200, "{hits}");
    let mut paths: Vec<String> = hits.as_array().unwrap().iter().map(|m| m["path"]["text"].as_str().unwrap().to_string()).collect();
    paths.sort();
    paths
}

/// Polls until `check` holds: the helper's watcher reports a change made in
/// the container a moment after the command that made it returns.
async fn until_found(srv: &Server, pattern: &str, want: &[&str], why: &str) {
    let guard = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let got = found(srv, pattern).await;
        if got == want {
            return;
        }
        assert!(std::time::Instant::now() < guard, "{why}: {got:?}, not {want:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The helper keeps a trigram index in the container's cache folder; a change
/// made by a command inside the container is searchable through it, and a
/// removed or edited match is gone.
#[tokio::test]
async fn the_helpers_text_index_follows_changes_in_the_container() {
    let Some(helper) = static_helper() else { return };
    let _turn = serial().await;
    let Some(image) = image() else { return };
    let fx = fixture();
    let name = unique("burrow-text-index");
    let srv = Server::start(Some(&name), &base_args(&image, fx.path()), Some(&helper));
    let guard = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let (_, caps) = srv.get("/burrow/capabilities").await;
        if caps["text_index"]["state"] == "ready" && caps["text_index"]["rebuilding"] == false {
            assert!(caps["text_index"]["entries"].as_u64().unwrap() >= 4, "{caps}");
            break;
        }
        assert!(std::time::Instant::now() < guard, "the helper's index never got ready: {caps}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(sh(&name, "ls ~/.cache/burrow/text-index/").contains(".tri"), "the index lives in the container's cache folder");
    until_found(&srv, "needle", &["src/lib.rs", "src/main.rs"], "before any change").await;
    for (script, want) in [
        ("echo 'a needle, made inside' > /workspace/docs/new.md", &["docs/new.md", "src/lib.rs", "src/main.rs"][..]),
        ("mkdir -p /workspace/a/b && echo needle > /workspace/a/b/deep.txt", &["a/b/deep.txt", "docs/new.md", "src/lib.rs", "src/main.rs"]),
        ("mv /workspace/docs/new.md /workspace/docs/renamed.md", &["a/b/deep.txt", "docs/renamed.md", "src/lib.rs", "src/main.rs"]),
        ("rm -r /workspace/a && echo 'pub fn helper() {}' > /workspace/src/lib.rs", &["docs/renamed.md", "src/main.rs"]),
    ] {
        sh(&name, script);
        until_found(&srv, "needle", want, script).await;
    }
    let (_, caps) = srv.get("/burrow/capabilities").await;
    assert!(caps["text_index"]["changed"].as_u64().unwrap() > 0, "the changes are searched next to the index: {caps}");
    let (status, _) = srv.post("/burrow/refresh").await;
    assert_eq!(status, 200);
    until_found(&srv, "needle", &["docs/renamed.md", "src/main.rs"], "after a rebuild").await;
}
