//! The OpenAPI 3.1 document of the REST API, generated from the route table
//! ([`synatra_authz::ROUTES`]: method, path, access) and each route's
//! description ([`ops::describe`]), and a readable HTML page of it. The API
//! serves both (`/api/v1/openapi.json`, `/api/v1/docs`).

mod ops;
mod schemas;

use serde_json::{json, Map, Value};
use synatra_authz::{Access, RouteSpec, ROUTES};

pub use ops::{describe, Op};

/// `/orgs/:org/agents/:agent` → `/orgs/{org}/agents/{agent}`.
pub fn openapi_path(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg.strip_prefix(':') {
            Some(name) => format!("{{{name}}}"),
            None => seg.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Who may call a route, in words (also `x-synatra-access`).
pub fn access_text(access: Access) -> String {
    match access {
        Access::Public => "anyone".into(),
        Access::Authenticated => "signed in (session or API key)".into(),
        Access::Org(role) => format!("org {role} or above"),
        Access::Operator => "the operator (TICK_SECRET)".into(),
    }
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
    })
}

/// The error responses of a route: its own codes and the common ones.
fn errors(spec: &RouteSpec, op: &Op) -> Map<String, Value> {
    let mut by_status: Vec<(u16, Vec<&str>)> = Vec::new();
    let mut add =
        |status: u16, code: &'static str| match by_status.iter_mut().find(|(s, _)| *s == status) {
            Some((_, codes)) => codes.push(code),
            None => by_status.push((status, vec![code])),
        };
    if op.request.is_some() || spec.path.contains(':') || spec.method == "GET" {
        add(400, "validation_failed");
    }
    if op.request.is_some() {
        add(400, "bad_request");
        add(400, "invalid_json");
        add(413, "payload_too_large");
        add(415, "unsupported_media_type");
    }
    match spec.access {
        Access::Public => {}
        Access::Operator => add(401, "unauthenticated"),
        Access::Authenticated => add(401, "unauthenticated"),
        Access::Org(_) => {
            add(401, "unauthenticated");
            add(403, "forbidden");
            add(404, "not_found");
        }
    }
    if spec.method != "GET" && !matches!(spec.access, Access::Public | Access::Operator) {
        add(403, "origin_not_allowed");
    }
    for (status, code) in op.errors {
        add(*status, code);
    }
    // Another method on the same path; a write that meets a concurrent one.
    add(405, "method_not_allowed");
    if spec.method != "GET" {
        add(409, "conflict");
    }
    // What the host answers for any route before or instead of the API:
    // admission (a slow body, no free instance) and a failed instance.
    if op.request.is_some() {
        add(408, "body_timeout");
    }
    add(500, "internal");
    add(500, "component_failed");
    add(500, "component_memory_limit");
    add(503, "database_unavailable");
    add(503, "component_busy");
    add(504, "component_timeout");
    by_status.sort_by_key(|(s, _)| *s);
    by_status
        .into_iter()
        .map(|(status, codes)| {
            let text = format!("error codes: {}", codes.join(", "));
            (status.to_string(), error_response(&text))
        })
        .collect()
}

