//! `orgs`, with their default `environments` and `channels`.

use serde_json::{json, Value};
use synatra_authz::Role;

use crate::db::{opt_text, text, uuid, Db, DbResult, Row};
use crate::error::ApiResult;
use crate::store::channels;

/// An org as seen by one caller: its row and the caller's role.
pub struct OrgAccess {
    pub id: String,
    pub role: Role,
    pub json: Value,
}

fn to_json(r: &Row) -> DbResult<Value> {
    Ok(json!({
        "id": r.str("id")?, "name": r.str("name")?, "slug": r.str("slug")?,
        "role": r.str("role")?, "created_at": r.time("created_at")?,
    }))
}

/// The org of a row of [`member_org_sql`]'s columns.
pub fn access(r: Row) -> DbResult<OrgAccess> {
    Ok(OrgAccess {
        id: r.str("id")?,
        role: r.str("role")?.parse().unwrap_or(Role::Member),
        json: to_json(&r)?,
    })
}

/// The query for the org named by `key` (slug or id, an SQL expression)
/// with the role of member `user` (an SQL expression) in it.
pub fn member_org_sql(key: &str, user: &str) -> String {
    format!(
        "SELECT o.id, o.name, o.slug, o.created_at AT TIME ZONE 'UTC' AS created_at, m.role
         FROM orgs o JOIN org_members m ON m.org_id = o.id AND m.user_id = {user}
         WHERE o.slug = {key} OR o.id::text = {key}"
    )
}

/// The org named by `key` (slug or id) if `user_id` is a member.
pub fn for_member(db: &Db, key: &str, user_id: &str) -> ApiResult<Option<OrgAccess>> {
    Ok(db
        .query_opt(&member_org_sql("$1", "$2"), &[text(key), uuid(user_id)])?
        .map(access)
        .transpose()?)
}

/// The org named by `key` if it is `org_id` (an API key's org), with the key's role.
pub fn for_api_key(db: &Db, key: &str, org_id: &str, role: Role) -> ApiResult<Option<OrgAccess>> {
    Ok(db
        .query_opt(
            "SELECT o.id, o.name, o.slug, o.created_at AT TIME ZONE 'UTC' AS created_at, $3 AS role
             FROM orgs o WHERE o.id = $2 AND (o.slug = $1 OR o.id::text = $1)",
            &[text(key), uuid(org_id), text(role.as_str())],
        )?
        .map(access)
        .transpose()?)
}

/// Orgs `user_id` belongs to, with their role.
pub fn list_for_user(db: &Db, user_id: &str) -> ApiResult<Vec<Value>> {
    Ok(db
        .query(
            "SELECT o.id, o.name, o.slug, o.created_at AT TIME ZONE 'UTC' AS created_at, m.role
             FROM orgs o JOIN org_members m ON m.org_id = o.id
             WHERE m.user_id = $1 ORDER BY o.created_at, o.slug",
            &[uuid(user_id)],
        )?
        .iter()
        .map(to_json)
        .collect::<DbResult<Vec<_>>>()?)
}

/// Creates an org owned by `user_id` with environments `production` and
/// `staging` (both protected) and the default channel `general`. Call inside
/// a transaction.
pub fn create(db: &Db, name: &str, slug: &str, user_id: &str) -> ApiResult<Value> {
    let org = db.query_one(
        "INSERT INTO orgs (name, slug, created_by) VALUES ($1, $2, $3)
         RETURNING id, name, slug, created_at AT TIME ZONE 'UTC' AS created_at, 'owner' AS role",
        &[text(name), text(slug), uuid(user_id)],
    )?;
    let org_id = org.str("id")?;
    db.execute(
        "INSERT INTO org_members (org_id, user_id, role) VALUES ($1, $2, 'owner')",
        &[uuid(&org_id), uuid(user_id)],
    )?;
    db.execute(
        "INSERT INTO environments (org_id, slug, name, protected)
         VALUES ($1, 'production', 'Production', true), ($1, 'staging', 'Staging', true)",
        &[uuid(&org_id)],
    )?;
    let channel = db.query_one(
        "INSERT INTO channels (org_id, slug, name, is_default) VALUES ($1, 'general', 'General', true)
         RETURNING id",
        &[uuid(&org_id)],
    )?;
    channels::set_member(db, &channel.str("id")?, user_id, "owner")?;
    let mut json = to_json(&org)?;
    json["environments"] = Value::Array(environments(db, &org_id)?);
    json["channels"] = Value::Array(channels(db, &org_id)?);
    Ok(json)
}

