//! `tools` and `tool_versions`.

use serde_json::{json, Value};

use crate::db::{jsonb, opt_uuid, text, uuid, Db, Row};
use crate::error::ApiResult;

const COLUMNS: &str = "id, name, definition, version, created_at, updated_at";

fn to_json(r: &Row) -> Value {
    let mut v = r.json("definition");
    v["id"] = r.str("id").into();
    v["version"] = r.str("version").into();
    v["kind"] = json!(if v.get("component_sha256").is_some() {
        "wit"
    } else {
        "javascript"
    });
    v["created_at"] = r.time("created_at");
    v["updated_at"] = r.time("updated_at");
    v
}

fn keep_version(db: &Db, tool_id: &str, version: &str, definition: &Value) -> ApiResult<()> {
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
) -> ApiResult<Value> {
    let r = db.query_one(
        &format!(
            "INSERT INTO tools (org_id, name, definition, version, created_by) VALUES ($1, $2, $3, $4, $5)
             RETURNING {COLUMNS}"
        ),
        &[uuid(org_id), text(name), jsonb(definition), text(version), opt_uuid(by)],
    )?;
    keep_version(db, &r.str("id"), version, definition)?;
    Ok(to_json(&r))
}

/// The tools of an org, by name.
pub fn list(db: &Db, org_id: &str) -> ApiResult<Vec<Value>> {
    Ok(db
        .query(
            &format!("SELECT {COLUMNS} FROM tools WHERE org_id = $1 ORDER BY name"),
            &[uuid(org_id)],
        )?
        .iter()
        .map(to_json)
        .collect())
}

/// A tool's id by name or id, locking it when `lock`.
pub fn resolve(db: &Db, org_id: &str, key: &str, lock: bool) -> ApiResult<Option<String>> {
    let sql = format!(
        "SELECT id FROM tools WHERE org_id = $1 AND (name = $2 OR id::text = $2){}",
        if lock { " FOR UPDATE" } else { "" }
    );
    Ok(db
        .query_opt(&sql, &[uuid(org_id), text(key)])?
        .map(|r| r.str("id")))
}

/// A tool by id.
pub fn get(db: &Db, id: &str) -> ApiResult<Value> {
    Ok(to_json(&db.query_one(
        &format!("SELECT {COLUMNS} FROM tools WHERE id = $1"),
        &[uuid(id)],
    )?))
}

/// Replaces a tool's definition (a new version when the content changed).
pub fn replace(
    db: &Db,
    id: &str,
    name: &str,
    definition: &Value,
    version: &str,
) -> ApiResult<Value> {
    db.execute(
        "UPDATE tools SET name = $2, definition = $3, version = $4, updated_at = now() WHERE id = $1",
        &[uuid(id), text(name), jsonb(definition), text(version)],
    )?;
    keep_version(db, id, version, definition)?;
    get(db, id)
}

/// Deletes a tool and its versions.
pub fn delete(db: &Db, id: &str) -> ApiResult<()> {
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
) -> ApiResult<()> {
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
pub fn has_component(db: &Db, org_id: &str, sha256: &str) -> ApiResult<bool> {
    Ok(db
        .query_opt(
            "SELECT 1 AS one FROM tool_components WHERE org_id = $1 AND sha256 = $2",
            &[uuid(org_id), text(sha256)],
        )?
        .is_some())
}
