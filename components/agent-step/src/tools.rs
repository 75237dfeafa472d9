//! Tool calls: the org's tools (run at once, or held for approval first),
//! output widgets and built-in functions. Each call becomes one recorded
//! `Tool` step carrying the idempotency key the sandbox received.

use serde_json::{json, Value};
use synatra_db::approvals::{self, NewApproval};
use synatra_db::DbError;
use synatra_llm::ToolCall;
use synatra_runs::{idempotency_key, run_builtin, widgets, Ending, Step, WaitingFor};

use crate::engine::{Next, Toolbox};
use crate::recorder::Recorder;
use crate::user_tools::{self, UserTool};

/// A call to one of the org's tools: checked, then run, or held for approval.
pub async fn user(
    rec: &mut Recorder<'_>,
    toolbox: &Toolbox,
    call: &ToolCall,
) -> Result<Next, DbError> {
    let Some(tool) = toolbox.user_tool(&call.name) else {
        return Err(DbError::Other(format!(
            "`{}` is not a user tool",
            call.name
        )));
    };
    let key = idempotency_key(&rec.run.id, rec.next_seq());
    match tool.check(&call.arguments) {
        Err(e) => {
            let input = json!({ "call": call, "version": tool.version, "idempotency_key": key });
            Ok(Next::Record(
                Step::tool_result(call, json!({ "error": e }), true),
                input,
            ))
        }
        Ok(_) if tool.def.needs_approval() => {
            let approval_id = open_approvals(rec, toolbox)?;
            await_approval(rec, &approval_id)
        }
        Ok((params, _)) => {
            rec.hold(rec.lease_secs)?;
            let (output, is_error, logs) = tool.run(&params, &key).await;
            let input = json!({ "call": call, "version": tool.version, "logs": logs, "idempotency_key": key });
            Ok(Next::Record(
                Step::tool_result(call, output, is_error),
                input,
            ))
        }
    }
}

/// A held call whose approval was opened: run it once approved (exactly
/// the version and arguments the person approved), or keep waiting.
pub async fn approved(
    rec: &mut Recorder<'_>,
    call: &ToolCall,
    approval_id: &str,
) -> Result<Next, DbError> {
    let Some(approval) = approvals::get(rec.db, None, approval_id, false)?.map(|a| a.approval)
    else {
        return Err(DbError::Other(format!("approval {approval_id} vanished")));
    };
    let tool = approval.tool_name;
    match approval.status.as_str() {
        "pending" => await_approval(rec, approval_id),
        "approved" => {
            let version = approval.tool_version;
            let Some(user_tool) = user_tools::at_version(rec.db, &rec.run.org_id, &tool, &version)?
            else {
                return Ok(Next::End(Ending::Failed(format!(
                    "the approved tool `{tool}` (version {version}) is no longer available"
                ))));
            };
            let params = match approval.final_params {
                Value::Null => approval.params,
                edited => edited,
            };
            let key = idempotency_key(&rec.run.id, rec.next_seq());
            rec.hold(rec.lease_secs)?;
            let (output, is_error, logs) = user_tool.run(&params, &key).await;
            let input = json!({ "call": call, "approval_id": approval_id, "params": params,
                                "version": user_tool.version, "logs": logs, "idempotency_key": key });
            Ok(Next::Record(
                Step::tool_result(call, output, is_error),
                input,
            ))
        }
        // Rejections and timeouts are settled before any action.
        _ => Ok(Next::End(Ending::Cancelled)),
    }
}

/// How a rejected or timed-out approval ends the run.
pub fn approval_ending(ended: approvals::Ended) -> Ending {
    match ended {
        approvals::Ended::Rejected { tool, comment } => {
            let comment = comment.map(|c| format!(": {c}")).unwrap_or_default();
            Ending::Rejected(format!("a reviewer rejected the call to `{tool}`{comment}"))
        }
        approvals::Ended::TimedOut { tool } => Ending::Failed(format!(
            "timeout: nobody decided on the call to `{tool}` before its approval expired"
        )),
    }
}

