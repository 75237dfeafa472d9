//! Provider credentials per environment. Keys go to the gateway to be
//! sealed (AES-256-GCM); this component never stores or returns them:
//! reads show a masked hint only.

use serde_json::{json, Value};
use spin_sdk::http::{IncomingResponse, Method};
use synatra_agents::Provider;
use synatra_db::credentials;

use crate::ctx::OrgCtx;
use crate::error::{ApiError, ApiResult};
use crate::http::Reply;
use crate::store::orgs;
use crate::views;

use synatra_names::services::GATEWAY_CREDENTIALS as GATEWAY;

fn environment(ctx: &OrgCtx) -> ApiResult<String> {
    orgs::environment_id(ctx.db, &ctx.org.id, Some(ctx.param("env")))?
        .ok_or_else(|| ApiError::not_found("environment"))
}

fn provider(ctx: &OrgCtx) -> ApiResult<Provider> {
    Provider::parse(ctx.param("provider")).ok_or_else(|| ApiError::not_found("provider"))
}

/// `GET /orgs/{org}/environments/{env}/llm-providers`.
pub fn list(ctx: &OrgCtx) -> ApiResult<Reply> {
    let env = environment(ctx)?;
    Ok(Reply::ok(
        json!({ "providers": credentials::views(ctx.db, &ctx.org.id, &env, None)?
            .iter()
            .map(views::credential)
            .collect::<Vec<_>>() }),
    ))
}

/// `PUT /orgs/{org}/environments/{env}/llm-providers/{provider}
/// {api_key?, base_url?, allowed_base_urls?}`: a string sets, `null` clears,
/// absent keeps; a list replaces the agent-level URLs allowed.
pub fn put(ctx: &OrgCtx) -> ApiResult<Reply> {
    let provider = provider(ctx)?;
    let env = environment(ctx)?;
    let mut input = ctx.input()?;
    let has_key = input.has("api_key");
    let api_key = input.optional_string("api_key", 8, 500);
    let has_url = input.has("base_url");
    let base_url = input.optional_string("base_url", 8, 500);
    if let Some(problem) = base_url
        .as_deref()
        .filter(|u| !u.is_empty())
        .and_then(synatra_agents::base_url_problem)
    {
        input.check(false, "base_url", &format!("`base_url` {problem}"));
    }
    let allowed = input.optional_string_list("allowed_base_urls", 20, 500);
    for url in allowed.iter().flatten() {
        if let Some(problem) = synatra_agents::base_url_problem(url) {
            let message = format!("`allowed_base_urls`: `{url}` {problem}");
            input.check(false, "allowed_base_urls", &message);
        }
    }
    input.check(
        has_key || has_url || allowed.is_some(),
        "api_key",
        "send `api_key`, `base_url` and/or `allowed_base_urls`",
    );
    input.finish()?;
    let mut body = json!({
        "org_id": ctx.org.id,
        "environment_id": env,
        "provider": provider.as_str(),
        "updated_by": ctx.principal()?.user_id().ok(),
    });
    if has_key {
        body["api_key"] = api_key.map(Value::from).unwrap_or(Value::Null);
    }
    if has_url {
        body["base_url"] = base_url.map(Value::from).unwrap_or(Value::Null);
    }
    if let Some(urls) = allowed {
        body["allowed_base_urls"] = json!(urls);
    }
    let (status, answer) = call_gateway(&body)?;
    if status != 200 {
        eprintln!("gateway refused a credential update: {status} {answer}");
        return Err(ApiError::new(
            502,
            "gateway_error",
            "the credential could not be stored",
        ));
    }
    let stored = credentials::views(ctx.db, &ctx.org.id, &env, Some(provider.as_str()))?;
    let view = stored
        .first()
        .ok_or_else(|| ApiError::internal("the stored credential is missing"))?;
    Ok(Reply::ok(views::credential(view)))
}

/// `DELETE /orgs/{org}/environments/{env}/llm-providers/{provider}`.
pub fn delete(ctx: &OrgCtx) -> ApiResult<Reply> {
    let provider = provider(ctx)?;
    let env = environment(ctx)?;
    if ctx
        .db
        .transaction(|db| credentials::delete(db, &ctx.org.id, &env, provider.as_str()))?
    {
        Ok(Reply::no_content())
    } else {
        Err(ApiError::not_found("credential"))
    }
}

/// PUTs `body` to the gateway; returns its status and JSON answer.
fn call_gateway(body: &Value) -> ApiResult<(u16, Value)> {
    let request = synatra_internal::request(Method::Put, GATEWAY, body.to_string());
    spin_sdk::http::run(async move {
        let response: IncomingResponse = spin_sdk::http::send(request).await.map_err(|e| {
            ApiError::new(502, "gateway_error", format!("gateway unreachable: {e}"))
        })?;
        let status = response.status();
        let bytes = response.into_body().await.map_err(|e| {
            ApiError::new(502, "gateway_error", format!("gateway answer cut: {e:?}"))
        })?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    })
}
