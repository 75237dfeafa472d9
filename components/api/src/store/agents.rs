//! `agents` and `agent_releases`.

use serde_json::{json, Value};
use synatra_agents::delegation::AgentNode;
use synatra_agents::Version;

use crate::db::{jsonb, opt_text, opt_uuid, text, uuid, Db, DbResult, Row};
use crate::error::ApiResult;

const SELECT: &str =
    "SELECT a.id, a.slug, a.name, a.description, a.icon, a.created_at AT TIME ZONE 'UTC' AS created_at, a.updated_at AT TIME ZONE 'UTC' AS updated_at,
        a.archived_at AT TIME ZONE 'UTC' AS archived_at,
        r.id AS release_id, r.version AS release_version
    FROM agents a LEFT JOIN agent_releases r ON r.id = a.current_release_id";

/// An agent's public JSON.
fn to_json(r: &Row) -> DbResult<Value> {
    let release = match r.opt_str("release_id")? {
        Some(id) => json!({ "id": id, "version": r.str("release_version")? }),
        None => Value::Null,
    };
    Ok(json!({
        "id": r.str("id")?, "slug": r.str("slug")?, "name": r.str("name")?,
        "description": r.opt_str("description")?, "icon": r.opt_str("icon")?,
        "current_release": release,
        "created_at": r.time("created_at")?, "updated_at": r.time("updated_at")?,
        "archived_at": r.time("archived_at")?,
    }))
}

fn release_json(r: &Row) -> DbResult<Value> {
    Ok(json!({
        "id": r.str("id")?, "version": r.str("version")?, "notes": r.str("notes")?,
        "config": r.json("config")?, "created_at": r.time("created_at")?,
    }))
}

/// Fields of a new agent.
pub struct NewAgent<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub icon: Option<&'a str>,
}

/// Creates an agent with an empty working copy.
pub fn create(db: &Db, org_id: &str, a: &NewAgent, by: Option<&str>) -> ApiResult<Value> {
    let id = db
        .query_one(
            "INSERT INTO agents (org_id, slug, name, description, icon, created_by)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                uuid(org_id),
                text(a.slug),
                text(a.name),
                opt_text(a.description),
                opt_text(a.icon),
                opt_uuid(by),
            ],
        )?
        .str("id")?;
    Ok(to_json(&db.query_one(
        &format!("{SELECT} WHERE a.id = $1"),
        &[uuid(&id)],
    )?)?)
}

/// Agents of an org.
pub fn list(db: &Db, org_id: &str) -> ApiResult<Vec<Value>> {
    Ok(db
        .query(
            &format!("{SELECT} WHERE a.org_id = $1 AND a.archived_at IS NULL ORDER BY a.slug"),
            &[uuid(org_id)],
        )?
        .iter()
        .map(to_json)
        .collect::<DbResult<Vec<_>>>()?)
}

/// The id of the agent named by `key` (slug or id) in the org, locking it
/// when `lock` (for publishing and edits).
pub fn resolve(db: &Db, org_id: &str, key: &str, lock: bool) -> ApiResult<Option<String>> {
    let sql = format!(
        "SELECT id FROM agents WHERE org_id = $1 AND (slug = $2 OR id::text = $2){}",
        if lock { " FOR UPDATE" } else { "" }
    );
    Ok(db
        .query_opt(&sql, &[uuid(org_id), text(key)])?
        .map(|r| -> DbResult<_> { r.str("id") })
        .transpose()?)
}

/// An agent's JSON by id.
pub fn get(db: &Db, id: &str) -> ApiResult<Value> {
    Ok(to_json(&db.query_one(
        &format!("{SELECT} WHERE a.id = $1"),
        &[uuid(id)],
    )?)?)
}

/// Updates name/slug/description/icon (only those given).
pub fn update(
    db: &Db,
    id: &str,
    slug: Option<&str>,
    name: Option<&str>,
    description: Option<Option<&str>>,
    icon: Option<Option<&str>>,
) -> ApiResult<Value> {
    db.execute(
        "UPDATE agents SET
            slug = COALESCE($2, slug),
            name = COALESCE($3, name),
            description = CASE WHEN $4 THEN $5 ELSE description END,
            icon = CASE WHEN $6 THEN $7 ELSE icon END,
            updated_at = now()
         WHERE id = $1",
        &[
            uuid(id),
            opt_text(slug),
            opt_text(name),
            spin_sdk::pg4::ParameterValue::Boolean(description.is_some()),
            opt_text(description.flatten()),
            spin_sdk::pg4::ParameterValue::Boolean(icon.is_some()),
            opt_text(icon.flatten()),
        ],
    )?;
    get(db, id)
}

