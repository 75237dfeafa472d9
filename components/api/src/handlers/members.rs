//! Org membership: list, change role, remove.

use serde_json::json;
use synatra_authz::Role;

use crate::ctx::OrgCtx;
use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use crate::http::Reply;
use crate::input::Input;
use crate::store::members;

/// Parses a required `role` field.
pub fn role_field(input: &mut Input) -> Role {
    let role = input.string("role", 1, 20);
    let parsed = role.parse::<Role>();
    input.check(
        role.is_empty() || parsed.is_ok(),
        "role",
        "`role` must be one of owner, admin, builder, member",
    );
    parsed.unwrap_or(Role::Member)
}

/// Refuses to let `actor` grant `role`.
pub fn check_grant(actor: Role, role: Role) -> ApiResult<()> {
    if actor.may_grant(role) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "a {actor} cannot grant the {role} role"
        )))
    }
}

/// Locks the target membership and checks that `actor` may change it and
/// that the org keeps an owner if the target stops being one.
fn guard_target(
    db: &Db,
    org_id: &str,
    user_id: &str,
    actor: Role,
    stays_owner: bool,
) -> ApiResult<Role> {
    let target = members::role_for_update(db, org_id, user_id)?
        .ok_or_else(|| ApiError::not_found("member"))?;
    if target == Role::Owner && actor != Role::Owner {
        return Err(ApiError::forbidden(
            "only owners can change or remove an owner",
        ));
    }
    if target == Role::Owner && !stays_owner && members::owner_count(db, org_id)? <= 1 {
        return Err(ApiError::conflict(
            "last_owner",
            "an organization must keep at least one owner",
        ));
    }
    Ok(target)
}

/// `GET /orgs/{org}/members`.
pub fn list(ctx: &OrgCtx) -> ApiResult<Reply> {
    Ok(Reply::ok(
        json!({ "members": members::list(ctx.db, &ctx.org.id)? }),
    ))
}

/// `PATCH /orgs/{org}/members/{user_id} {role}`.
pub fn update(ctx: &OrgCtx) -> ApiResult<Reply> {
    let user_id = ctx.uuid_param("user_id", "member")?;
    let mut input = ctx.input()?;
    let role = role_field(&mut input);
    input.finish()?;
    let org = &ctx.org;
    check_grant(org.role, role)?;
    let member = ctx.db.transaction(|db| {
        guard_target(db, &org.id, user_id, org.role, role == Role::Owner)?;
        crate::store::api_keys::revoke_created_by(db, &org.id, user_id, Some(role))?;
        crate::store::invitations::revoke_sent_by(db, &org.id, user_id, Some(role))?;
        members::set_role(db, &org.id, user_id, role)
    })?;
    Ok(Reply::ok(member))
}

/// `DELETE /orgs/{org}/members/{user_id}`.
pub fn remove(ctx: &OrgCtx) -> ApiResult<Reply> {
    let user_id = ctx.uuid_param("user_id", "member")?;
    let org = &ctx.org;
    ctx.db.transaction(|db| {
        guard_target(db, &org.id, user_id, org.role, false)?;
        crate::store::api_keys::revoke_created_by(db, &org.id, user_id, None)?;
        crate::store::invitations::revoke_sent_by(db, &org.id, user_id, None)?;
        members::remove(db, &org.id, user_id)
    })?;
    Ok(Reply::no_content())
}
