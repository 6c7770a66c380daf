//! The SSH environment against a real sshd on loopback: logins and host keys,
//! files and search over HTTP with each search method, and reconnecting after
//! a dropped connection. The Env-level guarantees (atomic writes, process
//! groups that really die) are the Env contract's (tests/env_contract).
//!
//! Needs the sshd of tests/support/services.sh (`source tests/support/services.sh ssh`).

use std::time::Duration;

use crate::remote::{scratch, Server, FILES};

#[tokio::test]
async fn serves_files_find_and_search_with_each_search_method() {
    let sshd = sshd!();
    let ws = scratch(&sshd, FILES);
    sshd.sh(&format!("cd {} && ln -s /etc etc-link && ln -s src/main.rs main-link.rs", ws.root)).unwrap();
    let helper = std::env::var("BURROW_HELPER_BIN").ok().filter(|p| std::path::Path::new(p).exists());
    let mut methods = vec![("rg", "ripgrep"), ("grep", "grep"), ("stream", "stream")];
    match helper {
        Some(_) => methods.push(("helper", "helper")),
        None => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "BURROW_HELPER_BIN must name the static helper build in CI");
            eprintln!("BURROW_HELPER_BIN not set: the helper method is not exercised");
        }
    }
    for (forced, reported) in methods {
        let server = Server::start(&sshd.serve_args(&ws.root), &[("BURROW_SEARCH", forced)]).await.unwrap_or_else(|f| panic!("{}", f.stderr));
        let (status, caps) = server.get("/burrow/capabilities").await;
        assert_eq!(status, 200);
        assert_eq!(caps["env"], "ssh");
        assert_eq!(caps["root"], ws.root.as_str());
        assert_eq!(caps["capabilities"]["search"], reported, "{forced}");

        let (status, body) = server.get("/file/content?path=src/main.rs").await;
        assert_eq!((status, body["content"].as_str()), (200, Some(FILES[0].1)));
        let (status, body) = server.get("/file/content?path=main-link.rs").await;
        assert_eq!((status, body["content"].as_str()), (200, Some(FILES[0].1)));
        let (status, listing) = server.get("/file?path=.").await;
        assert_eq!(status, 200);
        let ignored: Vec<_> = listing.as_array().unwrap().iter().filter(|e| e["ignored"] == true).map(|e| e["name"].as_str().unwrap()).collect();
        assert_eq!(ignored, vec!["target"]);
        for escape in ["etc-link/passwd", "../", "/etc/passwd"] {
            let (status, body) = server.get(&format!("/file/content?path={escape}")).await;
            assert_eq!(status, 403, "{escape}: {body}");
        }
        let (status, body) = server.get("/file/content?path=nope.txt").await;
        assert_eq!((status, body["name"].as_str()), (404, Some("NotFoundError")));

        let (status, found) = server.get("/find/file?query=main").await;
        assert_eq!(status, 200);
        assert!(found.as_array().unwrap().iter().any(|p| p == "src/main.rs"), "{forced}: {found}");
        let (_, all) = server.get("/find/file?query=out&dirs=true").await;
        assert!(!all.as_array().unwrap().iter().any(|p| p.as_str().unwrap().starts_with("target")), "{forced}: ignored files listed: {all}");

        let (status, hits) = server.get("/find?pattern=hel%2Bo").await;
        assert_eq!(status, 200, "{forced}: {hits}");
        let mut paths: Vec<&str> = hits.as_array().unwrap().iter().map(|m| m["path"]["text"].as_str().unwrap()).collect();
        paths.sort();
        assert_eq!(paths, vec!["src/lib.rs", "src/main.rs"], "{forced}");
        let m = hits.as_array().unwrap().iter().find(|m| m["path"]["text"] == "src/main.rs").unwrap();
        assert_eq!((m["line_number"].as_u64(), m["submatches"][0]["match"]["text"].as_str()), (Some(2), Some("hello")));
        let (status, body) = server.get("/find?pattern=(unclosed").await;
        assert_eq!(status, 400, "{body}");
        let log = server.stderr();
        assert!(log.contains("search method forced by BURROW_SEARCH"), "{log}");
    }
}

