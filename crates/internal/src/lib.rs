//! Calls between components of this app. Private routes are unreachable from
//! outside, and additionally require `SERVICE_SECRET` in [`SECRET_HEADER`],
//! so a component granted `*.spin.internal` by mistake still cannot call them.

use spin_sdk::http::{Method, Request};
use spin_sdk::variables;

/// Header carrying `SERVICE_SECRET` on internal calls.
pub const SECRET_HEADER: &str = "x-synatra-service-secret";

/// The secret to send (from the component's `service_secret` variable).
pub fn service_secret() -> Option<String> {
    variables::get("service_secret")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Whether `req` carries this app's service secret (compared without
/// leaking where they differ).
pub fn is_authorized(req: &Request) -> bool {
    let given = req.header(SECRET_HEADER).map(|v| v.as_bytes());
    match (service_secret(), given) {
        (Some(expected), Some(given)) => secrets_match(expected.as_bytes(), given),
        _ => false,
    }
}

/// Whether two secrets are equal, compared without leaking where they differ.
pub fn secrets_match(expected: &[u8], given: &[u8]) -> bool {
    expected.len() == given.len()
        && expected
            .iter()
            .zip(given)
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A JSON request to another component's private route, with the secret.
pub fn request(method: Method, uri: &str, body: String) -> Request {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .header(SECRET_HEADER, service_secret().unwrap_or_default())
        .body(body)
        .build()
}

/// The JavaScript sandbox's route.
const TOOL_JS: &str = "http://tool-js.spin.internal/run";
/// The host's WIT tool runner (served by `synatra up`, not a manifest component).
const WIT_TOOLS: &str = "http://wasm-tools.spin.internal/run";

/// Runs a JavaScript tool once in the tool-js sandbox within `timeout_ms`.
/// See [`run_sandboxed`] for the answer.
pub async fn run_javascript(
    code: &str,
    params: &serde_json::Value,
    timeout_ms: u64,
    idempotency_key: Option<&str>,
) -> Result<serde_json::Value, String> {
    let body = serde_json::json!({ "code": code, "params": params });
    run_sandboxed(TOOL_JS, body, timeout_ms, idempotency_key).await
}

/// Runs the org's WIT tool component `sha256` once within `timeout_ms`.
/// See [`run_sandboxed`] for the answer.
pub async fn run_component(
    org_id: &str,
    sha256: &str,
    params: &serde_json::Value,
    timeout_ms: u64,
    idempotency_key: Option<&str>,
) -> Result<serde_json::Value, String> {
    let body = serde_json::json!({
        "org_id": org_id, "sha256": sha256, "params": params, "timeout_ms": timeout_ms,
    });
    run_sandboxed(WIT_TOOLS, body, timeout_ms, idempotency_key).await
}

/// Sends one tool call to a sandbox. The answer is `{ok, result | error,
/// logs}`; the sandbox's own failures (time or memory limit, crash) are
/// `ok: false` with a plain message, so a tool's failure is always data.
/// `Err` only when the sandbox is unreachable.
async fn run_sandboxed(
    uri: &str,
    body: serde_json::Value,
    timeout_ms: u64,
    idempotency_key: Option<&str>,
) -> Result<serde_json::Value, String> {
    let mut request = self::request(Method::Post, uri, body.to_string());
    request.set_header("x-synatra-deadline-ms", timeout_ms.to_string());
    if let Some(key) = idempotency_key {
        request.set_header("idempotency-key", key);
    }
    let response: spin_sdk::http::IncomingResponse = spin_sdk::http::send(request)
        .await
        .map_err(|e| format!("the tool sandbox is unreachable: {e}"))?;
    let status = response.status();
    let bytes = response.into_body().await.unwrap_or_default();
    let answer: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    Ok(match (status, answer["error"]["code"].as_str()) {
        (200, _) => answer,
        (_, Some("component_timeout")) => serde_json::json!({
            "ok": false,
            "error": format!("the tool exceeded its time limit ({timeout_ms} ms)"),
        }),
        (_, Some("component_memory_limit")) => {
            serde_json::json!({ "ok": false, "error": "the tool exceeded its memory limit" })
        }
        _ => serde_json::json!({ "ok": false, "error": "the tool crashed" }),
    })
}
