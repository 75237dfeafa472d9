//! Tool definitions as runs and releases read them: a tool's current
//! version, or an exact version a release pinned.

use serde_json::Value;

use crate::{opt_text, text, uuid, Db, DbResult};

/// Tool `name` of the org at `version` (its current one when None):
/// `(version, definition)`.
pub fn definition(
    db: &Db,
    org_id: &str,
    name: &str,
    version: Option<&str>,
) -> DbResult<Option<(String, Value)>> {
    Ok(db
        .query_opt(
            "SELECT v.version, v.definition FROM tools t
             JOIN tool_versions v ON v.tool_id = t.id
             WHERE t.org_id = $1 AND t.name = $2 AND v.version = coalesce($3, t.version)",
            &[uuid(org_id), text(name), opt_text(version)],
        )?
        .map(|r| (r.str("version"), r.json("definition"))))
}
