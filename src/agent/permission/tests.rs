use super::*;

fn rules(list: &[(&str, &str, Action)]) -> Vec<Rule> {
    list.iter().map(|(p, pat, a)| Rule::new(p, pat, *a)).collect()
}

#[test]
fn wildcard_matches_like_opencode() {
    assert!(wildcard("git status", "git *"));
    assert!(wildcard("git", "git *"));
    assert!(!wildcard("gitk", "git *"));
    assert!(wildcard("src/a/b.rs", "src/*"));
    assert!(wildcard(".env", "*.env"));
    assert!(wildcard("x.env.local", "*.env.*"));
    assert!(wildcard("a?c", "a?c"));
    assert!(wildcard("abc", "a?c"));
    assert!(!wildcard("abcd", "a?c"));
    assert!(wildcard("anything at all", "*"));
    assert!(!wildcard("rm -rf /", "git *"));
}

#[test]
fn last_matching_rule_wins_and_default_is_ask() {
    let r = rules(&[("*", "*", Action::Allow), ("bash", "*", Action::Ask), ("bash", "git *", Action::Allow), ("bash", "rm *", Action::Deny)]);
    assert_eq!(evaluate("bash", "git log", &[&r]), Action::Allow);
    assert_eq!(evaluate("bash", "rm -rf x", &[&r]), Action::Deny);
    assert_eq!(evaluate("bash", "cargo test", &[&r]), Action::Ask);
    assert_eq!(evaluate("read", "a.txt", &[&r]), Action::Allow);
    assert_eq!(evaluate("read", "a.txt", &[]), Action::Ask);
    let approved = rules(&[("bash", "cargo *", Action::Allow)]);
    assert_eq!(evaluate("bash", "cargo test", &[&r, &approved]), Action::Allow);
}

fn gate(perms: &Arc<Permissions>, r: Vec<Rule>) -> Arc<SessionGate> {
    Arc::new(SessionGate { permissions: perms.clone(), ruleset: r, directory: Some("/w".into()), project: Some("prj".into()) })
}