/// Deletes an agent and its releases.
pub fn delete(db: &Db, id: &str) -> ApiResult<()> {
    db.execute("DELETE FROM agents WHERE id = $1", &[uuid(id)])?;
    Ok(())
}

/// The slugs of the org's other live agents whose working copy or current
/// release delegates to agent `id`.
pub fn delegators(db: &Db, id: &str) -> ApiResult<Vec<String>> {
    db.query(
        "SELECT a.slug FROM agents child
           JOIN agents a ON a.org_id = child.org_id AND a.id <> child.id AND a.archived_at IS NULL
           LEFT JOIN agent_releases r ON r.id = a.current_release_id
          WHERE child.id = $1 AND EXISTS (
                SELECT 1 FROM jsonb_array_elements_text(
                    coalesce(a.working_copy->'subagents', '[]') || coalesce(r.config->'subagents', '[]')) e
                WHERE split_part(e, '@', 1) = child.slug)
          ORDER BY a.slug",
        &[uuid(id)],
    )?
    .iter()
    .map(|r| Ok(r.str("slug")?))
    .collect()
}

/// Whether any thread belongs to the agent (then it is archived, never deleted).
pub fn has_threads(db: &Db, id: &str) -> ApiResult<bool> {
    Ok(db
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM threads WHERE agent_id = $1) AS used",
            &[uuid(id)],
        )?
        .bool("used")?)
}

/// Archives the agent (once).
pub fn archive(db: &Db, id: &str) -> ApiResult<()> {
    db.execute(
        "UPDATE agents SET archived_at = coalesce(archived_at, now()), updated_at = now() WHERE id = $1",
        &[uuid(id)],
    )?;
    Ok(())
}

/// Whether the agent is archived.
pub fn is_archived(db: &Db, id: &str) -> ApiResult<bool> {
    Ok(db
        .query_one(
            "SELECT archived_at IS NOT NULL AS archived FROM agents WHERE id = $1",
            &[uuid(id)],
        )?
        .bool("archived")?)
}

/// The working copy and when it last changed.
pub fn working_copy(db: &Db, id: &str) -> ApiResult<Value> {
    let r = db.query_one(
        "SELECT working_copy, updated_at AT TIME ZONE 'UTC' AS updated_at FROM agents WHERE id = $1",
        &[uuid(id)],
    )?;
    Ok(json!({ "config": r.json("working_copy")?, "updated_at": r.time("updated_at")? }))
}

/// Replaces the working copy.
pub fn set_working_copy(db: &Db, id: &str, config: &Value) -> ApiResult<Value> {
    db.execute(
        "UPDATE agents SET working_copy = $2, updated_at = now() WHERE id = $1",
        &[uuid(id), jsonb(config)],
    )?;
    working_copy(db, id)
}

/// The raw working copy, for publishing.
pub fn working_copy_config(db: &Db, id: &str) -> ApiResult<Value> {
    Ok(db
        .query_one("SELECT working_copy FROM agents WHERE id = $1", &[uuid(id)])?
        .json("working_copy")?)
}

