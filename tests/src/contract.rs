//! Answers checked against the server's own OpenAPI document: the status
//! must be documented for the route, a JSON body must validate against the
//! documented schema, and an error must carry a documented code.

use serde_json::Value;
use synatra_authz::{RouteSpec, ROUTES};

use crate::{schema, Reply};

/// The document, fetched from a running server.
pub struct Contract {
    doc: Value,
}

/// `schema` with every `$ref` replaced by the named schema of `doc`.
fn inline(schema: &Value, doc: &Value) -> Value {
    match schema {
        Value::Object(map) => match map.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r
                    .strip_prefix("#/components/schemas/")
                    .expect("a local $ref");
                inline(&doc["components"]["schemas"][name], doc)
            }
            None => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), inline(v, doc)))
                    .collect(),
            ),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| inline(v, doc)).collect()),
        other => other.clone(),
    }
}

/// The route of a concrete `/api/v1/...` path (query ignored).
pub fn route_of(method: &str, path: &str) -> Option<&'static RouteSpec> {
    let path = path.split('?').next().unwrap_or(path);
    let sub = path.strip_prefix("/api/v1").unwrap_or(path);
    let concrete: Vec<&str> = sub.split('/').collect();
    ROUTES.iter().find(|r| {
        let pattern: Vec<&str> = r.path.split('/').collect();
        r.method == method
            && pattern.len() == concrete.len()
            && pattern
                .iter()
                .zip(&concrete)
                .all(|(p, c)| p.starts_with(':') || p == c)
    })
}

impl Contract {
    /// The document of `base`, if it serves one.
    fn fetch(base: &str) -> Option<Self> {
        let response = match ureq::get(&format!("{base}/api/v1/openapi.json")).call() {
            Ok(r) => r,
            Err(ureq::Error::Status(..)) => return None,
            Err(e) => panic!("the OpenAPI document of {base}: {e}"),
        };
        let doc = response.into_json().expect("the OpenAPI document is JSON");
        Some(Self { doc })
    }

    /// Every way `reply` on `route` departs from the document.
    fn check(&self, route: &RouteSpec, reply: &Reply) -> Vec<String> {
        let api_path = synatra_openapi::openapi_path(route.path);
        let op = &self.doc["paths"][&api_path][route.method.to_ascii_lowercase()];
        let response = &op["responses"][reply.status.to_string()];
        let at = format!("{} {api_path} {}", route.method, reply.status);
        if response.is_null() {
            return vec![format!("{at}: status not documented ({})", reply.body)];
        }
        let mut problems = Vec::new();
        let schema = &response["content"]["application/json"]["schema"];
        if reply.status != 204 && !schema.is_null() {
            let schema = inline(schema, &self.doc);
            for e in schema::validate(&schema, &reply.body) {
                problems.push(format!("{at}: {e}"));
            }
        }
        // An error carries a documented code (a documented non-error body
        // for the status, such as a degraded health report, has none).
        if reply.status >= 400 && reply.body.get("error").is_some() {
            let text = response["description"].as_str().unwrap_or_default();
            let code = reply.body["error"]["code"].as_str().unwrap_or("?");
            if !text.split([' ', ',']).any(|c| c == code) {
                problems.push(format!("{at}: code `{code}` is not in `{text}`"));
            }
        }
        problems
    }
}

/// Every answer a test client gets from `/api/v1` is checked here against
/// the document of the server that gave it (fetched once per server): the
/// end-to-end suites keep the document honest, errors included. Answers to
/// paths that are no route (404/405) and servers without the document (test
/// apps other than Synatra's) are left out.
pub fn check_answer(base: &str, method: &str, path: &str, reply: &Reply) {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static CONTRACTS: OnceLock<Mutex<HashMap<String, Option<Arc<Contract>>>>> = OnceLock::new();
    if !path.starts_with("/api/v1/") {
        return;
    }
    let Some(route) = route_of(method, path) else {
        return;
    };
    let contract = {
        let mut all = CONTRACTS.get_or_init(Default::default).lock().unwrap();
        all.entry(base.to_string())
            .or_insert_with(|| Contract::fetch(base).map(Arc::new))
            .clone()
    };
    let Some(contract) = contract else { return };
    let problems = contract.check(route, reply);
    assert!(
        problems.is_empty(),
        "the answer departs from the OpenAPI document:\n{}",
        problems.join("\n")
    );
}