#[tokio::test]
async fn host_key_mismatch_is_refused() {
    let sshd = sshd!();
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other");
    let keygen = std::process::Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&other).status().unwrap();
    assert!(keygen.success());
    let public = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let fields: Vec<&str> = public.split_whitespace().collect();
    let known = dir.path().join("known_hosts");
    std::fs::write(&known, format!("[{}]:{} {} {}\n", sshd.host, sshd.port, fields[0], fields[1])).unwrap();
    let mut args = sshd.serve_args("/tmp");
    let at = args.iter().position(|a| a == "--known-hosts").unwrap();
    args[at + 1] = known.display().to_string();
    for extra in [None, Some("--accept-new-host-key")] {
        let mut args = args.clone();
        args.extend(extra.map(String::from));
        let failed = Server::start(&args, &[]).await.err().expect("a changed host key must be refused");
        assert_ne!(failed.code, Some(0));
        assert!(failed.stderr.contains("HOST KEY MISMATCH") && failed.stderr.contains("known_hosts line 1"), "{}", failed.stderr);
    }
}

#[tokio::test]
async fn unknown_host_is_refused_unless_new_keys_are_accepted() {
    let sshd = sshd!();
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known_hosts");
    let mut args = sshd.serve_args("/tmp");
    let at = args.iter().position(|a| a == "--known-hosts").unwrap();
    args[at + 1] = known.display().to_string();
    let failed = Server::start(&args, &[]).await.err().expect("an unknown host must be refused");
    assert!(failed.stderr.contains("is not in known_hosts"), "{}", failed.stderr);
    args.push("--accept-new-host-key".into());
    let server = Server::start(&args, &[]).await.unwrap_or_else(|f| panic!("{}", f.stderr));
    drop(server);
    let recorded = std::fs::read_to_string(&known).unwrap();
    assert!(recorded.trim_start().starts_with(&format!("[{}]:{} ssh-ed25519 ", sshd.host, sshd.port)), "{recorded}");
    // Now known: accepted without the flag.
    args.pop();
    Server::start(&args, &[]).await.unwrap_or_else(|f| panic!("{}", f.stderr));
}

#[tokio::test]
async fn wrong_key_and_wrong_password_are_refused() {
    let sshd = sshd!();
    let dir = tempfile::tempdir().unwrap();
    let stranger = dir.path().join("stranger");
    assert!(std::process::Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&stranger).status().unwrap().success());
    let mut args = sshd.serve_args_without_key("/tmp");
    args.extend(["--identity".into(), stranger.display().to_string()]);
    let failed = Server::start(&args, &[]).await.err().expect("an unknown key must be refused");
    assert!(failed.stderr.contains("refused the login") && failed.stderr.contains("stranger"), "{}", failed.stderr);
    let failed = Server::start(&sshd.serve_args_without_key("/tmp"), &[("BURROW_SSH_PASSWORD", "not-the-password")])
        .await
        .err()
        .expect("a wrong password must be refused");
    assert!(failed.stderr.contains("refused the login") && failed.stderr.contains("BURROW_SSH_PASSWORD"), "{}", failed.stderr);
}

