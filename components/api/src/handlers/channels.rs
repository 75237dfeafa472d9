//! Channels: create one, and manage who belongs to it as owner or member.
//! Members see the threads of their channels; a channel's owners may approve
//! `owner-only` tool calls of its threads.

use serde_json::json;

use crate::ctx::OrgCtx;
use crate::error::{ApiError, ApiResult};
use crate::http::Reply;
use crate::input::is_slug;
use crate::store::{channels, members, orgs};
use crate::visibility::Visibility;

/// The `:channel` of the path (slug or id), or 404.
fn channel_id(ctx: &OrgCtx) -> ApiResult<String> {
    orgs::channel_id(ctx.db, &ctx.org.id, Some(ctx.param("channel")))?
        .ok_or_else(|| ApiError::not_found("channel"))
}

/// The `:user_id` of the path if they are a member of the org, or 404.
fn org_member(ctx: &OrgCtx) -> ApiResult<String> {
    let user = ctx.uuid_param("user_id", "member")?;
    members::role_for_update(ctx.db, &ctx.org.id, user)?
        .ok_or_else(|| ApiError::not_found("member"))?;
    Ok(user.to_string())
}

/// `POST /orgs/{org}/channels {slug, name}`: the creator owns it.
pub fn create(ctx: &OrgCtx) -> ApiResult<Reply> {
    let mut input = ctx.input()?;
    let slug = input.string("slug", 1, 64);
    input.check(
        slug.is_empty() || is_slug(&slug),
        "slug",
        "`slug` may contain lower-case letters, digits and inner hyphens",
    );
    let name = input.string("name", 1, 100);
    input.finish()?;
    let owner = ctx.principal()?.user_id().ok();
    let channel = ctx
        .db
        .transaction(|db| channels::create(db, &ctx.org.id, &slug, &name, owner))
        .map_err(|e| e.on_conflict("slug_taken", "a channel with this slug already exists"))?;
    Ok(Reply::created(channel))
}

/// `GET /orgs/{org}/channels/{channel}/members`: for those who see the
/// channel's threads (404 for other members).
pub fn members(ctx: &OrgCtx) -> ApiResult<Reply> {
    let id = channel_id(ctx)?;
    if !Visibility::of(ctx)?.sees(Some(&id)) {
        return Err(ApiError::not_found("channel"));
    }
    Ok(Reply::ok(
        json!({ "members": channels::members(ctx.db, &id)? }),
    ))
}

/// `PUT /orgs/{org}/channels/{channel}/members/{user_id} {role: owner|member}`.
pub fn put_member(ctx: &OrgCtx) -> ApiResult<Reply> {
    let mut input = ctx.input()?;
    let role = input.string("role", 1, 10);
    input.check(
        role.is_empty() || role == "owner" || role == "member",
        "role",
        "`role` must be owner or member",
    );
    input.finish()?;
    ctx.db.transaction(|db| {
        let (channel, user) = (channel_id(ctx)?, org_member(ctx)?);
        channels::set_member(db, &channel, &user, &role)
    })?;
    Ok(Reply::ok(
        json!({ "user_id": ctx.param("user_id"), "role": role }),
    ))
}

/// `DELETE /orgs/{org}/channels/{channel}/members/{user_id}`.
pub fn remove_member(ctx: &OrgCtx) -> ApiResult<Reply> {
    let removed = ctx.db.transaction(|db| {
        let channel = channel_id(ctx)?;
        let user = ctx.uuid_param("user_id", "member")?;
        channels::remove_member(db, &channel, user)
    })?;
    if removed {
        Ok(Reply::no_content())
    } else {
        Err(ApiError::not_found("channel member"))
    }
}
