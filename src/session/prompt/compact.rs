//! Compaction (`POST /session/{id}/summarize`): a user message with a
//! `compaction` part, answered by the hidden compaction agent with a summary
//! of the conversation (an assistant message with `summary: true`), which
//! stands in for everything before it from then on. With `auto`, the model
//! is then asked to carry on, as OpenCode does.

use std::sync::Arc;

use serde_json::json;

use super::{detach, history, model_of, Base, Prompt};
use crate::agent::compaction;
use crate::agent::input::ModelChoice;
use crate::agent::provider::{ChatMessage, ChatRequest};
use crate::config::agent as agents;
use crate::instance::Instance;
use crate::protocol::message::{Message, ModelRef};
use crate::protocol::session::Session;
use crate::session::error::{RunError, RunResult};
use crate::session::events;
use crate::session::runtime::Runtime;

/// `{sessionID}` once a compaction has a summary.
const SESSION_COMPACTED: &str = "session.compacted";

/// What OpenCode asks the model after an automatic compaction.
const CONTINUE: &str = "Continue if you have next steps, or stop and ask for clarification if you are unsure how to proceed.";

/// Compacts the session with `model`; `true` once the turn is over (a failed
/// summary is in the message's `info.error`, as for any prompt).
pub async fn summarize(rt: Arc<Runtime>, inst: Arc<Instance>, session: Session, model: ModelChoice, auto: bool) -> RunResult<bool> {
    let p = Base::load(rt, inst, session).await?.claim().await?;
    detach(p.compact(model, auto)).await
}

impl Prompt {
    async fn compact(self, model: ModelChoice, auto: bool) -> RunResult<bool> {
        let store = &self.sessions().store;
        let messages = store.messages(&self.session.id, None, None).await?.messages;
        let agent = messages.iter().rev().find_map(|m| match &m.info {
            Message::User(u) => Some(u.agent.clone()),
            Message::Assistant(_) => None,
        });
        let agent = agent.unwrap_or_else(|| self.default_agent());
        // The compaction agent's own model when it names one, else the one asked for.
        let own = agents::list(&self.cfg, &self.paths).into_iter().find(|a| a.name == "compaction").and_then(|a| a.model);
        let pick = own.map(|m| ModelChoice { provider_id: m.provider_id, model_id: m.model_id }).unwrap_or_else(|| model.clone());
        let r = self.resolve(Some("compaction"), Some(&pick)).map_err(|e| RunError::invalid(e.to_string()))?;
        let asked = ModelRef { provider_id: model.provider_id.clone(), model_id: model.model_id.clone(), variant: None };
        let user = self.store_user(None, &agent, &asked, None, &[json!({"type": "compaction", "auto": auto})]).await?;

        let (previous, transcript) = history::compaction_input(&messages, &user.id);
        let request = ChatRequest {
            model: r.api_model.clone(),
            system: r.agent.prompt.iter().cloned().collect(),
            messages: vec![ChatMessage::User { text: compaction::request(previous.as_deref(), &transcript) }],
            ..Default::default()
        };
        let (writer, sink) = self.writer(&user, &r, &r.agent.name, model_of(&r), true);
        let turn = self.turn(&r, sink);
        let outcome = turn.run(request).await;
        let summary = self.finish(turn, writer, outcome, &user).await?;
        if matches!(&summary.info, Message::Assistant(a) if a.error.is_some()) {
            return Ok(true);
        }
        events::transient(&self.rt.bus, &self.scope, SESSION_COMPACTED, json!({"sessionID": self.session.id}));
        if auto {
            let next = self.resolve(Some(&agent), Some(&model)).map_err(|e| RunError::invalid(e.to_string()))?;
            let now = crate::now_ms();
            let text =
                json!({"type": "text", "text": CONTINUE, "synthetic": true, "metadata": {"compaction_continue": true}, "time": {"start": now, "end": now}});
            let user = self.store_user(None, &agent, &asked, None, &[text]).await?;
            self.reply(&user, &next, None).await?;
        }
        Ok(true)
    }
}
