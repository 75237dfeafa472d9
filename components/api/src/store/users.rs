//! `users`.

use serde_json::{json, Value};

use crate::db::{text, uuid, Db, DbResult, Row};
use crate::error::ApiResult;

const COLUMNS: &str = "id, email, name, created_at AT TIME ZONE 'UTC' AS created_at";

/// The public JSON of a user row.
pub fn to_json(r: &Row) -> DbResult<Value> {
    Ok(
        json!({ "id": r.str("id")?, "email": r.str("email")?, "name": r.str("name")?, "created_at": r.time("created_at")? }),
    )
}

/// Inserts a user; a duplicate email is a unique violation (409).
pub fn insert(db: &Db, email: &str, name: &str, password_hash: &str) -> ApiResult<Row> {
    Ok(db.query_one(
        &format!("INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) RETURNING {COLUMNS}"),
        &[text(email), text(name), text(password_hash)],
    )?)
}

/// A user and their password hash, by email (case-insensitive).
pub fn find_for_login(db: &Db, email: &str) -> ApiResult<Option<(Row, String)>> {
    Ok(db
        .query_opt(
            &format!("SELECT {COLUMNS}, password_hash FROM users WHERE lower(email) = lower($1)"),
            &[text(email)],
        )?
        .map(|r| -> DbResult<_> {
            Ok({
                let hash = r.str("password_hash")?;
                (r, hash)
            })
        })
        .transpose()?)
}

/// A user by id.
pub fn get(db: &Db, id: &str) -> ApiResult<Option<Row>> {
    Ok(db.query_opt(
        &format!("SELECT {COLUMNS} FROM users WHERE id = $1"),
        &[uuid(id)],
    )?)
}
