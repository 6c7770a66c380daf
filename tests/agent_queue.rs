//! Prompts sent while a session works: each waits its turn and is answered,
//! in order, with nothing dropped (locally and in Docker); an abort drops the
//! waiting ones as OpenCode does; a restart answers the ones that never ran
//! with an error; and `POST /session/{id}/fork` copies a session.
//!
//! The scripted model holds its first answer open until the test has seen
//! the later prompts stored, so no check depends on which of two concurrent
//! things finishes first.

mod docker_support;
mod support;

use serde_json::{json, Value};
use support::agent::{contents, part, post, AgentServer};
use support::calls::Events;
use support::llm::{ScriptedLlm, Turn};
use support::{Fixture, Server, TestEnv};
use tokio::sync::watch;

fn text(t: &str) -> Value {
    json!({"parts": [{"type": "text", "text": t}]})
}

/// Waits until the user message whose text part says `said` is stored (its
/// part's `message.part.updated`); returns the message's id.
async fn stored(events: &mut Events, said: &str) -> String {
    loop {
        let e = events.next_of("message.part.updated").await;
        let p = &e["properties"]["part"];
        if p["type"] == "text" && p["text"] == said {
            return p["messageID"].as_str().unwrap().to_string();
        }
    }
}

/// The text of a message's text part.
fn said(message: &Value) -> String {
    part(message, "text")["text"].as_str().unwrap().to_string()
}

/// `prompt_async "SLOW"`, `prompt_async "second"` and `POST message "third"`:
/// the last two arrive while the first is still being answered.
async fn three_prompts(env: TestEnv) {
    let (open, gate) = watch::channel(false);
    let llm = ScriptedLlm::openai(vec![Turn::held("slow answer", gate), Turn::text("answer two"), Turn::text("answer three")]).await;
    let a = AgentServer::start(env, &llm.url, json!({})).await;
    let id = a.session().await;
    let mut events = Events::subscribe(&a.srv, "").await;
    assert_eq!(a.post(&format!("/session/{id}/prompt_async"), text("SLOW")).await.0, 204);
    events.next_of("message.part.delta").await;
    assert_eq!(a.post(&format!("/session/{id}/prompt_async"), text("second")).await.0, 204);
    // Stored and published at once, while the first answer is still open.
    let second = stored(&mut events, "second").await;
    let path = format!("/session/{id}/message");
    let third = a.post(&path, text("third"));
    let release = async {
        let third = stored(&mut events, "third").await;
        let (_, status) = a.srv.get("/session/status").await;
        assert_eq!(status[&id]["type"], "busy", "{status}");
        let list = a.messages(&id).await;
        let users = list.iter().filter(|m| m["info"]["role"] == "user").count();
        assert_eq!(users, 3, "every prompt is stored before its turn: {list:#?}");
        open.send_replace(true);
        third
    };
    let ((status, answer), third_id) = tokio::join!(third, release);
    assert_eq!(status, 200, "{answer}");
    // The response waited for its own turn and is that turn's answer.
    assert_eq!(answer["info"]["parentID"], third_id.as_str(), "{answer}");
    assert_eq!(said(&answer), "answer three");

    let list = a.messages(&id).await;
    let users: Vec<&Value> = list.iter().filter(|m| m["info"]["role"] == "user").collect();
    assert_eq!(users.iter().map(|u| said(u)).collect::<Vec<_>>(), ["SLOW", "second", "third"]);
    assert_eq!(users[1]["info"]["id"], second.as_str());
    for (user, reply) in users.iter().zip(["slow answer", "answer two", "answer three"]) {
        let answers: Vec<&Value> = list.iter().filter(|m| m["info"]["parentID"] == user["info"]["id"]).collect();
        assert_eq!(answers.len(), 1, "one answer to {}: {list:#?}", said(user));
        assert_eq!((said(answers[0]), &answers[0]["info"]["finish"]), (reply.to_string(), &json!("stop")));
        assert!(answers[0]["info"].get("error").is_none(), "{}", answers[0]);
    }
    // Each turn read the conversation up to its own prompt, answers in place.
    let sent = llm.requests();
    assert_eq!(sent.len(), 3);
    assert_eq!(contents(&sent[1], "user"), ["SLOW", "second"]);
    assert_eq!(contents(&sent[2], "user"), ["SLOW", "second", "third"]);
    assert_eq!(contents(&sent[2], "assistant"), ["slow answer", "answer two"]);
    let (_, status) = a.srv.get("/session/status").await;
    assert_eq!(status, json!({}), "idle once the queue is empty");
}

