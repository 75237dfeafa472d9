//! `sessions`: only token hashes are stored.

use crate::auth::{Principal, SESSION_DAYS};
use crate::db::{text, uuid, Db};
use crate::error::ApiResult;
use crate::store::orgs::{self, OrgAccess};

/// Creates a session for `user_id` with the given token hash.
pub fn create(db: &Db, user_id: &str, token_hash: &str) -> ApiResult<()> {
    db.execute(
        &format!(
            "INSERT INTO sessions (user_id, token_hash, expires_at) VALUES ($1, $2, now() + interval '{SESSION_DAYS} days')"
        ),
        &[uuid(user_id), text(token_hash)],
    )?;
    Ok(())
}

/// The principal of an unexpired session and, read in the same statement,
/// the org named by `org_key` if the session's user is a member of it (an
/// empty key names none: a slug has at least 2 characters).
pub fn find_active(
    db: &Db,
    token_hash: &str,
    org_key: &str,
) -> ApiResult<Option<(Principal, Option<OrgAccess>)>> {
    let Some(row) = db.query_opt(
        &format!(
            "SELECT s.id AS session_id, s.user_id, (o.id IS NOT NULL) AS member, o.*
             FROM sessions s
             LEFT JOIN LATERAL ({} LIMIT 1) o ON true
             WHERE s.token_hash = $1 AND s.expires_at > now()",
            orgs::member_org_sql("$2", "s.user_id")
        ),
        &[text(token_hash), text(org_key)],
    )?
    else {
        return Ok(None);
    };
    let principal = Principal::Session {
        user_id: row.str("user_id")?,
        session_id: row.str("session_id")?,
    };
    let org = if row.bool("member")? {
        Some(orgs::access(row)?)
    } else {
        None
    };
    Ok(Some((principal, org)))
}

/// Ends a session.
pub fn delete(db: &Db, session_id: &str) -> ApiResult<()> {
    db.execute("DELETE FROM sessions WHERE id = $1", &[uuid(session_id)])?;
    Ok(())
}
