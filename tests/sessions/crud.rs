//! Session create, list, read, change and delete, with their errors and events.

use serde_json::{json, Value};

use crate::support::*;

#[tokio::test]
async fn create_accepts_what_opencode_accepts() {
    let dirs = Dirs::new();
    let s = Server::start(&dirs);
    // No body at all, an empty object, and JSON sent as a form by a bare `curl -d`.
    let res = s.http.post(s.at("/session")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let bare: Value = res.json().await.unwrap();
    let (status, empty) = s.post("/session", json!({})).await;
    assert_eq!(status, 200);
    let form = s.http.post(s.at("/session")).header("content-type", "application/x-www-form-urlencoded").body(r#"{"title":"formenc"}"#).send().await.unwrap();
    assert_eq!(form.status(), 200);
    assert_eq!(form.json::<Value>().await.unwrap()["title"], "formenc");

    for session in [&bare, &empty] {
        let id = session["id"].as_str().unwrap();
        assert!(id.starts_with("ses_") && id.len() == 30, "{id}");
        let slug = session["slug"].as_str().unwrap();
        assert_eq!(slug.split('-').count(), 2, "{slug}");
        let title = session["title"].as_str().unwrap();
        let date = title.strip_prefix("New session - ").expect(title);
        assert!(date.len() == 24 && date.ends_with('Z') && date.as_bytes()[10] == b'T', "{date}");
        assert_eq!(session["version"], "1.18.33");
        assert_eq!(session["directory"], dirs.root.to_str().unwrap());
        assert_eq!(session["cost"], json!(0));
        assert_eq!(session["tokens"], json!({"input":0,"output":0,"reasoning":0,"cache":{"read":0,"write":0}}));
        assert_eq!(session["time"]["created"], session["time"]["updated"]);
        // Exactly the keys OpenCode sends for a new root session.
        let mut keys: Vec<&str> = session.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["cost", "directory", "id", "path", "projectID", "slug", "time", "title", "tokens", "version"]);
    }
    // Session ids sort newest first.
    assert!(empty["id"].as_str() < bare["id"].as_str());

    let (status, child) = s.post("/session", json!({ "parentID": empty["id"] })).await;
    assert_eq!(status, 200);
    assert_eq!(child["parentID"], empty["id"]);
    assert!(child["title"].as_str().unwrap().starts_with("Child session - "));
    // Unknown fields are ignored, like OpenCode.
    assert_eq!(s.post("/session", json!({ "bogus": 1 })).await.0, 200);
    // The document calls the body optional (nullable): `null` is no body.
    let (status, from_null) = s.post("/session", Value::Null).await;
    assert_eq!((status, from_null["parentID"].clone()), (200, Value::Null), "{from_null}");
}

/// A body over the limit is a 413 with an OpenCode error body, not a 400:
/// the request is well-formed, just too large. Checked for both extractors
/// (the optional body of `POST /session` and a required one).
#[tokio::test]
async fn an_oversized_body_is_a_413() {
    let dirs = Dirs::new();
    let s = Server::start(&dirs);
    let id = s.session("small").await;
    let huge = json!({ "title": "x".repeat(3 << 20) });
    for (status, err) in [s.post("/session", huge.clone()).await, s.patch(&format!("/session/{id}"), huge).await] {
        assert_eq!(status, 413, "{err}");
        assert_eq!(err["name"], "PayloadTooLargeError");
        assert!(err["data"]["message"].as_str().is_some_and(|m| m.contains("larger than")), "{err}");
    }
    // Just under the limit is fine.
    let (status, _) = s.patch(&format!("/session/{id}"), json!({ "title": "x".repeat(1 << 20) })).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn bad_bodies_and_ids_are_400_and_unknown_sessions_404() {
    let dirs = Dirs::new();
    let s = Server::start(&dirs);
    for body in [json!({ "parentID": "abc" }), json!({ "title": 5 }), json!([])] {
        let (status, err) = s.post("/session", body.clone()).await;
        assert_eq!(status, 400, "{body} -> {err}");
        assert_eq!(err["name"], "BadRequest");
        assert!(err["data"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let res = s.http.post(s.at("/session")).header("content-type", "application/json").body("{not json").send().await.unwrap();
    assert_eq!(res.status(), 400);

    let missing = json!({ "name": "NotFoundError", "data": { "message": "Session not found: ses_doesnotexist" } });
    assert_eq!(s.get("/session/ses_doesnotexist").await, (404, missing.clone()));
    assert_eq!(s.delete("/session/ses_doesnotexist").await, (404, missing.clone()));
    assert_eq!(s.patch("/session/ses_doesnotexist", json!({ "title": "x" })).await, (404, missing.clone()));
    assert_eq!(s.get("/session/ses_doesnotexist/children").await, (404, missing.clone()));
    assert_eq!(s.get("/session/ses_doesnotexist/message").await, (404, missing.clone()));
    assert_eq!(s.get("/session/ses_doesnotexist/todo").await, (404, missing.clone()));
    assert_eq!(s.shell("ses_doesnotexist", "echo hi").await, (404, missing.clone()));
    // Unlike OpenCode (200 []), a missing session's diff is a 404 like its other sub-resources.
    assert_eq!(s.get("/session/ses_doesnotexist/diff").await, (404, missing.clone()));
    assert_eq!(s.get("/session/ses_doesnotexist/diff?messageID=msg_x").await, (404, missing));
    // Like OpenCode: aborting an unknown session is fine.
    assert_eq!(s.post("/session/ses_doesnotexist/abort", json!({})).await, (200, json!(true)));

    // OpenCode answers a 500 for ids without their prefix; Burrow says what is wrong.
    for path in ["/session/garbage", "/session/garbage/message", "/session/garbage/children"] {
        let (status, err) = s.get(path).await;
        assert_eq!(status, 400, "{path}");
        assert!(err["data"]["message"].as_str().unwrap().contains("\"ses\""), "{err}");
    }
    let id = s.session("x").await;
    let (status, err) = s.get(&format!("/session/{id}/message/msg_doesnotexist")).await;
    assert_eq!((status, err), (404, json!({ "name": "NotFoundError", "data": { "message": "Message not found: msg_doesnotexist" } })));
    assert_eq!(s.get(&format!("/session/{id}/message/garbage")).await.0, 400);
    let shell_path = format!("/session/{id}/shell");
    assert_eq!(s.post(&shell_path, json!({ "agent": "build" })).await.0, 400);
    assert_eq!(s.post(&shell_path, json!({ "command": "echo hi" })).await.0, 400);
    assert_eq!(s.patch(&format!("/session/{id}"), json!({ "title": 7 })).await.0, 400);
    assert_eq!(s.get(&format!("/session/{id}/message?limit=abc")).await.0, 400);
    assert_eq!(s.get(&format!("/session/{id}/message?limit=-1")).await.0, 400);
    assert_eq!(s.get(&format!("/session/{id}/message?before=x")).await.0, 400);
    assert_eq!(s.get(&format!("/session/{id}/message?limit=1&before=garbage")).await.0, 400);
    assert_eq!(s.get("/session?roots=maybe").await.0, 400);
}

#[tokio::test]
async fn list_filters_like_opencode() {
    let dirs = Dirs::new();
    std::fs::create_dir_all(dirs.root.join("src/deep")).unwrap();
    let s = Server::start(&dirs);
    let root = s.session("root one").await;
    let (_, child) = s.post("/session", json!({ "parentID": root, "title": "the child" })).await;
    let src = dirs.root.join("src");
    let (status, in_src) = s.post(&format!("/session?directory={}", src.display()), json!({ "title": "in src" })).await;
    assert_eq!(status, 200);
    assert_eq!(in_src["directory"], src.to_str().unwrap());
    let deep = s
        .http
        .post(s.at("/session"))
        .header("x-opencode-directory", dirs.root.join("src/deep").to_str().unwrap())
        .json(&json!({"title": "deep 50%"}))
        .send()
        .await
        .unwrap();
    let deep: Value = deep.json().await.unwrap();

    let ids = |list: Value| -> Vec<String> { list.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect() };
    let (_, all) = s.get("/session").await;
    // Newest first.
    assert_eq!(ids(all), [deep["id"].as_str().unwrap(), in_src["id"].as_str().unwrap(), child["id"].as_str().unwrap(), &root]);
    let (_, roots) = s.get("/session?roots=true").await;
    assert!(!ids(roots).contains(&child["id"].as_str().unwrap().to_string()));
    assert_eq!(ids(s.get("/session?limit=2").await.1).len(), 2);
    assert_eq!(ids(s.get("/session?search=CHILD").await.1), [child["id"].as_str().unwrap()]);
    // A `%` in the search is a percent sign, not a wildcard.
    assert_eq!(ids(s.get("/session?search=50%25").await.1), [deep["id"].as_str().unwrap()]);
    assert_eq!(ids(s.get(&format!("/session?directory={}", src.display())).await.1), [in_src["id"].as_str().unwrap()]);
    // `path` covers the folder and what is below it; an empty path filters nothing.
    // (The folder is not a git repository, so paths are relative to `/`.)
    let src_path = in_src["path"].as_str().unwrap();
    assert!(src_path.ends_with("/work/src") && deep["path"] == format!("{src_path}/deep"), "{src_path}");
    assert_eq!(ids(s.get(&format!("/session?path={src_path}")).await.1), [deep["id"].as_str().unwrap(), in_src["id"].as_str().unwrap()]);
    assert_eq!(ids(s.get("/session?roots=true&limit=100&path=").await.1).len(), 3);
    let start = in_src["time"]["updated"].as_u64().unwrap();
    let (_, everything) = s.get("/session").await;
    let expect: Vec<String> = everything
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["time"]["updated"].as_u64().unwrap() >= start)
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert!(expect.iter().any(|i| i == in_src["id"].as_str().unwrap()) && expect.iter().any(|i| i == deep["id"].as_str().unwrap()));
    assert_eq!(ids(s.get(&format!("/session?start={start}")).await.1), expect);
    let (_, kids) = s.get(&format!("/session/{root}/children")).await;
    assert_eq!(ids(kids), [child["id"].as_str().unwrap()]);
}

#[tokio::test]
async fn update_and_delete_publish_their_events() {
    let dirs = Dirs::new();
    let s = Server::start(&dirs);
    let mut events = s.events("/event").await;
    let parent = s.session("parent").await;
    let (_, child) = s.post("/session", json!({ "parentID": parent })).await;
    let (status, updated) = s.patch(&format!("/session/{parent}"), json!({ "title": "renamed", "metadata": { "a": 1 }, "time": { "archived": 5 } })).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!((updated["title"].clone(), updated["metadata"].clone(), updated["time"]["archived"].clone()), (json!("renamed"), json!({"a":1}), json!(5)));
    let mut got = s.get(&format!("/session/{parent}")).await.1;
    assert_eq!(got.as_object_mut().unwrap().remove("status"), Some(json!({ "type": "idle", "idle": true, "status": "idle" })));
    assert_eq!(got, updated);
    assert_eq!(s.delete(&format!("/session/{parent}")).await, (200, json!(true)));
    assert_eq!(s.get(&format!("/session/{parent}")).await.0, 404);
    assert_eq!(s.get(&format!("/session/{}", child["id"].as_str().unwrap())).await.0, 404);
    assert_eq!(s.delete(&format!("/session/{parent}")).await.0, 404);
    // A deleted session's sub-resources are gone too, its diff included.
    for sub in ["diff", "children", "todo", "message"] {
        assert_eq!(s.get(&format!("/session/{parent}/{sub}")).await.0, 404, "{sub}");
    }

    let seen = events.until(|e| kind(e) == "session.deleted" && e["properties"]["sessionID"] == parent.as_str()).await;
    let summary: Vec<(String, String)> = seen.iter().map(|e| (kind(e).to_string(), e["properties"]["sessionID"].as_str().unwrap_or("").to_string())).collect();
    let c = child["id"].as_str().unwrap().to_string();
    let p = parent.clone();
    let expect = [
        ("session.created", &p),
        ("session.created", &c),
        // One event per changed field, as OpenCode does.
        ("session.updated", &p),
        ("session.updated", &p),
        ("session.updated", &p),
        // Children go first.
        ("session.deleted", &c),
        ("session.deleted", &p),
    ];
    assert_eq!(summary, expect.map(|(k, id)| (k.to_string(), id.clone())));
    assert_eq!(seen[2]["properties"]["info"]["title"], "renamed");
    assert!(seen[2]["properties"]["info"].get("metadata").is_none());
    assert_eq!(seen[4]["properties"]["info"]["time"]["archived"], 5);
}

#[tokio::test]
async fn many_tasks_create_sessions_at_once() {
    let dirs = Dirs::new();
    let s = std::sync::Arc::new(Server::start(&dirs));
    let tasks: Vec<_> = (0..48)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.session(&format!("parallel {i}")).await })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 48);
    let (_, listed) = s.get("/session?limit=1000").await;
    let listed: std::collections::HashSet<String> = listed.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
    assert!(ids.iter().all(|id| listed.contains(id)));
    for id in &ids {
        let (status, body) = s.get(&format!("/session/{id}")).await;
        assert_eq!(status, 200);
        assert!(body["title"].as_str().unwrap().starts_with("parallel "));
    }
}

/// `PATCH` and `DELETE /session/{id}/message/{mid}/part/{pid}`: a part is
/// replaced (its ids must be the path's) or removed, each with its event.
#[tokio::test]
async fn parts_are_updated_and_deleted_one_by_one() {
    let dirs = Dirs::new();
    let s = Server::start(&dirs);
    let id = s.session("parts").await;
    let (status, answer) = s.shell(&id, "echo hi").await;
    assert_eq!(status, 200, "{answer}");
    let (_, messages) = s.get(&format!("/session/{id}/message")).await;
    let user = messages[0].clone();
    let (mid, part) = (user["info"]["id"].as_str().unwrap().to_string(), user["parts"][0].clone());
    let pid = part["id"].as_str().unwrap().to_string();
    let path = format!("/session/{id}/message/{mid}/part/{pid}");

    let mut events = s.events("/event").await;
    let mut changed = part.clone();
    changed["text"] = json!("edited by a client");
    assert_eq!(s.patch(&path, changed.clone()).await, (200, changed.clone()));
    let updated = events.until(|e| kind(e) == "message.part.updated").await;
    assert_eq!(updated.last().unwrap()["properties"]["part"], changed);
    assert_eq!(s.get(&format!("/session/{id}/message/{mid}")).await.1["parts"][0], changed);

    let mut elsewhere = changed.clone();
    elsewhere["messageID"] = answer["info"]["id"].clone();
    assert_eq!(s.patch(&path, elsewhere).await, (200, changed.clone()), "the path names the part, whatever ids the body holds");
    assert_eq!(s.patch(&path, json!({ "type": "text" })).await.0, 400, "not a part");
    let missing = format!("/session/{id}/message/{mid}/part/prt_0000000000000000000000000a");
    let mut other = changed.clone();
    other["id"] = json!("prt_0000000000000000000000000a");
    assert_eq!(s.patch(&missing, other).await.0, 404);

    assert_eq!(s.delete(&path).await, (200, json!(true)));
    let removed = events.until(|e| kind(e) == "message.part.removed").await;
    assert_eq!(removed.last().unwrap()["properties"]["partID"], pid.as_str());
    assert_eq!(s.get(&format!("/session/{id}/message/{mid}")).await.1["parts"], json!([]));
    assert_eq!(s.delete(&path).await.0, 404, "already gone");
    assert_eq!(s.delete(&format!("/session/{id}/message/{mid}/part/nope")).await.0, 400);
}

/// `GET /experimental/session`: sessions with their project, newest first,
/// filtered by `archived`, in pages with `x-next-cursor`.
#[tokio::test]
async fn experimental_session_list_carries_the_project() {
    let dirs = Dirs::new();
    let s = Server::start(&dirs);
    let (a, b) = (s.session("first").await, s.session("second").await);
    let archived = s.patch(&format!("/session/{a}"), json!({ "time": { "archived": 1 } })).await;
    assert_eq!(archived.0, 200, "{}", archived.1);
    let (status, list) = s.get("/experimental/session").await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<&str> = list.as_array().unwrap().iter().map(|g| g["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [b.as_str(), a.as_str()], "the newest first (archiving changes no update time)");
    let (_, project) = s.get("/project/current").await;
    assert_eq!(list[0]["project"], json!({ "id": project["id"], "worktree": project["worktree"] }));
    assert_eq!(list[1]["title"], "first");
    let only = |v: Value| v.as_array().unwrap().iter().map(|g| g["id"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(only(s.get("/experimental/session?archived=true").await.1), vec![a.clone()]);
    assert_eq!(only(s.get("/experimental/session?archived=false").await.1), vec![b.clone()]);
    assert_eq!(only(s.get("/experimental/session?search=seco").await.1), vec![b.clone()]);

    // Pages of one: both sessions, each once, whether or not they share a millisecond.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("/experimental/session?limit=1&cursor={c}"),
            None => "/experimental/session?limit=1".to_string(),
        };
        let res = s.http.get(s.at(&url)).send().await.unwrap();
        cursor = res.headers().get("x-next-cursor").map(|c| c.to_str().unwrap().to_string());
        seen.extend(only(res.json().await.unwrap()));
        if cursor.is_none() {
            break;
        }
        assert!(seen.len() < 3, "the pages end: {seen:?}");
    }
    assert_eq!(seen, [b.clone(), a.clone()]);
    assert_eq!(s.get("/experimental/session?archived=maybe").await.0, 400);
    assert_eq!(s.get("/experimental/session?limit=0").await.0, 400);
}
