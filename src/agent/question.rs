//! Questions the agent's `question` tool asks the user, as OpenCode's
//! `Question` service keeps them.
//!
//! A call becomes a pending request, published as `question.asked`; the call
//! waits until a client replies with one list of chosen labels per question
//! (`question.replied`) or rejects it (`question.rejected`, and the tool fails
//! with OpenCode's "The user dismissed this question"). It works as a
//! permission ask does ([`super::permission`]): a oneshot the tool awaits,
//! dropped with the request when the turn is aborted.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::event::Bus;
use crate::id::{self, Prefix};

/// One choice of a question.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionOption {
    /// Display text (1-5 words, concise).
    pub label: String,
    /// Explanation of choice.
    pub description: String,
}

/// One question, as the model writes it and the request carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionInfo {
    /// Complete question.
    pub question: String,
    /// Very short label (max 30 chars).
    pub header: String,
    /// Available choices.
    pub options: Vec<QuestionOption>,
    /// Allow selecting multiple choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple: Option<bool>,
    /// Allow typing a custom answer (default: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<bool>,
}

/// The labels chosen for one question.
pub type Answer = Vec<String>;

/// Why a question got no answer, in the words OpenCode gives the model.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuestionError {
    #[error("The user dismissed this question")]
    Dismissed,
}

struct Pending {
    id: String,
    request: Value,
    session_id: String,
    directory: Option<String>,
    done: oneshot::Sender<Result<Vec<Answer>, QuestionError>>,
}

/// The server's pending questions, oldest first.
pub struct Questions {
    bus: Bus,
    pending: Mutex<Vec<Pending>>,
}

impl Questions {
    pub fn new(bus: Bus) -> Arc<Self> {
        Arc::new(Self { bus, pending: Mutex::new(Vec::new()) })
    }

    /// The pending requests (`QuestionRequest`), oldest first.
    pub fn list(&self) -> Vec<Value> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|p| p.request.clone()).collect()
    }

    /// The pending requests of one session.
    pub fn of_session(&self, session_id: &str) -> Vec<Value> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|p| p.session_id == session_id).map(|p| p.request.clone()).collect()
    }

    /// Asks `questions` for `session_id` and waits for the answers.
    /// `tool` is the (messageID, callID) of the asking call; `directory` the
    /// session's, for the events' instance.
    pub async fn ask(
        &self,
        directory: Option<&str>,
        session_id: &str,
        questions: &[QuestionInfo],
        tool: Option<(String, String)>,
    ) -> Result<Vec<Answer>, QuestionError> {
        let request_id = id::ascending(Prefix::Question);
        let mut request = json!({"id": request_id, "sessionID": session_id, "questions": questions});
        if let Some((message_id, call_id)) = tool {
            request["tool"] = json!({"messageID": message_id, "callID": call_id});
        }
        let (done, wait) = oneshot::channel();
        let pending =
            Pending { id: request_id.clone(), request: request.clone(), session_id: session_id.to_string(), directory: directory.map(str::to_string), done };
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).push(pending);
        let _guard = ForgetOnDrop(self, request_id);
        self.bus.publish(directory, None, "question.asked", request);
        wait.await.unwrap_or(Err(QuestionError::Dismissed))
    }

    fn take(&self, request_id: &str) -> Option<Pending> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let index = pending.iter().position(|p| p.id == request_id)?;
        Some(pending.remove(index))
    }

    /// Answers a pending request; `None` when there is no such request.
    pub fn reply(&self, request_id: &str, answers: Vec<Answer>) -> Option<()> {
        let req = self.take(request_id)?;
        let props = json!({"sessionID": req.session_id, "requestID": request_id, "answers": answers});
        self.bus.publish(req.directory.as_deref(), None, "question.replied", props);
        let _ = req.done.send(Ok(answers));
        Some(())
    }

    /// Dismisses a pending request; `None` when there is no such request.
    pub fn reject(&self, request_id: &str) -> Option<()> {
        let req = self.take(request_id)?;
        let props = json!({"sessionID": req.session_id, "requestID": request_id});
        self.bus.publish(req.directory.as_deref(), None, "question.rejected", props);
        let _ = req.done.send(Err(QuestionError::Dismissed));
        Some(())
    }

    fn forget(&self, request_id: &str) {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).retain(|p| p.id != request_id);
    }
}

/// Removes a pending request whose waiting call was dropped (an abort), so
/// no client is left answering a question nobody waits for.
struct ForgetOnDrop<'a>(&'a Questions, String);

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.forget(&self.1);
    }
}

/// What a session's tools ask through: the registry and the session's
/// directory (the events' instance).
#[derive(Clone)]
pub struct Asker {
    pub questions: Arc<Questions>,
    pub directory: Option<String>,
}
