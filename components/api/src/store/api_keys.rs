//! `api_keys`: org-scoped bearer tokens; only hashes are stored.

use serde_json::{json, Value};
use synatra_authz::Role;

use crate::auth::Principal;
use crate::db::{opt_uuid, text, uuid, Db, DbResult, Row};
use crate::error::ApiResult;

const COLUMNS: &str = "id, name, role, prefix, created_at AT TIME ZONE 'UTC' AS created_at, last_used_at AT TIME ZONE 'UTC' AS last_used_at";

fn to_json(r: &Row) -> DbResult<Value> {
    Ok(json!({
        "id": r.str("id")?, "name": r.str("name")?, "role": r.str("role")?, "prefix": r.str("prefix")?,
        "created_at": r.time("created_at")?, "last_used_at": r.time("last_used_at")?,
    }))
}

/// Creates a key; returns its JSON (without the token).
pub fn create(
    db: &Db,
    org_id: &str,
    name: &str,
    role: Role,
    token_hash: &str,
    prefix: &str,
    by: Option<&str>,
) -> ApiResult<Value> {
    let r = db.query_one(
        &format!(
            "INSERT INTO api_keys (org_id, name, role, token_hash, prefix, created_by)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
        ),
        &[
            uuid(org_id),
            text(name),
            text(role.as_str()),
            text(token_hash),
            text(prefix),
            opt_uuid(by),
        ],
    )?;
    Ok(to_json(&r)?)
}

/// Active keys of an org.
pub fn list(db: &Db, org_id: &str) -> ApiResult<Vec<Value>> {
    Ok(db
        .query(
            &format!("SELECT {COLUMNS} FROM api_keys WHERE org_id = $1 AND revoked_at IS NULL ORDER BY created_at"),
            &[uuid(org_id)],
        )?
        .iter()
        .map(to_json)
        .collect::<DbResult<Vec<_>>>()?)
}

/// Revokes a key; false if there was no active key with that id.
pub fn revoke(db: &Db, org_id: &str, id: &str) -> ApiResult<bool> {
    Ok(db.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL",
        &[uuid(org_id), uuid(id)],
    )? == 1)
}

/// Revokes the keys `user_id` created in the org whose role is above
/// `keep_up_to` (all of them when None): a key never outlives its creator's
/// membership or grants more than the creator still has.
pub fn revoke_created_by(
    db: &Db,
    org_id: &str,
    user_id: &str,
    keep_up_to: Option<Role>,
) -> ApiResult<()> {
    let allowed: Vec<&str> = Role::ALL
        .iter()
        .filter(|r| keep_up_to.is_some_and(|k| **r <= k))
        .map(|r| r.as_str())
        .collect();
    db.execute(
        "UPDATE api_keys SET revoked_at = now()
         WHERE org_id = $1 AND created_by = $2 AND revoked_at IS NULL
           AND NOT (role = ANY (string_to_array($3, ',')))",
        &[uuid(org_id), uuid(user_id), text(&allowed.join(","))],
    )?;
    Ok(())
}

/// The principal of an active key, recording its use.
pub fn find_active(db: &Db, token_hash: &str) -> ApiResult<Option<Principal>> {
    Ok(db
        .query_opt(
            "UPDATE api_keys SET last_used_at = now()
             WHERE token_hash = $1 AND revoked_at IS NULL
             RETURNING id, org_id, role, name, created_by::text AS created_by",
            &[text(token_hash)],
        )?
        .map(|r| -> DbResult<_> {
            Ok(Principal::ApiKey {
                key_id: r.str("id")?,
                org_id: r.str("org_id")?,
                role: r.str("role")?.parse().unwrap_or(Role::Member),
                name: r.str("name")?,
                created_by: r.get("created_by")?,
            })
        })
        .transpose()?)
}
