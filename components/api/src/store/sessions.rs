//! `sessions`: only token hashes are stored.

use crate::auth::{Principal, SESSION_DAYS};
use crate::db::{text, uuid, Db, DbResult};
use crate::error::ApiResult;

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

/// The principal of an unexpired session.
pub fn find_active(db: &Db, token_hash: &str) -> ApiResult<Option<Principal>> {
    Ok(db
        .query_opt(
            "SELECT id, user_id FROM sessions WHERE token_hash = $1 AND expires_at > now()",
            &[text(token_hash)],
        )?
        .map(|r| -> DbResult<_> {
            Ok(Principal::Session {
                user_id: r.str("user_id")?,
                session_id: r.str("id")?,
            })
        })
        .transpose()?)
}

/// Ends a session.
pub fn delete(db: &Db, session_id: &str) -> ApiResult<()> {
    db.execute("DELETE FROM sessions WHERE id = $1", &[uuid(session_id)])?;
    Ok(())
}
