//! The durable-execution contract of an agent run, in one place.
//!
//! - A run is a thread's conversation (messages up to the run's input) plus
//!   an append-only list of [`Step`]s, keyed `(run_id, seq)`.
//! - Only two things are ever executed for real: a model call and a tool
//!   call. Each becomes exactly one step, recorded in the same transaction
//!   that fences on the run's lease; a second recording of the same `seq`
//!   is refused by the primary key, so a step cannot be recorded twice.
//! - Everything else is derived: [`next_action`] decides what to do from the
//!   recorded steps alone, and [`conversation`] rebuilds what the model sees.
//!   Replaying a run therefore never re-executes a recorded step: the steps'
//!   outputs are read back, not recomputed.
//! - A tool call carries the idempotency key `run_id:seq` so a side effect
//!   retried after a crash can be deduplicated by the target.

pub mod widgets;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use synatra_agents::Limits;
use synatra_llm::{Completion, Message, ToolCall, ToolSpec};

/// A recorded step's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// The model answered (text and/or tool calls).
    Llm { completion: Completion },
    /// A tool call finished (its result, or the error the model will see).
    Tool {
        call_id: String,
        name: String,
        output: Value,
        is_error: bool,
    },
    /// A durable timer started by the `wait` tool call `call_id`: the run
    /// sleeps (without a process) until `until_ms` (Unix ms), then the call
    /// completes with a `Tool` step.
    Wait { call_id: String, until_ms: i64 },
    /// The tool call `call_id` was delegated to a sub-agent's run; the
    /// parent waits until that run finishes, then completes the call.
    Delegate {
        call_id: String,
        child_run_id: String,
    },
    /// The `human_request` call `call_id` waits for a person's answer to
    /// request `request_id`; the answer completes the call.
    HumanRequest { call_id: String, request_id: String },
    /// A person must approve the call before it runs.
    Approval {
        call_id: String,
        approval_id: String,
    },
}

impl Step {
    /// The recorded result of `call`.
    pub fn tool_result(call: &ToolCall, output: Value, is_error: bool) -> Step {
        Step::Tool {
            call_id: call.id.clone(),
            name: call.name.clone(),
            output,
            is_error,
        }
    }

    /// The `kind` column value.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Llm { .. } => "llm",
            Step::Tool { .. } => "tool",
            Step::Wait { .. } => "wait",
            Step::Delegate { .. } => "delegate",
            Step::HumanRequest { .. } => "human_request",
            Step::Approval { .. } => "approval",
        }
    }
}

/// What the run must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Ask the model (the `iteration`-th model turn, from 0).
    CallModel { iteration: u32 },
    /// Execute one tool call the model asked for.
    CallTool(ToolCall),
    /// A durable timer is running for this call: sleep until `until_ms`, then complete it.
    Wake { call: ToolCall, until_ms: i64 },
    /// A sub-agent run answers this call: collect its answer (or keep waiting).
    AwaitChild {
        call: ToolCall,
        child_run_id: String,
    },
    /// A person is asked: collect the answer (or keep waiting).
    AwaitHuman { call: ToolCall, request_id: String },
    /// The call's approval was opened: run it once approved.
    AwaitApproval { call: ToolCall, approval_id: String },
    /// The model answered without tool calls: the run is done.
    Complete { text: String },
    /// A limit was reached.
    Fail { error: String },
}

