//! Rebuilding a thread's earlier conversation (everything before this run's
//! input) as model messages, from the thread's recorded messages.

use std::collections::HashSet;

use serde_json::Value;
use synatra_llm::{Message, ToolCall};

use crate::conversation::tool_content;

/// The thread so far as model messages: user messages, answers, and the
/// tool calls of earlier runs with their results. A call without a recorded
/// result is left out, since providers refuse unanswered calls. A user
/// message written while calls awaited their results (one that skipped a
/// human request) follows those results, as providers require.
///
/// `messages` are `(kind, content)` in thread order; kinds other than
/// `user`, `assistant`, `tool_call` and `tool_result` are not shown.
pub fn history(messages: &[(String, Value)]) -> Vec<Message> {
    let answered: HashSet<&str> = messages
        .iter()
        .filter(|(kind, _)| kind == "tool_result")
        .filter_map(|(_, c)| c["call_id"].as_str())
        .collect();
    let mut out: Vec<Message> = Vec::new();
    let mut open_calls = HashSet::new();
    let mut deferred = Vec::new();
    for (kind, content) in messages {
        let text = content["text"].as_str().unwrap_or_default().to_string();
        match kind.as_str() {
            "user" if !open_calls.is_empty() => deferred.push(Message::User { text }),
            "user" => out.push(Message::User { text }),
            "assistant" => out.push(Message::Assistant {
                text,
                tool_calls: Vec::new(),
            }),
            "tool_call" => {
                let Some(id) = content["id"].as_str().filter(|id| answered.contains(id)) else {
                    continue;
                };
                open_calls.insert(id.to_string());
                let call = ToolCall {
                    id: id.to_string(),
                    name: content["name"].as_str().unwrap_or_default().to_string(),
                    arguments: content["arguments"].clone(),
                };
                match out.last_mut() {
                    Some(Message::Assistant { tool_calls, .. }) => tool_calls.push(call),
                    _ => out.push(Message::Assistant {
                        text: String::new(),
                        tool_calls: vec![call],
                    }),
                }
            }
            "tool_result" => {
                let call_id = content["call_id"].as_str().unwrap_or_default().to_string();
                open_calls.remove(&call_id);
                out.push(Message::Tool {
                    call_id,
                    name: content["name"].as_str().unwrap_or_default().to_string(),
                    content: tool_content(&content["result"]),
                });
                if open_calls.is_empty() {
                    out.append(&mut deferred);
                }
            }
            _ => {}
        }
    }
    out.append(&mut deferred);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(kind: &str, content: Value) -> (String, Value) {
        (kind.to_string(), content)
    }

    #[test]
    fn calls_join_the_answer_before_them_and_results_follow() {
        let h = history(&[
            m("user", json!({ "text": "2+3?" })),
            m("assistant", json!({ "text": "let me add" })),
            m(
                "tool_call",
                json!({ "id": "a", "name": "add", "arguments": { "n": [2, 3] } }),
            ),
            m(
                "tool_result",
                json!({ "call_id": "a", "name": "add", "result": { "sum": 5 } }),
            ),
            m("assistant", json!({ "text": "5" })),
        ]);
        assert_eq!(h.len(), 4);
        let Message::Assistant { text, tool_calls } = &h[1] else {
            panic!("{h:?}")
        };
        assert_eq!((text.as_str(), tool_calls.len()), ("let me add", 1));
        assert!(
            matches!(&h[2], Message::Tool { call_id, content, .. } if call_id == "a" && content == r#"{"sum":5}"#)
        );
    }

    #[test]
    fn a_call_never_answered_is_left_out() {
        let h = history(&[
            m("user", json!({ "text": "go" })),
            m(
                "tool_call",
                json!({ "id": "lost", "name": "t", "arguments": {} }),
            ),
            m("user", json!({ "text": "again" })),
        ]);
        assert_eq!(h.len(), 2, "{h:?}");
        assert!(h.iter().all(|m| matches!(m, Message::User { .. })));
    }

    #[test]
    fn a_user_message_sent_while_calls_were_open_follows_their_results() {
        let h = history(&[
            m(
                "tool_call",
                json!({ "id": "a", "name": "t", "arguments": {} }),
            ),
            m(
                "tool_call",
                json!({ "id": "b", "name": "t", "arguments": {} }),
            ),
            m("user", json!({ "text": "skip that" })),
            m(
                "tool_result",
                json!({ "call_id": "a", "name": "t", "result": 1 }),
            ),
            m(
                "tool_result",
                json!({ "call_id": "b", "name": "t", "result": 2 }),
            ),
            m("widget", json!({ "type": "table" })),
        ]);
        let kinds: Vec<&str> = h
            .iter()
            .map(|m| match m {
                Message::Assistant { .. } => "assistant",
                Message::Tool { .. } => "tool",
                Message::User { .. } => "user",
                Message::System { .. } => "system",
            })
            .collect();
        assert_eq!(kinds, ["assistant", "tool", "tool", "user"]);
    }
}