fn operation(spec: &RouteSpec) -> Value {
    let op = describe(spec.id);
    let params: Vec<Value> = spec
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix(':'))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    let mut responses = errors(spec, &op);
    let success = match (&op.response, spec.id) {
        (_, synatra_authz::RouteId::ThreadEvents) => json!({
            "description": "the event stream",
            "content": { "text/event-stream": { "schema": { "type": "string" } } },
        }),
        (_, synatra_authz::RouteId::ApiReference) => json!({
            "description": "the reference page",
            "content": { "text/html": { "schema": { "type": "string" } } },
        }),
        (Some(schema), _) => json!({
            "description": op.summary,
            "content": { "application/json": { "schema": schema } },
        }),
        (None, _) => json!({ "description": op.summary }),
    };
    responses.insert(op.status.to_string(), success);
    for (status, meaning, body) in &op.also {
        // A status the host may also answer with an error keeps both shapes.
        let answer = match responses.get(&status.to_string()) {
            Some(error) => json!({
                "description": format!("{meaning}; or {}", error["description"].as_str().unwrap_or_default()),
                "content": { "application/json": { "schema": { "oneOf": [
                    body,
                    error["content"]["application/json"]["schema"],
                ] } } },
            }),
            None => {
                json!({ "description": meaning, "content": { "application/json": { "schema": body } } })
            }
        };
        responses.insert(status.to_string(), answer);
    }
    let mut value = json!({
        "operationId": format!("{:?}", spec.id),
        "summary": op.summary,
        "parameters": params,
        "responses": responses,
        "x-synatra-access": access_text(spec.access),
        "security": match spec.access {
            Access::Public => json!([]),
            Access::Operator => json!([{ "tickSecret": [] }]),
            _ => json!([{ "session": [] }, { "apiKey": [] }]),
        },
    });
    if let Some(request) = op.request {
        value["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": request } },
        });
    }
    if spec.id == synatra_authz::RouteId::PutToolComponent {
        value["requestBody"] = json!({
            "required": true,
            "content": { "application/wasm": { "schema": { "type": "string", "format": "binary" } } },
        });
    }
    value
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for spec in ROUTES {
        let entry = paths
            .entry(openapi_path(spec.path))
            .or_insert_with(|| json!({}));
        entry[spec.method.to_ascii_lowercase()] = operation(spec);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Synatra API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "AI agents with durable runs, tools, approvals and provider credentials. Single resources are returned as the object itself, lists as {<plural>: [...]} (paged ones with next_cursor), errors as {error: {code, message, details?}}.",
        },
        "servers": [{ "url": "/api/v1" }],
        "paths": paths,
        "components": {
            "schemas": schemas::all(),
            "securitySchemes": {
                "session": { "type": "apiKey", "in": "cookie", "name": "synatra_session",
                             "description": "Set by signup and login; writes must send an Origin listed in APP_ORIGINS." },
                "apiKey": { "type": "http", "scheme": "bearer",
                            "description": "An org API key (`POST /orgs/{org}/api-keys`), as Authorization: Bearer." },
                "tickSecret": { "type": "http", "scheme": "bearer", "description": "The operator's TICK_SECRET." },
            },
        },
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A readable page of `doc`: every route with who may call it, its body,
/// its success answer and its error codes.
pub fn html(doc: &Value) -> String {
    let mut out = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Synatra API reference</title>\
         <style>body{font:15px/1.5 system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}\
         code,pre{font:13px ui-monospace,monospace}pre{background:#f5f5f5;padding:.5rem;overflow:auto}\
         h2{border-top:1px solid #ddd;padding-top:1rem}.m{font-weight:bold;margin-right:.5rem}</style></head><body>\
         <h1>Synatra API reference</h1><p>Base path <code>/api/v1</code>; the machine-readable document is \
         <a href=\"openapi.json\">openapi.json</a> (OpenAPI 3.1).</p>",
    );
    out.push_str(&format!(
        "<p>{}</p>",
        escape(doc["info"]["description"].as_str().unwrap_or_default())
    ));
    let schemas = &doc["components"]["schemas"];
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            out.push_str(&format!(
                "<h2><span class=\"m\">{}</span><code>{}</code></h2><p>{}</p><p>Who: {}</p>",
                method.to_uppercase(),
                escape(path),
                escape(op["summary"].as_str().unwrap_or_default()),
                escape(op["x-synatra-access"].as_str().unwrap_or_default()),
            ));
            if let Some(body) = op["requestBody"]["content"].as_object() {
                for (media, content) in body {
                    out.push_str(&format!(
                        "<p>Body ({}):</p><pre>{}</pre>",
                        escape(media),
                        escape(&pretty(&content["schema"], schemas))
                    ));
                }
            }
            for (status, response) in op["responses"].as_object().into_iter().flatten() {
                let schema = &response["content"]["application/json"]["schema"];
                let shown = if status.starts_with('2') && !schema.is_null() {
                    format!("<pre>{}</pre>", escape(&pretty(schema, schemas)))
                } else {
                    String::new()
                };
                out.push_str(&format!(
                    "<p><b>{status}</b> {}</p>{shown}",
                    escape(response["description"].as_str().unwrap_or_default())
                ));
            }
        }
    }
    out.push_str("</body></html>");
    out
}

/// A schema as indented JSON, its first-level `$ref` resolved.
fn pretty(schema: &Value, schemas: &Value) -> String {
    let resolved = schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
        .map_or(schema, |name| &schemas[name]);
    serde_json::to_string_pretty(resolved).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_document_with_its_access() {
        let doc = document();
        for spec in ROUTES {
            let op = &doc["paths"][openapi_path(spec.path)][spec.method.to_ascii_lowercase()];
            assert_eq!(op["x-synatra-access"], access_text(spec.access), "{spec:?}");
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
        }
    }

    #[test]
    fn every_reference_names_a_schema() {
        let doc = document();
        let text = doc.to_string();
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(doc["components"]["schemas"].get(name).is_some(), "{name}");
        }
    }

    #[test]
    fn paths_use_openapi_parameters() {
        assert_eq!(
            openapi_path("/orgs/:org/agents/:agent"),
            "/orgs/{org}/agents/{agent}"
        );
    }
}
