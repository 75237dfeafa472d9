//! What the model sees: the system prompt, the thread so far, then this
//! run's recorded steps, replayed from their outputs.

use serde_json::Value;
use synatra_llm::Message;

use crate::Step;

/// What the model sees: the system prompt, the thread so far, then this run's steps.
pub fn conversation(system_prompt: &str, history: &[Message], steps: &[Step]) -> Vec<Message> {
    let mut out = Vec::with_capacity(history.len() + steps.len() + 1);
    if !system_prompt.trim().is_empty() {
        out.push(Message::System {
            text: system_prompt.to_string(),
        });
    }
    out.extend_from_slice(history);
    for step in steps {
        out.push(match step {
            Step::Llm { completion } => Message::Assistant {
                text: completion.text.clone(),
                tool_calls: completion.tool_calls.clone(),
            },
            Step::Tool {
                call_id,
                name,
                output,
                ..
            } => Message::Tool {
                call_id: call_id.clone(),
                name: name.clone(),
                content: tool_content(output),
            },
            // The model sees the finished call (the Tool step), not the wait.
            Step::Wait { .. }
            | Step::Delegate { .. }
            | Step::HumanRequest { .. }
            | Step::Approval { .. } => continue,
        });
    }
    out
}

/// Most bytes of one tool result the model is sent (the full result stays
/// on the thread): a large result would crowd out the conversation.
pub const MAX_TOOL_CONTENT: usize = 64 << 10;

/// A tool result as the model sees it: JSON text, cut at
/// [`MAX_TOOL_CONTENT`] with a note saying so.
pub fn tool_content(output: &Value) -> String {
    let mut text = output.to_string();
    if text.len() > MAX_TOOL_CONTENT {
        let end = synatra_tools::sandbox::truncated(&text, MAX_TOOL_CONTENT).len();
        let total = text.len();
        text.truncate(end);
        text.push_str(&format!(
            "… [result truncated: {total} bytes, the first {end} shown]"
        ));
    }
    text
}
