//! Advancing a run: replay the recorded steps (never re-executing them), do
//! the next action, record it through the [`Recorder`], repeat until the run
//! finishes, must wait, or the invocation's time budget is spent. What the
//! next action is, and how each call is classified, is decided by the pure
//! contract in `synatra-runs`; the modules here carry actions out.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use synatra_agents::AgentConfig;
use synatra_db::approvals;
use synatra_db::runs;
use synatra_db::{Db, DbError};
use synatra_llm::ToolSpec;
use synatra_runs::plan::completes;
use synatra_runs::{
    builtin_tools, classify, delegate_tool, next_action, widgets, Action, CallKind, Ending,
    Outcome, Step, WAIT_TOOL,
};

use crate::recorder::Recorder;
use crate::user_tools::{self, UserTool};
use crate::{delegation, model, tools, waits};

/// Work done per invocation before the run is handed back to the dispatcher.
const BUDGET: Duration = Duration::from_secs(60);

/// What carrying out one action leads to.
pub enum Next {
    /// Record this step (with its input) and go on.
    Record(Step, Value),
    /// Something changed meanwhile (an answer landed, steps were recorded):
    /// decide again.
    Again,
    /// The invocation ends here; the run goes on later.
    Stop(Outcome),
    /// The run ends.
    End(Ending),
}

/// What a run works with: its agent's configuration and tools.
pub struct Toolbox {
    pub config: AgentConfig,
    pub specs: Vec<ToolSpec>,
    pub user_tools: Vec<UserTool>,
    pub subagents: Vec<runs::SubAgent>,
}

impl Toolbox {
    fn load(db: &Db, run: &runs::RunState, config: AgentConfig) -> Result<Toolbox, DbError> {
        let mut specs = builtin_tools(&config.tools);
        let user_tools = user_tools::load(db, &run.org_id, &config.tools)?;
        specs.extend(user_tools.iter().map(UserTool::spec));
        let mut subagents = Vec::new();
        for key in &config.subagents {
            match runs::subagent(db, &run.org_id, key)? {
                Some(sub) => {
                    specs.push(delegate_tool(&sub.slug, &sub.name, &sub.description));
                    subagents.push(sub);
                }
                None => eprintln!(
                    "run {}: sub-agent `{key}` does not exist or has no release; skipped",
                    run.id
                ),
            }
        }
        // The agent's own tools first, then the system tools.
        specs.extend(widgets::system_tools());
        Ok(Toolbox {
            config,
            specs,
            user_tools,
            subagents,
        })
    }

    /// The user tool `name`, if the run offers one.
    pub fn user_tool(&self, name: &str) -> Option<&UserTool> {
        self.user_tools.iter().find(|t| t.def.name == name)
    }
}

/// A caller's request: advance run `run_id` while `lease` holds it,
/// extending the lease by `lease_secs` at each step.
#[derive(Deserialize)]
pub struct Assignment {
    pub run_id: String,
    pub lease: String,
    pub lease_secs: i32,
    /// The run as the claim loaded it (SQL `load_run`); None to load it here.
    #[serde(default)]
    pub run: Option<Value>,
}

/// Advances the assigned run while its lease holds it.
pub async fn advance(db: &Db, assignment: Assignment) -> Result<Outcome, DbError> {
    match run(db, assignment).await {
        Err(DbError::LeaseLost) => Ok(Outcome::NotLeased),
        other => other,
    }
}

