//! Typed rows: a query's rows decode into one struct ([`FromRow`]), each
//! column into a Rust type ([`FromColumn`]). A missing column or a value of
//! another type is a [`DbError`], not a panic.

use spin_sdk::pg4::DbValue;
use synatra_runs::{RunStatus, ThreadStatus};

use crate::{DbError, DbResult, Row};

/// A type one query's rows decode into.
pub trait FromRow: Sized {
    fn from_row(row: &Row) -> DbResult<Self>;
}

/// A Rust value one column decodes into.
pub trait FromColumn: Sized {
    fn from_column(value: &DbValue) -> Result<Self, String>;
}

/// A `timestamptz` selected `AT TIME ZONE 'UTC'`, as RFC 3339 with
/// microseconds (`2026-11-30T17:04:47.123456Z`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamp(String);

impl Timestamp {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Row {
    /// Column `name` decoded as `T`.
    pub fn get<T: FromColumn>(&self, name: &str) -> DbResult<T> {
        let value = self
            .columns
            .iter()
            .position(|c| c == name)
            .map(|i| &self.values[i])
            .ok_or_else(|| DbError::Other(format!("the query has no column `{name}`")))?;
        T::from_column(value).map_err(|e| DbError::Other(format!("column `{name}`: {e}")))
    }
}

/// Shorthands for [`Row::get`].
impl Row {
    /// A text or UUID column; NULL reads as the empty string.
    pub fn str(&self, name: &str) -> DbResult<String> {
        Ok(self.get::<Option<String>>(name)?.unwrap_or_default())
    }

    /// A nullable text or UUID column.
    pub fn opt_str(&self, name: &str) -> DbResult<Option<String>> {
        self.get(name)
    }

    /// A JSON/JSONB column (JSON null when NULL).
    pub fn json(&self, name: &str) -> DbResult<serde_json::Value> {
        self.get(name)
    }

    /// A nullable bytea column.
    pub fn bytes(&self, name: &str) -> DbResult<Option<Vec<u8>>> {
        self.get(name)
    }

    /// A bigint/int column.
    pub fn i64(&self, name: &str) -> DbResult<i64> {
        self.get(name)
    }

    /// A nullable bigint/int column.
    pub fn opt_i64(&self, name: &str) -> DbResult<Option<i64>> {
        self.get(name)
    }

    /// A boolean column; NULL reads as false.
    pub fn bool(&self, name: &str) -> DbResult<bool> {
        Ok(self.get::<Option<bool>>(name)?.unwrap_or(false))
    }

    /// A timestamp column as an RFC 3339 JSON string, or JSON null.
    pub fn time(&self, name: &str) -> DbResult<serde_json::Value> {
        Ok(self
            .get::<Option<Timestamp>>(name)?
            .map_or(serde_json::Value::Null, |t| t.0.into()))
    }
}

fn unexpected<T>(wanted: &str, value: &DbValue) -> Result<T, String> {
    Err(format!("expected {wanted}, found {value:?}"))
}

impl<T: FromColumn> FromColumn for Option<T> {
    fn from_column(value: &DbValue) -> Result<Self, String> {
        match value {
            DbValue::DbNull => Ok(None),
            v => T::from_column(v).map(Some),
        }
    }
}

impl FromColumn for String {
    fn from_column(value: &DbValue) -> Result<Self, String> {
        match value {
            DbValue::Str(s) | DbValue::Uuid(s) => Ok(s.clone()),
            v => unexpected("text", v),
        }
    }
}

impl FromColumn for i64 {
    fn from_column(value: &DbValue) -> Result<Self, String> {
        match value {
            DbValue::Int64(v) => Ok(*v),
            DbValue::Int32(v) => Ok((*v).into()),
            DbValue::Int16(v) => Ok((*v).into()),
            v => unexpected("an integer", v),
        }
    }
}

impl FromColumn for Vec<u8> {
    fn from_column(value: &DbValue) -> Result<Self, String> {
        match value {
            DbValue::Binary(b) => Ok(b.clone()),
            v => unexpected("bytea", v),
        }
    }
}

impl FromColumn for bool {
    fn from_column(value: &DbValue) -> Result<Self, String> {
        match value {
            DbValue::Boolean(b) => Ok(*b),
            v => unexpected("a boolean", v),
        }
    }
}

/// JSON and JSONB; NULL is JSON `null`.
impl FromColumn for serde_json::Value {
    fn from_column(value: &DbValue) -> Result<Self, String> {
        match value {
            DbValue::Jsonb(bytes) => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
            DbValue::DbNull => Ok(serde_json::Value::Null),
            v => unexpected("JSON", v),
        }
    }
}

impl FromColumn for Timestamp {
    fn from_column(value: &DbValue) -> Result<Self, String> {
        match value {
            DbValue::Datetime((y, mo, d, h, mi, s, ns)) => Ok(Timestamp(format!(
                "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:06}Z",
                ns / 1000
            ))),
            v => unexpected("a timestamp (select it AT TIME ZONE 'UTC')", v),
        }
    }
}

impl FromColumn for RunStatus {
    fn from_column(value: &DbValue) -> Result<Self, String> {
        let s = String::from_column(value)?;
        RunStatus::parse(&s).ok_or_else(|| format!("unknown run status `{s}`"))
    }
}

impl FromColumn for ThreadStatus {
    fn from_column(value: &DbValue) -> Result<Self, String> {
        let s = String::from_column(value)?;
        ThreadStatus::parse(&s).ok_or_else(|| format!("unknown thread status `{s}`"))
    }
}