/// Deletes an org and everything in it.
pub fn delete(db: &Db, org_id: &str) -> ApiResult<()> {
    db.execute("DELETE FROM orgs WHERE id = $1", &[uuid(org_id)])?;
    Ok(())
}

/// The org's environments.
pub fn environments(db: &Db, org_id: &str) -> ApiResult<Vec<Value>> {
    Ok(db
        .query(
            "SELECT id, slug, name, protected, created_at AT TIME ZONE 'UTC' AS created_at FROM environments WHERE org_id = $1 ORDER BY slug",
            &[uuid(org_id)],
        )?
        .iter()
        .map(|r| -> DbResult<_> { Ok({
            json!({
                "id": r.str("id")?, "slug": r.str("slug")?, "name": r.str("name")?,
                "protected": r.bool("protected")?, "created_at": r.time("created_at")?,
            })
        }) })
        .collect::<DbResult<Vec<_>>>()?)
}

/// The org's channels.
pub fn channels(db: &Db, org_id: &str) -> ApiResult<Vec<Value>> {
    Ok(db
        .query(
            "SELECT id, slug, name, is_default, created_at AT TIME ZONE 'UTC' AS created_at FROM channels WHERE org_id = $1 ORDER BY slug",
            &[uuid(org_id)],
        )?
        .iter()
        .map(|r| -> DbResult<_> { Ok({
            json!({
                "id": r.str("id")?, "slug": r.str("slug")?, "name": r.str("name")?,
                "is_default": r.bool("is_default")?, "created_at": r.time("created_at")?,
            })
        }) })
        .collect::<DbResult<Vec<_>>>()?)
}

/// SQL selecting the id of the org's channel named by the text parameter
/// `key` (slug or id; the org's default channel when NULL); `org` is the
/// org id's parameter.
pub(crate) fn channel_by_key(org: &str, key: &str) -> String {
    format!(
        "SELECT id FROM channels WHERE org_id = {org}
         AND (({key}::text IS NULL AND is_default) OR slug = {key} OR id::text = {key})"
    )
}

/// SQL selecting the id of the org's environment named by the text
/// parameter `key` (slug or id; `production` when NULL).
pub(crate) fn environment_by_key(org: &str, key: &str) -> String {
    format!(
        "SELECT id FROM environments WHERE org_id = {org}
         AND (slug = COALESCE({key}::text, 'production') OR id::text = {key})"
    )
}

/// A channel of the org by slug or id; the default channel when `key` is None.
pub fn channel_id(db: &Db, org_id: &str, key: Option<&str>) -> ApiResult<Option<String>> {
    id_by_key(db, &channel_by_key("$1", "$2"), org_id, key)
}

/// An environment of the org by slug or id; `production` when `key` is None.
pub fn environment_id(db: &Db, org_id: &str, key: Option<&str>) -> ApiResult<Option<String>> {
    id_by_key(db, &environment_by_key("$1", "$2"), org_id, key)
}

fn id_by_key(db: &Db, sql: &str, org_id: &str, key: Option<&str>) -> ApiResult<Option<String>> {
    Ok(db
        .query_opt(sql, &[uuid(org_id), opt_text(key)])?
        .map(|r| -> DbResult<_> { r.str("id") })
        .transpose()?)
}
