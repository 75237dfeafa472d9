//! What a recorded step holds, and the idempotency key of its side effect.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use synatra_llm::{Completion, ToolCall};

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

/// The idempotency key of step `seq` of `run_id`.
pub fn idempotency_key(run_id: &str, seq: usize) -> String {
    format!("{run_id}:{seq}")
}
