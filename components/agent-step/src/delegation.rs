//! Delegation: a `delegate_to_<slug>` call starts a run of the sub-agent on
//! a thread of its own and parks this run until that run ends.

use serde_json::json;
use synatra_db::runs::{self, NewRun, NewThread};
use synatra_db::DbError;
use synatra_llm::ToolCall;
use synatra_runs::{delegate_tool, Step, WaitingFor};

use crate::engine::{Next, Toolbox};
use crate::recorder::Recorder;

/// Sub-agent levels allowed below a thread's own run (`max_delegation_depth`).
fn max_depth() -> usize {
    synatra_internal::setting(synatra_names::variables::MAX_DELEGATION_DEPTH)
        .unwrap_or(synatra_agents::delegation::DEFAULT_MAX_DEPTH)
}

/// Why starting a run of `agent_id` from this run is refused, if it is: the
/// agent is already working on this request (a cycle, itself included), or
/// the chain of delegations is as deep as allowed.
fn refusal(rec: &Recorder, agent_id: &str) -> Result<Option<String>, DbError> {
    let chain = runs::delegation_chain(rec.db, &rec.run.id)?;
    if chain.iter().any(|a| a == agent_id) {
        return Ok(Some(
            "refused: that agent is already working on this request (delegation may not loop)"
                .into(),
        ));
    }
    let max = max_depth();
    if chain.len() > max {
        return Ok(Some(format!(
            "refused: delegation is limited to {max} levels of sub-agents (max_delegation_depth)"
        )));
    }
    Ok(None)
}

/// Starts the sub-agent's run, or tells the model what is wrong.
pub fn delegate(rec: &mut Recorder, toolbox: &Toolbox, call: &ToolCall) -> Result<Next, DbError> {
    let sub = toolbox
        .subagents
        .iter()
        .find(|s| delegate_tool(&s.slug, &s.name, &s.description).name == call.name);
    let message = call.arguments["message"]
        .as_str()
        .filter(|m| !m.trim().is_empty());
    let (Some(sub), Some(message)) = (sub, message) else {
        let error = if message.is_none() {
            "`message` is required"
        } else {
            "no such sub-agent"
        };
        let step = Step::tool_result(call, json!({ "error": error }), true);
        return Ok(Next::Record(step, json!({ "call": call })));
    };
    if let Some(error) = refusal(rec, &sub.agent_id)? {
        let step = Step::tool_result(call, json!({ "error": error }), true);
        return Ok(Next::Record(step, json!({ "call": call })));
    }
    rec.transact(|tx| {
        let run = tx.run;
        let child_thread = runs::create_thread(
            tx.db,
            &NewThread {
                org_id: &run.org_id,
                agent_id: &sub.agent_id,
                channel_id: run.channel_id.as_deref(),
                environment_id: run.environment_id.as_deref(),
                kind: "normal",
                subject: Some(&format!("Delegated by run {}", run.id)),
                created_by: None,
            },
        )?;
        let message_id = runs::add_message(
            tx.db,
            &child_thread,
            None,
            "user",
            &json!({ "text": message }),
        )?;
        let child = runs::create_run(
            tx.db,
            &NewRun {
                org_id: &run.org_id,
                thread_id: &child_thread,
                agent_id: &sub.agent_id,
                release_id: Some(&sub.release_id),
                config: &sub.config,
                input_upto: message_id,
                parent_run_id: Some(&run.id),
                started_by: None,
                started_by_key: None,
            },
        )?;
        let step = Step::Delegate {
            call_id: call.id.clone(),
            child_run_id: child,
        };
        tx.step(
            step,
            &json!({ "call": call, "child_thread_id": child_thread }),
        )?;
        tx.park(WaitingFor::Subagent)
    })?;
    Ok(Next::Stop(WaitingFor::Subagent.outcome()))
}
