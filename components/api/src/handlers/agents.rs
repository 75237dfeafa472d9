//! Agents: metadata, the working copy, and immutable releases.

use serde_json::{json, Value};
use synatra_agents::{delegation, AgentConfig, Bump, FieldError, Version};
use synatra_authz::Role;

use crate::ctx::OrgCtx;
use crate::error::{ApiError, ApiResult};
use crate::http::Reply;
use crate::input::{is_slug, Input};
use crate::store::agents::{self, NewAgent};

fn slug_check(input: &mut Input, slug: &str) {
    input.check(
        slug.is_empty() || is_slug(slug),
        "slug",
        "`slug` may contain lower-case letters, digits and inner hyphens",
    );
}

fn config_errors(errors: Vec<FieldError>) -> ApiError {
    let pairs: Vec<(String, String)> = errors.into_iter().map(|e| (e.field, e.message)).collect();
    ApiError::fields(&pairs)
}

/// Checks that every user tool in `config.tools` exists (at its pinned
/// version, if any); with `pin`, pins unpinned ones to their current
/// version, so a release keeps running the tool it was published with.
pub(crate) fn resolve_tools(
    db: &crate::db::Db,
    org_id: &str,
    config: &mut AgentConfig,
    pin: bool,
) -> ApiResult<()> {
    let mut errors = Vec::new();
    for (i, entry) in config.tools.iter_mut().enumerate() {
        let (name, version) = synatra_tools::split_ref(entry);
        let field = format!("config.tools[{i}]");
        if synatra_tools::is_builtin(name) {
            if version.is_some() {
                errors.push((field, format!("the built-in tool `{name}` has no versions")));
            }
            continue;
        }
        match synatra_db::tools::definition(db, org_id, name, version)? {
            Some((current, _)) if pin => *entry = format!("{name}@{current}"),
            Some(_) => {}
            None if version.is_some() => errors.push((
                field,
                format!(
                    "tool `{name}` has no version `{}`",
                    version.unwrap_or_default()
                ),
            )),
            None => errors.push((field, format!("no tool named `{name}` in this org"))),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::fields(&errors))
    }
}

/// Refuses sub-agents that would make delegation loop back to agent `id`
/// or run deeper than `max_delegation_depth`.
fn check_delegation(
    db: &crate::db::Db,
    org_id: &str,
    id: &str,
    config: &AgentConfig,
) -> ApiResult<()> {
    if config.subagents.is_empty() {
        return Ok(());
    }
    let max_depth = synatra_internal::setting(synatra_names::variables::MAX_DELEGATION_DEPTH)
        .unwrap_or(delegation::DEFAULT_MAX_DEPTH);
    let graph = agents::delegation_graph(db, org_id)?;
    match delegation::delegation_problem(&graph, id, &config.subagents, max_depth) {
        None => Ok(()),
        Some(why) => Err(ApiError::fields(&[("config.subagents".to_string(), why)])),
    }
}

/// The agent named by the `:agent` path parameter (slug or id), or 404.
fn agent_id(ctx: &OrgCtx, lock: bool) -> ApiResult<String> {
    agents::resolve(ctx.db, &ctx.org.id, ctx.param("agent"), lock)?
        .ok_or_else(|| ApiError::not_found("agent"))
}

/// `POST /orgs/{org}/agents {slug, name, description?, icon?}`.
pub fn create(ctx: &OrgCtx) -> ApiResult<Reply> {
    let mut input = ctx.input()?;
    let slug = input.string("slug", 2, 64);
    slug_check(&mut input, &slug);
    let name = input.string("name", 1, 100);
    let description = input.optional_string("description", 0, 2000);
    let icon = input.optional_string("icon", 0, 200);
    input.finish()?;
    let by = ctx.principal()?.user_id().ok();
    let new = NewAgent {
        slug: &slug,
        name: &name,
        description: description.as_deref(),
        icon: icon.as_deref(),
    };
    let agent = ctx
        .db
        .transaction(|db| agents::create(db, &ctx.org.id, &new, by))
        .map_err(|e| e.on_conflict("slug_taken", "an agent with this slug already exists"))?;
    Ok(Reply::created(agent))
}

/// `GET /orgs/{org}/agents`.
pub fn list(ctx: &OrgCtx) -> ApiResult<Reply> {
    Ok(Reply::ok(
        json!({ "agents": agents::list(ctx.db, &ctx.org.id)? }),
    ))
}

/// `GET /orgs/{org}/agents/{agent}`.
pub fn get(ctx: &OrgCtx) -> ApiResult<Reply> {
    Ok(Reply::ok(agents::get(ctx.db, &agent_id(ctx, false)?)?))
}

/// `PATCH /orgs/{org}/agents/{agent} {slug?, name?, description?, icon?}`;
/// `null` clears description and icon.
pub fn update(ctx: &OrgCtx) -> ApiResult<Reply> {
    let mut input = ctx.input()?;
    let slug = input.optional_string("slug", 2, 64);
    if let Some(s) = &slug {
        slug_check(&mut input, s);
    }
    let name = input.optional_string("name", 1, 100);
    let has_description = input.has("description");
    let description = input.optional_string("description", 0, 2000);
    let has_icon = input.has("icon");
    let icon = input.optional_string("icon", 0, 200);
    input.finish()?;
    let agent = ctx
        .db
        .transaction(|db| {
            let id = agent_id(ctx, true)?;
            agents::update(
                db,
                &id,
                slug.as_deref(),
                name.as_deref(),
                has_description.then_some(description.as_deref()),
                has_icon.then_some(icon.as_deref()),
            )
        })
        .map_err(|e| e.on_conflict("slug_taken", "an agent with this slug already exists"))?;
    Ok(Reply::ok(agent))
}

