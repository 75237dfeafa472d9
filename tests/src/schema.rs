//! A JSON Schema validator for the subset the vendored deploy schemas and
//! the OpenAPI document use: `type`
//! (a name or a list, `"null"` included), `enum`, `properties`, `required`,
//! `additionalProperties` (bool or schema), `items`, `allOf`/`anyOf`/`oneOf`,
//! `minimum`/`maximum`, `minLength`/`maxLength`, `minItems`, and Kubernetes'
//! `x-kubernetes-int-or-string` and `x-kubernetes-preserve-unknown-fields`.
//! `format`, `pattern` and `default` are not checked. An object schema with
//! `properties` and no `additionalProperties` refuses unknown fields, as the
//! API server's strict field validation does for CRDs. Any other keyword
//! panics, so a schema update cannot be half-checked in silence.

use serde_json::{Map, Value};

const KNOWN: &[&str] = &[
    "type",
    "enum",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "allOf",
    "anyOf",
    "oneOf",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "format",
    "pattern",
    "default",
    "description",
    "title",
    "$schema",
    "$id",
];

/// Every violation of `schema` by `value`, each starting with its JSON
/// path (`$.spec.replicas: ...`); empty when the value is valid.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, value, "$", &mut errors);
    errors
}

fn matches(schema: &Value, value: &Value, path: &str) -> bool {
    let mut errors = Vec::new();
    check(schema, value, path, &mut errors);
    errors.is_empty()
}

fn type_ok(name: &str, value: &Value) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        other => panic!("schema type {other:?} is not supported"),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn list<'a>(s: &'a Map<String, Value>, key: &str) -> &'a [Value] {
    s.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// `$.a.b` for plain keys, `$.labels["app.kubernetes.io/name"]` otherwise.
fn child(path: &str, key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        format!("{path}.{key}")
    } else {
        format!("{path}[{key:?}]")
    }
}

fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        if schema == &Value::Bool(false) {
            errors.push(format!("{path}: no value is allowed here"));
        }
        return;
    };
    for key in s.keys() {
        let known = KNOWN.contains(&key.as_str()) || key.starts_with("x-kubernetes-");
        assert!(
            known,
            "{path}: schema keyword {key:?} is not supported by this validator"
        );
    }
    let flag = |key: &str| s.get(key).and_then(Value::as_bool).unwrap_or(false);
    if flag("x-kubernetes-int-or-string") {
        if !(type_ok("integer", value) || value.is_string()) {
            let found = kind(value);
            errors.push(format!(
                "{path}: expected an integer or a string, found {found}"
            ));
            return;
        }
    } else if let Some(t) = s.get("type") {
        let names: Vec<&str> = match t {
            Value::String(name) => vec![name.as_str()],
            Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
            other => panic!("{path}: `type` {other} is neither a name nor a list"),
        };
        if !names.iter().any(|name| type_ok(name, value)) {
            let (expected, found) = (names.join(" or "), kind(value));
            errors.push(format!(
                "{path}: expected {expected}, found {found} {value}"
            ));
            return;
        }
    }
    if let Some(Value::Array(allowed)) = s.get("enum") {
        if !allowed.contains(value) {
            let allowed = Value::Array(allowed.clone());
            errors.push(format!("{path}: {value} is not one of {allowed}"));
        }
    }
    let number = value.as_f64();
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_f64), number) {
        if n < min {
            errors.push(format!("{path}: {value} is below the minimum {min}"));
        }
    }
    if let (Some(max), Some(n)) = (s.get("maximum").and_then(Value::as_f64), number) {
        if n > max {
            errors.push(format!("{path}: {value} is above the maximum {max}"));
        }
    }
    let count = |key: &str| s.get(key).and_then(Value::as_u64).map(|n| n as usize);
    if let Some(length) = value.as_str().map(|text| text.chars().count()) {
        if count("minLength").is_some_and(|min| length < min) {
            errors.push(format!("{path}: {value} is shorter than minLength"));
        }
        if count("maxLength").is_some_and(|max| length > max) {
            errors.push(format!("{path}: {value} is longer than maxLength"));
        }
    }
    if let (Some(min), Some(array)) = (count("minItems"), value.as_array()) {
        if array.len() < min {
            errors.push(format!("{path}: fewer than {min} items"));
        }
    }
    for sub in list(s, "allOf") {
        check(sub, value, path, errors);
    }
    let any_of = list(s, "anyOf");
    if !any_of.is_empty() && !any_of.iter().any(|sub| matches(sub, value, path)) {
        errors.push(format!(
            "{path}: {value} matches none of the anyOf alternatives"
        ));
    }
    let one_of = list(s, "oneOf");
    if !one_of.is_empty() {
        let n = one_of
            .iter()
            .filter(|sub| matches(sub, value, path))
            .count();
        if n != 1 {
            errors.push(format!(
                "{path}: {value} matches {n} oneOf alternatives, not one"
            ));
        }
    }
    if let Some(object) = value.as_object() {
        let properties = s.get("properties").and_then(Value::as_object);
        for name in list(s, "required").iter().filter_map(Value::as_str) {
            if !object.contains_key(name) {
                errors.push(format!("{}: required field is missing", child(path, name)));
            }
        }
        let preserve = flag("x-kubernetes-preserve-unknown-fields");
        for (key, item) in object {
            let item_path = child(path, key);
            match (
                properties.and_then(|p| p.get(key)),
                s.get("additionalProperties"),
            ) {
                (Some(sub), _) => check(sub, item, &item_path, errors),
                (None, Some(Value::Bool(false))) => {
                    errors.push(format!("{item_path}: unknown field"))
                }
                (None, Some(Value::Bool(true))) => {}
                (None, Some(sub)) => check(sub, item, &item_path, errors),
                (None, None) if properties.is_some() && !preserve => {
                    errors.push(format!("{item_path}: unknown field"))
                }
                (None, None) => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (s.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            check(items, item, &format!("{path}[{i}]"), errors);
        }
    }
}
