//! The JSON Schemas of request and response bodies (`components.schemas`).
//! Objects list the fields a client can rely on; servers may add fields.

use serde_json::{json, Map, Value};

/// `#/components/schemas/<name>`.
pub fn refer(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// An object with `fields` (name, schema), all required, open to more.
pub fn object(fields: &[(&str, Value)]) -> Value {
    let properties: Map<String, Value> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let required: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
    json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": true })
}

/// An object with `required` fields and `optional` ones, open to more.
pub fn object_with(required: &[(&str, Value)], optional: &[(&str, Value)]) -> Value {
    let mut v = object(required);
    for (k, schema) in optional {
        v["properties"][*k] = schema.clone();
    }
    v
}

/// A request body: `required` and `optional` fields, nothing else.
pub fn body(required: &[(&str, Value)], optional: &[(&str, Value)]) -> Value {
    let mut properties = Map::new();
    for (k, v) in required.iter().chain(optional) {
        properties.insert(k.to_string(), v.clone());
    }
    let names: Vec<&str> = required.iter().map(|(k, _)| *k).collect();
    json!({ "type": "object", "properties": properties, "required": names, "additionalProperties": false })
}

/// `{<key>: [items]}`, with `next_cursor` when `paged`.
pub fn list(key: &str, items: Value, paged: bool) -> Value {
    let mut fields = vec![(key, json!({ "type": "array", "items": items }))];
    if paged {
        fields.push((
            "next_cursor",
            json!({ "type": ["string", "integer", "null"] }),
        ));
    }
    object(&fields)
}

pub fn string() -> Value {
    json!({ "type": "string" })
}

pub fn nullable_string() -> Value {
    json!({ "type": ["string", "null"] })
}

/// A UTC timestamp, `2026-01-31T12:00:00.000000Z`.
pub fn time() -> Value {
    json!({ "type": "string", "format": "date-time" })
}

pub fn nullable_time() -> Value {
    json!({ "type": ["string", "null"], "format": "date-time" })
}

pub fn integer() -> Value {
    json!({ "type": "integer" })
}

pub fn boolean() -> Value {
    json!({ "type": "boolean" })
}

pub fn any_object() -> Value {
    json!({ "type": "object" })
}

fn role() -> Value {
    json!({ "type": "string", "enum": ["owner", "admin", "builder", "member"] })
}

/// Every named schema.
pub fn all() -> Value {
    let thread_status = json!({ "type": "string", "enum": [
        "active", "waiting_approval", "waiting_user", "waiting_subagent",
        "completed", "failed", "cancelled", "rejected"] });
    let run_status = json!({ "type": "string", "enum": [
        "ready", "waiting", "completed", "failed", "cancelled", "rejected"] });
    let thread = [
        ("id", string()),
        ("agent_id", string()),
        ("channel_id", nullable_string()),
        ("environment_id", nullable_string()),
        (
            "kind",
            json!({ "type": "string", "enum": ["normal", "playground"] }),
        ),
        ("subject", nullable_string()),
        ("status", thread_status),
        ("created_at", time()),
        ("updated_at", time()),
    ];
    let mut detail = thread.to_vec();
    detail.extend([
        (
            "messages",
            json!({ "type": "array", "items": refer("Message") }),
        ),
        ("runs", json!({ "type": "array", "items": refer("Run") })),
        ("next_cursor", json!({ "type": ["integer", "null"] })),
    ]);
    json!({
        "Error": object(&[("error", object(&[("code", string()), ("message", string())]))]),
        "User": object(&[("id", string()), ("email", string()), ("name", string()), ("created_at", time())]),
        "Org": object(&[("id", string()), ("name", string()), ("slug", string()), ("role", role()), ("created_at", time())]),
        "Environment": object(&[("id", string()), ("slug", string()), ("name", string()), ("protected", boolean()), ("created_at", time())]),
        "Channel": object(&[("id", string()), ("slug", string()), ("name", string()), ("is_default", boolean()), ("created_at", time())]),
        "Member": object(&[("user_id", string()), ("email", string()), ("name", string()), ("role", string()), ("joined_at", time())]),
        "Invitation": object(&[("id", string()), ("email", string()), ("role", role()), ("created_at", time()), ("expires_at", time())]),
        "ApiKey": object(&[("id", string()), ("name", string()), ("role", role()), ("prefix", string()), ("created_at", time()), ("last_used_at", nullable_time())]),
        "Agent": object(&[
            ("id", string()), ("slug", string()), ("name", string()),
            ("description", nullable_string()), ("icon", nullable_string()),
            ("current_release", json!({ "type": ["object", "null"] })),
            ("created_at", time()), ("updated_at", time()), ("archived_at", nullable_time()),
        ]),
        "WorkingCopy": object(&[("config", any_object()), ("updated_at", time())]),
        // `config` only for builders and above.
        "Release": object_with(&[("id", string()), ("version", string()), ("notes", string()), ("created_at", time())], &[("config", any_object())]),
        "Thread": object(&thread),
        "ThreadDetail": object(&detail),
        "Message": object(&[
            ("id", integer()), ("run_id", nullable_string()),
            ("kind", string()), ("content", json!({})), ("created_at", time()),
        ]),
        "Run": object(&[
            ("id", string()), ("status", run_status), ("error", nullable_string()),
            ("parent_run_id", nullable_string()), ("release", json!({ "type": ["object", "null"] })),
            ("tokens_in", integer()), ("tokens_out", integer()), ("active_ms", integer()),
            ("steps", integer()), ("created_at", time()), ("finished_at", nullable_time()),
        ]),
        "Tool": object(&[
            ("id", string()), ("name", string()), ("version", string()),
            ("kind", json!({ "type": "string", "enum": ["javascript", "wit"] })),
            ("params", any_object()), ("created_at", time()), ("updated_at", time()),
        ]),
        "ToolTest": object(&[("ok", boolean()), ("logs", json!({ "type": "array", "items": string() })), ("duration_ms", json!({ "type": "number" })), ("version", string())]),
        "Approval": object(&[
            ("id", string()), ("thread_id", string()), ("run_id", string()), ("call_id", string()),
            ("tool", object(&[("name", string()), ("version", string())])),
            ("policy", string()), ("status", json!({ "type": "string", "enum": ["pending", "approved", "rejected", "timed_out", "cancelled"] })),
            ("params", json!({})), ("created_at", time()), ("expires_at", time()),
        ]),
        "Credential": object(&[
            ("provider", string()), ("api_key", nullable_string()), ("has_api_key", boolean()),
            ("base_url", nullable_string()), ("allowed_base_urls", json!({ "type": "array", "items": string() })),
            ("updated_at", time()),
        ]),
    })
}
