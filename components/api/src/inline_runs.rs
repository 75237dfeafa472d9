//! Advancing runs without the host's dispatcher (plain `spin up`, SpinKube,
//! Fermyon Wasm Functions): after a request starts a run, the API itself
//! claims the org's claimable runs and calls the agent-step component
//! through `http://agent-step.spin.internal`, until they wait or finish or a
//! time budget passes; the tick route does the same for every org's due
//! runs (timers, expired approvals, stalled leases). Under `synatra up` the
//! host reports its dispatcher in the `run_dispatcher` variable and only the
//! tick, if called, advances runs here.

use std::time::{Duration, Instant};

use serde_json::json;
use spin_sdk::http::{IncomingResponse, Method};
use spin_sdk::variables;
use synatra_db::runs;
use synatra_db::Db;

use synatra_names::limits::MAX_CRASHES;
use synatra_names::services::AGENT_STEP_ADVANCE as AGENT_STEP;
/// Lease of an inline claim unless the `inline_lease_secs` variable says
/// otherwise. Nothing renews it from outside while the agent step works (the
/// step renews it as a model streams), so it outlasts the longest silence of
/// a model call (the gateway's 120 s per-gap outbound timeout in `spin.toml`)
/// and any tool's time limit (60 s): a call in flight is never taken over and
/// repeated. After a crash the run is claimed again once this runs out.
const LEASE_SECS: i32 = 150;

fn lease_secs() -> i32 {
    synatra_internal::setting("inline_lease_secs")
        .filter(|s| *s >= 3)
        .unwrap_or(LEASE_SECS)
}
/// How long one API request may spend advancing runs.
const BUDGET: Duration = Duration::from_secs(20);

/// Whether a dispatcher (the synatra host) advances runs.
fn dispatcher_runs() -> bool {
    variables::get("run_dispatcher").is_ok_and(|v| v == "synatra")
}

/// Applies missing migrations where no host of ours did at start.
pub fn ensure_schema(db: &Db) -> synatra_db::DbResult<()> {
    if dispatcher_runs() {
        return Ok(());
    }
    synatra_db::migrate::ensure(db)
}

/// When a request advances runs itself (where no dispatcher does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// After a write that may have made runs ready (a new message, an
    /// answer, a decision), once it succeeded.
    AfterWrite,
    /// Before a read that should show due work done (timers, sub-agents).
    BeforeRead,
}

/// Advances the org's claimable runs if no dispatcher does.
pub fn advance(db: &Db, org_id: &str) {
    if !dispatcher_runs() {
        advance_due(db, Some(org_id));
    }
}

/// Advances due runs (of one org, or of all) until none is left or the time
/// budget is spent; returns how many advances were made. The tick calls
/// this for every org, whoever else advances runs: claims are leased
/// (`claim_next_run`), so concurrent callers never take the same run.
pub fn advance_due(db: &Db, org_id: Option<&str>) -> usize {
    let started = Instant::now();
    let lease_secs = lease_secs();
    let mut advanced = 0;
    while started.elapsed() < BUDGET {
        let mut nonce = [0u8; 16];
        let _ = getrandom::fill(&mut nonce);
        let lease = format!(
            "inline:{}",
            nonce.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let run_id = match runs::claim_next(db, org_id, &lease, lease_secs) {
            Ok(Some(id)) => id,
            Ok(None) => return advanced,
            Err(e) => {
                eprintln!("inline runs: {e}");
                return advanced;
            }
        };
        advanced += 1;
        let body = json!({ "run_id": run_id, "lease": lease, "lease_secs": lease_secs });
        let request = synatra_internal::request(Method::Post, AGENT_STEP, body.to_string());
        // The agent step works with connections of its own meanwhile.
        db.release();
        let result = spin_sdk::http::run(async move {
            let response: IncomingResponse = spin_sdk::http::send(request).await?;
            let status = response.status();
            let body = response.into_body().await.unwrap_or_default();
            Ok::<_, spin_sdk::http::SendError>((
                status,
                String::from_utf8_lossy(&body).into_owned(),
            ))
        });
        let error = match result {
            Ok((200, _)) => continue,
            Ok((status, body)) => format!("HTTP {status}: {body}"),
            Err(e) => format!("the agent step is unreachable: {e}"),
        };
        // As the dispatcher does: back off, and fail the run after repeated crashes.
        eprintln!("inline runs: run {run_id}: {error}");
        if let Err(e) = runs::record_crash(db, &run_id, &lease, &error, MAX_CRASHES) {
            eprintln!("inline runs: {e}");
            return advanced;
        }
    }
    advanced
}
