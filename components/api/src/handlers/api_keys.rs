//! Org API keys: `Authorization: Bearer <token>` works wherever a session does,
//! scoped to the key's org and role.

use serde_json::json;

use crate::auth::{self, API_KEY_PREFIX};
use crate::ctx::OrgCtx;
use crate::error::{ApiError, ApiResult};
use crate::handlers::members::{check_grant, role_field};
use crate::http::Reply;
use crate::store::api_keys;

/// `POST /orgs/{org}/api-keys {name, role}`: the token is returned only here.
pub fn create(ctx: &OrgCtx) -> ApiResult<Reply> {
    let mut input = ctx.input()?;
    let name = input.string("name", 1, 100);
    let role = role_field(&mut input);
    input.finish()?;
    let org = &ctx.org;
    check_grant(org.role, role)?;
    // A key cannot mint keys: revoking a leaked key must end its access.
    let by = Some(ctx.principal()?.user_id()?);
    let token = format!("{API_KEY_PREFIX}{}", auth::new_token()?);
    let prefix = &token[..API_KEY_PREFIX.len() + 8];
    let mut key = ctx.db.transaction(|db| {
        api_keys::create(
            db,
            &org.id,
            &name,
            role,
            &auth::hash_token(&token),
            prefix,
            by,
        )
    })?;
    key["token"] = token.into();
    Ok(Reply::created(key))
}

/// `GET /orgs/{org}/api-keys`: active keys (no tokens).
pub fn list(ctx: &OrgCtx) -> ApiResult<Reply> {
    Ok(Reply::ok(
        json!({ "api_keys": api_keys::list(ctx.db, &ctx.org.id)? }),
    ))
}

/// `DELETE /orgs/{org}/api-keys/{key_id}`: revokes the key.
pub fn delete(ctx: &OrgCtx) -> ApiResult<Reply> {
    let id = ctx.uuid_param("key_id", "API key")?;
    if ctx
        .db
        .transaction(|db| api_keys::revoke(db, &ctx.org.id, id))?
    {
        Ok(Reply::no_content())
    } else {
        Err(ApiError::not_found("API key"))
    }
}
