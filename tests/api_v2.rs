//! The `/api/*` (v2) session routes against a scripted model: create, list
//! (paged), get, switch agent and model, prompt, wait, interrupt, messages,
//! context, history, permissions and questions, and their v2 errors.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};
use support::agent::AgentServer;
use support::calls::{call, Events};
use support::llm::{ScriptedLlm, Turn};
use tokio::sync::watch;

/// A v2 error: the status, and `_tag` next to Burrow's `{name, data}`.
#[track_caller]
fn assert_v2_error(what: &str, got: (u16, Value), status: u16, tag: &str) {
    assert_eq!(got.0, status, "{what}: {}", got.1);
    assert_eq!(got.1["_tag"], tag, "{what}: {}", got.1);
    assert!(got.1["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {}", got.1);
}

#[tokio::test]
async fn sessions_are_created_listed_in_pages_and_switched() {
    let llm = ScriptedLlm::openai(vec![]).await;
    let a = AgentServer::local(&llm.url, json!({})).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, created) = a.post("/api/session", json!({ "agent": "build" })).await;
        assert_eq!(status, 200, "{created}");
        let s = &created["data"];
        assert!(s["id"].as_str().unwrap().starts_with("ses_"), "{s}");
        assert_eq!(s["location"]["directory"], a.ws.root.as_str(), "{s}");
        assert_eq!(s["agent"], "build");
        assert_eq!(s["cost"], 0.0);
        ids.push(s["id"].as_str().unwrap().to_string());
    }
    let (status, all) = a.srv.get("/api/session").await;
    assert_eq!(status, 200, "{all}");
    let listed: Vec<&str> = all["data"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(listed, newest_first);
    assert_eq!(all["cursor"], json!({}));

    // Two pages of two, forwards and back.
    let (_, first) = a.srv.get("/api/session?order=asc&limit=2").await;
    assert_eq!(first["data"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect::<Vec<_>>(), [&ids[0], &ids[1]]);
    let next = first["cursor"]["next"].as_str().expect("a next cursor").to_string();
    assert!(first["cursor"].get("previous").is_none(), "{first}");
    let (_, second) = a.srv.get_q("/api/session", &[("order", "asc"), ("limit", "2"), ("cursor", &next)]).await;
    assert_eq!(second["data"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect::<Vec<_>>(), [&ids[2]]);
    assert!(second["cursor"].get("next").is_none(), "{second}");
    let previous = second["cursor"]["previous"].as_str().expect("a previous cursor").to_string();
    let (_, back) = a.srv.get_q("/api/session", &[("order", "asc"), ("limit", "2"), ("cursor", &previous)]).await;
    assert_eq!(back["data"], first["data"]);
    assert_v2_error("not a cursor", a.srv.get("/api/session?cursor=next").await, 400, "InvalidCursorError");
    let (_, past) = a.srv.get("/api/session?cursor=n:99").await;
    assert_eq!(past["data"], json!([]), "a position past the end: an empty page");

    let id = &ids[0];
    let model = json!({ "model": { "id": "fake-model", "providerID": "fake" } });
    assert_eq!(a.post(&format!("/api/session/{id}/model"), model).await.0, 204);
    assert_eq!(a.post(&format!("/api/session/{id}/agent"), json!({ "agent": "plan" })).await.0, 204);
    let (status, got) = a.srv.get(&format!("/api/session/{id}")).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!((&got["data"]["agent"], &got["data"]["model"]), (&json!("plan"), &json!({ "id": "fake-model", "providerID": "fake" })));
    let (_, v1) = a.srv.get(&format!("/session/{id}")).await;
    assert_eq!(v1["agent"], "plan", "the v1 view shows the same session: {v1}");

    assert_eq!(a.post(&format!("/api/session/{id}/agent"), json!({})).await.0, 400);
    let (status, mine) = a.post("/api/session", json!({ "id": "ses_mine" })).await;
    assert_eq!((status, &mine["data"]["id"]), (200, &json!("ses_mine")), "{mine}");
    let (_, again) = a.post("/api/session", json!({ "id": "ses_mine", "agent": "plan" })).await;
    assert_eq!(again, mine, "the same id: the session made the first time");
    assert_v2_error("an id without its prefix", a.post("/api/session", json!({ "id": "mine" })).await, 400, "InvalidRequestError");
    let missing = "ses_0000000000000000000000000a";
    assert_v2_error("unknown session", a.srv.get(&format!("/api/session/{missing}")).await, 404, "SessionNotFoundError");
    assert_v2_error("malformed session id", a.srv.get("/api/session/nope").await, 400, "InvalidRequestError");
    assert_v2_error("wait on an unknown session", a.post(&format!("/api/session/{missing}/wait"), Value::Null).await, 404, "SessionNotFoundError");
    assert_eq!(a.post(&format!("/api/session/{id}/interrupt"), Value::Null).await.0, 204, "an idle session: nothing to do");
    assert_eq!(a.post(&format!("/api/session/{id}/wait"), Value::Null).await.0, 204, "an idle session answers at once");
}

#[tokio::test]
async fn a_prompt_is_admitted_then_waited_for_and_shown_as_v2_messages() {
    let (open, gate) = watch::channel(false);
    let llm = ScriptedLlm::openai(vec![Turn::held("the answer", gate)]).await;
    let a = AgentServer::local(&llm.url, json!({})).await;
    let (_, created) = a.post("/api/session", json!({})).await;
    let id = created["data"]["id"].as_str().unwrap().to_string();
    let mut events = Events::subscribe(&a.srv, "").await;

    let (status, admitted) = a.post(&format!("/api/session/{id}/prompt"), json!({ "prompt": { "text": "hello v2" } })).await;
    assert_eq!(status, 200, "{admitted}");
    let d = &admitted["data"];
    assert!(d["id"].as_str().unwrap().starts_with("msg_"), "{d}");
    assert_eq!((&d["sessionID"], &d["prompt"], &d["delivery"], &d["admittedSeq"]), (&json!(id), &json!({ "text": "hello v2" }), &json!("queue"), &json!(1)));
    assert!(d["timeCreated"].as_u64().is_some(), "{d}");

    events.next_of("message.part.delta").await;
    let (_, active) = a.srv.get("/api/session/active").await;
    assert_eq!(active["data"][&id]["type"], "busy", "{active}");
    let opened = Arc::new(AtomicBool::new(false));
    let wait = {
        let (srv, path, opened) = (&a.srv, format!("/api/session/{id}/wait"), opened.clone());
        async move {
            let got = call(srv, Method::POST, &path, None).await;
            (got.0, opened.load(Ordering::SeqCst))
        }
    };
    let release = async {
        opened.store(true, Ordering::SeqCst);
        open.send_replace(true);
    };
    let ((status, after_open), ()) = tokio::join!(wait, release);
    assert_eq!(status, 204);
    assert!(after_open, "the wait ended only once the turn could finish");

    let (status, messages) = a.srv.get(&format!("/api/session/{id}/message")).await;
    assert_eq!(status, 200, "{messages}");
    let list = messages["data"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{messages}");
    assert_eq!((&list[0]["type"], &list[0]["text"], &list[0]["id"]), (&json!("user"), &json!("hello v2"), &d["id"]));
    let answer = &list[1];
    assert_eq!(answer["type"], "assistant");
    assert_eq!(answer["model"], json!({ "id": "fake-model", "providerID": "fake" }));
    assert!(answer["time"]["completed"].as_u64().is_some(), "the answer is complete once wait returns: {answer}");
    let texts: Vec<&Value> = answer["content"].as_array().unwrap().iter().filter(|c| c["type"] == "text").collect();
    assert_eq!(texts.len(), 1, "{answer}");
    assert_eq!(texts[0]["text"], "the answer");

    let (_, desc) = a.srv.get(&format!("/api/session/{id}/message?order=desc&limit=1")).await;
    assert_eq!(desc["data"], json!([answer]));
    assert!(desc["cursor"]["next"].is_string(), "{desc}");
    let (status, one) = a.srv.get(&format!("/api/session/{id}/message/{}", d["id"].as_str().unwrap())).await;
    assert_eq!((status, &one["data"]), (200, &list[0]));
    let gone = format!("/api/session/{id}/message/msg_0000000000000000000000000a");
    assert_v2_error("unknown message", a.srv.get(&gone).await, 404, "MessageNotFoundError");

    let (_, context) = a.srv.get(&format!("/api/session/{id}/context")).await;
    assert_eq!(context["data"], messages["data"], "no compaction yet: the whole history");

    let (status, history) = a.srv.get(&format!("/api/session/{id}/history")).await;
    assert_eq!(status, 200, "{history}");
    let kinds: Vec<&str> = history["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"session.next.prompted"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"session.next.step.ended"), "{kinds:?}");
    assert!(kinds.contains(&"session.next.text.ended"), "{kinds:?}");
    assert_eq!(history["hasMore"], false);
    let (_, page) = a.srv.get(&format!("/api/session/{id}/history?after=1&limit=1")).await;
    assert_eq!(page["data"][0]["durable"]["seq"], 2, "{page}");
    assert_eq!(page["hasMore"], true);
    assert_v2_error("a bad after", a.srv.get(&format!("/api/session/{id}/history?after=x")).await, 400, "InvalidRequestError");

    let (_, permissions) = a.srv.get(&format!("/api/session/{id}/permission")).await;
    assert_eq!(permissions, json!({ "data": [] }));
    let reply = json!({ "reply": "once" });
    let per = format!("/api/session/{id}/permission/per_0000000000000000000000000a/reply");
    assert_v2_error("no such permission", a.post(&per, reply).await, 404, "PermissionNotFoundError");
    let (_, questions) = a.srv.get(&format!("/api/session/{id}/question")).await;
    assert_eq!(questions, json!({ "data": [] }));
    let que = format!("/api/session/{id}/question/que_0000000000000000000000000a/reject");
    assert_v2_error("no question is pending", a.post(&que, Value::Null).await, 404, "QuestionNotFoundError");
    let (status, requests) = a.srv.get("/api/question/request").await;
    assert_eq!((status, &requests["data"]), (200, &json!([])));
    assert_eq!(requests["location"]["directory"], a.ws.root.as_str());
}

#[tokio::test]
async fn the_provider_is_found_by_id() {
    let llm = ScriptedLlm::openai(vec![]).await;
    let a = AgentServer::local(&llm.url, json!({})).await;
    let (status, got) = a.srv.get("/api/provider/fake").await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["data"]["id"], "fake");
    assert_eq!(got["data"]["api"]["url"], llm.url.as_str());
    assert_v2_error("unknown provider", a.srv.get("/api/provider/nope").await, 404, "ProviderNotFoundError");
}

#[tokio::test]
async fn compact_makes_the_summary_the_start_of_the_context() {
    let llm = ScriptedLlm::openai(vec![Turn::text("the answer"), Turn::text("the summary")]).await;
    let a = AgentServer::local(&llm.url, json!({})).await;
    let (_, created) = a.post("/api/session", json!({})).await;
    let id = created["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(a.post(&format!("/api/session/{id}/prompt"), json!({ "prompt": { "text": "hello" } })).await.0, 200);
    assert_eq!(a.post(&format!("/api/session/{id}/wait"), Value::Null).await.0, 204);
    let (status, body) = a.post(&format!("/api/session/{id}/compact"), Value::Null).await;
    assert_eq!(status, 204, "{body}");
    let (_, context) = a.srv.get(&format!("/api/session/{id}/context")).await;
    let first = &context["data"][0];
    assert_eq!((&first["type"], &first["summary"], &first["reason"]), (&json!("compaction"), &json!("the summary"), &json!("manual")), "{context}");
    let (_, all) = a.srv.get(&format!("/api/session/{id}/message")).await;
    let kinds: Vec<&str> = all["data"].as_array().unwrap().iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["user", "assistant", "compaction"], "{all}");
}
