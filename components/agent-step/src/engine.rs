//! Advancing a run: replay the recorded steps (never re-executing them), do
//! the next action, record it in one lease-fenced transaction, repeat until
//! the run finishes, must wait, or the invocation's time budget is spent.
//! The contract itself lives in `synatra-runs`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use synatra_agents::AgentConfig;
use synatra_db::approvals::{self, NewApproval};
use synatra_db::runs::{self, RunState, LEASE_LOST};
use synatra_db::{Db, DbError};
use synatra_llm::{LlmError, Message};
use synatra_runs::{
    builtin_tools, conversation, delegate_tool, idempotency_key, next_action, run_builtin,
    wait_millis, widgets, Action, Step, DELEGATE_PREFIX, WAIT_TOOL,
};

use crate::provider;
use crate::user_tools::{self, UserTool};

/// Work done per invocation before the run is handed back to the dispatcher.
const BUDGET: Duration = Duration::from_secs(60);
/// Model-call retries (429, 5xx, truncated or malformed answers) before the run fails.
const MAX_RETRIES: i32 = 5;
/// Streamed text is written as an event at least every this many bytes.
const TOKEN_FLUSH_BYTES: usize = 48;
/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Failed,
    Cancelled,
    /// The time budget ran out; the run is ready for the next invocation.
    HandedBack,
    /// A retryable model error; the run sleeps on a durable timer.
    Retrying,
    /// The run sleeps on a durable timer (the `wait` tool).
    Sleeping,
    /// The run waits for a sub-agent's run to finish.
    WaitingSubagent,
    /// The run waits for a person to answer a human request.
    WaitingUser,
    /// The run waits for a person to approve or reject tool calls.
    WaitingApproval,
    /// A person rejected a tool call: the run ended.
    Rejected,
    /// The caller's lease was gone (expired or taken): nothing was recorded.
    NotLeased,
}

impl Outcome {
    /// The name in the response.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::HandedBack => "handed_back",
            Outcome::Retrying => "retrying",
            Outcome::Sleeping => "sleeping",
            Outcome::WaitingSubagent => "waiting_subagent",
            Outcome::WaitingUser => "waiting_user",
            Outcome::WaitingApproval => "waiting_approval",
            Outcome::Rejected => "rejected",
            Outcome::NotLeased => "not_leased",
        }
    }
}

/// An invocation's context: the run, its lease, time spent so far.
struct Invocation<'a> {
    db: &'a Db,
    run: RunState,
    lease: &'a str,
    lease_secs: i32,
    started: Instant,
    last_fence: Instant,
}

