//! Database access for components over the host's `spin:postgres`
//! interface: typed row accessors and transactions. Used by every component
//! that touches the application database.

pub mod approvals;
pub mod credentials;
pub mod migrate;
pub mod org_slots;
mod row;
pub mod runs;
pub mod tools;

pub use row::{FromColumn, FromRow, Timestamp};

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use spin_sdk::pg4::{self, DbValue, ParameterValue};
use spin_sdk::variables;

/// Why a database call failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached (or `database_url` is missing).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A unique constraint was violated (SQLSTATE 23505).
    #[error("unique violation: {0}")]
    UniqueViolation(String),
    /// The statement names a table that does not exist (SQLSTATE 42P01).
    #[error("undefined table: {0}")]
    UndefinedTable(String),
    /// The caller's lease on a run is gone (expired or taken): another
    /// worker owns the run now, and this one must stop recording.
    #[error("lease lost")]
    LeaseLost,
    /// Anything else: a bug or a schema mismatch.
    #[error("database error: {0}")]
    Other(String),
}

impl From<pg4::PgError> for DbError {
    fn from(e: pg4::PgError) -> Self {
        match e {
            pg4::PgError::ConnectionFailed(m) => DbError::Unavailable(m),
            pg4::PgError::QueryFailed(pg4::QueryError::DbError(db)) if db.code == "23505" => {
                DbError::UniqueViolation(db.message)
            }
            pg4::PgError::QueryFailed(pg4::QueryError::DbError(db)) if db.code == "42P01" => {
                DbError::UndefinedTable(db.message)
            }
            other => DbError::Other(format!("{other:?}")),
        }
    }
}

/// Result of a database call.
pub type DbResult<T> = Result<T, DbError>;

/// Statement parameters.
pub type Params<'a> = &'a [ParameterValue];

/// A string parameter.
pub fn text(s: &str) -> ParameterValue {
    ParameterValue::Str(s.to_string())
}

/// A UUID parameter (the caller has validated the format).
pub fn uuid(s: &str) -> ParameterValue {
    ParameterValue::Uuid(s.to_string())
}

/// A JSONB parameter. PostgreSQL's jsonb cannot hold the character U+0000,
/// so any (in a string or a key) becomes U+FFFD rather than failing the write.
pub fn jsonb(v: &serde_json::Value) -> ParameterValue {
    let text = v.to_string();
    if !text.contains("\\u0000") {
        return ParameterValue::Jsonb(text.into_bytes());
    }
    ParameterValue::Jsonb(without_nul(v).to_string().into_bytes())
}

