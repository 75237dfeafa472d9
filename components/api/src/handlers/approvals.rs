//! Approvals of tool calls: the inbox of calls a person may decide on, and
//! the decision (approve, with edited arguments when the tool is reviewed;
//! or reject), each audited. Who may decide follows the tool's policy and
//! self-approval setting ([`synatra_authz::may_decide_approval`]).

use serde_json::{json, Value};
use synatra_authz::{may_decide_approval, Approver, Requesters};
use synatra_db::approvals::{self, Approval, ApprovalAccess, Decider};

use crate::auth::Principal;
use crate::ctx::OrgCtx;
use crate::error::{ApiError, ApiResult};
use crate::http::{page, query_param, Page, Reply};
use crate::views;
use crate::visibility::Visibility;

const STATUSES: [&str; 5] = ["pending", "approved", "rejected", "timed_out", "cancelled"];

/// What the caller may do with one approval row (joined with its thread).
struct Access {
    visible: bool,
    decide: Result<(), &'static str>,
}

fn access(ctx: &OrgCtx, visibility: &Visibility, row: &ApprovalAccess) -> ApiResult<Access> {
    let (api_key_id, api_key_creator) = match ctx.principal()? {
        Principal::ApiKey {
            key_id, created_by, ..
        } => (Some(key_id.as_str()), created_by.as_deref()),
        Principal::Session { .. } => (None, None),
    };
    let channel = row.channel_id.as_deref();
    let who = Approver {
        role: ctx.org.role,
        user_id: visibility.user_id(),
        api_key_id,
        api_key_creator,
        channel_role: visibility.channel_role(channel),
    };
    let requesters = Requesters {
        thread_author: row.thread_author.as_deref(),
        run_starter: row.run_author.as_deref(),
        run_starter_key: row.run_author_key.as_deref(),
        run_starter_key_creator: row.run_author_key_creator.as_deref(),
    };
    Ok(Access {
        visible: visibility.sees(channel),
        decide: may_decide_approval(
            &row.approval.policy,
            row.approval.self_approval,
            &requesters,
            &who,
        ),
    })
}

/// The approval of the path with its thread's channel and author, if the
/// caller may see it (else 404).
fn visible_approval(ctx: &OrgCtx, lock: bool) -> ApiResult<(Approval, Access)> {
    let id = ctx.uuid_param("approval", "approval")?;
    let row = approvals::get(ctx.db, Some(&ctx.org.id), id, lock)?
        .ok_or_else(|| ApiError::not_found("approval"))?;
    let access = access(ctx, &Visibility::of(ctx)?, &row)?;
    if !access.visible {
        return Err(ApiError::not_found("approval"));
    }
    Ok((row.approval, access))
}

fn with_access(row: &Approval, access: &Access) -> Value {
    let mut v = approvals::snapshot(row);
    v["can_decide"] = access.decide.is_ok().into();
    v
}

/// Rows read per query while filling a page.
const BATCH: i64 = 200;

/// `GET /orgs/{org}/approvals?status=pending&limit=&after=`: with `pending`,
/// the calls the caller may decide on (their inbox); otherwise approvals in
/// channels they see; newest first, pages by `next_cursor`.
pub fn list(ctx: &OrgCtx) -> ApiResult<Reply> {
    let bad = |field: &str, message: String| ApiError::fields(&[(field.to_string(), message)]);
    let status = query_param(ctx.req, "status").filter(|s| !s.is_empty());
    if status.as_deref().is_some_and(|s| !STATUSES.contains(&s)) {
        return Err(bad(
            "status",
            format!("must be one of {}", STATUSES.join(", ")),
        ));
    }
    let Page { limit, mut after } = page(ctx.req, "an approval")?;
    let visibility = Visibility::of(ctx)?;
    let inbox = status.as_deref() == Some("pending");
    let mut out = Vec::new();
    loop {
        let rows = approvals::list(
            ctx.db,
            &ctx.org.id,
            status.as_deref(),
            after.as_deref(),
            BATCH,
        )?;
        for row in &rows {
            after = Some(row.approval.id.clone());
            let a = access(ctx, &visibility, row)?;
            if (inbox && a.decide.is_ok()) || (!inbox && a.visible) {
                out.push(with_access(&row.approval, &a));
                if out.len() == limit {
                    return Ok(Reply::ok(json!({ "approvals": out, "next_cursor": after })));
                }
            }
        }
        if (rows.len() as i64) < BATCH {
            return Ok(Reply::ok(json!({ "approvals": out, "next_cursor": null })));
        }
    }
}

/// `GET /orgs/{org}/approvals/{id}`: the approval with its audit trail.
pub fn get(ctx: &OrgCtx) -> ApiResult<Reply> {
    let (row, access) = visible_approval(ctx, false)?;
    let mut v = with_access(&row, &access);
    v["audit"] = approvals::audit_trail(ctx.db, &row.id)?
        .iter()
        .map(views::audit_entry)
        .collect();
    Ok(Reply::ok(v))
}

/// `POST /orgs/{org}/approvals/{id}/approve {params?, comment?}`.
pub fn approve(ctx: &OrgCtx) -> ApiResult<Reply> {
    decide(ctx, "approved")
}

/// `POST /orgs/{org}/approvals/{id}/reject {comment?}`.
pub fn reject(ctx: &OrgCtx) -> ApiResult<Reply> {
    decide(ctx, "rejected")
}

fn decide(ctx: &OrgCtx, status: &'static str) -> ApiResult<Reply> {
    let mut input = ctx.input()?;
    let edited = (status == "approved" && input.has("params")).then(|| input.object("params"));
    let comment = input.optional_string("comment", 0, 2000);
    input.finish()?;
    let (key, user) = match ctx.principal()? {
        Principal::ApiKey { key_id, .. } => (Some(key_id.clone()), None),
        Principal::Session { user_id, .. } => (None, Some(user_id.clone())),
    };
    let id = ctx.db.transaction(|db| -> ApiResult<String> {
        let (row, access) = visible_approval(ctx, true)?;
        match row.status.as_str() {
            "pending" if row.expired => {
                return Err(ApiError::conflict(
                    "approval_expired",
                    "this approval has expired; the run fails as a timeout",
                ))
            }
            "pending" => {}
            other => {
                return Err(ApiError::conflict(
                    "approval_not_pending",
                    format!("this approval is already {other}"),
                ))
            }
        }
        access
            .decide
            .map_err(|why| ApiError::new(403, "not_an_approver", why))?;
        if let Some(params) = &edited {
            if !row.review {
                return Err(ApiError::new(
                    409,
                    "params_not_editable",
                    "this tool is not reviewed, so its arguments cannot be edited",
                ));
            }
            let mut errors = Vec::new();
            synatra_runs::widgets::schema_errors(&row.params_schema, params, "params", &mut errors);
            if !errors.is_empty() {
                return Err(ApiError::fields(&errors));
            }
        }
        let id = row.id;
        let decider = Decider {
            user_id: user.as_deref(),
            api_key_id: key.as_deref(),
        };
        approvals::decide(
            db,
            &id,
            status,
            edited.as_ref(),
            comment.as_deref(),
            &decider,
        )?;
        Ok(id)
    })?;
    Ok(Reply::ok(json!({ "id": id, "status": status })))
}
