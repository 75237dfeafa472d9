//! Per-org limits on work that waits (`max_tool_tests_per_org`,
//! `max_event_streams_per_org`): one org's tool tests or open streams can
//! never take what every org shares. Over the limit: 429 `org_limit_reached`.

use synatra_db::org_slots::{self, Kind};
use synatra_db::Db;

use crate::ctx::OrgCtx;
use crate::error::{ApiError, ApiResult};

/// A slot taken; give it back with [`release`].
pub struct Slot(String);

/// Takes a slot of `kind` for the caller's org, held for at most `secs`.
pub fn take(ctx: &OrgCtx, kind: Kind, secs: u32) -> ApiResult<Slot> {
    let (setting, default, what) = match kind {
        Kind::ToolTest => ("max_tool_tests_per_org", 4, "tool tests"),
        Kind::EventStream => ("max_event_streams_per_org", 50, "event streams"),
    };
    let limit = synatra_internal::setting(setting).unwrap_or(default);
    match org_slots::take(ctx.db, &ctx.org.id, kind, limit, secs)? {
        Some(id) => Ok(Slot(id)),
        None => Err(ApiError::retry_later(
            "org_limit_reached",
            format!("this org already has {limit} {what} running (the {setting} setting); try again when one ends"),
            1,
        )),
    }
}

/// Gives `slot` back (its expiry frees it if this fails).
pub fn release(db: &Db, slot: Slot) {
    if let Err(e) = org_slots::release(db, &slot.0) {
        eprintln!("could not release an org slot: {e}");
    }
}