#[tokio::test]
async fn logs_in_with_password_rsa_key_agent_and_ssh_config() {
    let sshd = sshd!();
    let ws = scratch(&sshd, FILES);
    let check = |server: Server, how: &'static str| async move {
        let (status, body) = server.get("/file/content?path=src/lib.rs").await;
        assert_eq!((status, body["content"].as_str()), (200, Some(FILES[1].1)), "{how}");
        let log = server.stderr();
        assert!(log.contains("logged in"), "{how}: {log}");
        log
    };
    // Password, from the environment only.
    let server =
        Server::start(&sshd.serve_args_without_key(&ws.root), &[("BURROW_SSH_PASSWORD", &sshd.password)]).await.unwrap_or_else(|f| panic!("{}", f.stderr));
    assert!(check(server, "password").await.contains("BURROW_SSH_PASSWORD"));
    // RSA key.
    let mut args = sshd.serve_args_without_key(&ws.root);
    args.extend(["--identity".into(), sshd.rsa_key.display().to_string()]);
    let server = Server::start(&args, &[]).await.unwrap_or_else(|f| panic!("{}", f.stderr));
    check(server, "rsa").await;
    // ssh-agent through SSH_AUTH_SOCK.
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let mut agent = std::process::Command::new("ssh-agent").arg("-D").arg("-a").arg(&sock).stdout(std::process::Stdio::null()).spawn().unwrap();
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let added = std::process::Command::new("ssh-add").arg(&sshd.key).env("SSH_AUTH_SOCK", &sock).output().unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let sock_str = sock.display().to_string();
    let server = Server::start(&sshd.serve_args_without_key(&ws.root), &[("SSH_AUTH_SOCK", &sock_str)]).await.unwrap_or_else(|f| panic!("{}", f.stderr));
    assert!(check(server, "agent").await.contains("agent key"));
    let _ = agent.kill();
    let _ = agent.wait();
    // ~/.ssh/config supplies HostName, User, Port and IdentityFile for an alias.
    let config = dir.path().join("ssh_config");
    std::fs::write(
        &config,
        format!("Host burrow-test-box\n    HostName {}\n    User {}\n    Port {}\n    IdentityFile {}\n", sshd.host, sshd.user, sshd.port, sshd.key.display()),
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".ssh")).unwrap();
    std::fs::copy(&config, home.path().join(".ssh/config")).unwrap();
    let args: Vec<String> = ["--env", "ssh", "--host", "burrow-test-box", "--dir", &ws.root, "--known-hosts", &sshd.known_hosts.display().to_string()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let home_str = home.path().display().to_string();
    let server = Server::start(&args, &[("HOME", &home_str)]).await.unwrap_or_else(|f| panic!("{}", f.stderr));
    check(server, "ssh config").await;
}

#[tokio::test]
async fn dropped_connection_fails_clearly_then_reconnects() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let sshd = sshd!();
    let ws = scratch(&sshd, FILES);
    sshd.sh(&format!("mkfifo {}/fifo", ws.root)).unwrap();
    let server = Server::start(&sshd.serve_args(&ws.root), &[("BURROW_SEARCH", "rg")]).await.unwrap_or_else(|f| panic!("{}", f.stderr));
    // A FIFO is refused rather than opened: opening it would block sftp-server.
    let (status, body) = server.get("/file/content?path=fifo").await;
    assert_eq!(status, 400, "{body}");
    let sshd_pids = sshd.sshd_pids_for(server.pid());
    assert!(!sshd_pids.is_empty(), "no sshd serves the server's connection");
    let sftp: u32 = sshd_pids
        .iter()
        .find_map(|p| {
            let out = std::process::Command::new("pgrep").args(["-P", &p.to_string(), "sftp-server"]).output().ok()?;
            String::from_utf8_lossy(&out.stdout).trim().parse().ok()
        })
        .expect("the connection's sftp-server");
    // A stopped sftp-server keeps the next request in flight until the connection drops.
    kill(Pid::from_raw(sftp as i32), Signal::SIGSTOP).unwrap();
    let url = server.url.clone();
    let pending = tokio::spawn(async move {
        let res = reqwest::get(format!("{url}/file/content?path=src/main.rs")).await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    });
    // The server logs each file request just before it goes out.
    while !server.stderr().contains("ssh file request for src/main.rs") {
        assert!(!pending.is_finished(), "the read finished while sftp-server was stopped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for pid in &sshd_pids {
        let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
    }
    let _ = kill(Pid::from_raw(sftp as i32), Signal::SIGKILL);
    let (status, body) = tokio::time::timeout(Duration::from_secs(60), pending).await.expect("the request must not hang").unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("SSH connection") && body.contains("lost"), "{body}");
    let (status, body) = server.get("/file/content?path=src/lib.rs").await;
    assert_eq!((status, body["content"].as_str()), (200, Some(FILES[1].1)), "the next request reconnects");
    assert!(server.stderr().contains("reconnect"), "{}", server.stderr());
}