#[tokio::test]
async fn prompts_sent_while_busy_are_all_answered_in_order() {
    three_prompts(TestEnv::from_name("local").unwrap()).await;
}

#[tokio::test]
async fn prompts_sent_while_busy_are_all_answered_in_order_in_a_container() {
    if docker_support::image().is_none() {
        return;
    }
    three_prompts(TestEnv::from_name("docker").unwrap()).await;
}

#[tokio::test]
async fn abort_ends_the_turn_and_drops_the_waiting_prompts_as_opencode_does() {
    let llm = ScriptedLlm::openai(vec![Turn::Hang(vec![support::llm::text("partial")])]).await;
    let a = AgentServer::local(&llm.url, json!({})).await;
    let id = a.session().await;
    let mut events = Events::subscribe(&a.srv, "").await;
    assert_eq!(a.post(&format!("/session/{id}/prompt_async"), text("go")).await.0, 204);
    events.next_of("message.part.delta").await;
    let path = format!("/session/{id}/message");
    let waiting = a.post(&path, text("queued"));
    let abort = async {
        let queued = stored(&mut events, "queued").await;
        let (status, ok) = a.post(&format!("/session/{id}/abort"), json!({})).await;
        assert_eq!((status, ok), (200, json!(true)));
        queued
    };
    let ((status, answer), queued) = tokio::join!(waiting, abort);
    // Like OpenCode, the dropped prompt's request gets the session's last
    // assistant message: the aborted one.
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["info"]["error"]["name"], "MessageAbortedError", "{answer}");
    assert_ne!(answer["info"]["parentID"], queued.as_str());
    let list = a.messages(&id).await;
    assert_eq!(list.iter().map(|m| m["info"]["role"].as_str().unwrap()).collect::<Vec<_>>(), ["user", "assistant", "user"]);
    assert!(list.iter().all(|m| m["info"]["parentID"] != queued.as_str()), "the dropped prompt never ran: {list:#?}");
    llm.hung_up().await;
    assert_eq!(llm.requests().len(), 1);
    let (_, status) = a.srv.get("/session/status").await;
    assert_eq!(status, json!({}));

    // The next prompt runs, and (as in OpenCode) the model sees the unanswered one.
    llm.push([Turn::text("back")]);
    let (status, answer) = a.post(&format!("/session/{id}/message"), text("next")).await;
    assert_eq!((status, said(&answer)), (200, "back".to_string()), "{answer}");
    assert_eq!(contents(&llm.requests()[1], "user"), ["go", "queued", "next"]);
}

#[tokio::test]
async fn a_prompt_still_queued_when_the_server_dies_is_answered_with_an_error_at_the_next_start() {
    let llm = ScriptedLlm::openai(vec![Turn::Hang(vec![support::llm::text("partial")])]).await;
    let env = TestEnv::from_name("local").unwrap();
    let fx = Fixture::standard();
    let ws = env.place(&fx).await.unwrap();
    let cfg = support::agent::config(&llm.url, &support::llm::unreachable_url().await).to_string();
    let data = tempfile::tempdir().unwrap();
    let vars = [("OPENCODE_CONFIG_CONTENT", cfg.as_str()), ("BURROW_DATA_DIR", data.path().to_str().unwrap())];
    let srv = Server::start_with(&ws, &vars).await;
    let (_, session) = post(&srv, "/session", json!({})).await;
    let id = session["id"].as_str().unwrap().to_string();
    let mut events = Events::subscribe(&srv, "").await;
    assert_eq!(post(&srv, &format!("/session/{id}/prompt_async"), text("go")).await.0, 204);
    events.next_of("message.part.delta").await;
    assert_eq!(post(&srv, &format!("/session/{id}/prompt_async"), text("queued")).await.0, 204);
    let queued = stored(&mut events, "queued").await;
    // SIGKILL: nothing runs at shutdown.
    drop(srv);
    let srv = Server::start_with(&ws, &vars).await;
    let (status, list) = srv.get(&format!("/session/{id}/message")).await;
    assert_eq!(status, 200, "{list}");
    let answers: Vec<&Value> = list.as_array().unwrap().iter().filter(|m| m["info"]["parentID"] == queued.as_str()).collect();
    assert_eq!(answers.len(), 1, "{list:#}");
    let info = &answers[0]["info"];
    assert_eq!(info["error"]["name"], "MessageAbortedError", "{info}");
    assert!(info["error"]["data"]["message"].as_str().unwrap().contains("queued prompt ran"), "{info}");
    assert!(info["time"]["completed"].is_number(), "{info}");
    // Answered once: a second restart adds nothing.
    drop(srv);
    let srv = Server::start_with(&ws, &vars).await;
    let (_, again) = srv.get(&format!("/session/{id}/message")).await;
    assert_eq!(again, list);
}

