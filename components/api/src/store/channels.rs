//! `channels` and `channel_members`: who belongs to a channel, as owner or
//! member (channel owners may approve `owner-only` tool calls there).

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::db::{text, uuid, Db, DbResult};
use crate::error::ApiResult;

/// Creates a channel; a taken slug is a unique violation (409). `owner`
/// (the creator, if a person) becomes its owner.
pub fn create(
    db: &Db,
    org_id: &str,
    slug: &str,
    name: &str,
    owner: Option<&str>,
) -> ApiResult<Value> {
    let r = db.query_one(
        "INSERT INTO channels (org_id, slug, name) VALUES ($1, $2, $3)
         RETURNING id, slug, name, is_default, created_at AT TIME ZONE 'UTC' AS created_at",
        &[uuid(org_id), text(slug), text(name)],
    )?;
    if let Some(user) = owner {
        set_member(db, &r.str("id")?, user, "owner")?;
    }
    Ok(json!({
        "id": r.str("id")?, "slug": r.str("slug")?, "name": r.str("name")?,
        "is_default": r.bool("is_default")?, "created_at": r.time("created_at")?,
    }))
}

/// A channel's members with their channel role.
pub fn members(db: &Db, channel_id: &str) -> ApiResult<Vec<Value>> {
    Ok(db
        .query(
            "SELECT u.id, u.email, u.name, cm.role, cm.created_at AT TIME ZONE 'UTC' AS created_at FROM channel_members cm
             JOIN users u ON u.id = cm.user_id WHERE cm.channel_id = $1 ORDER BY u.email",
            &[uuid(channel_id)],
        )?
        .iter()
        .map(|r| -> DbResult<_> { Ok({
            json!({
                "user_id": r.str("id")?, "email": r.str("email")?, "name": r.str("name")?,
                "role": r.str("role")?, "joined_at": r.time("created_at")?,
            })
        }) })
        .collect::<DbResult<Vec<_>>>()?)
}

/// Adds `user_id` to the channel or changes their role there.
pub fn set_member(db: &Db, channel_id: &str, user_id: &str, role: &str) -> ApiResult<()> {
    db.execute(
        "INSERT INTO channel_members (channel_id, user_id, role) VALUES ($1, $2, $3)
         ON CONFLICT (channel_id, user_id) DO UPDATE SET role = EXCLUDED.role",
        &[uuid(channel_id), uuid(user_id), text(role)],
    )?;
    Ok(())
}

/// Removes `user_id` from the channel; false when they were not in it.
pub fn remove_member(db: &Db, channel_id: &str, user_id: &str) -> ApiResult<bool> {
    Ok(db.execute(
        "DELETE FROM channel_members WHERE channel_id = $1 AND user_id = $2",
        &[uuid(channel_id), uuid(user_id)],
    )? == 1)
}

/// Adds a new org member to the org's default channel.
pub fn join_default(db: &Db, org_id: &str, user_id: &str) -> ApiResult<()> {
    db.execute(
        "INSERT INTO channel_members (channel_id, user_id, role)
         SELECT id, $2, 'member' FROM channels WHERE org_id = $1 AND is_default
         ON CONFLICT DO NOTHING",
        &[uuid(org_id), uuid(user_id)],
    )?;
    Ok(())
}

/// Removes `user_id` from every channel of the org.
pub fn leave_org(db: &Db, org_id: &str, user_id: &str) -> ApiResult<()> {
    db.execute(
        "DELETE FROM channel_members WHERE user_id = $2
         AND channel_id IN (SELECT id FROM channels WHERE org_id = $1)",
        &[uuid(org_id), uuid(user_id)],
    )?;
    Ok(())
}

/// The channels `user_id` belongs to, with their role in each.
pub fn roles_of(db: &Db, user_id: &str) -> ApiResult<HashMap<String, String>> {
    Ok(db
        .query(
            "SELECT channel_id::text AS channel_id, role FROM channel_members WHERE user_id = $1",
            &[uuid(user_id)],
        )?
        .iter()
        .map(|r| -> DbResult<_> { Ok((r.str("channel_id")?, r.str("role")?)) })
        .collect::<DbResult<HashMap<_, _>>>()?)
}
