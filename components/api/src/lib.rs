//! Synatra's REST API component (`/api/v1/...`).
//!
//! Every request goes through one pipeline: match the route in
//! [`synatra_authz::ROUTES`] (404/405), check the body (413/415),
//! authenticate (session cookie or API key), check the Origin of
//! cookie-authenticated writes, resolve the `:org` and the caller's role
//! (404 for non-members, 403 below the route's role), then call the handler.
//! Handlers cannot be reached any other way.

mod auth;
mod ctx;
mod error;
mod handlers;
mod http;
mod inline_runs;
mod input;
mod store;

use spin_sdk::http::conversions::TryFromIncomingRequest;
use spin_sdk::http::{IncomingRequest, Request, ResponseOutparam};
use spin_sdk::http_component;
use synatra_authz::{match_route, Access, NoRoute, RouteId};

use crate::auth::Principal;
use synatra_db as db;

use crate::ctx::Ctx;
use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use crate::http::Reply;
use crate::inline_runs::Wake;

/// Prefix of every API path.
const PREFIX: &str = "/api/v1";

/// What a handler produced: a JSON reply, or an event stream to serve.
pub enum Answer {
    Reply(Reply),
    Events(handlers::events::Subscription),
}

impl From<Reply> for Answer {
    fn from(r: Reply) -> Self {
        Answer::Reply(r)
    }
}

#[http_component]
async fn handle(incoming: IncomingRequest, out: ResponseOutparam) {
    let req = match Request::try_from_incoming_request(incoming).await {
        Ok(r) => r,
        Err(e) => {
            let reply: Reply =
                ApiError::new(400, "bad_request", format!("unreadable request: {e}")).into();
            return reply.send(out).await;
        }
    };
    match serve(&req) {
        Ok(Answer::Reply(reply)) => reply.send(out).await,
        Ok(Answer::Events(sub)) => handlers::events::stream(sub, out).await,
        Err(e) => Reply::from(e).send(out).await,
    }
}

