//! User tools: definitions with JSON Schemas, limits and approval settings,
//! versioned by content, and a test run through the tool-js sandbox.

use base64::Engine as _;
use serde_json::json;
use synatra_authz::Role;
use synatra_db::org_slots::Kind;
use synatra_internal::ToolCode;
use synatra_tools::ToolDef;

use crate::ctx::OrgCtx;
use crate::error::{ApiError, ApiResult};
use crate::http::Reply;
use crate::input::Input;
use crate::org_limits;
use crate::views;
use synatra_db::tools;

/// A WIT tool component uploaded with a definition.
struct Upload {
    sha256: String,
    wasm: Vec<u8>,
    imports: Vec<String>,
}

/// Parses the body as a tool definition; returns it with its JSON form and
/// the component it uploads, if any (`component`: base64 of the `.wasm`,
/// validated here: a clear error names a forbidden import).
fn definition(ctx: &OrgCtx) -> ApiResult<(ToolDef, serde_json::Value, Option<Upload>)> {
    let mut body: serde_json::Value = serde_json::from_slice(ctx.req.body()).map_err(|e| {
        ApiError::new(
            400,
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    let upload = match body.as_object_mut().and_then(|o| o.remove("component")) {
        None => None,
        Some(encoded) => {
            let field_error = |m: String| ApiError::fields(&[("component".to_string(), m)]);
            let wasm = encoded
                .as_str()
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .ok_or_else(|| field_error("must be the component's bytes in base64".into()))?;
            let imports = synatra_tools::component::check_component(&wasm)
                .map_err(|e| ApiError::new(422, "invalid_component", e))?;
            let sha256 = crate::auth::sha256_hex(&wasm);
            body["component_sha256"] = sha256.clone().into();
            Some(Upload {
                sha256,
                wasm,
                imports,
            })
        }
    };
    let def = ToolDef::parse(&body).map_err(|errors| ApiError::fields(&errors))?;
    let value = serde_json::to_value(&def).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((def, value, upload))
}

/// Stores the uploaded component, or checks that a referenced one exists.
fn keep_component(ctx: &OrgCtx, def: &ToolDef, upload: Option<&Upload>) -> ApiResult<()> {
    let org = &ctx.org.id;
    match (upload, &def.component_sha256) {
        (Some(u), _) => Ok(tools::store_component(
            ctx.db, org, &u.sha256, &u.wasm, &u.imports,
        )?),
        (None, Some(sha)) if !tools::has_component(ctx.db, org, sha)? => {
            Err(ApiError::fields(&[(
                "component_sha256".to_string(),
                "no component with this hash was uploaded to this org".to_string(),
            )]))
        }
        _ => Ok(()),
    }
}

/// Refuses to delete or rename tool `name` while something needs it.
fn not_in_use(ctx: &OrgCtx, name: &str, what: &str) -> ApiResult<()> {
    let users = tools::users_of(ctx.db, &ctx.org.id, name)?;
    if users.is_empty() {
        return Ok(());
    }
    Err(ApiError::conflict(
        "tool_in_use",
        format!(
            "cannot {what} `{name}`: {} still use it; remove it from them (and publish) first",
            users.join(", ")
        ),
    ))
}

/// The current name of tool `id`.
fn name_of(db: &crate::db::Db, id: &str) -> ApiResult<String> {
    Ok(tools::get(db, id)?.name)
}

fn tool_id(ctx: &OrgCtx, lock: bool) -> ApiResult<String> {
    tools::resolve(ctx.db, &ctx.org.id, ctx.param("tool"), lock)?
        .ok_or_else(|| ApiError::not_found("tool"))
}

/// `POST /orgs/{org}/tools`.
pub fn create(ctx: &OrgCtx) -> ApiResult<Reply> {
    let (def, value, upload) = definition(ctx)?;
    let by = ctx.principal()?.user_id().ok();
    let tool = ctx
        .db
        .transaction(|db| -> ApiResult<_> {
            keep_component(ctx, &def, upload.as_ref())?;
            Ok(tools::create(
                db,
                &ctx.org.id,
                &def.name,
                &value,
                &def.version(),
                by,
            )?)
        })
        .map_err(|e| e.on_conflict("name_taken", "a tool with this name already exists"))?;
    Ok(Reply::created(views::tool(&tool, true)))
}

/// `GET /orgs/{org}/tools` (the code only for builders and above).
pub fn list(ctx: &OrgCtx) -> ApiResult<Reply> {
    let builder = ctx.org.role >= Role::Builder;
    Ok(Reply::ok(
        json!({ "tools": tools::list(ctx.db, &ctx.org.id)?.iter().map(|t| views::tool(t, builder)).collect::<Vec<_>>() }),
    ))
}

/// `GET /orgs/{org}/tools/{tool}` (name or id; the code only for builders
/// and above).
pub fn get(ctx: &OrgCtx) -> ApiResult<Reply> {
    let tool = tools::get(ctx.db, &tool_id(ctx, false)?)?;
    Ok(Reply::ok(views::tool(&tool, ctx.org.role >= Role::Builder)))
}

/// `PUT /orgs/{org}/tools/{tool}`: replaces the definition.
pub fn put(ctx: &OrgCtx) -> ApiResult<Reply> {
    let (def, value, upload) = definition(ctx)?;
    let tool = ctx
        .db
        .transaction(|db| -> ApiResult<_> {
            let id = tool_id(ctx, true)?;
            let old_name = name_of(db, &id)?;
            if old_name != def.name {
                not_in_use(ctx, &old_name, "rename")?;
            }
            keep_component(ctx, &def, upload.as_ref())?;
            Ok(tools::replace(db, &id, &def.name, &value, &def.version())?)
        })
        .map_err(|e| e.on_conflict("name_taken", "a tool with this name already exists"))?;
    Ok(Reply::ok(views::tool(&tool, true)))
}

/// `DELETE /orgs/{org}/tools/{tool}`.
pub fn delete(ctx: &OrgCtx) -> ApiResult<Reply> {
    ctx.db.transaction(|db| -> ApiResult<_> {
        let id = tool_id(ctx, true)?;
        let name = name_of(db, &id)?;
        not_in_use(ctx, &name, "delete")?;
        Ok(tools::delete(db, &id)?)
    })?;
    Ok(Reply::no_content())
}

/// `PUT /orgs/{org}/tools/{tool}/component` with the `.wasm` as the body
/// (`application/wasm`): validates it like a base64 upload and makes the
/// tool a WIT tool running it (a new version; `code` is dropped).
pub fn put_component(ctx: &OrgCtx) -> ApiResult<Reply> {
    let wasm = ctx.req.body();
    let imports = synatra_tools::component::check_component(wasm)
        .map_err(|e| ApiError::new(422, "invalid_component", e))?;
    let sha256 = crate::auth::sha256_hex(wasm);
    let tool = ctx.db.transaction(|db| -> ApiResult<_> {
        let id = tool_id(ctx, true)?;
        let mut value = tools::get(db, &id)?.definition;
        value.as_object_mut().map(|o| o.remove("code"));
        value["component_sha256"] = sha256.clone().into();
        let def = ToolDef::parse(&value).map_err(|errors| ApiError::fields(&errors))?;
        let value = serde_json::to_value(&def).map_err(|e| ApiError::internal(e.to_string()))?;
        tools::store_component(db, &ctx.org.id, &sha256, wasm, &imports)?;
        Ok(tools::replace(db, &id, &def.name, &value, &def.version())?)
    })?;
    Ok(Reply::ok(views::tool(&tool, true)))
}

/// `POST /orgs/{org}/tools/{tool}/test {params}`: runs the tool once in its
/// sandbox. Arguments are validated against `params`; the tool's own
/// failure (exception, timeout, memory, bad result) is a 200 with `ok: false`.
pub fn test(ctx: &OrgCtx) -> ApiResult<Reply> {
    let id = tool_id(ctx, false)?;
    let tool = tools::get(ctx.db, &id)?;
    let def = &tool.definition;
    let mut input = Input::parse(ctx.req.body())?;
    let params = input.object("params");
    input.finish()?;
    let mut errors = Vec::new();
    synatra_runs::widgets::schema_errors(&def["params"], &params, "params", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::fields(&errors));
    }
    let timeout_ms = def["timeout_ms"].as_u64().unwrap_or(30_000);
    let started = std::time::Instant::now();
    let code = ToolCode::of(
        &ctx.org.id,
        def["code"].as_str(),
        def["component_sha256"].as_str(),
    );
    let slot = org_limits::take(ctx, Kind::ToolTest, (timeout_ms / 1000) as u32 + 30)?;
    let run = synatra_internal::run_tool(code, &params, timeout_ms, None);
    // The sandbox may take the tool's whole time limit: no pooled
    // connection waits with it.
    ctx.db.release();
    let answer = spin_sdk::http::run(run);
    org_limits::release(ctx.db, slot);
    let answer = answer.map_err(|e| ApiError::new(502, "sandbox_unreachable", e))?;
    let mut outcome = json!(answer);
    let duration_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    outcome["duration_ms"] = duration_ms.into();
    outcome["version"] = tool.version.into();
    Ok(Reply::ok(outcome))
}
