//! `org_members`.

use serde_json::{json, Value};
use synatra_authz::Role;

use crate::db::{text, uuid, Db, DbResult, Row};
use crate::error::ApiResult;
use crate::store::channels;

const SELECT: &str =
    "SELECT m.user_id, u.email, u.name, m.role, m.created_at AT TIME ZONE 'UTC' AS created_at
    FROM org_members m JOIN users u ON u.id = m.user_id";

fn to_json(r: &Row) -> DbResult<Value> {
    Ok(json!({
        "user_id": r.str("user_id")?, "email": r.str("email")?, "name": r.str("name")?,
        "role": r.str("role")?, "joined_at": r.time("created_at")?,
    }))
}

/// Members of an org.
pub fn list(db: &Db, org_id: &str) -> ApiResult<Vec<Value>> {
    Ok(db
        .query(
            &format!("{SELECT} WHERE m.org_id = $1 ORDER BY m.created_at, u.email"),
            &[uuid(org_id)],
        )?
        .iter()
        .map(to_json)
        .collect::<DbResult<Vec<_>>>()?)
}

/// A member's role, locking the row for the rest of the transaction.
pub fn role_for_update(db: &Db, org_id: &str, user_id: &str) -> ApiResult<Option<Role>> {
    Ok(db
        .query_opt(
            "SELECT role FROM org_members WHERE org_id = $1 AND user_id = $2 FOR UPDATE",
            &[uuid(org_id), uuid(user_id)],
        )?
        .map(|r| r.str("role"))
        .transpose()?
        .and_then(|role| role.parse().ok()))
}

/// Number of owners, locking them for the rest of the transaction.
pub fn owner_count(db: &Db, org_id: &str) -> ApiResult<i64> {
    Ok(db
        .query(
            "SELECT user_id FROM org_members WHERE org_id = $1 AND role = 'owner' FOR UPDATE",
            &[uuid(org_id)],
        )?
        .len() as i64)
}

/// Adds a member; an existing membership is a unique violation (409).
pub fn insert(db: &Db, org_id: &str, user_id: &str, role: Role) -> ApiResult<()> {
    db.execute(
        "INSERT INTO org_members (org_id, user_id, role) VALUES ($1, $2, $3)",
        &[uuid(org_id), uuid(user_id), text(role.as_str())],
    )?;
    channels::join_default(db, org_id, user_id)
}

/// Changes a member's role; returns the updated member.
pub fn set_role(db: &Db, org_id: &str, user_id: &str, role: Role) -> ApiResult<Value> {
    db.execute(
        "UPDATE org_members SET role = $3 WHERE org_id = $1 AND user_id = $2",
        &[uuid(org_id), uuid(user_id), text(role.as_str())],
    )?;
    let row = db.query_one(
        &format!("{SELECT} WHERE m.org_id = $1 AND m.user_id = $2"),
        &[uuid(org_id), uuid(user_id)],
    )?;
    Ok(to_json(&row)?)
}

/// Removes a member and their channel memberships in the org.
pub fn remove(db: &Db, org_id: &str, user_id: &str) -> ApiResult<()> {
    channels::leave_org(db, org_id, user_id)?;
    db.execute(
        "DELETE FROM org_members WHERE org_id = $1 AND user_id = $2",
        &[uuid(org_id), uuid(user_id)],
    )?;
    Ok(())
}
