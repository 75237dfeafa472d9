//! The gateway component (private route): the only component that receives
//! `ENCRYPTION_KEY`. It seals credentials on their way into the database and
//! opens them only to make an authenticated call on the caller's behalf, so
//! no other component ever sees a plaintext key.
//!
//! - `PUT /llm-credentials`: seal and store a provider credential.
//! - `POST /llm/complete`: call the model provider with the org's
//!   credential for the environment (or the fallback key variable) and
//!   stream the provider's answer back unchanged.

mod credentials;
mod llm;

use serde_json::{json, Value};
use spin_sdk::http::conversions::TryFromIncomingRequest;
use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, Request, ResponseOutparam};
use spin_sdk::http_component;

/// Sends a JSON response.
pub(crate) async fn reply(out: ResponseOutparam, status: u16, body: Value) {
    let headers = Fields::from_list(&[("content-type".to_string(), b"application/json".to_vec())])
        .expect("valid headers");
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let _ = out
        .set_with_body(response, body.to_string().into_bytes())
        .await;
}

/// A JSON error body.
pub(crate) fn error(code: &str, message: impl std::fmt::Display) -> Value {
    json!({ "error": { "code": code, "message": message.to_string() } })
}

#[http_component]
async fn handle(incoming: IncomingRequest, out: ResponseOutparam) {
    let req = match Request::try_from_incoming_request(incoming).await {
        Ok(r) => r,
        Err(e) => return reply(out, 400, error("bad_request", e)).await,
    };
    if !synatra_internal::is_authorized(&req) {
        return reply(out, 401, error("unauthenticated", "internal route")).await;
    }
    let method = req.method().to_string();
    match (method.as_str(), req.path()) {
        ("PUT", "/llm-credentials") => {
            let (status, body) = credentials::put(req.body());
            reply(out, status, body).await
        }
        ("POST", "/llm/complete") => llm::complete(req.body(), out).await,
        _ => reply(out, 404, error("not_found", "no such gateway operation")).await,
    }
}
