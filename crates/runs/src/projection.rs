//! What the thread shows of a recorded step: the messages it adds (each
//! announced by a `message` event), other events, and the tokens it used.
//! Written with the step, in the same statement (`record_step` in SQL).

use serde_json::{json, Value};

use crate::{widgets, Step};

/// The thread's view of one step.
#[derive(Debug, Default, PartialEq)]
pub struct Projection {
    /// `[{kind, content}]`: thread messages, in order.
    pub messages: Vec<Value>,
    /// `[{kind, data}]`: events other than the messages' own.
    pub events: Vec<Value>,
    pub tokens_in: i64,
    pub tokens_out: i64,
}

impl Projection {
    fn message(&mut self, kind: &str, content: Value) {
        self.messages
            .push(json!({ "kind": kind, "content": content }));
    }

    fn event(&mut self, kind: &str, data: Value) {
        self.events.push(json!({ "kind": kind, "data": data }));
    }
}

/// Projects `step`, recorded with `input` (a widget's spec is the call's
/// arguments in `input`).
pub fn project(step: &Step, input: &Value) -> Projection {
    let mut p = Projection::default();
    match step {
        Step::Llm { completion } => {
            p.tokens_in = completion.usage.input_tokens as i64;
            p.tokens_out = completion.usage.output_tokens as i64;
            if !completion.text.is_empty() {
                p.message("assistant", json!({ "text": completion.text }));
            }
            for call in &completion.tool_calls {
                let content =
                    json!({ "id": call.id, "name": call.name, "arguments": call.arguments });
                p.message("tool_call", content);
            }
        }
        Step::Delegate {
            call_id,
            child_run_id,
        } => p.event(
            "delegated",
            json!({ "call_id": call_id, "child_run_id": child_run_id }),
        ),
        // The request's (or approval's) message is written when it is opened.
        Step::HumanRequest { .. } | Step::Approval { .. } => {}
        Step::Wait { call_id, until_ms } => {
            p.event("timer", json!({ "call_id": call_id, "until_ms": until_ms }))
        }
        Step::Tool {
            call_id,
            name,
            output,
            is_error,
        } => {
            if !is_error && widgets::OUTPUTS.contains(&name.as_str()) {
                // The widget itself, for the thread view.
                let spec = input["call"]["arguments"].clone();
                p.message("widget", json!({ "type": name, "spec": spec }));
            }
            let content =
                json!({ "call_id": call_id, "name": name, "result": output, "is_error": is_error });
            p.message("tool_result", content);
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use synatra_llm::{Completion, ToolCall, Usage};

    #[test]
    fn a_model_turn_shows_its_text_and_calls_and_counts_tokens() {
        let step = Step::Llm {
            completion: Completion {
                text: "checking".into(),
                tool_calls: vec![ToolCall {
                    id: "a".into(),
                    name: "add".into(),
                    arguments: json!({ "n": 1 }),
                }],
                usage: Usage {
                    input_tokens: 21,
                    output_tokens: 9,
                },
                finish_reason: "tool_calls".into(),
            },
        };
        let p = project(&step, &json!({}));
        let kinds: Vec<&str> = p
            .messages
            .iter()
            .map(|m| m["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["assistant", "tool_call"]);
        assert_eq!(p.messages[1]["content"]["arguments"], json!({ "n": 1 }));
        assert_eq!((p.tokens_in, p.tokens_out), (21, 9));
        assert!(p.events.is_empty());
    }

    #[test]
    fn a_shown_widget_precedes_its_result_and_a_failed_one_is_not_shown() {
        let input = json!({ "call": { "arguments": { "rows": [] } } });
        let shown = Step::Tool {
            call_id: "w".into(),
            name: "output_table".into(),
            output: json!({ "shown": true }),
            is_error: false,
        };
        let p = project(&shown, &input);
        assert_eq!(p.messages[0]["kind"], "widget");
        assert_eq!(p.messages[0]["content"]["spec"], json!({ "rows": [] }));
        assert_eq!(p.messages[1]["kind"], "tool_result");
        let failed = Step::Tool {
            call_id: "w".into(),
            name: "output_table".into(),
            output: json!({ "error": "bad spec" }),
            is_error: true,
        };
        assert_eq!(project(&failed, &input).messages.len(), 1);
    }

    #[test]
    fn waits_are_events_and_opened_requests_add_nothing() {
        let timer = Step::Wait {
            call_id: "t".into(),
            until_ms: 5,
        };
        let p = project(&timer, &json!({}));
        assert_eq!(
            p.events,
            vec![json!({ "kind": "timer", "data": { "call_id": "t", "until_ms": 5 } })]
        );
        let asked = Step::HumanRequest {
            call_id: "h".into(),
            request_id: "r".into(),
        };
        assert_eq!(project(&asked, &json!({})), Projection::default());
    }
}
