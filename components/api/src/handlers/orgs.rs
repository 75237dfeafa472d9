//! Organisations.

use serde_json::json;

use crate::auth::Principal;
use crate::ctx::{Ctx, OrgCtx};
use crate::error::ApiResult;
use crate::http::Reply;
use crate::input::is_slug;
use crate::store::orgs;
use crate::visibility::Visibility;

/// `POST /orgs {name, slug}`: the caller becomes owner; the org gets
/// environments `production` and `staging` and the channel `general`.
pub fn create(ctx: &Ctx) -> ApiResult<Reply> {
    let user_id = ctx.principal()?.user_id()?;
    let mut input = ctx.input()?;
    let name = input.string("name", 1, 100);
    let slug = input.string("slug", 2, 64);
    input.check(
        slug.is_empty() || is_slug(&slug),
        "slug",
        "`slug` may contain lower-case letters, digits and inner hyphens",
    );
    input.finish()?;
    let org = ctx
        .db
        .transaction(|db| orgs::create(db, &name, &slug, user_id))
        .map_err(|e| {
            e.on_conflict(
                "slug_taken",
                "an organization with this slug already exists",
            )
        })?;
    Ok(Reply::created(org))
}

/// `GET /orgs`: the caller's orgs (an API key sees its own).
pub fn list(ctx: &Ctx) -> ApiResult<Reply> {
    let list = match ctx.principal()? {
        Principal::Session { user_id, .. } => orgs::list_for_user(ctx.db, user_id)?,
        Principal::ApiKey { org_id, role, .. } => orgs::for_api_key(ctx.db, org_id, org_id, *role)?
            .map(|o| vec![o.json])
            .unwrap_or_default(),
    };
    Ok(Reply::ok(json!({ "orgs": list })))
}

/// `GET /orgs/{org}`.
pub fn get(ctx: &OrgCtx) -> ApiResult<Reply> {
    Ok(Reply::ok(ctx.org.json.clone()))
}

/// `DELETE /orgs/{org}` (owner only).
pub fn delete(ctx: &OrgCtx) -> ApiResult<Reply> {
    ctx.db.transaction(|db| orgs::delete(db, &ctx.org.id))?;
    Ok(Reply::no_content())
}

/// `GET /orgs/{org}/environments`.
pub fn environments(ctx: &OrgCtx) -> ApiResult<Reply> {
    Ok(Reply::ok(
        json!({ "environments": orgs::environments(ctx.db, &ctx.org.id)? }),
    ))
}

/// `GET /orgs/{org}/channels`: the channels whose threads the caller sees
/// (members: theirs; owners, admins and API keys: all).
pub fn channels(ctx: &OrgCtx) -> ApiResult<Reply> {
    let visibility = Visibility::of(ctx)?;
    let channels: Vec<_> = orgs::channels(ctx.db, &ctx.org.id)?
        .into_iter()
        .filter(|c| visibility.sees(c["id"].as_str()))
        .collect();
    Ok(Reply::ok(json!({ "channels": channels })))
}
