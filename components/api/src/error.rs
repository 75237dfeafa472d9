//! API errors: `{"error":{"code","message","details"}}` with stable codes.

use serde_json::{json, Value};
use synatra_db::DbError;

/// An error answered to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    /// An error with no details.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    /// Adds machine-readable details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn unauthenticated() -> Self {
        Self::new(401, "unauthenticated", "sign in or send a valid API key")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(404, "not_found", format!("{what} not found"))
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }

    /// Replaces a generic unique-violation conflict with a specific code.
    pub fn on_conflict(self, code: &'static str, message: &str) -> Self {
        if self.status == 409 && self.code == "conflict" {
            ApiError::conflict(code, message)
        } else {
            self
        }
    }

    /// A 400 listing field problems, in the same shape as [`crate::input::Input`].
    pub fn fields(errors: &[(String, String)]) -> Self {
        let first = errors
            .first()
            .map(|(f, m)| format!("`{f}`: {m}"))
            .unwrap_or_default();
        let fields: Vec<Value> = errors
            .iter()
            .map(|(f, m)| json!({ "field": f, "message": m }))
            .collect();
        ApiError::new(400, "validation_failed", first).with_details(json!({ "fields": fields }))
    }

    /// 429 with `code`, retry after `secs` (also sent as `Retry-After`).
    pub fn retry_later(code: &'static str, message: impl Into<String>, secs: i64) -> Self {
        Self::new(429, code, message).with_details(json!({ "retry_after_seconds": secs }))
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal", message)
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(d) = &self.details {
            error["details"] = d.clone();
        }
        json!({ "error": error })
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(m) => {
                eprintln!("database unavailable: {m}");
                ApiError::new(503, "database_unavailable", "the database is unavailable")
            }
            DbError::UniqueViolation(_) => {
                ApiError::conflict("conflict", "a record with these values already exists")
            }
            other => {
                eprintln!("{other}");
                ApiError::internal("database error")
            }
        }
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
