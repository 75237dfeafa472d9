//! `tools`, `tool_versions` and `tool_components`: definitions saved
//! through the API (every version kept), the versions runs and releases
//! read, and uploaded WIT tool components by content.

use serde_json::{json, Value};

use crate::{jsonb, opt_text, opt_uuid, text, uuid, Db, DbResult, FromRow, Row, Timestamp};

const COLUMNS: &str = "id, name, definition, version, created_at AT TIME ZONE 'UTC' AS created_at, updated_at AT TIME ZONE 'UTC' AS updated_at";

/// A tool at its current version.
pub struct Tool {
    pub id: String,
    pub name: String,
    /// The definition as saved (a `synatra_tools::ToolDef`).
    pub definition: Value,
    /// The content version of the definition.
    pub version: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl FromRow for Tool {
    fn from_row(r: &Row) -> DbResult<Self> {
        Ok(Self {
            id: r.get("id")?,
            name: r.get("name")?,
            definition: r.get("definition")?,
            version: r.get("version")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

fn keep_version(db: &Db, tool_id: &str, version: &str, definition: &Value) -> DbResult<()> {
    db.execute(
        "INSERT INTO tool_versions (tool_id, version, definition) VALUES ($1, $2, $3)
         ON CONFLICT (tool_id, version) DO NOTHING",
        &[uuid(tool_id), text(version), jsonb(definition)],
    )?;
    Ok(())
}

/// Creates a tool; a taken name is a unique violation (409).
pub fn create(
    db: &Db,
    org_id: &str,
    name: &str,
    definition: &Value,
    version: &str,
    by: Option<&str>,
) -> DbResult<Tool> {
    let tool = Tool::from_row(&db.query_one(
        &format!(
            "INSERT INTO tools (org_id, name, definition, version, created_by) VALUES ($1, $2, $3, $4, $5)
             RETURNING {COLUMNS}"
        ),
        &[uuid(org_id), text(name), jsonb(definition), text(version), opt_uuid(by)],
    )?)?;
    keep_version(db, &tool.id, version, definition)?;
    Ok(tool)
}

/// The tools of an org, by name.
pub fn list(db: &Db, org_id: &str) -> DbResult<Vec<Tool>> {
    db.query_as(
        &format!("SELECT {COLUMNS} FROM tools WHERE org_id = $1 ORDER BY name"),
        &[uuid(org_id)],
    )
}

/// A tool's id by name or id, locking it when `lock`.
pub fn resolve(db: &Db, org_id: &str, key: &str, lock: bool) -> DbResult<Option<String>> {
    let sql = format!(
        "SELECT id FROM tools WHERE org_id = $1 AND (name = $2 OR id::text = $2){}",
        if lock { " FOR UPDATE" } else { "" }
    );
    db.query_opt(&sql, &[uuid(org_id), text(key)])?
        .map(|r| -> DbResult<_> { r.str("id") })
        .transpose()
}

/// A tool by id.
pub fn get(db: &Db, id: &str) -> DbResult<Tool> {
    Tool::from_row(&db.query_one(
        &format!("SELECT {COLUMNS} FROM tools WHERE id = $1"),
        &[uuid(id)],
    )?)
}

/// Replaces a tool's definition (a new version when the content changed).
pub fn replace(db: &Db, id: &str, name: &str, definition: &Value, version: &str) -> DbResult<Tool> {
    db.execute(
        "UPDATE tools SET name = $2, definition = $3, version = $4, updated_at = now() WHERE id = $1",
        &[uuid(id), text(name), jsonb(definition), text(version)],
    )?;
    keep_version(db, id, version, definition)?;
    get(db, id)
}

/// Who still needs tool `name`: agents whose working copy or current
/// release lists it, and `pending approval` when calls of it await a person.
pub fn users_of(db: &Db, org_id: &str, name: &str) -> DbResult<Vec<String>> {
    let mut users: Vec<String> = db
        .query(
            "SELECT a.slug FROM agents a LEFT JOIN agent_releases r ON r.id = a.current_release_id
             WHERE a.org_id = $1 AND EXISTS (
                 SELECT 1 FROM jsonb_array_elements_text(
                     coalesce(a.working_copy->'tools', '[]') || coalesce(r.config->'tools', '[]')) e
                 WHERE split_part(e, '@', 1) = $2)
             ORDER BY a.slug",
            &[uuid(org_id), text(name)],
        )?
        .iter()
        .map(|r| Ok(format!("agent `{}`", r.str("slug")?)))
        .collect::<DbResult<_>>()?;
    let pending = db.query_opt(
        "SELECT 1 AS one FROM approvals WHERE org_id = $1 AND tool_name = $2 AND status = 'pending' LIMIT 1",
        &[uuid(org_id), text(name)],
    )?;
    if pending.is_some() {
        users.push("a pending approval".into());
    }
    Ok(users)
}

/// Deletes a tool and its versions.
pub fn delete(db: &Db, id: &str) -> DbResult<()> {
    db.execute("DELETE FROM tools WHERE id = $1", &[uuid(id)])?;
    Ok(())
}

/// Stores an uploaded component (idempotent: content-addressed per org).
pub fn store_component(
    db: &Db,
    org_id: &str,
    sha256: &str,
    wasm: &[u8],
    imports: &[String],
) -> DbResult<()> {
    db.execute(
        "INSERT INTO tool_components (org_id, sha256, wasm, imports) VALUES ($1, $2, $3, $4)
         ON CONFLICT (org_id, sha256) DO NOTHING",
        &[
            uuid(org_id),
            text(sha256),
            spin_sdk::pg4::ParameterValue::Binary(wasm.to_vec()),
            jsonb(&json!(imports)),
        ],
    )?;
    Ok(())
}

/// Whether the org has a component with this hash.
pub fn has_component(db: &Db, org_id: &str, sha256: &str) -> DbResult<bool> {
    Ok(db
        .query_opt(
            "SELECT 1 AS one FROM tool_components WHERE org_id = $1 AND sha256 = $2",
            &[uuid(org_id), text(sha256)],
        )?
        .is_some())
}

/// Tool `name` of the org at `version` (its current one when None):
/// `(version, definition)`.
pub fn definition(
    db: &Db,
    org_id: &str,
    name: &str,
    version: Option<&str>,
) -> DbResult<Option<(String, Value)>> {
    db.query_opt(
        // A pinned version is found by the name it had then (so a later
        // rename does not break a release); an unpinned one by today's.
        "SELECT v.version, v.definition FROM tools t
             JOIN tool_versions v ON v.tool_id = t.id
             WHERE t.org_id = $1
               AND CASE WHEN $3::text IS NULL THEN t.name = $2 AND v.version = t.version
                        ELSE v.version = $3 AND v.definition->>'name' = $2 END
             LIMIT 1",
        &[uuid(org_id), text(name), opt_text(version)],
    )?
    .map(|r| -> DbResult<_> { Ok((r.str("version")?, r.json("definition")?)) })
    .transpose()
}
