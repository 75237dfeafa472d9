//! `POST /tick`: advances whatever is due (durable timers, expired
//! approvals, runs whose lease ran out after a crash) for every org. Hosts
//! without our dispatcher call it on a schedule: a Kubernetes CronJob,
//! `spin aka cron`, or a local ticker. Safe to call concurrently and
//! repeatedly: each run is claimed under a lease before it is advanced.

use serde_json::json;
use spin_sdk::http::Request;
use spin_sdk::variables;

use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::Reply;
use crate::inline_runs;

/// Admits only a caller presenting `tick_secret` as `Authorization: Bearer`.
pub fn authorize(req: &Request) -> ApiResult<()> {
    let expected = variables::get("tick_secret").unwrap_or_default();
    if expected.is_empty() {
        return Err(ApiError::new(
            403,
            "tick_disabled",
            "the tick is disabled: set the tick_secret variable (SPIN_VARIABLE_TICK_SECRET)",
        ));
    }
    let given = req
        .header("authorization")
        .and_then(|v| v.as_str())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if synatra_internal::secrets_match(expected.as_bytes(), given.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(
            401,
            "unauthenticated",
            "send the tick secret as `Authorization: Bearer <tick_secret>`",
        ))
    }
}

/// Advances due runs within one request's time budget.
pub fn run(ctx: &Ctx) -> ApiResult<Reply> {
    let advanced = inline_runs::advance_due(ctx.db, None);
    Ok(Reply::ok(json!({ "advanced": advanced })))
}
