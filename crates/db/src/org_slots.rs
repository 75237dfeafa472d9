//! `org_slots`: per-org limits on work that waits (tool tests, event
//! streams), so one org cannot hold what every org shares.

use spin_sdk::pg4::ParameterValue::Int32;

use crate::{text, uuid, Db, DbResult};

/// A kind of limited work.
#[derive(Clone, Copy)]
pub enum Kind {
    ToolTest,
    EventStream,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::ToolTest => "tool_test",
            Kind::EventStream => "event_stream",
        }
    }
}

/// Takes one of `limit` slots of `kind` for the org, held for at most
/// `secs` (its expiry frees it if the holder dies); None when all are taken.
pub fn take(db: &Db, org_id: &str, kind: Kind, limit: u32, secs: u32) -> DbResult<Option<String>> {
    let row = db.query_one(
        "SELECT take_org_slot($1, $2, $3, $4)::text AS id",
        &[
            uuid(org_id),
            text(kind.as_str()),
            Int32(limit.min(i32::MAX as u32) as i32),
            Int32(secs.min(i32::MAX as u32) as i32),
        ],
    )?;
    row.opt_str("id")
}

/// Gives a slot back.
pub fn release(db: &Db, slot_id: &str) -> DbResult<()> {
    db.execute("DELETE FROM org_slots WHERE id = $1", &[uuid(slot_id)])?;
    Ok(())
}
