//! User tools: definitions with JSON Schemas, limits and approval settings,
//! versioned by content. (Running them arrives with the tool runtime.)

use serde_json::json;
use synatra_tools::ToolDef;

use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::Reply;
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
