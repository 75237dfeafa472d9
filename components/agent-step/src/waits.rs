//! Waiting without a process: asking a person (`human_request`), durable
//! timers (`wait`), and collecting a sub-agent's answer. A wait parks the
//! run; whatever answers it makes the run ready again.

use serde_json::json;
use synatra_db::runs;
use synatra_db::DbError;
use synatra_llm::ToolCall;
use synatra_runs::{idempotency_key, wait_millis, widgets, Outcome, Step, WaitingFor};

use crate::engine::Next;
use crate::recorder::Recorder;

/// A `human_request` call: opens the request, shows it on the thread and
/// parks the run, all in one transaction (or reports bad arguments).
pub fn ask(rec: &mut Recorder, call: &ToolCall) -> Result<Next, DbError> {
    let input =
        json!({ "call": call, "idempotency_key": idempotency_key(&rec.run.id, rec.next_seq()) });
    if let Err(e) = widgets::check_request(&call.arguments) {
        return Ok(Next::Record(
            Step::tool_result(call, json!({ "error": e }), true),
            input,
        ));
    }
    rec.transact(|tx| {
        let request_id = runs::create_human_request(tx.db, tx.run, &call.id, &call.arguments)?;
        let step = Step::HumanRequest {
            call_id: call.id.clone(),
            request_id: request_id.clone(),
        };
        tx.step(step, &input)?;
        let content =
            json!({ "request_id": request_id, "call_id": call.id, "request": call.arguments });
        tx.message("human_request", &content)?;
        tx.park(WaitingFor::User)
    })?;
    Ok(Next::Stop(WaitingFor::User.outcome()))
}

/// An open human request: its answer completes the call, else keep waiting.
pub fn human(rec: &mut Recorder, call: &ToolCall, request_id: &str) -> Result<Next, DbError> {
    let Some((status, response)) = runs::human_request(rec.db, request_id)? else {
        return Err(DbError::Other(format!(
            "human request {request_id} vanished"
        )));
    };
    if status == "pending" {
        let parked = rec.park_while(WaitingFor::User, |db| {
            runs::request_still_pending(db, request_id)
        })?;
        return Ok(parked.map_or(Next::Again, Next::Stop));
    }
    let output = json!({ "status": status, "data": response });
    let input = json!({ "call": call, "request_id": request_id });
    Ok(Next::Record(Step::tool_result(call, output, false), input))
}

/// A delegated call: the sub-agent's outcome completes it, else keep waiting.
pub fn child(rec: &mut Recorder, call: &ToolCall, child_run_id: &str) -> Result<Next, DbError> {
    let Some((status, error, answer)) = runs::child_outcome(rec.db, child_run_id)? else {
        return Err(DbError::Other(format!("child run {child_run_id} vanished")));
    };
    let (output, is_error) = match status.as_str() {
        "completed" => (json!({ "answer": answer }), false),
        "failed" | "cancelled" | "rejected" => (
            json!({ "error": format!("the sub-agent's run {status}: {}", error.unwrap_or_default()) }),
            true,
        ),
        _ => {
            let parked = rec.park_while(WaitingFor::Subagent, |db| {
                runs::child_still_running(db, child_run_id)
            })?;
            return Ok(parked.map_or(Next::Again, Next::Stop));
        }
    };
    let input = json!({ "call": call, "child_run_id": child_run_id });
    Ok(Next::Record(
        Step::tool_result(call, output, is_error),
        input,
    ))
}

/// A `wait` call: records the timer (or reports bad arguments).
pub fn start_timer(rec: &Recorder, call: &ToolCall) -> Next {
    let input =
        json!({ "call": call, "idempotency_key": idempotency_key(&rec.run.id, rec.next_seq()) });
    match wait_millis(&call.arguments) {
        Ok(ms) => Next::Record(
            Step::Wait {
                call_id: call.id.clone(),
                until_ms: now_ms() + ms,
            },
            input,
        ),
        Err(e) => Next::Record(Step::tool_result(call, json!({ "error": e }), true), input),
    }
}

/// A running timer: sleeps until `until_ms`, then completes the call.
pub fn wake(rec: &Recorder, call: &ToolCall, until_ms: i64) -> Result<Next, DbError> {
    let now = now_ms();
    if now < until_ms {
        runs::sleep_until(rec.db, &rec.run.id, rec.lease, until_ms - now)?;
        return Ok(Next::Stop(Outcome::Sleeping));
    }
    let output = json!({ "waited_until_ms": until_ms });
    let input =
        json!({ "call": call, "idempotency_key": idempotency_key(&rec.run.id, rec.next_seq()) });
    Ok(Next::Record(Step::tool_result(call, output, false), input))
}

/// Wall-clock time in Unix milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