async fn wait_pending(perms: &Permissions, n: usize) -> Vec<Value> {
    loop {
        let list = perms.list();
        if list.len() >= n {
            return list;
        }
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn ask_waits_for_a_reply_and_always_approves_the_pattern() {
    let bus = Bus::new();
    let mut events = bus.subscribe();
    let perms = Permissions::new(bus);
    let g = gate(&perms, rules(&[("bash", "*", Action::Ask)]));
    let input = AskInput {
        tool: Some(("msg_1".into(), "call_1".into())),
        ..AskInput::new("bash", vec!["cargo test".into()], vec!["cargo *".into()], json!({"command": "cargo test"}))
    };
    let call = tokio::spawn({
        let g = g.clone();
        let input = input.clone();
        async move { g.ask("ses_1", input).await }
    });
    let pending = wait_pending(&perms, 1).await;
    let req = &pending[0];
    assert_eq!(req["permission"], "bash");
    assert_eq!(req["tool"], json!({"messageID": "msg_1", "callID": "call_1"}));
    let asked = events.recv().await.unwrap();
    assert_eq!(asked.event.kind, "permission.asked");
    let props: Value = serde_json::from_str(asked.event.properties.get()).unwrap();
    assert_eq!(props["id"], req["id"]);
    perms.reply(req["id"].as_str().unwrap(), Reply::Always, None).unwrap();
    assert_eq!(call.await.unwrap(), Ok(()));
    let replied = events.recv().await.unwrap();
    assert_eq!(replied.event.kind, "permission.replied");
    let props: Value = serde_json::from_str(replied.event.properties.get()).unwrap();
    assert_eq!(props["reply"], "always");
    assert!(perms.list().is_empty());
    // The approved pattern needs no asking any more, in this project only.
    assert_eq!(g.ask("ses_1", AskInput::new("bash", vec!["cargo build".into()], vec![], json!({}))).await, Ok(()));
    assert!(perms.reply("per_missing", Reply::Once, None).is_none());
    let saved = perms.saved(None);
    assert_eq!(saved.len(), 1);
    assert_eq!((saved[0].project_id.as_str(), saved[0].permission.as_str(), saved[0].pattern.as_str()), ("prj", "bash", "cargo *"));
    assert!(saved[0].id.starts_with("psv_"), "{saved:?}");
    assert_eq!(perms.saved(Some("other")), []);
    // Removed, the pattern is asked about again.
    assert!(perms.remove_saved(&saved[0].id));
    assert!(!perms.remove_saved(&saved[0].id));
    let again = tokio::spawn({
        let g = g.clone();
        async move { g.ask("ses_1", AskInput::new("bash", vec!["cargo build".into()], vec![], json!({}))).await }
    });
    let pending = wait_pending(&perms, 1).await;
    perms.reply(pending[0]["id"].as_str().unwrap(), Reply::Once, None).unwrap();
    assert_eq!(again.await.unwrap(), Ok(()));
}

#[tokio::test]
async fn reject_fails_the_call_with_feedback_and_rejects_siblings() {
    let perms = Permissions::new(Bus::new());
    let g = gate(&perms, vec![]);
    let spawn = |pattern: &str| {
        let g = g.clone();
        let input = AskInput::new("edit", vec![pattern.to_string()], vec!["*".into()], json!({}));
        tokio::spawn(async move { g.ask("ses_1", input).await })
    };
    let first = spawn("a.txt");
    wait_pending(&perms, 1).await;
    let second = spawn("b.txt");
    let pending = wait_pending(&perms, 2).await;
    perms.reply(pending[0]["id"].as_str().unwrap(), Reply::Reject, Some("use b instead".into())).unwrap();
    assert_eq!(first.await.unwrap(), Err(PermissionError::Corrected("use b instead".into())));
    assert_eq!(second.await.unwrap(), Err(PermissionError::Rejected));
    assert!(perms.list().is_empty());
}

#[tokio::test]
async fn deny_refuses_without_asking() {
    let perms = Permissions::new(Bus::new());
    let g = gate(&perms, rules(&[("*", "*", Action::Allow), ("bash", "rm *", Action::Deny)]));
    let err = g.ask("ses_1", AskInput::new("bash", vec!["rm -rf /".into()], vec![], json!({}))).await.unwrap_err();
    assert!(matches!(err, PermissionError::Denied(_)));
    assert!(err.to_string().contains("rm *"));
    assert_eq!(g.ask("ses_1", AskInput::new("bash", vec!["ls".into()], vec![], json!({}))).await, Ok(()));
    assert!(perms.list().is_empty());
}

#[tokio::test]
async fn a_dropped_call_leaves_no_pending_request() {
    let perms = Permissions::new(Bus::new());
    let g = gate(&perms, vec![]);
    let call = tokio::spawn({
        let g = g.clone();
        async move { g.ask("ses_1", AskInput::new("edit", vec!["x".into()], vec![], json!({}))).await }
    });
    wait_pending(&perms, 1).await;
    call.abort();
    let _ = call.await;
    assert!(perms.list().is_empty());
}

#[test]
fn tools_denied_everywhere_are_not_offered() {
    let plan = rules(&[("*", "*", Action::Allow), ("edit", "*", Action::Deny), ("edit", ".opencode/plans/*.md", Action::Allow), ("task", "*", Action::Deny)]);
    assert_eq!(disabled(["bash", "edit", "write", "task"], &plan), vec!["task"], "a narrower allow after the deny keeps edit");
    let child = rules(&[("*", "*", Action::Allow), ("todowrite", "*", Action::Deny), ("edit", "*", Action::Deny)]);
    assert_eq!(disabled(["read", "write", "edit", "todowrite"], &child), vec!["write", "edit", "todowrite"]);
    assert!(disabled(["bash"], &[]).is_empty());
}

#[tokio::test]
async fn bypass_lets_one_permission_through() {
    let perms = Permissions::new(Bus::new());
    let inner = gate(&perms, rules(&[("*", "*", Action::Deny)]));
    let g = Bypass { permission: "task", inner };
    assert_eq!(g.ask("ses_1", AskInput::new("task", vec!["general".into()], vec![], json!({}))).await, Ok(()));
    assert!(g.ask("ses_1", AskInput::new("bash", vec!["ls".into()], vec![], json!({}))).await.is_err());
}
