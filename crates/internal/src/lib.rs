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
        (Some(expected), Some(given)) => {
            let expected = expected.as_bytes();
            expected.len() == given.len()
                && expected
                    .iter()
                    .zip(given)
                    .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                    == 0
        }
        _ => false,
    }
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
