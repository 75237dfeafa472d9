//! Invitations: admins invite by email; the invitee accepts with the token.

use serde_json::json;

use crate::auth;
use crate::ctx::{Ctx, OrgCtx};
use crate::error::{ApiError, ApiResult};
use crate::handlers::members::{check_grant, role_field};
use crate::http::Reply;
use crate::input::is_email;
use crate::store::{invitations, members, orgs, users};

/// `POST /orgs/{org}/invitations {email, role}`: returns the token once.
pub fn create(ctx: &OrgCtx) -> ApiResult<Reply> {
    let mut input = ctx.input()?;
    let email = input.string("email", 3, 254);
    input.check(
        email.is_empty() || is_email(&email),
        "email",
        "`email` must be an email address",
    );
    let role = role_field(&mut input);
    input.finish()?;
    let org = &ctx.org;
    check_grant(org.role, role)?;
    // A key cannot invite people: revoking a leaked key must end its access.
    ctx.principal()?.user_id()?;
    let token = auth::new_token()?;
    let by = ctx.principal()?.user_id().ok();
    let mut invitation = ctx.db.transaction(|db| {
        let already = db.query_opt(
            "SELECT 1 AS one FROM org_members m JOIN users u ON u.id = m.user_id
             WHERE m.org_id = $1 AND lower(u.email) = lower($2)",
            &[crate::db::uuid(&org.id), crate::db::text(&email)],
        )?;
        if already.is_some() {
            return Err(ApiError::conflict(
                "already_member",
                "this person is already a member",
            ));
        }
        invitations::create(db, &org.id, &email, role, &auth::hash_token(&token), by)
    })?;
    invitation["token"] = token.into();
    Ok(Reply::created(invitation))
}

/// `GET /orgs/{org}/invitations`: pending invitations (no tokens).
pub fn list(ctx: &OrgCtx) -> ApiResult<Reply> {
    Ok(Reply::ok(
        json!({ "invitations": invitations::pending(ctx.db, &ctx.org.id)? }),
    ))
}

/// `DELETE /orgs/{org}/invitations/{invitation_id}`.
pub fn revoke(ctx: &OrgCtx) -> ApiResult<Reply> {
    let id = ctx.uuid_param("invitation_id", "invitation")?;
    if ctx
        .db
        .transaction(|db| invitations::revoke(db, &ctx.org.id, id))?
    {
        Ok(Reply::no_content())
    } else {
        Err(ApiError::not_found("invitation"))
    }
}

/// `POST /invitations/{token}/accept`: the signed-in user whose email was
/// invited joins the org with the invited role.
pub fn accept(ctx: &Ctx) -> ApiResult<Reply> {
    let user_id = ctx.principal()?.user_id()?;
    let token_hash = auth::hash_token(ctx.param("token"));
    let org = ctx.db.transaction(|db| {
        let inv = invitations::find_for_update(db, &token_hash)?
            .ok_or_else(|| ApiError::not_found("invitation"))?;
        if inv.used {
            return Err(ApiError::conflict(
                "invitation_used",
                "this invitation was already used or revoked",
            ));
        }
        if inv.expired {
            return Err(ApiError::new(
                410,
                "invitation_expired",
                "this invitation has expired",
            ));
        }
        let user = users::get(db, user_id)?.ok_or_else(ApiError::unauthenticated)?;
        if !user.str("email")?.eq_ignore_ascii_case(&inv.email) {
            return Err(ApiError::new(
                403,
                "invitation_email_mismatch",
                "this invitation was sent to a different email address",
            ));
        }
        members::insert(db, &inv.org_id, user_id, inv.role)
            .map_err(|e| e.on_conflict("already_member", "you are already a member"))?;
        invitations::mark_accepted(db, &inv.id, user_id)?;
        orgs::for_member(db, &inv.org_id, user_id)?
            .ok_or_else(|| ApiError::internal("membership vanished"))
    })?;
    Ok(Reply::ok(org.json))
}
