//! Synatra's REST API component (`/api/v1/...`).
//!
//! Every request goes through one pipeline: match the route in
//! [`synatra_authz::ROUTES`] (404/405), check the body (413/415),
//! authenticate (session cookie or API key), check the Origin of
//! cookie-authenticated writes, resolve the `:org` and the caller's role
//! (404 for non-members, 403 below the route's role), then call the
//! route's handler from [`routes::endpoint`] (org handlers get an
//! [`OrgCtx`], where the org is always present), advancing runs around it
//! where the route says so. Handlers cannot be reached any other way.

mod auth;
mod client;
mod ctx;
mod error;
mod handlers;
mod http;
mod inline_runs;
mod input;
mod org_limits;
mod routes;
mod store;
mod views;
mod visibility;

use spin_sdk::http::conversions::TryFromIncomingRequest;
use spin_sdk::http::{IncomingRequest, Request, ResponseOutparam};
use spin_sdk::http_component;
use synatra_authz::{match_route, Access, NoRoute};

use crate::auth::Principal;
use synatra_db as db;

use crate::ctx::{Ctx, OrgCtx};
use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use crate::http::Reply;
use crate::inline_runs::Wake;
use crate::routes::Handler;

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
    let endpoint = routes::endpoint(spec.id);
    http::check_body(req, endpoint.body)?;
    http::check_query(req)?;
    if let Handler::Bare(f) = endpoint.handler {
        return Ok(f().into());
    }
    if spec.access == Access::Operator {
        handlers::tick::authorize(req)?;
    }

    let db = Db::open()?;
    inline_runs::ensure_schema(&db)?;
    let org_key = params
        .iter()
        .find(|(k, _)| *k == "org")
        .map(|(_, v)| *v)
        .unwrap_or_default();
    let (principal, member_org) = match spec.access {
        // The tick's bearer is the operator's secret, not an API key.
        Access::Operator => (None, None),
        // The org is read with a session only where the route names one.
        _ => auth::authenticate(&db, req, org_key)?,
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
            let org = match caller {
                Principal::Session { .. } => member_org,
                Principal::ApiKey { org_id, role, .. } => {
                    store::orgs::for_api_key(&db, org_key, org_id, *role)?
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
        params: params
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect(),
    };
    let (handler, org) = match (endpoint.handler, org) {
        (Handler::Open(f), _) => return f(&ctx).map(Answer::Reply),
        (handler, Some(org)) => (handler, org),
        (_, None) => {
            return Err(ApiError::internal(format!(
                "route {:?} has an org handler but no org access",
                spec.id
            )))
        }
    };
    let ctx = OrgCtx { base: &ctx, org };
    if endpoint.wake == Some(Wake::BeforeRead) {
        inline_runs::advance(&db, &ctx.org.id);
    }
    let answer = match handler {
        Handler::Org(f) => f(&ctx).map(Answer::Reply),
        Handler::Stream(f) => f(&ctx).map(Answer::Events),
        Handler::Bare(_) | Handler::Open(_) => unreachable!("served above"),
    };
    if answer.is_ok() && endpoint.wake == Some(Wake::AfterWrite) {
        inline_runs::advance(&db, &ctx.org.id);
    }
    answer
}