/// Decides the next action from the recorded steps alone.
pub fn next_action(limits: &Limits, steps: &[Step]) -> Action {
    let iterations = steps
        .iter()
        .filter(|s| matches!(s, Step::Llm { .. }))
        .count() as u32;
    let Some(last_llm) = steps.iter().rposition(|s| matches!(s, Step::Llm { .. })) else {
        return Action::CallModel { iteration: 0 };
    };
    let Step::Llm { completion } = &steps[last_llm] else {
        unreachable!("rposition found an Llm step");
    };
    if completion.tool_calls.is_empty() {
        return Action::Complete {
            text: completion.text.clone(),
        };
    }
    let max_calls = limits.max_tool_calls_per_iteration as usize;
    if completion.tool_calls.len() > max_calls {
        return Action::Fail {
            error: format!(
                "the model requested {} tool calls in one turn; the limit is {max_calls}",
                completion.tool_calls.len()
            ),
        };
    }
    let after = &steps[last_llm + 1..];
    let done = after
        .iter()
        .filter(|s| matches!(s, Step::Tool { .. }))
        .count();
    if let Some(call) = completion.tool_calls.get(done) {
        // Approvals of one turn are opened together, so look past the last step.
        let approval = after.iter().find_map(|s| match s {
            Step::Approval {
                call_id,
                approval_id,
            } if *call_id == call.id => Some(approval_id.clone()),
            _ => None,
        });
        if let Some(approval_id) = approval {
            return Action::AwaitApproval {
                call: call.clone(),
                approval_id,
            };
        }
        match after.last() {
            Some(Step::Wait { call_id, until_ms }) if *call_id == call.id => {
                return Action::Wake {
                    call: call.clone(),
                    until_ms: *until_ms,
                };
            }
            Some(Step::HumanRequest {
                call_id,
                request_id,
            }) if *call_id == call.id => {
                return Action::AwaitHuman {
                    call: call.clone(),
                    request_id: request_id.clone(),
                };
            }
            Some(Step::Delegate {
                call_id,
                child_run_id,
            }) if *call_id == call.id => {
                return Action::AwaitChild {
                    call: call.clone(),
                    child_run_id: child_run_id.clone(),
                };
            }
            _ => {}
        }
        return Action::CallTool(call.clone());
    }
    if iterations >= limits.max_iterations {
        return Action::Fail {
            error: format!("the run reached max_iterations ({})", limits.max_iterations),
        };
    }
    Action::CallModel {
        iteration: iterations,
    }
}

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
        let mut end = MAX_TOOL_CONTENT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let total = text.len();
        text.truncate(end);
        text.push_str(&format!(
            "… [result truncated: {total} bytes, the first {end} shown]"
        ));
    }
    text
}

/// The idempotency key of step `seq` of `run_id`.
pub fn idempotency_key(run_id: &str, seq: usize) -> String {
    format!("{run_id}:{seq}")
}

/// The built-in tool that starts a durable timer.
pub const WAIT_TOOL: &str = "wait";

/// Longest `wait` (one year), in seconds.
pub const MAX_WAIT_SECONDS: f64 = 31_536_000.0;

/// Built-in tools available to agents that list them in `tools` (until user
/// tools exist): `add_numbers`, and `wait` (a durable timer).
pub fn builtin_tools(enabled: &[String]) -> Vec<ToolSpec> {
    let all = [
        ToolSpec {
            name: "add_numbers".into(),
            description: "Adds a list of numbers and returns their sum.".into(),
            parameters: json!({
                "type": "object",
                "properties": { "numbers": { "type": "array", "items": { "type": "number" } } },
                "required": ["numbers"],
            }),
        },
        ToolSpec {
            name: WAIT_TOOL.into(),
            description: "Pauses the run for a number of seconds (survives restarts).".into(),
            parameters: json!({
                "type": "object",
                "properties": { "seconds": { "type": "number", "minimum": 0, "maximum": MAX_WAIT_SECONDS } },
                "required": ["seconds"],
            }),
        },
    ];
    all.into_iter()
        .filter(|t| enabled.contains(&t.name))
        .collect()
}

/// Prefix of the tools that delegate to sub-agents: `delegate_to_<slug>`.
pub const DELEGATE_PREFIX: &str = "delegate_to_";

