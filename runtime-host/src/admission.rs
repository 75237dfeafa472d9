//! Admission before instantiation: what a request from the network must
//! pass before any component instance starts for it. Its body is read by
//! the host, within the component's size limit (a larger declared length
//! is refused unread) and at a minimum rate; then it waits briefly for one
//! of the component's concurrency slots. Slow or huge bodies thus hold a
//! connection, never an instance, and one component's load never takes
//! another's slots.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::manifest::ComponentLimits;

/// Time a body may take before the rate applies.
const BODY_GRACE: Duration = Duration::from_secs(5);
/// Slowest body accepted after the grace: bytes per second.
const MIN_BODY_RATE: u64 = 16 * 1024;
/// How long a request waits for a concurrency slot before 503.
const SLOT_WAIT: Duration = Duration::from_secs(5);

/// Why a request was not admitted: the status, the stable code and message.
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// A component's concurrency slots for requests from the network.
pub struct Slots(std::sync::Arc<Semaphore>);

impl Slots {
    /// `limits.max_concurrency` slots.
    pub fn new(limits: &ComponentLimits) -> Self {
        Self(std::sync::Arc::new(Semaphore::new(limits.max_concurrency)))
    }

    /// A slot, waiting up to [`SLOT_WAIT`]; held until the response ends.
    pub async fn take(&self, component: &str) -> Result<OwnedSemaphorePermit, Refusal> {
        match tokio::time::timeout(SLOT_WAIT, self.0.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Refusal {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "component_busy",
                message: format!(
                    "component `{component}` is at its concurrency limit; retry shortly"
                ),
            }),
        }
    }
}

/// Reads the whole body of `request` within `limits`.
pub async fn read_body(
    request: Request<Incoming>,
    limits: &ComponentLimits,
) -> Result<Request<Full<Bytes>>, Refusal> {
    let max = limits.max_body_bytes;
    let too_large = || Refusal {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "payload_too_large",
        message: format!("request body exceeds {max} bytes"),
    };
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    // The rate applies to what is declared, or to the limit.
    let expected = declared.unwrap_or(max);
    let deadline = BODY_GRACE + Duration::from_secs(expected / MIN_BODY_RATE);
    let (parts, body) = request.into_parts();
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    match tokio::time::timeout(deadline, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok(Request::from_parts(parts, Full::new(collected.to_bytes()))),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: format!("the request body could not be read: {e}"),
        }),
        Err(_) => Err(Refusal {
            status: StatusCode::REQUEST_TIMEOUT,
            code: "body_timeout",
            message: format!(
                "the request body arrived too slowly (at least {} KiB/s after {} s)",
                MIN_BODY_RATE / 1024,
                BODY_GRACE.as_secs()
            ),
        }),
    }
}