#[tokio::test]
async fn fork_copies_the_messages_before_the_point_with_new_ids() {
    let llm = ScriptedLlm::openai(vec![Turn::text("reply one"), Turn::text("reply two")]).await;
    let a = AgentServer::local(&llm.url, json!({})).await;
    let id = a.session().await;
    for t in ["one", "two"] {
        assert_eq!(a.post(&format!("/session/{id}/message"), text(t)).await.0, 200);
    }
    let (_, original) = a.srv.get(&format!("/session/{id}")).await;
    let list = a.messages(&id).await;
    assert_eq!(list.len(), 4);
    let mut events = Events::subscribe(&a.srv, "").await;
    let at = list[2]["info"]["id"].as_str().unwrap();
    let (status, fork) = a.post(&format!("/session/{id}/fork"), json!({"messageID": at})).await;
    assert_eq!(status, 200, "{fork}");
    let fork_id = fork["id"].as_str().unwrap().to_string();
    assert_ne!(fork_id, id);
    assert_eq!(fork["title"], format!("{} (fork #1)", original["title"].as_str().unwrap()));
    assert!(fork.get("parentID").is_none(), "{fork}");
    assert_eq!(fork["directory"], original["directory"]);

    let created = events.next_of("session.created").await;
    assert_eq!(created["properties"]["info"]["id"], fork_id.as_str());
    let copied = a.messages(&fork_id).await;
    assert_eq!(copied.len(), 2, "only the messages before {at}: {copied:#?}");
    let (user, answer) = (&copied[0], &copied[1]);
    assert_eq!((said(user), said(answer)), ("one".to_string(), "reply one".to_string()));
    assert_ne!(user["info"]["id"], list[0]["info"]["id"]);
    assert_ne!(answer["info"]["id"], list[1]["info"]["id"]);
    assert_eq!(answer["info"]["parentID"], user["info"]["id"], "the answer points at the copied prompt");
    for (copy, from) in copied.iter().zip(&list) {
        assert_eq!(copy["info"]["sessionID"], fork_id.as_str());
        let (parts, old) = (copy["parts"].as_array().unwrap(), from["parts"].as_array().unwrap());
        assert_eq!(parts.len(), old.len());
        for (p, o) in parts.iter().zip(old) {
            assert_ne!(p["id"], o["id"]);
            assert_eq!((&p["messageID"], &p["sessionID"]), (&copy["info"]["id"], &json!(fork_id)));
            assert_eq!(p["type"], o["type"]);
        }
    }
    // Each copy was published like a new message, in order.
    let mut published = Vec::new();
    while published.len() < 2 {
        let e = events.next_of("message.updated").await;
        published.push(e["properties"]["info"]["id"].clone());
    }
    assert_eq!(published, [copied[0]["info"]["id"].clone(), copied[1]["info"]["id"].clone()]);
    // The original is untouched.
    assert_eq!(a.messages(&id).await, list);

    // A fork of the fork, whole (no body): the number goes up.
    let reply = a.srv.send(a.srv.request(reqwest::Method::POST, &format!("/session/{fork_id}/fork"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let again = reply.json();
    assert_eq!(again["title"], format!("{} (fork #2)", original["title"].as_str().unwrap()));
    assert_eq!(a.messages(again["id"].as_str().unwrap()).await.len(), 2);
}

#[tokio::test]
async fn fork_refuses_bad_input_with_json_errors() {
    let a = AgentServer::local(&support::llm::unreachable_url().await, json!({})).await;
    let id = a.session().await;
    let own = format!("/session/{id}/fork");
    let cases = [
        ("/session/ses_nope/fork", json!({}), 404, "NotFoundError"),
        ("/session/garbage/fork", json!({}), 400, "BadRequest"),
        (own.as_str(), json!({"messageID": "nope"}), 400, "BadRequest"),
        (own.as_str(), json!({"messageID": 7}), 400, "BadRequest"),
        (own.as_str(), json!({"other": true}), 400, "BadRequest"),
        (own.as_str(), json!([]), 400, "BadRequest"),
    ];
    for (path, body, status, name) in cases {
        let (got, err) = a.post(path, body.clone()).await;
        assert_eq!((got, &err["name"]), (status, &json!(name)), "{path} {body}: {err}");
        assert!(err["data"]["message"].is_string(), "{err}");
    }
}
