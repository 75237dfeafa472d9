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

pub mod builtins;
pub mod calls;
pub mod conversation;
pub mod history;
pub mod plan;
pub mod projection;
pub mod retry;
pub mod status;
pub mod step;
pub mod widgets;

pub use builtins::{
    builtin_tools, delegate_tool, run_builtin, wait_millis, DELEGATE_PREFIX, MAX_WAIT_SECONDS,
    WAIT_TOOL,
};
pub use calls::{classify, CallKind};
pub use conversation::{conversation, tool_content, MAX_TOOL_CONTENT};
pub use history::history;
pub use plan::{next_action, Action};
pub use projection::{project, Projection};
pub use retry::{after_model_error, Retry, MAX_MODEL_RETRIES};
pub use status::{Ending, Outcome, RunStatus, ThreadStatus, WaitingFor};
pub use step::{idempotency_key, Step};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use synatra_agents::Limits;
    use synatra_llm::{Completion, Message, ToolCall, Usage};

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
    fn a_step_completes_the_run_exactly_when_the_next_action_is_complete() {
        let limits = Limits::default();
        let history = [llm("", &[("a", "t")]), tool("a")];
        for step in [
            llm("done", &[]),
            llm("", &[]),
            llm("", &[("b", "t")]),
            tool("a"),
        ] {
            let mut steps = history.to_vec();
            steps.push(step.clone());
            let complete = matches!(next_action(&limits, &steps), Action::Complete { .. });
            assert_eq!(plan::completes(&step), complete, "{step:?}");
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