#[tokio::test]
async fn a_lost_helper_session_comes_back_after_a_reconnect() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let sshd = sshd!();
    if std::env::var_os("BURROW_HELPER_BIN").is_none() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "BURROW_HELPER_BIN must name the static helper build in CI");
        return eprintln!("BURROW_HELPER_BIN not set: no helper session to lose");
    }
    let ws = scratch(&sshd, FILES);
    let server = Server::start(&sshd.serve_args(&ws.root), &[]).await.unwrap_or_else(|f| panic!("{}", f.stderr));
    let session = || sshd.sh(&format!("pgrep -f '[h]elper serve {}' || true", ws.root)).unwrap().trim().to_string();
    let first = session();
    assert!(!first.is_empty(), "the helper session runs on the host");
    let (status, hits) = server.get("/find?pattern=hel%2Bo").await;
    assert_eq!((status, hits.as_array().map(Vec::len)), (200, Some(2)), "{hits}");
    // Drop the connection under the session.
    for pid in sshd.sshd_pids_for(server.pid()) {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    // The old helper sees its stdin close and exits; searches keep working
    // (over a new connection) and a new session takes over.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, hits) = server.get("/find?pattern=hel%2Bo").await;
        let now = session();
        let old_gone = !now.lines().any(|pid| first.lines().any(|f| f == pid));
        if status == 200 && hits.as_array().map(Vec::len) == Some(2) && !now.is_empty() && old_gone {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no new session: {status} {hits} sessions {now:?} (first {first})\n{}", server.stderr());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(server.stderr().contains("helper session started"), "{}", server.stderr());
}

/// `/find`'s paths for `pattern`, sorted.
async fn found(server: &Server, pattern: &str) -> Vec<String> {
    let (status, hits) = server.get(&format!("/find?pattern={pattern}")).await;
    assert_eq!(status, 200, "{hits}");
    let mut paths: Vec<String> = hits.as_array().unwrap().iter().map(|m| m["path"]["text"].as_str().unwrap().to_string()).collect();
    paths.sort();
    paths
}

/// Polls until `/find` answers `want`: the helper's watcher reports a change
/// made over SSH a moment after the command that made it returns.
async fn until_found(server: &Server, pattern: &str, want: &[&str], why: &str) {
    let guard = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = found(server, pattern).await;
        if got == want {
            return;
        }
        assert!(std::time::Instant::now() < guard, "{why}: {got:?}, not {want:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The helper keeps a trigram index in the login's cache folder; changes made
/// by SSH commands are searchable through it, and no stale match remains.
#[tokio::test]
async fn the_helpers_text_index_follows_changes_made_over_ssh() {
    let sshd = sshd!();
    if std::env::var("BURROW_HELPER_BIN").ok().filter(|p| std::path::Path::new(p).exists()).is_none() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "BURROW_HELPER_BIN must name the static helper build in CI");
        return;
    }
    let ws = scratch(&sshd, FILES);
    let server = Server::start(&sshd.serve_args(&ws.root), &[]).await.unwrap_or_else(|f| panic!("{}", f.stderr));
    let guard = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (_, caps) = server.get("/burrow/capabilities").await;
        if caps["text_index"]["state"] == "ready" && caps["text_index"]["rebuilding"] == false {
            break;
        }
        assert!(std::time::Instant::now() < guard, "the helper's index never got ready: {caps}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    until_found(&server, "hello", &["src/lib.rs", "src/main.rs"], "before any change").await;
    let root = &ws.root;
    for (script, want) in [
        (format!("echo 'hello over ssh' > {root}/new.txt"), &["new.txt", "src/lib.rs", "src/main.rs"][..]),
        (format!("mkdir -p {root}/a/b && echo hello > {root}/a/b/deep.txt"), &["a/b/deep.txt", "new.txt", "src/lib.rs", "src/main.rs"]),
        (format!("mv {root}/new.txt {root}/renamed.txt"), &["a/b/deep.txt", "renamed.txt", "src/lib.rs", "src/main.rs"]),
        (format!("rm -r {root}/a && echo 'pub fn bye() {{}}' > {root}/src/lib.rs"), &["renamed.txt", "src/main.rs"]),
    ] {
        sshd.sh(&script).unwrap();
        until_found(&server, "hello", want, &script).await;
    }
    let (_, caps) = server.get("/burrow/capabilities").await;
    assert!(caps["text_index"]["changed"].as_u64().unwrap() > 0, "the changes are searched next to the index: {caps}");
}