/// An output widget: checked, shown on the thread when its step is recorded.
pub fn widget(rec: &Recorder, call: &ToolCall) -> Next {
    let input =
        json!({ "call": call, "idempotency_key": idempotency_key(&rec.run.id, rec.next_seq()) });
    let (output, is_error) = match widgets::check_output(&call.name, &call.arguments) {
        Ok(()) => (json!({ "shown": true }), false),
        Err(e) => (json!({ "error": e }), true),
    };
    Next::Record(Step::tool_result(call, output, is_error), input)
}

/// A built-in function (an unknown name is an error the model sees).
pub fn builtin(rec: &Recorder, call: &ToolCall) -> Next {
    let (output, is_error) = match run_builtin(&call.name, &call.arguments) {
        Ok(v) => (v, false),
        Err(e) => (json!({ "error": e }), true),
    };
    let input =
        json!({ "call": call, "idempotency_key": idempotency_key(&rec.run.id, rec.next_seq()) });
    Next::Record(Step::tool_result(call, output, is_error), input)
}

/// Opens an approval for the current call and for every later call of the
/// same model turn that also needs one (each gets its own approval, so
/// reviewers see them all at once); returns the current call's approval.
fn open_approvals(rec: &mut Recorder, toolbox: &Toolbox) -> Result<String, DbError> {
    let steps = rec.steps();
    let Some(Step::Llm { completion }) = steps.iter().rev().find(|s| matches!(s, Step::Llm { .. }))
    else {
        return Err(DbError::Other("a tool call without a model turn".into()));
    };
    let done = steps
        .iter()
        .rev()
        .take_while(|s| !matches!(s, Step::Llm { .. }))
        .filter(|s| matches!(s, Step::Tool { .. }))
        .count();
    let held: Vec<(ToolCall, &UserTool, Value, Option<String>)> = completion.tool_calls[done..]
        .iter()
        .filter_map(|call| {
            let tool = toolbox.user_tool(&call.name)?;
            let (params, rationale) = tool.check(&call.arguments).ok()?;
            tool.def
                .needs_approval()
                .then(|| (call.clone(), tool, params, rationale))
        })
        .collect();
    rec.transact(|tx| {
        let mut first = None;
        for (call, tool, params, rationale) in &held {
            let approval_id = approvals::open(
                tx.db,
                &NewApproval {
                    org_id: &tx.run.org_id,
                    thread_id: &tx.run.thread_id,
                    run_id: &tx.run.id,
                    call_id: &call.id,
                    tool_name: &tool.def.name,
                    tool_version: &tool.version,
                    policy: tool.def.policy_name(),
                    self_approval: tool.def.approval.self_approval,
                    review: tool.def.approval.review,
                    params,
                    params_schema: &tool.def.params,
                    rationale: rationale.as_deref(),
                    timeout_secs: tool.def.approval.timeout_secs.into(),
                },
            )?;
            first.get_or_insert_with(|| approval_id.clone());
            let step = Step::Approval {
                call_id: call.id.clone(),
                approval_id,
            };
            tx.step(step, &json!({ "call": call, "version": tool.version }))?;
        }
        first.ok_or_else(|| DbError::Other("the held call itself gets an approval".into()))
    })
}

/// Parks the run until approval `id` is decided, waking it when the run's
/// first pending approval expires (so a timeout is recorded even if nobody
/// acts); decides again if it was decided meanwhile.
fn await_approval(rec: &mut Recorder, id: &str) -> Result<Next, DbError> {
    // Checked after the fence: a decision locks the run row first too.
    let parked = rec.transact(|tx| {
        let settled = approvals::settle(tx.db, &tx.run.id)?.is_some();
        if settled || !approvals::still_pending(tx.db, id)? {
            return Ok(false);
        }
        tx.park(WaitingFor::Approval)?;
        if let Some(ms) = approvals::next_expiry_ms(tx.db, &tx.run.id)? {
            synatra_db::runs::set_wake(tx.db, &tx.run.id, ms)?;
        }
        Ok(true)
    })?;
    Ok(if parked {
        Next::Stop(WaitingFor::Approval.outcome())
    } else {
        Next::Again
    })
}
