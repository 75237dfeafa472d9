//! The agent-step component (private route): `POST /advance {run_id, lease,
//! lease_secs}` advances one durable run while the caller's lease holds it.
//! Only the host's dispatcher (or another component of this app, with the
//! service secret) can call it.

mod delegation;
mod engine;
mod model;
mod project;
mod provider;
mod recorder;
mod tools;
mod user_tools;
mod waits;

use serde::Deserialize;
use serde_json::json;
use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;
use synatra_db::Db;

#[derive(Deserialize)]
struct Advance {
    run_id: String,
    lease: String,
    lease_secs: i32,
}

fn json(status: u16, value: serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(value.to_string())
        .build()
}

#[http_component]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    if !synatra_internal::is_authorized(&req) {
        return Ok(json(
            401,
            json!({ "error": { "code": "unauthenticated", "message": "internal route" } }),
        ));
    }
    if req.path().trim_end_matches('/') != "/advance" {
        return Ok(json(
            404,
            json!({ "error": { "code": "not_found", "message": "try POST /advance" } }),
        ));
    }
    let Ok(body) = serde_json::from_slice::<Advance>(req.body()) else {
        return Ok(json(
            400,
            json!({ "error": { "code": "invalid_json", "message": "expected {run_id, lease, lease_secs}" } }),
        ));
    };
    let db = match Db::open() {
        Ok(db) => db,
        Err(e) => {
            return Ok(json(
                503,
                json!({ "error": { "code": "database_unavailable", "message": e.to_string() } }),
            ))
        }
    };
    let outcome = engine::advance(&db, &body.run_id, &body.lease, body.lease_secs).await;
    Ok(match outcome {
        Ok(o) => json(200, json!({ "outcome": o.as_str() })),
        Err(e) => {
            eprintln!("agent-step {}: {e}", body.run_id);
            json(
                500,
                json!({ "error": { "code": "step_failed", "message": e.to_string() } }),
            )
        }
    })
}
