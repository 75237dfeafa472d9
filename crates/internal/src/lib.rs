//! Calls between components of this app. Private routes are unreachable from
//! outside, and additionally require `SERVICE_SECRET` in [`SECRET_HEADER`],
//! so a component granted `*.spin.internal` by mistake still cannot call them.

use spin_sdk::http::{Method, Request, Response};
use spin_sdk::variables;

use serde_json::json;
use synatra_names::headers;
use synatra_names::services::{TOOL_JS_RUN as TOOL_JS, WIT_TOOLS_RUN as WIT_TOOLS};
use synatra_tools::sandbox::ToolAnswer;

/// Header carrying `SERVICE_SECRET` on internal calls.
pub use synatra_names::headers::SERVICE_SECRET as SECRET_HEADER;

/// The component's variable `name` parsed as a `T`; None when it is unset
/// or does not parse (callers fall back to their default).
pub fn setting<T: std::str::FromStr>(name: &str) -> Option<T> {
    variables::get(name).ok()?.parse().ok()
}

/// The secret to send (from the component's `service_secret` variable).
pub fn service_secret() -> Option<String> {
    variables::get(synatra_names::variables::SERVICE_SECRET)
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

pub use synatra_secrets::secrets_match;

/// A JSON response.
pub fn json_response(status: u16, body: &serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string())
        .build()
}

/// A JSON error: `{"error": {"code", "message"}}`.
pub fn error_response(status: u16, code: &str, message: impl std::fmt::Display) -> Response {
    let body = json!({ "error": { "code": code, "message": message.to_string() } });
    json_response(status, &body)
}

/// Serves a private route: a caller without the service secret gets 401,
/// anyone else `handle(req)`.
pub async fn serve_private<F, Fut>(req: Request, handle: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    if !is_authorized(&req) {
        return error_response(401, "unauthenticated", "internal route");
    }
    handle(req).await
}

/// The application database, or the 503 to answer when it is unreachable.
pub fn database() -> Result<synatra_db::Db, Response> {
    synatra_db::Db::open().map_err(|e| error_response(503, "database_unavailable", e))
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

/// Where a tool's code lives.
pub enum ToolCode<'a> {
    /// The body of `async function (params, context)`, run by tool-js.
    JavaScript(&'a str),
    /// An org's WIT tool component, run by the host's `wasm-tools` service.
    Component { org_id: &'a str, sha256: &'a str },
}

impl<'a> ToolCode<'a> {
    /// A component when the tool has one, else its JavaScript.
    pub fn of(org_id: &'a str, code: Option<&'a str>, component_sha256: Option<&'a str>) -> Self {
        match component_sha256 {
            Some(sha256) => ToolCode::Component { org_id, sha256 },
            None => ToolCode::JavaScript(code.unwrap_or_default()),
        }
    }
}

/// Runs a tool once in its sandbox within `timeout_ms`. The sandbox's own
/// failures (time or memory limit, crash) are `ok: false` with a plain
/// message, so a tool's failure is always data; `Err` only when the sandbox
/// is unreachable.
pub async fn run_tool(
    code: ToolCode<'_>,
    params: &serde_json::Value,
    timeout_ms: u64,
    idempotency_key: Option<&str>,
) -> Result<ToolAnswer, String> {
    let (uri, body) = match code {
        ToolCode::JavaScript(code) => (TOOL_JS, json!({ "code": code, "params": params })),
        ToolCode::Component { org_id, sha256 } => (
            WIT_TOOLS,
            json!({ "org_id": org_id, "sha256": sha256, "params": params, "timeout_ms": timeout_ms }),
        ),
    };
    let mut request = self::request(Method::Post, uri, body.to_string());
    request.set_header(headers::DEADLINE_MS, timeout_ms.to_string());
    if let Some(key) = idempotency_key {
        request.set_header(headers::IDEMPOTENCY_KEY, key);
    }
    let response: spin_sdk::http::IncomingResponse = spin_sdk::http::send(request)
        .await
        .map_err(|e| format!("the tool sandbox is unreachable: {e}"))?;
    let status = response.status();
    let bytes = response.into_body().await.unwrap_or_default();
    if status == 200 {
        if let Ok(answer) = serde_json::from_slice::<ToolAnswer>(&bytes) {
            return Ok(answer);
        }
    }
    let error: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let message = match error["error"]["code"].as_str() {
        Some("component_timeout") => format!("the tool exceeded its time limit ({timeout_ms} ms)"),
        Some("component_memory_limit") => "the tool exceeded its memory limit".to_string(),
        _ => "the tool crashed".to_string(),
    };
    Ok(ToolAnswer::failure(&message, Vec::new()))
}
