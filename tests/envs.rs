//! Named environment definitions (`envs/*.toml`) through the real binary:
//! where `--env NAME` finds a definition (the project, the user's config
//! folder, the built-in ones), `--env-file`, flags laid over a definition,
//! broken definitions refused with file, line and field, `burrow envs`, and a
//! Docker definition that a server really opens.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use support::{Fixture, Server, TestEnv, Workspace};

/// A bound on a hang of a command expected to exit at once, not a performance assertion.
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// A project folder, a user config folder and a home, all temporary.
struct Places {
    tmp: tempfile::TempDir,
}

impl Places {
    fn new() -> Self {
        let tmp = tempfile::Builder::new().prefix("burrow-envs-").tempdir().unwrap();
        for d in ["project/envs", "home", "xdg"] {
            std::fs::create_dir_all(tmp.path().join(d)).unwrap();
        }
        Self { tmp }
    }

    fn path(&self, rel: &str) -> PathBuf {
        let p = self.tmp.path().join(rel);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::canonicalize(p).unwrap()
    }

    fn project(&self) -> PathBuf {
        self.path("project")
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.tmp.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A local definition serving `dir`.
    fn local_def(&self, rel: &str, dir: &str) -> PathBuf {
        self.write(rel, &format!("# served by the test\nenv = \"local\"\ndir = {dir:?}\n"))
    }

    /// A definition serving `dir` as object storage (`fs://`): unlike a local
    /// one, `--dir` does not override where it points.
    fn fs_def(&self, rel: &str, dir: &Path) -> PathBuf {
        self.write(rel, &format!("# served by the test\nenv = \"fs://{}\"\n", dir.display()))
    }
}

/// A local workspace (any fixture) whose `burrow serve` arguments are replaced by `args`.
async fn workspace(fx: &Fixture, args: &[&str]) -> Workspace {
    let mut ws = TestEnv::from_name("local").unwrap().place(fx).await.unwrap();
    ws.args = args.iter().map(|a| a.to_string()).collect();
    ws
}

/// The root the server serves, from `/burrow/capabilities`.
async fn served_root(srv: &Server) -> (String, String) {
    let (status, caps) = srv.get("/burrow/capabilities").await;
    assert_eq!(status, 200, "{caps}");
    (caps["env"].as_str().unwrap().to_string(), caps["root"].as_str().unwrap().to_string())
}

fn shown(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// Runs the binary to its exit, with `HOME`, no XDG folders and no S3 region or endpoint unless `vars` set them.
async fn burrow(args: &[&str], home: &Path, vars: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_burrow"));
    cmd.args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        // Without a region or an endpoint, an S3 definition fails at once, never on the network.
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_ENDPOINT_URL")
        .env("BURROW_DATA_DIR", home.join("data"))
        .envs(vars.iter().copied())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(EXIT_TIMEOUT, cmd.output()).await.expect("burrow did not exit").expect("burrow runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn env_name_is_found_in_the_project_then_the_user_folder_then_built_in() {
    let p = Places::new();
    let fx = Fixture::standard();
    let project = p.project();
    let xdg = p.path("xdg");
    let (from_project, from_user) = (p.path("served/project"), p.path("served/user"));
    p.fs_def("project/envs/python.toml", &from_project);
    p.fs_def("xdg/burrow/envs/python.toml", &from_user);
    let xdg_var = [("XDG_CONFIG_HOME", xdg.to_str().unwrap())];
    let fs = |dir: &Path| ("object".to_string(), format!("fs://{}", dir.display()));

    // The project's definition wins.
    let ws = workspace(&fx, &["--env", "python", "--dir", &shown(&project)]).await;
    let srv = Server::start_with(&ws, &xdg_var).await;
    assert_eq!(served_root(&srv).await, fs(&from_project));
    drop(srv);

    // Without it, the user's ($XDG_CONFIG_HOME/burrow/envs).
    std::fs::remove_file(project.join("envs/python.toml")).unwrap();
    let srv = Server::start_with(&ws, &xdg_var).await;
    assert_eq!(served_root(&srv).await, fs(&from_user));
    drop(srv);

    // Without XDG_CONFIG_HOME, the user folder is ~/.config/burrow/envs.
    let home = p.path("home");
    let from_home = p.path("served/home");
    p.fs_def("home/.config/burrow/envs/python.toml", &from_home);
    let srv = Server::start_with(&ws, &[("HOME", home.to_str().unwrap())]).await;
    assert_eq!(served_root(&srv).await, fs(&from_home));
    drop(srv);

    // With neither, the built-in definition. s3-example points at a bucket
    // that does not exist: the server says which definition it read, then
    // fails to open the bucket, without creating anything.
    let (ok, _, err) = burrow(&["serve", "--port", "0", "--env", "s3-example", "--dir", &shown(&project)], &p.path("empty-home"), &[]).await;
    assert!(!ok);
    assert!(err.contains("environment: s3-example from built-in (s3://my-bucket/project)"), "{err}");
    assert!(err.contains("cannot open s3://my-bucket/project"), "{err}");

    // An unknown name says where it looked and what exists.
    let (ok, _, err) = burrow(&["serve", "--port", "0", "--env", "nosuch", "--dir", &shown(&project)], &p.path("empty-home"), &[]).await;
    assert!(!ok);
    assert!(err.contains("no definition nosuch.toml") && err.contains("python"), "{err}");
}

#[tokio::test]
async fn env_file_is_read_and_flags_override_it() {
    let p = Places::new();
    let fx = Fixture::standard();
    let (in_file, in_flag) = (p.path("served/file"), p.path("served/flag"));
    let file = p.local_def("defs/mine.toml", &shown(&in_file));

    let ws = workspace(&fx, &["--env-file", &shown(&file)]).await;
    let srv = Server::start(&ws).await;
    assert_eq!(served_root(&srv).await, ("local".into(), shown(&in_file)));
    drop(srv);

    let ws = workspace(&fx, &["--env-file", &shown(&file), "--dir", &shown(&in_flag)]).await;
    let srv = Server::start(&ws).await;
    assert_eq!(served_root(&srv).await, ("local".into(), shown(&in_flag)));
    drop(srv);

    // Today's kinds still work without any definition.
    let ws = workspace(&fx, &["--env", "local", "--dir", &shown(&in_flag)]).await;
    let srv = Server::start(&ws).await;
    assert_eq!(served_root(&srv).await, ("local".into(), shown(&in_flag)));
}

#[tokio::test]
async fn a_broken_definition_is_refused_with_file_line_and_field() {
    let p = Places::new();
    let home = p.path("home");
    let cases = [
        ("unknown.toml", "env = \"docker\"\nimage = \"python:3.13\"\nimagee = \"x\"\n", ":3:1: field `imagee`: unknown field `imagee`"),
        (
            "wrong-type.toml",
            "env = \"docker\"\n\n# a comment\nimage = \"python:3.13\"\nkeep = \"yes\"\n",
            ":5:8: field `keep`: invalid type: string \"yes\", expected a boolean",
        ),
        ("no-image.toml", "# nothing to run\n\nenv = \"docker\"\nworkdir = \"/w\"\n", ":3: field `image`: a docker environment needs image"),
        ("stray.toml", "env = \"local\"\nhost = \"h\"\n", ":2: field `host`: not an option of env = \"local\""),
        ("bad-size.toml", "env = \"docker\"\nimage = \"i\"\nmemory = \"lots\"\n", ":3:10: field `memory`: \"lots\" is not a size"),
    ];
    for (name, text, want) in cases {
        let file = p.write(&format!("defs/{name}"), text);
        let (ok, _, err) = burrow(&["serve", "--port", "0", "--env-file", &shown(&file)], &home, &[]).await;
        assert!(!ok, "{name} was accepted");
        let expected = format!("{}{want}", file.display());
        assert!(err.contains(&expected), "{name}: expected {expected:?} in:\n{err}");
    }
    // The same through --env NAME from the project's envs/.
    let project = p.project();
    p.write("project/envs/py.toml", "env = \"docker\"\nimage = 3\n");
    let (ok, _, err) = burrow(&["serve", "--port", "0", "--env", "py", "--dir", &shown(&project)], &home, &[]).await;
    assert!(!ok);
    let expected = format!("{}:2:9: field `image`: invalid type: integer `3`, expected a string", project.join("envs/py.toml").display());
    assert!(err.contains(&expected), "expected {expected:?} in:\n{err}");
}

#[tokio::test]
async fn burrow_envs_lists_each_definition_and_where_it_comes_from() {
    let p = Places::new();
    let project = p.project();
    let xdg = p.path("xdg");
    p.write("project/envs/python.toml", "description = \"the project's python\"\nenv = \"docker\"\nimage = \"python:3.12\"\n");
    p.write("project/envs/broken.toml", "env = \"docker\"\nimagee = \"x\"\n");
    p.write("xdg/burrow/envs/python.toml", "env = \"docker\"\nimage = \"python:3.11\"\n");
    p.write("xdg/burrow/envs/remote.toml", "env = \"ssh\"\nhost = \"dev@box\"\ndir = \"src\"\n");
    let (ok, out, err) = burrow(&["envs", "--dir", &shown(&project)], &p.path("home"), &[("XDG_CONFIG_HOME", xdg.to_str().unwrap())]).await;
    assert!(ok, "{err}");
    let row = |name: &str| -> Vec<String> {
        let line = out.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap_or_else(|| panic!("no row {name} in:\n{out}"));
        vec![line.to_string()]
    };
    assert!(out.lines().next().unwrap().starts_with("NAME"), "{out}");
    let python = &row("python")[0];
    let project_file = project.join("envs/python.toml");
    assert!(python.contains("docker (image python:3.12)"), "{python}");
    assert!(python.contains(&format!("project {} (hides user, built-in)", project_file.display())), "{python}");
    assert!(python.contains("the project's python"), "{python}");
    let remote = &row("remote")[0];
    assert!(remote.contains("ssh (dev@box)") && remote.contains(&format!("user {}", xdg.join("burrow/envs/remote.toml").display())), "{remote}");
    for name in ["local", "node", "ssh-example", "s3-example"] {
        assert!(row(name)[0].contains("built-in"), "{out}");
    }
    let broken = &row("broken")[0];
    assert!(broken.contains("(invalid)") && broken.contains("broken.toml:2:1: field `imagee`"), "{broken}");
}

/// The Docker test image (`tests/support/services.sh docker`), or `None` to skip outside CI.
fn docker_image() -> Option<String> {
    let image = std::env::var("BURROW_TEST_DOCKER_IMAGE").unwrap_or_else(|_| "burrow-test-busybox:latest".into());
    let out = std::process::Command::new("docker").args(["image", "inspect", "-f", "ok", &image]).output();
    if out.as_ref().is_ok_and(|o| o.status.success()) {
        return Some(image);
    }
    let problem = format!("no usable Docker daemon or image {image} (run tests/support/services.sh docker)");
    assert!(!std::env::var("CI").is_ok_and(|v| v == "true"), "{problem}");
    eprintln!("skipping: {problem}");
    None
}

/// Removes the test's container whatever happens to the test.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

#[tokio::test]
async fn a_docker_definition_serves_a_container_and_runs_a_shell_command_there() {
    let Some(image) = docker_image() else { return };
    let p = Places::new();
    let fx = Fixture::standard();
    let project = p.project();
    std::fs::write(project.join("hello.txt"), "hello from the project\n").unwrap();
    // The definition names an image the test does not have; the flag
    // overrides it, and the rest (copy of the project, workdir, network) comes
    // from the file.
    let file =
        p.write("defs/box.toml", "# a test container\nenv = \"docker\"\nimage = \"python:3.13\"\ncopy = \".\"\nworkdir = \"/srv/box\"\nnetwork = \"none\"\n");
    let name = format!("burrow-envs-{}-{:06x}", std::process::id(), fastrand::u32(..0xffffff));
    let _cleanup = Container(name.clone());
    let ws = workspace(&fx, &["--env-file", &shown(&file), "--dir", &shown(&project), "--image", &image, "--name", &name]).await;
    let srv = Server::start(&ws).await;
    assert_eq!(served_root(&srv).await, ("docker".into(), "/srv/box".into()));

    let reply = srv.send(srv.request(Method::POST, "/session").json(&json!({ "title": "envs" }))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let id = reply.json()["id"].as_str().unwrap().to_string();
    let command = "cat hello.txt; pwd; hostname";
    let reply = srv.send(srv.request(Method::POST, &format!("/session/{id}/shell")).json(&json!({ "agent": "build", "command": command }))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body: Value = reply.json();
    let output = body["parts"][0]["state"]["output"].as_str().unwrap_or_else(|| panic!("no output in {body}"));
    let hostname = std::process::Command::new("docker").args(["inspect", "-f", "{{.Config.Hostname}}", &name]).output().unwrap();
    let hostname = String::from_utf8_lossy(&hostname.stdout).trim().to_string();
    assert!(!hostname.is_empty(), "the container {name} exists");
    assert_eq!(output, format!("hello from the project\n/srv/box\n{hostname}\n"));
}
