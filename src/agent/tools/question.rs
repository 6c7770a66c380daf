//! `question`: the model asks the user questions with choices and waits for
//! the answers (`question.asked`, answered through `/question/{id}/reply`),
//! with OpenCode's description, arguments and output.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{args, fail, Tool, ToolContext, ToolError, ToolOutput, ToolResult};
use crate::agent::question::{Answer, QuestionInfo};

pub struct Question;

#[derive(Deserialize)]
struct Args {
    questions: Vec<QuestionInfo>,
}

/// The tool's output, in OpenCode's words: each question with its answer.
fn answered(questions: &[QuestionInfo], answers: &[Answer]) -> String {
    let pairs: Vec<String> = questions
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let answer = answers.get(i).filter(|a| !a.is_empty()).map(|a| a.join(", ")).unwrap_or_else(|| "Unanswered".into());
            format!("\"{}\"=\"{answer}\"", q.question)
        })
        .collect();
    format!("User has answered your questions: {}. You can now continue with the user's answers in mind.", pairs.join(", "))
}

#[async_trait]
impl Tool for Question {
    fn name(&self) -> &'static str {
        "question"
    }

    fn description(&self) -> &'static str {
        include_str!("question.txt")
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "questions": {
                    "type": "array",
                    "description": "Questions to ask",
                    "items": {
                        "type": "object",
                        "properties": {
                            "question": {"type": "string", "description": "Complete question"},
                            "header": {"type": "string", "description": "Very short label (max 30 chars)"},
                            "options": {
                                "type": "array",
                                "description": "Available choices",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "label": {"type": "string", "description": "Display text (1-5 words, concise)"},
                                        "description": {"type": "string", "description": "Explanation of choice"}
                                    },
                                    "required": ["label", "description"],
                                    "additionalProperties": false
                                }
                            },
                            "multiple": {"type": "boolean", "description": "Allow selecting multiple choices"}
                        },
                        "required": ["question", "header", "options"],
                        "additionalProperties": false
                    }
                }
            },
            "required": ["questions"]
        })
    }

    async fn run(&self, input: Value, ctx: &ToolContext) -> ToolResult {
        let a: Args = args("question", input)?;
        let Some(asker) = &ctx.questions else {
            return fail("The question tool needs a session whose questions a client can answer; there is none here.");
        };
        let tool = Some((ctx.message_id.clone(), ctx.call_id.clone()));
        let answers =
            asker.questions.ask(asker.directory.as_deref(), &ctx.session_id, &a.questions, tool).await.map_err(|e| ToolError::Failed(e.to_string()))?;
        let n = a.questions.len();
        let title = format!("Asked {n} question{}", if n > 1 { "s" } else { "" });
        Ok(ToolOutput::new(title, answered(&a.questions, &answers), json!({"answers": answers})))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> QuestionInfo {
        QuestionInfo { question: text.into(), header: "h".into(), options: vec![], multiple: None, custom: None }
    }

    #[test]
    fn the_output_pairs_each_question_with_its_labels_or_unanswered() {
        let out = answered(&[q("Which db?"), q("Tests?")], &[vec!["sqlite".into(), "pg".into()], vec![]]);
        assert_eq!(
            out,
            "User has answered your questions: \"Which db?\"=\"sqlite, pg\", \"Tests?\"=\"Unanswered\". You can now continue with the user's answers in mind."
        );
    }
}