fn without_nul(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    let clean = |s: &str| s.replace('\0', "\u{fffd}");
    match v {
        Value::String(s) => Value::String(clean(s)),
        Value::Array(items) => Value::Array(items.iter().map(without_nul).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, x)| (clean(k), without_nul(x)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// An optional string parameter (NULL when absent).
pub fn opt_text(s: Option<&str>) -> ParameterValue {
    s.map(text).unwrap_or(ParameterValue::DbNull)
}

/// An optional UUID parameter (NULL when absent).
pub fn opt_uuid(s: Option<&str>) -> ParameterValue {
    s.map(uuid).unwrap_or(ParameterValue::DbNull)
}

/// Name of the column [`at_least_one_row`] adds: true on real rows, NULL on
/// the stand-in row of an empty result.
const ROW_MARKER: &str = "synatra_row";

/// `sql` wrapped so the result has at least one row (see [`Db::query`]).
/// The statement stays a top-level CTE, so writes with `RETURNING` work,
/// and a materialized one, so its rows keep their `ORDER BY`.
pub fn at_least_one_row(sql: &str) -> String {
    format!(
        "WITH q AS MATERIALIZED ({sql}) SELECT r.* FROM (VALUES (1)) AS one (x) \
         LEFT JOIN LATERAL (SELECT true AS {ROW_MARKER}, q.* FROM q) AS r ON true"
    )
}

/// The request's database: one pooled connection, taken when a statement
/// needs it and given back by [`Db::release`] before a long wait.
pub struct Db {
    url: String,
    conn: RefCell<Option<pg4::Connection>>,
    in_transaction: Cell<bool>,
}

impl Db {
    /// Opens the application database.
    pub fn open() -> DbResult<Self> {
        let url = variables::get("database_url")
            .map_err(|e| DbError::Unavailable(format!("database_url is not configured: {e}")))?;
        let conn = pg4::Connection::open(&url)?;
        Ok(Self {
            url,
            conn: RefCell::new(Some(conn)),
            in_transaction: Cell::new(false),
        })
    }

    /// Gives the connection back to the pool until the next statement, so
    /// a model call, a sandboxed tool or another component's work does not
    /// hold it; inside a transaction it is kept.
    pub fn release(&self) {
        if !self.in_transaction.get() {
            self.conn.borrow_mut().take();
        }
    }

    /// Runs `f` on the connection, taking one from the pool if released.
    fn with<T>(&self, f: impl FnOnce(&pg4::Connection) -> Result<T, pg4::PgError>) -> DbResult<T> {
        let mut slot = self.conn.borrow_mut();
        let conn = match slot.take() {
            Some(conn) => conn,
            None => pg4::Connection::open(&self.url)?,
        };
        let result = f(&conn);
        *slot = Some(conn);
        Ok(result?)
    }

    /// Rows of a query (a `SELECT`, or a write with `RETURNING`).
    ///
    /// Spin 4.0.2 never answers a query that matches no rows
    /// (spinframework/spin#3671), so the statement runs inside one that
    /// always yields a row: a marker column tells a real row from the stand-in
    /// for an empty result, which is dropped here.
    pub fn query(&self, sql: &str, params: Params) -> DbResult<Vec<Row>> {
        let set = self.with(|c| c.query(&at_least_one_row(sql), params))?;
        let mut names = set.columns.into_iter().map(|c| c.name);
        if names.next().as_deref() != Some(ROW_MARKER) {
            return Err(DbError::Other("the row marker column is missing".into()));
        }
        let columns: Rc<Vec<String>> = Rc::new(names.collect());
        Ok(set
            .rows
            .into_iter()
            .filter(|values| matches!(values.first(), Some(DbValue::Boolean(true))))
            .map(|mut values| {
                values.remove(0);
                Row {
                    columns: columns.clone(),
                    values,
                }
            })
            .collect())
    }

    /// The first row, if any.
    pub fn query_opt(&self, sql: &str, params: Params) -> DbResult<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Exactly one row.
    pub fn query_one(&self, sql: &str, params: Params) -> DbResult<Row> {
        self.query_opt(sql, params)?
            .ok_or_else(|| DbError::Other("query returned no row".into()))
    }

    /// Rows of a query, each decoded as `T`.
    pub fn query_as<T: FromRow>(&self, sql: &str, params: Params) -> DbResult<Vec<T>> {
        self.query(sql, params)?.iter().map(T::from_row).collect()
    }

    /// The first row decoded as `T`, if any.
    pub fn query_opt_as<T: FromRow>(&self, sql: &str, params: Params) -> DbResult<Option<T>> {
        self.query_opt(sql, params)?
            .as_ref()
            .map(T::from_row)
            .transpose()
    }

    /// Runs a statement; returns the number of rows affected.
    pub fn execute(&self, sql: &str, params: Params) -> DbResult<u64> {
        self.with(|c| c.execute(sql, params))
    }

    /// Runs `f` in one transaction: committed if it succeeds, rolled back otherwise.
    pub fn transaction<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&Db) -> Result<T, E>,
    ) -> Result<T, E> {
        self.execute("BEGIN", &[])?;
        self.in_transaction.set(true);
        let result = f(self);
        let end = match &result {
            Ok(_) => self.execute("COMMIT", &[]),
            Err(_) => self.execute("ROLLBACK", &[]),
        };
        self.in_transaction.set(false);
        match (result, end) {
            (Ok(v), Ok(_)) => Ok(v),
            (Ok(_), Err(e)) => Err(e.into()),
            (Err(e), _) => Err(e),
        }
    }
}

/// One result row, read column by column with [`Row::get`] (typed
/// structs implement [`FromRow`] with it). Reading a missing column or a
/// value of another type is an error, never a panic.
pub struct Row {
    columns: Rc<Vec<String>>,
    values: Vec<DbValue>,
}
