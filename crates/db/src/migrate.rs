//! Applying the application's migrations from inside the application, for
//! hosts that do not run them at start (`spin up`, SpinKube, Fermyon Wasm
//! Functions). The files and the `_sqlx_migrations` bookkeeping are the ones
//! the `synatra` host uses (`synatra-migrations`), and the work is serialised
//! with sqlx's advisory lock key, taken per transaction so a crashed instance
//! never leaves it held on a pooled connection.

use spin_sdk::pg4::ParameterValue;
use synatra_migrations::{all, latest_version, lock_key};

use crate::{Db, DbError, DbResult};

/// sqlx's bookkeeping table, created as sqlx creates it.
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
)";

/// Brings the schema up to this build's newest migration, if it is not
/// there yet; a no-op costing one query when it is.
pub fn ensure(db: &Db) -> DbResult<()> {
    if applied_version(db)? == Some(latest_version()) {
        return Ok(());
    }
    db.transaction(|db| {
        let name = db.query_one("SELECT current_database()::text AS name", &[])?.str("name")?;
        db.query(
            "SELECT 1 AS locked FROM pg_advisory_xact_lock($1)",
            &[ParameterValue::Int64(lock_key(&name))],
        )?;
        db.execute(CREATE_TABLE, &[])?;
        let applied = db.query(
            "SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version",
            &[],
        )?;
        for migration in all() {
            let started = std::time::Instant::now();
            let mut found = None;
            for row in &applied {
                if row.i64("version")? == migration.version {
                    found = Some(row);
                }
            }
            if let Some(row) = found {
                if !row.bool("success")? || row.bytes("checksum")? != Some(migration.checksum()) {
                    return Err(DbError::Other(format!(
                        "migration {} ({}) was applied in a different form or failed half-way; \
                         the database needs an operator",
                        migration.version, migration.description
                    )));
                }
                continue;
            }
            for statement in migration.statements() {
                db.execute(statement, &[])?;
            }
            db.execute(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES ($1, $2, TRUE, $3, $4)",
                &[
                    ParameterValue::Int64(migration.version),
                    crate::text(&migration.description),
                    ParameterValue::Binary(migration.checksum()),
                    ParameterValue::Int64(started.elapsed().as_nanos() as i64),
                ],
            )?;
            eprintln!("applied migration {} ({})", migration.version, migration.description);
        }
        Ok(())
    })
}

/// The newest successfully applied version, or `None` on a fresh database
/// (one query on the path every request takes).
fn applied_version(db: &Db) -> DbResult<Option<i64>> {
    match db.query_one(
        "SELECT max(version) AS version FROM _sqlx_migrations WHERE success",
        &[],
    ) {
        Ok(row) => Ok(row.opt_i64("version")?),
        Err(DbError::UndefinedTable(_)) => Ok(None),
        Err(e) => Err(e),
    }
}
