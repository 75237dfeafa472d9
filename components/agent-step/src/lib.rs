//! The agent-step component (private route): `POST /advance {run_id, lease,
//! lease_secs, run?}` advances one durable run while the caller's lease
//! holds it (`run`: the run as the claim loaded it, SQL `load_run`; without
//! it the step loads the run itself).
//! Only the host's dispatcher (or another component of this app, with the
//! service secret) can call it.

mod delegation;
mod engine;
mod model;
mod provider;
mod recorder;
mod tools;
mod user_tools;
mod waits;

use serde_json::json;
use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use synatra_internal::{error_response, json_response};

#[http_component]
async fn handle(req: Request) -> Response {
    synatra_internal::serve_private(req, advance).await
}

async fn advance(req: Request) -> Response {
    if req.path().trim_end_matches('/') != "/advance" {
        return error_response(404, "not_found", "try POST /advance");
    }
    let Ok(assignment) = serde_json::from_slice::<engine::Assignment>(req.body()) else {
        return error_response(
            400,
            "invalid_json",
            "expected {run_id, lease, lease_secs, run?}",
        );
    };
    let db = match synatra_internal::database() {
        Ok(db) => db,
        Err(unavailable) => return unavailable,
    };
    let run_id = assignment.run_id.clone();
    match engine::advance(&db, assignment).await {
        Ok(o) => json_response(200, &json!({ "outcome": o.as_str() })),
        Err(e) => {
            eprintln!("agent-step {run_id}: {e}");
            error_response(500, "step_failed", e)
        }
    }
}