fn serve(req: &Request) -> ApiResult<Answer> {
    let path = req.path();
    let sub = path
        .strip_prefix(PREFIX)
        .filter(|s| s.is_empty() || s.starts_with('/'))
        .ok_or_else(|| ApiError::not_found("endpoint"))?;
    let method = req.method().to_string();
    let (spec, params) = match_route(&method, sub).map_err(|e| match e {
        NoRoute::NotFound => ApiError::not_found("endpoint"),
        NoRoute::MethodNotAllowed(allowed) => ApiError::new(
            405,
            "method_not_allowed",
            format!("use one of: {}", allowed.join(", ")),
        )
        .with_details(serde_json::json!({ "allowed": allowed })),
    })?;
    let body_rule = match spec.id {
        RouteId::CreateTool | RouteId::PutTool => http::BodyRule {
            max: http::MAX_UPLOAD_BODY,
            media_type: "application/json",
        },
        RouteId::PutToolComponent => http::BodyRule {
            max: synatra_tools::component::MAX_COMPONENT_BYTES,
            media_type: "application/wasm",
        },
        _ => http::BodyRule {
            max: http::MAX_BODY,
            media_type: "application/json",
        },
    };
    http::check_body(req, body_rule)?;
    if spec.id == RouteId::Health {
        return Ok(handlers::health::get().into());
    }
    if spec.access == Access::Operator {
        handlers::tick::authorize(req)?;
    }

    let db = Db::open()?;
    inline_runs::ensure_schema(&db)?;
    let principal = match spec.access {
        // The tick's bearer is the operator's secret, not an API key.
        Access::Operator => None,
        _ => auth::authenticate(&db, req)?,
    };
    auth::check_origin(req, matches!(principal, Some(Principal::Session { .. })))?;
    let org = match spec.access {
        Access::Public | Access::Operator => None,
        Access::Authenticated => {
            principal.as_ref().ok_or_else(ApiError::unauthenticated)?;
            None
        }
        Access::Org(min) => {
            let caller = principal.as_ref().ok_or_else(ApiError::unauthenticated)?;
            let key = params
                .iter()
                .find(|(k, _)| *k == "org")
                .map(|(_, v)| *v)
                .unwrap_or_default();
            let org = match caller {
                Principal::Session { user_id, .. } => store::orgs::for_member(&db, key, user_id)?,
                Principal::ApiKey { org_id, role, .. } => {
                    store::orgs::for_api_key(&db, key, org_id, *role)?
                }
            }
            .ok_or_else(|| ApiError::not_found("organization"))?;
            if org.role < min {
                return Err(ApiError::forbidden(format!(
                    "this requires the {min} role or higher; you are {}",
                    org.role
                )));
            }
            Some(org)
        }
    };

    let ctx = Ctx {
        db: &db,
        req,
        principal,
        org,
        params: params
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect(),
    };
    use handlers::*;
    if spec.id == RouteId::ThreadEvents {
        return events::subscribe(&ctx).map(Answer::Events);
    }
    let wake = inline_runs::wake(spec.id);
    if let (Some(Wake::BeforeRead), Some(org)) = (wake, &ctx.org) {
        inline_runs::advance(&db, &org.id);
    }
    let reply = match spec.id {
        RouteId::Health => Ok(health::get()),
        RouteId::Tick => tick::run(&ctx),
        RouteId::Signup => account::signup(&ctx),
        RouteId::Login => account::login(&ctx),
        RouteId::Logout => account::logout(&ctx),
        RouteId::Me => account::me(&ctx),
        RouteId::CreateOrg => orgs::create(&ctx),
        RouteId::ListOrgs => orgs::list(&ctx),
        RouteId::GetOrg => orgs::get(&ctx),
        RouteId::DeleteOrg => orgs::delete(&ctx),
        RouteId::ListEnvironments => orgs::environments(&ctx),
        RouteId::ListChannels => orgs::channels(&ctx),
        RouteId::CreateChannel => channels::create(&ctx),
        RouteId::ListChannelMembers => channels::members(&ctx),
        RouteId::PutChannelMember => channels::put_member(&ctx),
        RouteId::RemoveChannelMember => channels::remove_member(&ctx),
        RouteId::ListMembers => members::list(&ctx),
        RouteId::UpdateMember => members::update(&ctx),
        RouteId::RemoveMember => members::remove(&ctx),
        RouteId::CreateInvitation => invitations::create(&ctx),
        RouteId::ListInvitations => invitations::list(&ctx),
        RouteId::RevokeInvitation => invitations::revoke(&ctx),
        RouteId::AcceptInvitation => invitations::accept(&ctx),
        RouteId::CreateApiKey => api_keys::create(&ctx),
        RouteId::ListApiKeys => api_keys::list(&ctx),
        RouteId::DeleteApiKey => api_keys::delete(&ctx),
        RouteId::CreateAgent => agents::create(&ctx),
        RouteId::ListAgents => agents::list(&ctx),
        RouteId::GetAgent => agents::get(&ctx),
        RouteId::UpdateAgent => agents::update(&ctx),
        RouteId::DeleteAgent => agents::delete(&ctx),
        RouteId::GetWorkingCopy => agents::get_working_copy(&ctx),
        RouteId::PutWorkingCopy => agents::put_working_copy(&ctx),
        RouteId::CreateRelease => agents::create_release(&ctx),
        RouteId::ListReleases => agents::list_releases(&ctx),
        RouteId::CheckoutRelease => agents::checkout_release(&ctx),
        RouteId::CreateThread => threads::create(&ctx),
        RouteId::ListThreads => threads::list(&ctx),
        RouteId::GetThread => threads::get(&ctx),
        RouteId::PostMessage => threads::post_message(&ctx),
        RouteId::CancelThread => threads::cancel(&ctx),
        RouteId::ThreadEvents => unreachable!("served as a stream above"),
        RouteId::RespondHumanRequest => threads::respond(&ctx),
        RouteId::CreateTool => tools::create(&ctx),
        RouteId::ListTools => tools::list(&ctx),
        RouteId::GetTool => tools::get(&ctx),
        RouteId::PutTool => tools::put(&ctx),
        RouteId::DeleteTool => tools::delete(&ctx),
        RouteId::TestTool => tools::test(&ctx),
        RouteId::PutToolComponent => tools::put_component(&ctx),
        RouteId::ListApprovals => approvals::list(&ctx),
        RouteId::GetApproval => approvals::get(&ctx),
        RouteId::Approve => approvals::approve(&ctx),
        RouteId::Reject => approvals::reject(&ctx),
        RouteId::ListLlmProviders => llm_providers::list(&ctx),
        RouteId::PutLlmProvider => llm_providers::put(&ctx),
        RouteId::DeleteLlmProvider => llm_providers::delete(&ctx),
    };
    if let (Ok(_), Some(Wake::AfterWrite), Some(org)) = (&reply, wake, &ctx.org) {
        inline_runs::advance(&db, &org.id);
    }
    reply.map(Answer::Reply)
}