/// The delegation tool for a sub-agent (its slug with `-` as `_`).
pub fn delegate_tool(slug: &str, name: &str, description: &str) -> ToolSpec {
    ToolSpec {
        name: format!("{DELEGATE_PREFIX}{}", slug.replace('-', "_")),
        description: format!("Delegate a task to the agent \"{name}\": {description}"),
        parameters: json!({
            "type": "object",
            "properties": { "message": { "type": "string", "description": "What the agent should do" } },
            "required": ["message"],
        }),
    }
}

/// The validated duration of a `wait` call, in milliseconds.
pub fn wait_millis(arguments: &Value) -> Result<i64, String> {
    match arguments["seconds"].as_f64() {
        Some(s) if (0.0..=MAX_WAIT_SECONDS).contains(&s) => Ok((s * 1000.0) as i64),
        _ => Err(format!(
            "`seconds` must be a number from 0 to {MAX_WAIT_SECONDS}"
        )),
    }
}

/// Runs a built-in tool; `Err` is a tool error the model sees.
pub fn run_builtin(name: &str, arguments: &Value) -> Result<Value, String> {
    match name {
        "add_numbers" => {
            let numbers = arguments["numbers"]
                .as_array()
                .ok_or("`numbers` must be an array of numbers")?;
            let mut sum = 0.0;
            for n in numbers {
                sum += n.as_f64().ok_or("`numbers` must contain only numbers")?;
            }
            Ok(json!({ "sum": sum }))
        }
        other => Err(format!(
            "no tool named `{other}` is available to this agent"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synatra_llm::Usage;

    fn llm(text: &str, calls: &[(&str, &str)]) -> Step {
        Step::Llm {
            completion: Completion {
                text: text.into(),
                tool_calls: calls
                    .iter()
                    .map(|(id, name)| ToolCall {
                        id: (*id).into(),
                        name: (*name).into(),
                        arguments: json!({}),
                    })
                    .collect(),
                usage: Usage::default(),
                finish_reason: "stop".into(),
            },
        }
    }

    fn tool(id: &str) -> Step {
        Step::Tool {
            call_id: id.into(),
            name: "t".into(),
            output: json!({}),
            is_error: false,
        }
    }

    #[test]
    fn a_run_alternates_model_turns_and_tool_calls_until_an_answer() {
        let limits = Limits::default();
        let mut steps = vec![];
        assert_eq!(
            next_action(&limits, &steps),
            Action::CallModel { iteration: 0 }
        );
        steps.push(llm("", &[("a", "t"), ("b", "t")]));
        assert!(matches!(next_action(&limits, &steps), Action::CallTool(c) if c.id == "a"));
        steps.push(tool("a"));
        assert!(matches!(next_action(&limits, &steps), Action::CallTool(c) if c.id == "b"));
        steps.push(tool("b"));
        assert_eq!(
            next_action(&limits, &steps),
            Action::CallModel { iteration: 1 }
        );
        steps.push(llm("done", &[]));
        assert_eq!(
            next_action(&limits, &steps),
            Action::Complete {
                text: "done".into()
            }
        );
    }

    #[test]
    fn approvals_opened_together_are_awaited_call_by_call() {
        let limits = Limits::default();
        let approval = |call: &str, id: &str| Step::Approval {
            call_id: call.into(),
            approval_id: id.into(),
        };
        let mut steps = vec![
            llm("", &[("a", "t"), ("b", "t")]),
            approval("a", "A"),
            approval("b", "B"),
        ];
        assert!(matches!(
            next_action(&limits, &steps),
            Action::AwaitApproval { call, approval_id } if call.id == "a" && approval_id == "A"
        ));
        steps.push(tool("a"));
        assert!(matches!(
            next_action(&limits, &steps),
            Action::AwaitApproval { call, approval_id } if call.id == "b" && approval_id == "B"
        ));
        steps.push(tool("b"));
        assert_eq!(
            next_action(&limits, &steps),
            Action::CallModel { iteration: 1 }
        );
        // Approval steps never reach the model.
        assert_eq!(conversation("", &[], &steps).len(), 3);
    }

    #[test]
    fn large_tool_results_are_cut_for_the_model() {
        let small = json!({ "ok": 1 });
        assert_eq!(tool_content(&small), small.to_string());
        let big = json!({ "text": "é".repeat(MAX_TOOL_CONTENT) });
        let cut = tool_content(&big);
        assert!(cut.len() < MAX_TOOL_CONTENT + 100);
        assert!(cut.ends_with("shown]"), "{}", &cut[cut.len() - 60..]);
    }

    #[test]
    fn limits_fail_the_run() {
        let limits = Limits {
            max_iterations: 1,
            max_tool_calls_per_iteration: 1,
            ..Limits::default()
        };
        let steps = vec![llm("", &[("a", "t")]), tool("a")];
        assert!(
            matches!(next_action(&limits, &steps), Action::Fail { error } if error.contains("max_iterations"))
        );
        let steps = vec![llm("", &[("a", "t"), ("b", "t")])];
        assert!(
            matches!(next_action(&limits, &steps), Action::Fail { error } if error.contains("tool calls"))
        );
    }

    #[test]
    fn a_wait_step_resumes_as_a_wake_until_its_tool_step_is_recorded() {
        let limits = Limits::default();
        let mut steps = vec![llm("", &[("a", "wait")])];
        assert!(matches!(next_action(&limits, &steps), Action::CallTool(c) if c.name == "wait"));
        steps.push(Step::Wait {
            call_id: "a".into(),
            until_ms: 1_000,
        });
        assert!(matches!(
            next_action(&limits, &steps),
            Action::Wake {
                until_ms: 1_000,
                ..
            }
        ));
        steps.push(tool("a"));
        assert_eq!(
            next_action(&limits, &steps),
            Action::CallModel { iteration: 1 }
        );
        assert_eq!(
            conversation("", &[], &steps).len(),
            2,
            "the timer itself is not shown to the model"
        );
        assert_eq!(wait_millis(&json!({ "seconds": 1.5 })), Ok(1500));
        let mut steps = vec![llm("", &[("d", "delegate_to_x")])];
        steps.push(Step::Delegate {
            call_id: "d".into(),
            child_run_id: "c".into(),
        });
        assert!(
            matches!(next_action(&limits, &steps), Action::AwaitChild { child_run_id, .. } if child_run_id == "c")
        );
        assert_eq!(
            delegate_tool("sales-bot", "Sales", "sells").name,
            "delegate_to_sales_bot"
        );
        assert!(wait_millis(&json!({ "seconds": -1 })).is_err());
    }

    #[test]
    fn conversation_replays_recorded_outputs() {
        let history = vec![Message::User {
            text: "2+3?".into(),
        }];
        let steps = vec![llm("", &[("a", "t")]), tool("a")];
        let conv = conversation("Be exact.", &history, &steps);
        assert_eq!(conv.len(), 4);
        assert!(matches!(&conv[0], Message::System { text } if text == "Be exact."));
        assert!(matches!(&conv[3], Message::Tool { call_id, .. } if call_id == "a"));
    }

    #[test]
    fn builtin_add_numbers_sums_and_reports_bad_input() {
        assert_eq!(
            run_builtin("add_numbers", &json!({ "numbers": [2, 3.5] })).unwrap(),
            json!({ "sum": 5.5 })
        );
        assert!(run_builtin("add_numbers", &json!({ "numbers": "x" })).is_err());
        assert!(run_builtin("rm_rf", &json!({}))
            .unwrap_err()
            .contains("no tool"));
        assert_eq!(builtin_tools(&["add_numbers".into()]).len(), 1);
        assert_eq!(
            builtin_tools(&["add_numbers".into(), "wait".into()]).len(),
            2
        );
        assert!(builtin_tools(&[]).is_empty());
    }
}
