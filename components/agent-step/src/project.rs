//! The thread's view of a run: the messages and events each recorded step
//! produces, written in the step's own transaction.

use serde_json::{json, Value};
use synatra_db::runs::{self, RunState};
use synatra_db::{Db, DbError};
use synatra_runs::{idempotency_key, widgets, Step};

/// Inserts step `seq` with the messages and events it produces.
pub fn record_step(
    db: &Db,
    run: &RunState,
    seq: usize,
    step: &Step,
    input: &Value,
) -> Result<(), DbError> {
    let output = serde_json::to_value(step).map_err(|e| DbError::Other(e.to_string()))?;
    runs::insert_step(
        db,
        &run.id,
        seq as i32,
        step.kind(),
        &idempotency_key(&run.id, seq),
        input,
        &output,
    )?;
    match step {
        Step::Llm { completion } => {
            runs::add_usage(
                db,
                &run.id,
                completion.usage.input_tokens as i64,
                completion.usage.output_tokens as i64,
            )?;
            if !completion.text.is_empty() {
                message(db, run, "assistant", &json!({ "text": completion.text }))?;
            }
            for call in &completion.tool_calls {
                let content =
                    json!({ "id": call.id, "name": call.name, "arguments": call.arguments });
                message(db, run, "tool_call", &content)?;
            }
        }
        Step::Delegate {
            call_id,
            child_run_id,
        } => {
            let data = json!({ "call_id": call_id, "child_run_id": child_run_id });
            runs::add_event(db, &run.thread_id, Some(&run.id), "delegated", &data)?;
        }
        // The request's (or approval's) message is written when it is opened.
        Step::HumanRequest { .. } | Step::Approval { .. } => {}
        Step::Wait { call_id, until_ms } => {
            let data = json!({ "call_id": call_id, "until_ms": until_ms });
            runs::add_event(db, &run.thread_id, Some(&run.id), "timer", &data)?;
        }
        Step::Tool {
            call_id,
            name,
            output,
            is_error,
        } => {
            if !is_error && widgets::OUTPUTS.contains(&name.as_str()) {
                // The widget itself, for the thread view.
                let content = json!({ "type": name, "spec": input["call"]["arguments"] });
                message(db, run, "widget", &content)?;
            }
            let content =
                json!({ "call_id": call_id, "name": name, "result": output, "is_error": is_error });
            message(db, run, "tool_result", &content)?;
        }
    }
    Ok(())
}

/// Adds a thread message of the run, with the event announcing it.
pub fn message(db: &Db, run: &RunState, kind: &str, content: &Value) -> Result<(), DbError> {
    let id = runs::add_message(db, &run.thread_id, Some(&run.id), kind, content)?;
    let data = json!({ "id": id, "kind": kind, "content": content });
    runs::add_event(db, &run.thread_id, Some(&run.id), "message", &data)
}