impl Invocation<'_> {
    /// Runs `f` in a transaction that first proves the lease still holds.
    fn record<T>(
        &mut self,
        f: impl FnOnce(&Db) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        Ok(self.record_unless(|_| Ok(false), f)?.flatten())
    }

    /// Like [`Self::record`], but first checks `settled` in the same
    /// transaction (before the fence, so rows are locked in the order the
    /// API answering a wait locks them); when it holds, records nothing and
    /// returns `Some(None)`.
    fn record_unless<T>(
        &mut self,
        settled: impl FnOnce(&Db) -> Result<bool, DbError>,
        f: impl FnOnce(&Db) -> Result<T, DbError>,
    ) -> Result<Option<Option<T>>, DbError> {
        let spent = self.last_fence.elapsed().as_millis() as i64;
        let result = self.db.transaction(|db| {
            if settled(db)? {
                return Ok(None);
            }
            runs::fence(db, &self.run.id, self.lease, self.lease_secs, spent)?;
            f(db).map(Some)
        });
        self.last_fence = Instant::now();
        match result {
            Ok(v) => Ok(Some(v)),
            Err(DbError::Other(m)) if m == LEASE_LOST => Ok(None),
            // Another worker recorded this seq first.
            Err(DbError::UniqueViolation(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Holds the lease for at least `secs` more before a call starts; false
    /// when it is gone.
    fn hold(&self, secs: i32) -> Result<bool, DbError> {
        // The last fence (every recorded step) extended the lease already.
        if self.last_fence.elapsed() < renew_interval(secs) {
            return Ok(true);
        }
        runs::hold_lease(self.db, &self.run.id, self.lease, secs)
    }

    /// Renews the lease before a tool call; false when it is gone. Tools
    /// stop within 60 s, less than any lease the inline advancer takes.
    fn hold_for_tool(&self) -> Result<bool, DbError> {
        self.hold(self.lease_secs)
    }

    fn event(&self, db: &Db, kind: &str, data: Value) -> Result<(), DbError> {
        runs::add_event(db, &self.run.thread_id, Some(&self.run.id), kind, &data)
    }

    /// Ends the run with `status`, recording an error message if any.
    fn finish(&mut self, status: &str, error: Option<&str>) -> Result<Outcome, DbError> {
        let thread_status = match status {
            "completed" => "completed",
            "cancelled" => "cancelled",
            "rejected" => "rejected",
            _ => "failed",
        };
        let (run_id, thread_id) = (self.run.id.clone(), self.run.thread_id.clone());
        let done = self.record(|db| {
            if let Some(e) = error {
                runs::add_message(
                    db,
                    &thread_id,
                    Some(&run_id),
                    "error",
                    &json!({ "message": e }),
                )?;
            }
            runs::finish_run(db, &run_id, status, error)?;
            runs::set_thread_status(db, &thread_id, thread_status)?;
            runs::add_event(
                db,
                &thread_id,
                Some(&run_id),
                "run",
                &json!({ "run_id": run_id, "status": status, "error": error }),
            )
        })?;
        Ok(match (done, status) {
            (None, _) => Outcome::NotLeased,
            (Some(()), "completed") => Outcome::Completed,
            (Some(()), "cancelled") => Outcome::Cancelled,
            (Some(()), "rejected") => Outcome::Rejected,
            _ => Outcome::Failed,
        })
    }
}

/// How often a lease of `lease_secs` is renewed while a call is in flight.
fn renew_interval(lease_secs: i32) -> Duration {
    Duration::from_secs(u64::from(lease_secs.max(3).unsigned_abs()) / 3)
}

/// Advances run `run_id` while `lease` holds it.
pub async fn advance(
    db: &Db,
    run_id: &str,
    lease: &str,
    lease_secs: i32,
) -> Result<Outcome, DbError> {
    let Some(run) = runs::load_run(db, run_id, lease)? else {
        return Ok(Outcome::NotLeased);
    };
    if !run.leased_by_caller || run.status != "ready" {
        return Ok(Outcome::NotLeased);
    }
    let mut inv = Invocation {
        db,
        lease,
        lease_secs,
        started: Instant::now(),
        last_fence: Instant::now(),
        run,
    };
    let config: AgentConfig = match serde_json::from_value(inv.run.config.clone()) {
        Ok(c) => c,
        Err(e) => {
            return inv.finish(
                "failed",
                Some(&format!("the run's agent configuration is invalid: {e}")),
            )
        }
    };
    let Some(model) = config.model.clone() else {
        return inv.finish("failed", Some("the agent has no model configured"));
    };
    let history = history(db, &inv.run)?;
    let mut steps: Vec<Step> = runs::steps(db, run_id)?
        .into_iter()
        .map(serde_json::from_value)
        .collect::<Result<_, _>>()
        .map_err(|e| DbError::Other(format!("unreadable step: {e}")))?;
    let mut tools = builtin_tools(&config.tools);
    let user_tools = user_tools::load(db, &inv.run.org_id, &config.tools)?;
    tools.extend(user_tools.iter().map(UserTool::spec));
    let mut subagents = Vec::new();
    for key in &config.subagents {
        match runs::subagent(db, &inv.run.org_id, key)? {
            Some(sub) => {
                tools.push(delegate_tool(&sub.slug, &sub.name, &sub.description));
                subagents.push(sub);
            }
            None => eprintln!(
                "run {run_id}: sub-agent `{key}` does not exist or has no release; skipped"
            ),
        }
    }
    // The agent's own tools first, then the system tools.
    tools.extend(widgets::system_tools());
    let max_active_ms = i64::from(config.limits.max_active_time) * 1000;

    loop {
        if cancel_requested(db, run_id)? {
            return inv.finish("cancelled", None);
        }
        let active = inv.run.active_ms + inv.started.elapsed().as_millis() as i64;
        if active > max_active_ms {
            let error = format!(
                "the run exceeded max_active_time ({} s)",
                config.limits.max_active_time
            );
            return inv.finish("failed", Some(&error));
        }
        if inv.started.elapsed() > BUDGET {
            runs::hand_back(db, run_id, lease, None, false)?;
            return Ok(Outcome::HandedBack);
        }
        // A rejected or timed-out approval of the run ends it, whichever
        // call the run is at (a waiting run is woken by either).
        if steps.iter().any(|s| matches!(s, Step::Approval { .. })) {
            let run = inv.run.id.clone();
            match inv.record(|db| approvals::settle(db, &run))? {
                None => return Ok(Outcome::NotLeased),
                Some(Some(approvals::Ended::Rejected { tool, comment })) => {
                    let comment = comment.map(|c| format!(": {c}")).unwrap_or_default();
                    let error = format!("a reviewer rejected the call to `{tool}`{comment}");
                    return inv.finish("rejected", Some(&error));
                }
                Some(Some(approvals::Ended::TimedOut { tool })) => {
                    let error = format!(
                        "timeout: nobody decided on the call to `{tool}` before its approval expired"
                    );
                    return inv.finish("failed", Some(&error));
                }
                Some(None) => {}
            }
        }
        let seq = steps.len();
        let step = match next_action(&config.limits, &steps) {
            Action::Complete { .. } => return inv.finish("completed", None),
            Action::Fail { error } => return inv.finish("failed", Some(&error)),
            Action::CallModel { iteration } => {
                let messages = conversation(&config.system_prompt, &history, &steps);
                let mut buffer = String::new();
                let thread_id = inv.run.thread_id.clone();
                let caller = provider::Caller {
                    org_id: &inv.run.org_id,
                    environment_id: inv.run.environment_id.as_deref(),
                };
                // The lease is renewed before the call and as the model
                // streams, so no other claimer (a tick, the inline advancer,
                // another host) takes the run over and repeats the call while
                // this instance is alive and making progress.
                let hold = inv.lease_secs;
                if !inv.hold(hold)? {
                    return Ok(Outcome::NotLeased);
                }
                let renew_every = renew_interval(hold);
                let mut held = Instant::now();
                let result = provider::complete(&caller, &model, &messages, &tools, |text| {
                    if held.elapsed() >= renew_every {
                        match runs::hold_lease(db, run_id, lease, hold) {
                            Ok(true) => {}
                            Ok(false) => eprintln!("run {run_id}: lease lost during a model call"),
                            Err(e) => eprintln!("run {run_id}: could not renew the lease: {e}"),
                        }
                        held = Instant::now();
                    }
                    buffer.push_str(text);
                    if buffer.len() >= TOKEN_FLUSH_BYTES {
                        flush_tokens(db, &thread_id, run_id, &mut buffer);
                    }
                })
                .await;
                flush_tokens(db, &thread_id, run_id, &mut buffer);
                match result {
                    Ok(completion) => (Step::Llm { completion }, json!({ "iteration": iteration })),
                    Err(e) if e.is_retryable() && inv.run.retries < MAX_RETRIES => {
                        let delay = retry_delay(&e, inv.run.retries);
                        eprintln!("run {run_id}: model call failed ({e}); retrying in {delay} ms");
                        inv.event(
                            db,
                            "retry",
                            json!({ "error": e.to_string(), "delay_ms": delay }),
                        )?;
                        runs::hand_back(db, run_id, lease, Some(delay), true)?;
                        return Ok(Outcome::Retrying);
                    }
                    Err(e) => {
                        let error = match e {
                            LlmError::Rejected { .. } => format!("model call failed: {e}"),
                            _ => {
                                format!("model call failed after {} retries: {e}", inv.run.retries)
                            }
                        };
                        return inv.finish("failed", Some(&error));
                    }
                }
            }
            Action::AwaitApproval { call, approval_id } => {
                let Some(approval) = approvals::get(db, None, &approval_id, false)? else {
                    return Err(DbError::Other(format!("approval {approval_id} vanished")));
                };
                let tool = approval.str("tool_name");
                match approval.str("status").as_str() {
                    "pending" => match inv.await_approval(&approval_id)? {
                        Some(outcome) => return Ok(outcome),
                        None => continue, // decided meanwhile
                    },
                    "approved" => {
                        // Exactly the version the person approved.
                        let version = approval.str("tool_version");
                        let org = inv.run.org_id.clone();
                        let Some(user_tool) = user_tools::at_version(db, &org, &tool, &version)?
                        else {
                            return inv.finish(
                                "failed",
                                Some(&format!(
                                    "the approved tool `{tool}` (version {version}) is no longer available"
                                )),
                            );
                        };
                        let params = match approval.json("final_params") {
                            Value::Null => approval.json("params"),
                            edited => edited,
                        };
                        let key = idempotency_key(run_id, seq);
                        if !inv.hold_for_tool()? {
                            return Ok(Outcome::NotLeased);
                        }
                        let (output, is_error, logs) = user_tool.run(&params, &key).await;
                        let input = json!({ "call": call, "approval_id": approval_id, "params": params,
                                            "version": user_tool.version, "logs": logs, "idempotency_key": key });
                        (Step::tool_result(&call, output, is_error), input)
                    }
                    // Rejections and timeouts were settled above.
                    _ => return inv.finish("cancelled", None),
                }
            }
            Action::CallTool(call) if user_tools.iter().any(|t| t.def.name == call.name) => {
                let tool = user_tools
                    .iter()
                    .find(|t| t.def.name == call.name)
                    .expect("matched above");
                let key = idempotency_key(run_id, seq);
                let checked = tool.check(&call.arguments);
                match checked {
                    Err(e) => {
                        let input = json!({ "call": call, "version": tool.version, "idempotency_key": key });
                        (Step::tool_result(&call, json!({ "error": e }), true), input)
                    }
                    Ok(_) if tool.def.needs_approval() => {
                        let Some(opened) = open_approvals(&mut inv, &user_tools, &steps, seq)?
                        else {
                            return Ok(Outcome::NotLeased);
                        };
                        let Some(Step::Approval { approval_id, .. }) = opened.first().cloned()
                        else {
                            unreachable!("the held call itself gets an approval");
                        };
                        steps.extend(opened);
                        match inv.await_approval(&approval_id)? {
                            Some(outcome) => return Ok(outcome),
                            None => continue,
                        }
                    }
                    Ok((params, _)) => {
                        if !inv.hold_for_tool()? {
                            return Ok(Outcome::NotLeased);
                        }
                        let (output, is_error, logs) = tool.run(&params, &key).await;
                        let input = json!({ "call": call, "version": tool.version, "logs": logs, "idempotency_key": key });
                        (Step::tool_result(&call, output, is_error), input)
                    }
                }
            }
            Action::AwaitHuman { call, request_id } => {
                let Some((status, response)) = runs::human_request(db, &request_id)? else {
                    return Err(DbError::Other(format!(
                        "human request {request_id} vanished"
                    )));
                };
                if status == "pending" {
                    match inv.park_while("waiting_user", Outcome::WaitingUser, |db| {
                        runs::request_still_pending(db, &request_id)
                    })? {
                        Some(outcome) => return Ok(outcome),
                        None => continue, // answered meanwhile
                    }
                }
                let output = json!({ "status": status, "data": response });
                let step = Step::tool_result(&call, output, false);
                (step, json!({ "call": call, "request_id": request_id }))
            }
            Action::CallTool(call) if call.name == widgets::HUMAN_REQUEST => {
                let input =
                    json!({ "call": call, "idempotency_key": idempotency_key(run_id, seq) });
                if let Err(e) = widgets::check_request(&call.arguments) {
                    let output = json!({ "error": e });
                    (Step::tool_result(&call, output, true), input)
                } else {
                    let run_state = runs::load_run(db, run_id, lease)?
                        .ok_or_else(|| DbError::Other("run vanished".into()))?;
                    let (run, thread) = (inv.run.id.clone(), inv.run.thread_id.clone());
                    let asked = inv.record(|db| {
                        let request_id = runs::create_human_request(db, &run_state, &call.id, &call.arguments)?;
                        let step = Step::HumanRequest { call_id: call.id.clone(), request_id: request_id.clone() };
                        record_step(db, &run, &thread, seq, &step, &input)?;
                        let content = json!({ "request_id": request_id, "call_id": call.id, "request": call.arguments });
                        let id = runs::add_message(db, &thread, Some(&run), "human_request", &content)?;
                        runs::add_event(db, &thread, Some(&run), "message", &json!({ "id": id, "kind": "human_request", "content": content }))?;
                        runs::park(db, &run, lease, &thread, "waiting_user")
                    })?;
                    return Ok(match asked {
                        Some(()) => Outcome::WaitingUser,
                        None => Outcome::NotLeased,
                    });
                }
            }
            Action::CallTool(call) if widgets::OUTPUTS.contains(&call.name.as_str()) => {
                let input =
                    json!({ "call": call, "idempotency_key": idempotency_key(run_id, seq) });
                let (output, is_error) = match widgets::check_output(&call.name, &call.arguments) {
                    Ok(()) => (json!({ "shown": true }), false),
                    Err(e) => (json!({ "error": e }), true),
                };
                (Step::tool_result(&call, output, is_error), input)
            }
            Action::AwaitChild { call, child_run_id } => {
                let Some((status, error, answer)) = runs::child_outcome(db, &child_run_id)? else {
                    return Err(DbError::Other(format!("child run {child_run_id} vanished")));
                };
                let (output, is_error) = match status.as_str() {
                    "completed" => (json!({ "answer": answer }), false),
                    "failed" | "cancelled" | "rejected" => (
                        json!({ "error": format!("the sub-agent's run {status}: {}", error.unwrap_or_default()) }),
                        true,
                    ),
                    _ => match inv.park_while(
                        "waiting_subagent",
                        Outcome::WaitingSubagent,
                        |db| runs::child_still_running(db, &child_run_id),
                    )? {
                        Some(outcome) => return Ok(outcome),
                        None => continue, // finished meanwhile
                    },
                };
                let step = Step::tool_result(&call, output, is_error);
                (step, json!({ "call": call, "child_run_id": child_run_id }))
            }
            Action::CallTool(call) if call.name.starts_with(DELEGATE_PREFIX) => {
                let sub = subagents
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
                    let output = json!({ "error": error });
                    let step = Step::tool_result(&call, output, true);
                    let input = json!({ "call": call });
                    let (run, thread) = (inv.run.id.clone(), inv.run.thread_id.clone());
                    if inv
                        .record(|db| record_step(db, &run, &thread, seq, &step, &input))?
                        .is_none()
                    {
                        return Ok(Outcome::NotLeased);
                    }
                    steps.push(step);
                    continue;
                };
                let (run, thread) = (inv.run.id.clone(), inv.run.thread_id.clone());
                let (org, env, channel) = (
                    inv.run.org_id.clone(),
                    inv.run.environment_id.clone(),
                    inv.run.channel_id.clone(),
                );
                let delegated = inv.record(|db| {
                    let child_thread = runs::create_thread(
                        db,
                        &runs::NewThread {
                            org_id: &org,
                            agent_id: &sub.agent_id,
                            channel_id: channel.as_deref(),
                            environment_id: env.as_deref(),
                            kind: "normal",
                            subject: Some(&format!("Delegated by run {run}")),
                            created_by: None,
                        },
                    )?;
                    let message_id = runs::add_message(
                        db,
                        &child_thread,
                        None,
                        "user",
                        &json!({ "text": message }),
                    )?;
                    let child = runs::create_run(
                        db,
                        &runs::NewRun {
                            org_id: &org,
                            thread_id: &child_thread,
                            agent_id: &sub.agent_id,
                            release_id: Some(&sub.release_id),
                            config: &sub.config,
                            input_upto: message_id,
                            parent_run_id: Some(&run),
                            started_by: None,
                            started_by_key: None,
                        },
                    )?;
                    let step = Step::Delegate {
                        call_id: call.id.clone(),
                        child_run_id: child.clone(),
                    };
                    let input = json!({ "call": call, "child_thread_id": child_thread });
                    record_step(db, &run, &thread, seq, &step, &input)?;
                    runs::park(db, &run, lease, &thread, "waiting_subagent")?;
                    Ok(())
                })?;
                return Ok(match delegated {
                    Some(()) => Outcome::WaitingSubagent,
                    None => Outcome::NotLeased,
                });
            }
            Action::Wake { call, until_ms } => {
                let now = now_ms();
                if now < until_ms {
                    runs::sleep_until(db, run_id, lease, until_ms - now)?;
                    return Ok(Outcome::Sleeping);
                }
                let output = json!({ "waited_until_ms": until_ms });
                let step = Step::tool_result(&call, output, false);
                (
                    step,
                    json!({ "call": call, "idempotency_key": idempotency_key(run_id, seq) }),
                )
            }
            Action::CallTool(call)
                if call.name == WAIT_TOOL && tools.iter().any(|t| t.name == WAIT_TOOL) =>
            {
                let input =
                    json!({ "call": call, "idempotency_key": idempotency_key(run_id, seq) });
                match wait_millis(&call.arguments) {
                    Ok(ms) => (
                        Step::Wait {
                            call_id: call.id.clone(),
                            until_ms: now_ms() + ms,
                        },
                        input,
                    ),
                    Err(e) => {
                        let output = json!({ "error": e });
                        (Step::tool_result(&call, output, true), input)
                    }
                }
            }
            Action::CallTool(call) => {
                let (output, is_error) = match run_builtin(&call.name, &call.arguments) {
                    Ok(v) => (v, false),
                    Err(e) => (json!({ "error": e }), true),
                };
                let step = Step::tool_result(&call, output, is_error);
                (
                    step,
                    json!({ "call": call, "idempotency_key": idempotency_key(run_id, seq) }),
                )
            }
        };
        let (step, input) = step;
        let (run_id_s, thread_id) = (inv.run.id.clone(), inv.run.thread_id.clone());
        let recorded =
            inv.record(|db| record_step(db, &run_id_s, &thread_id, seq, &step, &input))?;
        if recorded.is_none() {
            return Ok(Outcome::NotLeased);
        }
        steps.push(step);
    }
}

impl Invocation<'_> {
    /// Parks the run (thread status `thread_status`) if `still_waiting`,
    /// checked in the same transaction under a lock that the answering side
    /// also takes, so an answer that lands meanwhile is never missed.
    /// `None`: it was answered; look again.
    fn park_while(
        &mut self,
        thread_status: &str,
        outcome: Outcome,
        still_waiting: impl FnOnce(&Db) -> Result<bool, DbError>,
    ) -> Result<Option<Outcome>, DbError> {
        let (run, thread, lease) = (self.run.id.clone(), self.run.thread_id.clone(), self.lease);
        let parked = self.record_unless(
            |db| Ok(!still_waiting(db)?),
            |db| runs::park(db, &run, lease, &thread, thread_status),
        )?;
        Ok(match parked {
            Some(Some(())) => Some(outcome),
            Some(None) => None,
            None => Some(Outcome::NotLeased),
        })
    }

    /// Parks the run until approval `id` is decided, waking it when the
    /// run's first pending approval expires (so a timeout is recorded even if
    /// nobody acts). `None`: it was decided meanwhile.
    fn await_approval(&mut self, id: &str) -> Result<Option<Outcome>, DbError> {
        let (run, thread, lease) = (self.run.id.clone(), self.run.thread_id.clone(), self.lease);
        // Checked after the fence: a decision locks the run row first too.
        let parked = self.record(|db| {
            let settled = approvals::settle(db, &run)?.is_some();
            if settled || !approvals::still_pending(db, id)? {
                return Ok(false);
            }
            runs::park(db, &run, lease, &thread, "waiting_approval")?;
            if let Some(ms) = approvals::next_expiry_ms(db, &run)? {
                runs::set_wake(db, &run, ms)?;
            }
            Ok(true)
        })?;
        Ok(match parked {
            Some(true) => Some(Outcome::WaitingApproval),
            Some(false) => None,
            None => Some(Outcome::NotLeased),
        })
    }
}

/// Opens an approval for the call at `seq` and for every later call of the
/// same model turn that also needs one (each gets its own approval, so
/// reviewers see them all at once); returns the steps recorded (None: the
/// lease was lost).
fn open_approvals(
    inv: &mut Invocation,
    user_tools: &[UserTool],
    steps: &[Step],
    seq: usize,
) -> Result<Option<Vec<Step>>, DbError> {
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
    let held: Vec<_> = completion.tool_calls[done..]
        .iter()
        .filter_map(|call| {
            let tool = user_tools.iter().find(|t| t.def.name == call.name)?;
            let (params, rationale) = tool.check(&call.arguments).ok()?;
            tool.def
                .needs_approval()
                .then_some((call, tool, params, rationale))
        })
        .collect();
    let (run_id, thread_id, org_id) = (
        inv.run.id.clone(),
        inv.run.thread_id.clone(),
        inv.run.org_id.clone(),
    );
    inv.record(|db| {
        let mut recorded = Vec::new();
        for (i, (call, tool, params, rationale)) in held.iter().enumerate() {
            let approval_id = approvals::open(
                db,
                &NewApproval {
                    org_id: &org_id,
                    thread_id: &thread_id,
                    run_id: &run_id,
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
            let step = Step::Approval {
                call_id: call.id.clone(),
                approval_id,
            };
            let input = json!({ "call": call, "version": tool.version });
            record_step(db, &run_id, &thread_id, seq + i, &step, &input)?;
            recorded.push(step);
        }
        Ok(recorded)
    })
}

/// Inserts step `seq` with the messages and events it produces (inside the
/// caller's fenced transaction).
fn record_step(
    db: &Db,
    run_id: &str,
    thread_id: &str,
    seq: usize,
    step: &Step,
    input: &Value,
) -> Result<(), DbError> {
    let output = serde_json::to_value(step).map_err(|e| DbError::Other(e.to_string()))?;
    runs::insert_step(
        db,
        run_id,
        seq as i32,
        step.kind(),
        &idempotency_key(run_id, seq),
        input,
        &output,
    )?;
    if let Step::Tool {
        name,
        is_error: false,
        ..
    } = step
    {
        if widgets::OUTPUTS.contains(&name.as_str()) {
            // The widget itself, for the thread view.
            let content = json!({ "type": name, "spec": input["call"]["arguments"] });
            let id = runs::add_message(db, thread_id, Some(run_id), "widget", &content)?;
            runs::add_event(
                db,
                thread_id,
                Some(run_id),
                "message",
                &json!({ "id": id, "kind": "widget", "content": content }),
            )?;
        }
    }
    record_messages(db, thread_id, run_id, step)
}

/// The thread messages and events a recorded step produces.
fn record_messages(db: &Db, thread_id: &str, run_id: &str, step: &Step) -> Result<(), DbError> {
    match step {
        Step::Llm { completion } => {
            runs::add_usage(
                db,
                run_id,
                completion.usage.input_tokens as i64,
                completion.usage.output_tokens as i64,
            )?;
            if !completion.text.is_empty() {
                let content = json!({ "text": completion.text });
                let id = runs::add_message(db, thread_id, Some(run_id), "assistant", &content)?;
                runs::add_event(
                    db,
                    thread_id,
                    Some(run_id),
                    "message",
                    &json!({ "id": id, "kind": "assistant", "content": content }),
                )?;
            }
            for call in &completion.tool_calls {
                let content =
                    json!({ "id": call.id, "name": call.name, "arguments": call.arguments });
                let id = runs::add_message(db, thread_id, Some(run_id), "tool_call", &content)?;
                runs::add_event(
                    db,
                    thread_id,
                    Some(run_id),
                    "message",
                    &json!({ "id": id, "kind": "tool_call", "content": content }),
                )?;
            }
        }
        Step::Delegate {
            call_id,
            child_run_id,
        } => {
            let data = json!({ "call_id": call_id, "child_run_id": child_run_id });
            runs::add_event(db, thread_id, Some(run_id), "delegated", &data)?;
        }
        // The request's (or approval's) message is written when it is opened.
        Step::HumanRequest { .. } | Step::Approval { .. } => {}
        Step::Wait { call_id, until_ms } => {
            let data = json!({ "call_id": call_id, "until_ms": until_ms });
            runs::add_event(db, thread_id, Some(run_id), "timer", &data)?;
        }
        Step::Tool {
            call_id,
            name,
            output,
            is_error,
        } => {
            let content =
                json!({ "call_id": call_id, "name": name, "result": output, "is_error": is_error });
            let id = runs::add_message(db, thread_id, Some(run_id), "tool_result", &content)?;
            runs::add_event(
                db,
                thread_id,
                Some(run_id),
                "message",
                &json!({ "id": id, "kind": "tool_result", "content": content }),
            )?;
        }
    }
    Ok(())
}

/// Wall-clock time in Unix milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Streamed text as an ephemeral event; the recorded message is the record.
fn flush_tokens(db: &Db, thread_id: &str, run_id: &str, buffer: &mut String) {
    if buffer.is_empty() {
        return;
    }
    if let Err(e) = runs::add_event(
        db,
        thread_id,
        Some(run_id),
        "token",
        &json!({ "text": buffer }),
    ) {
        eprintln!("run {run_id}: could not write token event: {e}");
    }
    buffer.clear();
}

fn cancel_requested(db: &Db, run_id: &str) -> Result<bool, DbError> {
    Ok(db
        .query_opt(
            "SELECT cancel_requested FROM runs WHERE id = $1",
            &[synatra_db::uuid(run_id)],
        )?
        .is_some_and(|r| r.bool("cancel_requested")))
}

/// The thread so far as model messages: user messages, answers, and the
/// tool calls of earlier runs with their results (a call without a recorded
/// result is left out, since providers refuse unanswered calls). A user
/// message written while calls awaited their results (one that skipped a
/// human request) follows those results, as providers require.
fn history(db: &Db, run: &RunState) -> Result<Vec<Message>, DbError> {
    let messages = runs::history(db, &run.thread_id, run.input_upto)?;
    let answered: std::collections::HashSet<String> = messages
        .iter()
        .filter(|(kind, _)| kind == "tool_result")
        .filter_map(|(_, c)| c["call_id"].as_str().map(str::to_string))
        .collect();
    let mut out: Vec<Message> = Vec::new();
    let mut open_calls = std::collections::HashSet::new();
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
                let Some(id) = content["id"].as_str().filter(|id| answered.contains(*id)) else {
                    continue;
                };
                open_calls.insert(id.to_string());
                let call = synatra_llm::ToolCall {
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
                    content: synatra_runs::tool_content(&content["result"]),
                });
                if open_calls.is_empty() {
                    out.append(&mut deferred);
                }
            }
            _ => {}
        }
    }
    out.append(&mut deferred);
    Ok(out)
}

/// Exponential backoff with jitter, or the provider's `Retry-After`.
fn retry_delay(error: &LlmError, retries: i32) -> i64 {
    if let LlmError::RateLimited {
        retry_after_secs: Some(s),
        ..
    } = error
    {
        return (*s as i64).saturating_mul(1000).min(3_600_000);
    }
    let first: i64 = spin_sdk::variables::get("llm_retry_base_ms")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let base = first.saturating_mul(1 << retries.clamp(0, 16)).min(60_000);
    let mut byte = [0u8; 1];
    // Up to +25 % jitter so retries of many runs do not arrive together.
    let jitter = match getrandom::fill(&mut byte) {
        Ok(()) => i64::from(byte[0]) * base / 1024,
        Err(_) => 0,
    };
    base + jitter
}