/// The org's delegation graph: each agent with the sub-agents its working
/// copy or current release names.
pub fn delegation_graph(db: &Db, org_id: &str) -> ApiResult<Vec<AgentNode>> {
    let rows = db.query(
        "SELECT a.id, a.slug,
                coalesce(a.working_copy->'subagents', '[]') || coalesce(r.config->'subagents', '[]') AS subagents
         FROM agents a LEFT JOIN agent_releases r ON r.id = a.current_release_id
         WHERE a.org_id = $1",
        &[uuid(org_id)],
    )?;
    let nodes = rows.iter().map(|r| -> DbResult<_> {
        let subagents = match r.json("subagents")? {
            Value::Array(keys) => keys
                .into_iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        Ok(AgentNode {
            id: r.str("id")?,
            slug: r.str("slug")?,
            subagents,
        })
    });
    Ok(nodes.collect::<DbResult<_>>()?)
}

/// The newest release version, if any.
pub fn latest_version(db: &Db, agent_id: &str) -> ApiResult<Option<Version>> {
    Ok(db
        .query_opt(
            "SELECT major, minor, patch FROM agent_releases WHERE agent_id = $1
             ORDER BY major DESC, minor DESC, patch DESC LIMIT 1",
            &[uuid(agent_id)],
        )?
        .map(|r| -> DbResult<_> {
            Ok(Version {
                major: r.i64("major")? as u32,
                minor: r.i64("minor")? as u32,
                patch: r.i64("patch")? as u32,
            })
        })
        .transpose()?)
}

/// Publishes `config` as release `version` and makes it current.
pub fn publish(
    db: &Db,
    agent_id: &str,
    version: Version,
    config: &Value,
    notes: &str,
    by: Option<&str>,
) -> ApiResult<Value> {
    use spin_sdk::pg4::ParameterValue::Int32;
    let r = db.query_one(
        "INSERT INTO agent_releases (agent_id, version, major, minor, patch, config, notes, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING id, version, notes, config, created_at AT TIME ZONE 'UTC' AS created_at",
        &[
            uuid(agent_id),
            text(&version.to_string()),
            Int32(version.major as i32),
            Int32(version.minor as i32),
            Int32(version.patch as i32),
            jsonb(config),
            text(notes),
            opt_uuid(by),
        ],
    )?;
    db.execute(
        "UPDATE agents SET current_release_id = $2, updated_at = now() WHERE id = $1",
        &[uuid(agent_id), uuid(&r.str("id")?)],
    )?;
    Ok(release_json(&r)?)
}

/// Releases of an agent, newest first.
pub fn releases(db: &Db, agent_id: &str) -> ApiResult<Vec<Value>> {
    Ok(db
        .query(
            "SELECT id, version, notes, config, created_at AT TIME ZONE 'UTC' AS created_at FROM agent_releases WHERE agent_id = $1
             ORDER BY major DESC, minor DESC, patch DESC",
            &[uuid(agent_id)],
        )?
        .iter()
        .map(release_json)
        .collect::<DbResult<Vec<_>>>()?)
}

/// A release's config by version.
pub fn release_config(db: &Db, agent_id: &str, version: &str) -> ApiResult<Option<Value>> {
    Ok(db
        .query_opt(
            "SELECT config FROM agent_releases WHERE agent_id = $1 AND version = $2",
            &[uuid(agent_id), text(version)],
        )?
        .map(|r| -> DbResult<_> { r.json("config") })
        .transpose()?)
}

/// An agent as a new run sees it.
pub struct RunnableAgent {
    pub id: String,
    pub archived: bool,
    /// The current release's id and configuration, if one is published.
    pub release: Option<(String, Value)>,
}

/// Where a new thread goes, read in one statement.
pub struct ThreadTarget {
    pub agent: RunnableAgent,
    /// The channel named (the org's default one when none is), if it exists.
    pub channel_id: Option<String>,
    /// The environment named (`production` when none is), if it exists.
    pub environment_id: Option<String>,
}

const RUNNABLE: &str = "SELECT a.id, a.archived_at IS NOT NULL AS archived,
        r.id AS release_id, r.config AS release_config";

const RUNNABLE_FROM: &str =
    "FROM agents a LEFT JOIN agent_releases r ON r.id = a.current_release_id";

fn runnable_of(row: &Row) -> DbResult<RunnableAgent> {
    Ok(RunnableAgent {
        id: row.str("id")?,
        archived: row.bool("archived")?,
        release: match row.opt_str("release_id")? {
            Some(id) => Some((id, row.json("release_config")?)),
            None => None,
        },
    })
}

/// The agent `agent_id` as a new run sees it.
pub fn runnable(db: &Db, agent_id: &str) -> ApiResult<RunnableAgent> {
    Ok(runnable_of(&db.query_one(
        &format!("{RUNNABLE} {RUNNABLE_FROM} WHERE a.id = $1"),
        &[uuid(agent_id)],
    )?)?)
}

/// The org's agent `agent` (slug or id) with the channel and environment
/// (slug or id; the default channel and `production` when not named) a new
/// thread would use; None when there is no such agent.
pub fn thread_target(
    db: &Db,
    org_id: &str,
    agent: &str,
    channel: Option<&str>,
    environment: Option<&str>,
) -> ApiResult<Option<ThreadTarget>> {
    let sql = format!(
        "{RUNNABLE}, ({}) AS channel_id, ({}) AS environment_id
         {RUNNABLE_FROM} WHERE a.org_id = $1 AND (a.slug = $2 OR a.id::text = $2)",
        super::orgs::channel_by_key("$1", "$3"),
        super::orgs::environment_by_key("$1", "$4"),
    );
    let params = [
        uuid(org_id),
        text(agent),
        opt_text(channel),
        opt_text(environment),
    ];
    Ok(db
        .query_opt(&sql, &params)?
        .map(|r| -> DbResult<_> {
            Ok(ThreadTarget {
                agent: runnable_of(&r)?,
                channel_id: r.opt_str("channel_id")?,
                environment_id: r.opt_str("environment_id")?,
            })
        })
        .transpose()?)
}
