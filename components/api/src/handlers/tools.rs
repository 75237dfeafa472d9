//! User tools: definitions with JSON Schemas, limits and approval settings,
//! versioned by content, and a test run through the tool-js sandbox.

use serde_json::json;
use synatra_tools::ToolDef;

use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::Reply;
use crate::input::Input;
use crate::store::tools;

/// Parses the body as a tool definition; returns it with its JSON form.
fn definition(ctx: &Ctx) -> ApiResult<(ToolDef, serde_json::Value)> {
    let body: serde_json::Value = serde_json::from_slice(ctx.req.body()).map_err(|e| {
        ApiError::new(
            400,
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    let def = ToolDef::parse(&body).map_err(|errors| ApiError::fields(&errors))?;
    let value = serde_json::to_value(&def).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((def, value))
}

fn tool_id(ctx: &Ctx, lock: bool) -> ApiResult<String> {
    tools::resolve(ctx.db, &ctx.org().id, ctx.param("tool"), lock)?
        .ok_or_else(|| ApiError::not_found("tool"))
}

/// `POST /orgs/{org}/tools`.
pub fn create(ctx: &Ctx) -> ApiResult<Reply> {
    let (def, value) = definition(ctx)?;
    let by = ctx.principal()?.user_id().ok();
    let tool = ctx
        .db
        .transaction(|db| tools::create(db, &ctx.org().id, &def.name, &value, &def.version(), by))
        .map_err(|e| e.on_conflict("name_taken", "a tool with this name already exists"))?;
    Ok(Reply::created(tool))
}

/// `GET /orgs/{org}/tools`.
pub fn list(ctx: &Ctx) -> ApiResult<Reply> {
    Ok(Reply::ok(
        json!({ "tools": tools::list(ctx.db, &ctx.org().id)? }),
    ))
}

/// `GET /orgs/{org}/tools/{tool}` (name or id).
pub fn get(ctx: &Ctx) -> ApiResult<Reply> {
    Ok(Reply::ok(tools::get(ctx.db, &tool_id(ctx, false)?)?))
}

/// `PUT /orgs/{org}/tools/{tool}`: replaces the definition.
pub fn put(ctx: &Ctx) -> ApiResult<Reply> {
    let (def, value) = definition(ctx)?;
    let tool = ctx
        .db
        .transaction(|db| {
            let id = tool_id(ctx, true)?;
            tools::replace(db, &id, &def.name, &value, &def.version())
        })
        .map_err(|e| e.on_conflict("name_taken", "a tool with this name already exists"))?;
    Ok(Reply::ok(tool))
}

/// `DELETE /orgs/{org}/tools/{tool}`.
pub fn delete(ctx: &Ctx) -> ApiResult<Reply> {
    ctx.db.transaction(|db| {
        let id = tool_id(ctx, true)?;
        tools::delete(db, &id)
    })?;
    Ok(Reply::no_content())
}

/// `POST /orgs/{org}/tools/{tool}/test {params}`: runs the tool once in its
/// sandbox. Arguments are validated against `params`; the tool's own
/// failure (exception, timeout, memory, bad result) is a 200 with `ok: false`.
pub fn test(ctx: &Ctx) -> ApiResult<Reply> {
    let id = tool_id(ctx, false)?;
    let tool = tools::get(ctx.db, &id)?;
    let mut input = Input::parse(ctx.req.body())?;
    let params = input.object("params");
    input.finish()?;
    let mut errors = Vec::new();
    synatra_runs::widgets::schema_errors(&tool["params"], &params, "params", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::fields(&errors));
    }
    let timeout_ms = tool["timeout_ms"].as_u64().unwrap_or(30_000);
    let code = tool["code"].as_str().unwrap_or_default();
    let started = std::time::Instant::now();
    let mut outcome = spin_sdk::http::run(synatra_internal::run_javascript(
        code, &params, timeout_ms, None,
    ))
    .map_err(|e| ApiError::new(502, "sandbox_unreachable", e))?;
    let duration_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    outcome["duration_ms"] = duration_ms.into();
    outcome["version"] = tool["version"].clone();
    Ok(Reply::ok(outcome))
}
