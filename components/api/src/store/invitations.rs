//! `invitations`: only token hashes are stored.

use serde_json::{json, Value};
use synatra_authz::Role;

use crate::db::{opt_uuid, text, uuid, Db, DbResult, Row};
use crate::error::ApiResult;

/// Days an invitation stays valid.
pub const VALID_DAYS: i64 = 7;

fn to_json(r: &Row) -> DbResult<Value> {
    Ok(json!({
        "id": r.str("id")?, "email": r.str("email")?, "role": r.str("role")?,
        "created_at": r.time("created_at")?, "expires_at": r.time("expires_at")?,
    }))
}

/// Creates an invitation; returns its JSON (without the token).
pub fn create(
    db: &Db,
    org_id: &str,
    email: &str,
    role: Role,
    token_hash: &str,
    by: Option<&str>,
) -> ApiResult<Value> {
    let r = db.query_one(
        &format!(
            "INSERT INTO invitations (org_id, email, role, token_hash, invited_by, expires_at)
             VALUES ($1, $2, $3, $4, $5, now() + interval '{VALID_DAYS} days')
             RETURNING id, email, role, created_at AT TIME ZONE 'UTC' AS created_at, expires_at AT TIME ZONE 'UTC' AS expires_at"
        ),
        &[
            uuid(org_id),
            text(email),
            text(role.as_str()),
            text(token_hash),
            opt_uuid(by),
        ],
    )?;
    Ok(to_json(&r)?)
}

/// Pending (unaccepted, unrevoked, unexpired) invitations of an org.
pub fn pending(db: &Db, org_id: &str) -> ApiResult<Vec<Value>> {
    Ok(db
        .query(
            "SELECT id, email, role, created_at AT TIME ZONE 'UTC' AS created_at, expires_at AT TIME ZONE 'UTC' AS expires_at FROM invitations
             WHERE org_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()
             ORDER BY created_at",
            &[uuid(org_id)],
        )?
        .iter()
        .map(to_json)
        .collect::<DbResult<Vec<_>>>()?)
}

/// Revokes the pending invitations `user_id` sent in the org that a
/// `still_may_grant` member could not send (all of them when None): an
/// invitation never grants more than its sender still could.
pub fn revoke_sent_by(
    db: &Db,
    org_id: &str,
    user_id: &str,
    still_may_grant: Option<Role>,
) -> ApiResult<()> {
    let allowed: Vec<&str> = Role::ALL
        .iter()
        .filter(|r| still_may_grant.is_some_and(|g| g.may_grant(**r)))
        .map(|r| r.as_str())
        .collect();
    db.execute(
        "UPDATE invitations SET revoked_at = now()
         WHERE org_id = $1 AND invited_by = $2 AND accepted_at IS NULL AND revoked_at IS NULL
           AND NOT (role = ANY (string_to_array($3, ',')))",
        &[uuid(org_id), uuid(user_id), text(&allowed.join(","))],
    )?;
    Ok(())
}

/// Revokes a pending invitation; false if there was none.
pub fn revoke(db: &Db, org_id: &str, id: &str) -> ApiResult<bool> {
    Ok(db.execute(
        "UPDATE invitations SET revoked_at = now()
         WHERE org_id = $1 AND id = $2 AND accepted_at IS NULL AND revoked_at IS NULL",
        &[uuid(org_id), uuid(id)],
    )? == 1)
}

/// An invitation by token hash, locked for acceptance.
pub struct Invitation {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub role: Role,
    pub expired: bool,
    pub used: bool,
}

/// Finds an invitation by token hash, locking it.
pub fn find_for_update(db: &Db, token_hash: &str) -> ApiResult<Option<Invitation>> {
    Ok(db
        .query_opt(
            "SELECT id, org_id, email, role, expires_at <= now() AS expired,
                    (accepted_at IS NOT NULL OR revoked_at IS NOT NULL) AS used
             FROM invitations WHERE token_hash = $1 FOR UPDATE",
            &[text(token_hash)],
        )?
        .map(|r| -> DbResult<_> {
            Ok(Invitation {
                id: r.str("id")?,
                org_id: r.str("org_id")?,
                email: r.str("email")?,
                role: r.str("role")?.parse().unwrap_or(Role::Member),
                expired: r.bool("expired")?,
                used: r.bool("used")?,
            })
        })
        .transpose()?)
}

/// Marks an invitation accepted by `user_id`.
pub fn mark_accepted(db: &Db, id: &str, user_id: &str) -> ApiResult<()> {
    db.execute(
        "UPDATE invitations SET accepted_at = now(), accepted_by = $2 WHERE id = $1",
        &[uuid(id), uuid(user_id)],
    )?;
    Ok(())
}
