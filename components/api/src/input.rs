//! Validation of JSON request bodies: collects every field error, rejects
//! unknown fields, and names the field in each message.

use serde_json::{json, Map, Value};

use crate::error::ApiError;

/// A JSON object being validated.
pub struct Input {
    fields: Map<String, Value>,
    seen: Vec<&'static str>,
    errors: Vec<Value>,
}

impl Input {
    /// Parses `body` as a JSON object.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::new(
                400,
                "invalid_json",
                format!("request body is not valid JSON: {e}"),
            )
        })?;
        match value {
            Value::Object(fields) => Ok(Self {
                fields,
                seen: Vec::new(),
                errors: Vec::new(),
            }),
            _ => Err(ApiError::new(
                400,
                "invalid_json",
                "request body must be a JSON object",
            )),
        }
    }

    fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors
            .push(json!({ "field": field, "message": message.into() }));
    }

    /// A required string, trimmed, with a length in `min..=max` characters.
    pub fn string(&mut self, field: &'static str, min: usize, max: usize) -> String {
        self.optional_string(field, min, max).unwrap_or_else(|| {
            if !self.errors.iter().any(|e| e["field"] == field) {
                self.fail(field, format!("`{field}` is required"));
            }
            String::new()
        })
    }

    /// An optional string, trimmed, with a length in `min..=max` characters.
    pub fn optional_string(
        &mut self,
        field: &'static str,
        min: usize,
        max: usize,
    ) -> Option<String> {
        self.seen.push(field);
        match self.fields.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.contains('\0') => {
                // PostgreSQL text cannot hold NUL.
                self.fail(field, format!("`{field}` may not contain NUL characters"));
                Some(String::new())
            }
            Some(Value::String(s)) => {
                let s = s.trim().to_string();
                let len = s.chars().count();
                if len < min || len > max {
                    self.fail(
                        field,
                        format!("`{field}` must be {min} to {max} characters"),
                    );
                    return Some(String::new());
                }
                Some(s)
            }
            Some(_) => {
                self.fail(field, format!("`{field}` must be a string"));
                Some(String::new())
            }
        }
    }

    /// An optional array of at most `max_items` strings (trimmed, without
    /// NUL, each at most `max_len` characters).
    pub fn optional_string_list(
        &mut self,
        field: &'static str,
        max_items: usize,
        max_len: usize,
    ) -> Option<Vec<String>> {
        self.seen.push(field);
        let items = match self.fields.get(field) {
            None | Some(Value::Null) => return None,
            Some(Value::Array(items)) if items.len() <= max_items => items,
            Some(_) => {
                let message = format!("`{field}` must be an array of at most {max_items} strings");
                self.fail(field, message);
                return Some(Vec::new());
            }
        };
        let strings: Vec<String> = items
            .iter()
            .filter_map(|v| v.as_str())
            .filter(|s| !s.contains('\0') && s.trim().chars().count() <= max_len)
            .map(|s| s.trim().to_string())
            .collect();
        if strings.len() != items.len() {
            let message =
                format!("each of `{field}` must be a string of at most {max_len} characters");
            self.fail(field, message);
        }
        Some(strings)
    }

    /// A required JSON object field, returned as is.
    pub fn object(&mut self, field: &'static str) -> Value {
        self.seen.push(field);
        match self.fields.get(field) {
            Some(v @ Value::Object(_)) => v.clone(),
            None | Some(Value::Null) => {
                self.fail(field, format!("`{field}` is required"));
                Value::Null
            }
            Some(_) => {
                self.fail(field, format!("`{field}` must be an object"));
                Value::Null
            }
        }
    }

    /// Whether the body has `field` at all (for partial updates).
    pub fn has(&self, field: &str) -> bool {
        self.fields.contains_key(field)
    }

    /// Records an error for `field` unless `ok`.
    pub fn check(&mut self, ok: bool, field: &'static str, message: &str) {
        if !ok && !self.errors.iter().any(|e| e["field"] == field) {
            self.fail(field, message);
        }
    }

    /// Ends validation: any field error or unknown field is a 400.
    pub fn finish(mut self) -> Result<(), ApiError> {
        let unknown: Vec<String> = self
            .fields
            .keys()
            .filter(|k| !self.seen.contains(&k.as_str()))
            .cloned()
            .collect();
        for field in unknown {
            self.fail(&field, format!("unknown field `{field}`"));
        }
        if self.errors.is_empty() {
            return Ok(());
        }
        let first = self.errors[0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Err(ApiError::new(400, "validation_failed", first)
            .with_details(json!({ "fields": self.errors })))
    }
}

/// `name@domain.tld`, no spaces, at most 254 characters.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && s.len() <= 254
        && !s.chars().any(char::is_whitespace)
}

/// Lower-case letters, digits and inner hyphens, 2 to 64 characters, and
/// not shaped like a UUID (paths take a slug or an id, so a slug must never
/// be mistaken for another record's id).
pub fn is_slug(s: &str) -> bool {
    let bytes = s.as_bytes();
    !is_uuid(s)
        && (2..=64).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// A canonical UUID string.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}