async fn run(db: &Db, assignment: Assignment) -> Result<Outcome, DbError> {
    let Assignment {
        run_id,
        lease,
        lease_secs,
        run: handed,
    } = assignment;
    let (run_id, lease) = (run_id.as_str(), lease.as_str());
    let loaded = match handed {
        Some(loaded) => Some(runs::LoadedRun::from_json(loaded)?),
        None => runs::load_run(db, run_id, lease)?,
    };
    let Some(loaded) = loaded else {
        return Ok(Outcome::NotLeased);
    };
    let run = loaded.run;
    if run.id != run_id || !run.leased_by_caller || run.status != "ready" {
        return Ok(Outcome::NotLeased);
    }
    let steps: Vec<Step> = loaded
        .steps
        .into_iter()
        .map(serde_json::from_value)
        .collect::<Result<_, _>>()
        .map_err(|e| DbError::Other(format!("unreadable step: {e}")))?;
    let config = serde_json::from_value::<AgentConfig>(run.config.clone());
    let mut rec = Recorder::new(db, run, lease, lease_secs, steps);
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            let error = format!("the run's agent configuration is invalid: {e}");
            return rec.finish(Ending::Failed(error));
        }
    };
    let Some(model) = config.model.clone() else {
        return rec.finish(Ending::Failed("the agent has no model configured".into()));
    };
    let history = synatra_runs::history(&loaded.history);
    let toolbox = Toolbox::load(db, &rec.run, config)?;

    loop {
        if rec.cancel_requested() {
            return rec.finish(Ending::Cancelled);
        }
        if let Some(over) = over_time(&rec, &toolbox) {
            return rec.finish(over);
        }
        if rec.started.elapsed() > BUDGET {
            rec.hand_back(None, false)?;
            return Ok(Outcome::HandedBack);
        }
        // A rejected or timed-out approval of the run ends it, whichever
        // call the run is at (a waiting run is woken by either).
        if had_approvals(&rec) {
            let run = rec.run.id.clone();
            if let Some(ending) = rec.transact(|tx| approvals::settle(tx.db, &run))? {
                return rec.finish(tools::approval_ending(ending));
            }
        }
        let next = match next_action(&toolbox.config.limits, rec.steps()) {
            Action::Complete { .. } => Next::End(Ending::Completed),
            Action::Fail { error } => Next::End(Ending::Failed(error)),
            Action::CallModel { iteration } => {
                model::call(&mut rec, &toolbox, &model, &history, iteration).await?
            }
            Action::AwaitApproval { call, approval_id } => {
                tools::approved(&mut rec, &call, &approval_id).await?
            }
            Action::AwaitHuman { call, request_id } => waits::human(&mut rec, &call, &request_id)?,
            Action::AwaitChild { call, child_run_id } => {
                waits::child(&mut rec, &call, &child_run_id)?
            }
            Action::Wake { call, until_ms } => waits::wake(&rec, &call, until_ms)?,
            Action::CallTool(call) => {
                let wait_enabled = toolbox.specs.iter().any(|t| t.name == WAIT_TOOL);
                let kind = classify(
                    &call.name,
                    toolbox.user_tool(&call.name).is_some(),
                    wait_enabled,
                );
                match kind {
                    CallKind::UserTool => tools::user(&mut rec, &toolbox, &call).await?,
                    CallKind::HumanRequest => waits::ask(&mut rec, &call)?,
                    CallKind::Widget => tools::widget(&rec, &call),
                    CallKind::Delegate => delegation::delegate(&mut rec, &toolbox, &call)?,
                    CallKind::Wait => waits::start_timer(&rec, &call),
                    CallKind::Builtin => tools::builtin(&rec, &call),
                }
            }
        };
        match next {
            // The answer that completes the run is recorded and ends it in
            // one statement, unless a check made between steps could
            // still end it otherwise.
            Next::Record(step, input)
                if completes(&step)
                    && over_time(&rec, &toolbox).is_none()
                    && !had_approvals(&rec) =>
            {
                return rec.record_completing(step, &input);
            }
            Next::Record(step, input) => rec.record(step, &input)?,
            Next::Again => {}
            Next::Stop(outcome) => return Ok(outcome),
            Next::End(ending) => return rec.finish(ending),
        }
    }
}

/// The run's end if it has been active longer than `max_active_time`.
fn over_time(rec: &Recorder, toolbox: &Toolbox) -> Option<Ending> {
    let limit = toolbox.config.limits.max_active_time;
    let active = rec.run.active_ms + rec.started.elapsed().as_millis() as i64;
    (active > i64::from(limit) * 1000)
        .then(|| Ending::Failed(format!("the run exceeded max_active_time ({limit} s)")))
}

/// Whether the run opened approvals (whose rejection or timeout ends it).
fn had_approvals(rec: &Recorder) -> bool {
    rec.steps()
        .iter()
        .any(|s| matches!(s, Step::Approval { .. }))
}