/// `DELETE /orgs/{org}/agents/{agent}`: deletes an agent no thread names
/// (204); one with threads is archived instead (200 with the agent), so
/// its threads, runs and approvals stay readable.
pub fn delete(ctx: &OrgCtx) -> ApiResult<Reply> {
    let archived = ctx.db.transaction(|db| {
        let id = agent_id(ctx, true)?;
        let delegators = agents::delegators(db, &id)?;
        if !delegators.is_empty() {
            return Err(ApiError::conflict(
                "agent_in_use",
                format!(
                    "agents {} delegate to this one; remove it from their subagents (and publish) first",
                    delegators.join(", ")
                ),
            ));
        }
        if agents::has_threads(db, &id)? {
            agents::archive(db, &id)?;
            return Ok(Some(agents::get(db, &id)?));
        }
        agents::delete(db, &id)?;
        Ok::<_, ApiError>(None)
    })?;
    Ok(match archived {
        Some(agent) => Reply::ok(agent),
        None => Reply::no_content(),
    })
}

/// 409 `agent_archived` for an archived agent: it starts nothing new.
pub(crate) fn refuse_archived(db: &crate::db::Db, id: &str) -> ApiResult<()> {
    if agents::is_archived(db, id)? {
        return Err(archived());
    }
    Ok(())
}

/// 409 `agent_archived`.
pub(crate) fn archived() -> ApiError {
    ApiError::conflict(
        "agent_archived",
        "this agent is archived: its threads stay readable, but it starts no new runs or releases",
    )
}

/// `GET /orgs/{org}/agents/{agent}/working-copy`.
pub fn get_working_copy(ctx: &OrgCtx) -> ApiResult<Reply> {
    Ok(Reply::ok(agents::working_copy(
        ctx.db,
        &agent_id(ctx, false)?,
    )?))
}

/// `PUT /orgs/{org}/agents/{agent}/working-copy {config}`: validated (a
/// working copy may still lack a model) and stored with defaults filled in.
pub fn put_working_copy(ctx: &OrgCtx) -> ApiResult<Reply> {
    let mut input = ctx.input()?;
    let raw = input.object("config");
    input.finish()?;
    let mut config = AgentConfig::parse(&raw, false).map_err(config_errors)?;
    resolve_tools(ctx.db, &ctx.org.id, &mut config, false)?;
    let normalized =
        serde_json::to_value(&config).map_err(|e| ApiError::internal(e.to_string()))?;
    let body = ctx.db.transaction(|db| {
        let id = agent_id(ctx, true)?;
        check_delegation(db, &ctx.org.id, &id, &config)?;
        agents::set_working_copy(db, &id, &normalized)
    })?;
    Ok(Reply::ok(body))
}

/// `POST /orgs/{org}/agents/{agent}/releases {bump, notes?}`: publishes the
/// working copy as the next version and makes it current. An invalid
/// working copy never publishes.
pub fn create_release(ctx: &OrgCtx) -> ApiResult<Reply> {
    let mut input = ctx.input()?;
    let bump = input.string("bump", 1, 10);
    let parsed_bump: Option<Bump> = serde_json::from_value(Value::String(bump.clone())).ok();
    input.check(
        bump.is_empty() || parsed_bump.is_some(),
        "bump",
        "`bump` must be major, minor or patch",
    );
    let notes = input
        .optional_string("notes", 0, 10_000)
        .unwrap_or_default();
    input.finish()?;
    let bump = parsed_bump.unwrap_or(Bump::Patch);
    let by = ctx.principal()?.user_id().ok();
    let release = ctx.db.transaction(|db| {
        let id = agent_id(ctx, true)?;
        refuse_archived(db, &id)?;
        let raw = agents::working_copy_config(db, &id)?;
        let mut config = AgentConfig::parse(&raw, true).map_err(config_errors)?;
        resolve_tools(db, &ctx.org.id, &mut config, true)?;
        check_delegation(db, &ctx.org.id, &id, &config)?;
        let config =
            serde_json::to_value(&config).map_err(|e| ApiError::internal(e.to_string()))?;
        let next = agents::latest_version(db, &id)?
            .unwrap_or_default()
            .bump(bump);
        agents::publish(db, &id, next, &config, &notes, by)
    })?;
    Ok(Reply::created(release))
}

/// `GET /orgs/{org}/agents/{agent}/releases`: newest first (configs for
/// builders and above).
pub fn list_releases(ctx: &OrgCtx) -> ApiResult<Reply> {
    let id = agent_id(ctx, false)?;
    let mut releases = agents::releases(ctx.db, &id)?;
    // Members see which versions exist, not how an agent is configured.
    if ctx.org.role < Role::Builder {
        for r in &mut releases {
            r.as_object_mut().map(|o| o.remove("config"));
        }
    }
    Ok(Reply::ok(json!({ "releases": releases })))
}

/// `POST /orgs/{org}/agents/{agent}/releases/{version}/checkout`: copies the
/// release's config into the working copy.
pub fn checkout_release(ctx: &OrgCtx) -> ApiResult<Reply> {
    let version = ctx.param("version");
    if Version::parse(version).is_none() {
        return Err(ApiError::not_found("release"));
    }
    let body = ctx.db.transaction(|db| {
        let id = agent_id(ctx, true)?;
        let config = agents::release_config(db, &id, version)?
            .ok_or_else(|| ApiError::not_found("release"))?;
        agents::set_working_copy(db, &id, &config)
    })?;
    Ok(Reply::ok(body))
}
