//! Advancing runs without the host's dispatcher (plain `spin up`, Fermyon
//! Cloud): after a request starts a run, the API itself claims the org's
//! claimable runs and calls the agent-step component through
//! `http://agent-step.spin.internal`, until they wait or finish or a time
//! budget passes. Under `synatra up` the host reports its dispatcher in the
//! `run_dispatcher` variable and this does nothing.

use std::time::{Duration, Instant};

use serde_json::json;
use spin_sdk::http::{IncomingResponse, Method};
use spin_sdk::variables;
use synatra_db::runs;
use synatra_db::Db;

/// The agent step's route.
const AGENT_STEP: &str = "http://agent-step.spin.internal/advance";
/// Lease of an inline claim.
const LEASE_SECS: i32 = 90;
/// Failed advances before a run fails (as the host's dispatcher counts).
const MAX_CRASHES: i32 = 5;
/// How long one API request may spend advancing runs.
const BUDGET: Duration = Duration::from_secs(20);

/// Whether a dispatcher (the synatra host) advances runs.
fn dispatcher_runs() -> bool {
    variables::get("run_dispatcher").is_ok_and(|v| v == "synatra")
}

/// Advances the org's claimable runs if no dispatcher does.
pub fn advance(db: &Db, org_id: &str) {
    if dispatcher_runs() {
        return;
    }
    let started = Instant::now();
    while started.elapsed() < BUDGET {
        let run_id = match runs::next_claimable(db, org_id) {
            Ok(Some(id)) => id,
            Ok(None) => return,
            Err(e) => return eprintln!("inline runs: {e}"),
        };
        let mut nonce = [0u8; 16];
        let _ = getrandom::fill(&mut nonce);
        let lease = format!(
            "inline:{}",
            nonce.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        match runs::claim(db, &run_id, &lease, LEASE_SECS) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => return eprintln!("inline runs: {e}"),
        }
        let body = json!({ "run_id": run_id, "lease": lease, "lease_secs": LEASE_SECS });
        let request = synatra_internal::request(Method::Post, AGENT_STEP, body.to_string());
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
            return eprintln!("inline runs: {e}");
        }
    }
}
