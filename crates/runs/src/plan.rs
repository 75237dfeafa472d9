//! Deciding what a run does next, from its recorded steps alone.

use synatra_agents::Limits;
use synatra_llm::ToolCall;

use crate::Step;

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

/// Whether recording `step` completes the run: a model turn without tool
/// calls (what [`next_action`] then answers with [`Action::Complete`]).
pub fn completes(step: &Step) -> bool {
    matches!(step, Step::Llm { completion } if completion.tool_calls.is_empty())
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
