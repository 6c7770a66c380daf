//! What a compaction asks the model: OpenCode's anchored summary of the
//! conversation so far (`POST /session/{id}/summarize`), in a fixed Markdown
//! template so the next turns can rely on its sections. The summary then
//! stands in for everything before it.

/// The question a compaction's user message stands for in later turns.
pub const QUESTION: &str = "What did we do so far?";

/// Tool results longer than this are cut in the transcript.
pub const MAX_RESULT_CHARS: usize = 2000;

const TEMPLATE: &str =
    "Output exactly the Markdown structure shown inside <template> and keep the section order unchanged. Do not include the <template> tags in your response.
<template>
## Objective
- [one or two brief sentences describing what the user is trying to accomplish]
## Important Details
- [constraints/preferences, decisions and why, important facts/assumptions, exact context needed to continue, or \"(none)\"]
## Work State
### Completed
- [finished work, verified facts, or changes made; otherwise \"(none)\"]
### Active
- [current work, partial changes, or investigation state; otherwise \"(none)\"]
### Blocked
- [blockers, failing commands, or unknowns; otherwise \"(none)\"]
## Next Move
1. [immediate concrete action, or \"(none)\"]
2. [next action if known, or \"(none)\"]
## Relevant Files
- [file or directory path: why it matters, or \"(none)\"]
</template>
- Keep every section, even when empty.
- Use terse bullets, not prose paragraphs.
- Preserve exact file paths, symbols, commands, error strings, URLs, and identifiers when known.
- Do not mention the summary process or that context was compacted.";

const COMBINE: &str = "The <prior-summary> summarizes everything that happened before the <conversation>. Construct a new summary that combines both. The <prior-summary> is discarded after this: anything you do not carry into the new summary is lost.
When combining:
- Carry forward objectives, constraints, user directives, decisions, and parallel workstreams from the <prior-summary> even when the <conversation> does not mention them. Drop only what is finished and no longer needed.
- The <conversation> is more recent than the <prior-summary>. Where they conflict, the conversation wins: state the corrected fact and drop the old claim.
- Add new progress, decisions, constraints, and context from the conversation.
- Move completed work from \"Active\" to \"Completed\".
- If a blocker has been resolved, update the summary to reflect that while keeping any details still needed to continue the work.
- Update \"Objective\" and \"Next Move\" to reflect the current work state.";

/// The user message of a compaction request: the transcript, then what to
/// make of it (combined with the previous summary when there is one).
pub fn request(previous: Option<&str>, transcript: &str) -> String {
    let conversation = format!("Here is the conversation so far:\n<conversation>\n{transcript}\n</conversation>");
    match previous {
        None => [
            conversation.as_str(),
            "Create a new anchored summary from the conversation history in the <conversation> tags above so another coding agent can continue the work.",
            TEMPLATE,
        ]
        .join("\n"),
        Some(prior) => {
            let prior = format!("Here is the summary of the conversation before the <conversation> above:\n<prior-summary>\n{prior}\n</prior-summary>");
            [conversation.as_str(), prior.as_str(), COMBINE, TEMPLATE].join("\n")
        }
    }
}

/// A tool result as the transcript shows it: at most [`MAX_RESULT_CHARS`].
pub fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_RESULT_CHARS) {
        Some((at, _)) => format!("{}\n[truncated]", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_the_transcript_and_any_prior_summary() {
        let fresh = request(None, "[User]: hi");
        assert!(fresh.starts_with("Here is the conversation so far:\n<conversation>\n[User]: hi\n</conversation>\nCreate a new anchored summary"));
        assert!(fresh.ends_with("that context was compacted."));
        let again = request(Some("## Objective\n- x"), "[User]: more");
        assert!(again.contains("<prior-summary>\n## Objective\n- x\n</prior-summary>\nThe <prior-summary> summarizes"));
        assert!(!again.contains("Create a new anchored summary"));
    }

    #[test]
    fn long_results_are_clipped() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(MAX_RESULT_CHARS + 5);
        let cut = clip(&long);
        assert_eq!(cut.chars().count(), MAX_RESULT_CHARS + "\n[truncated]".len());
    }
}
