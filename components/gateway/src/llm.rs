//! `POST /llm/complete`: the model call with the org's credential, the
//! provider's answer streamed back unchanged (status, Retry-After, body).

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use spin_sdk::http::conversions::TryIntoOutgoingRequest;
use spin_sdk::http::{
    ErrorCode, Fields, IncomingResponse, Method, OutgoingRequest, OutgoingResponse, Request,
    ResponseOutparam,
};
use synatra_agents::ModelConfig;
use synatra_db::credentials::Travelling;
use synatra_llm::{
    key_variable, prepare, ChatRequest, LlmError, Message, ToolSpec, UNREACHABLE_HEADER,
};

use crate::credentials::{self, Refused};
use crate::{error, reply};

#[derive(Deserialize)]
struct Complete {
    org_id: String,
    environment_id: Option<String>,
    /// The credential the run's claim loaded (`credentials::Travelling`);
    /// read as a value so that a malformed one is only not used.
    #[serde(default)]
    credential: Option<serde_json::Value>,
    model: ModelConfig,
    messages: Vec<Message>,
    tools: Vec<ToolSpec>,
}

/// Calls the provider and relays its answer.
pub async fn complete(body: &[u8], out: ResponseOutparam) {
    let call: Complete = match serde_json::from_slice(body) {
        Ok(c) => c,
        Err(e) => return reply(out, 400, error("invalid_json", e)).await,
    };
    let mut model = call.model;
    let travelling = call
        .credential
        .and_then(|c| serde_json::from_value::<Travelling>(c).ok());
    let target = match credentials::target(
        &call.org_id,
        call.environment_id.as_deref(),
        travelling.as_ref(),
        model.provider.as_str(),
        model.base_url.as_deref(),
        key_variable(model.provider),
    ) {
        Ok(t) => t,
        // A credential that cannot be opened will not open on retry either.
        Err(Refused::Unusable(e)) => return reply(out, 400, error("credential_unusable", e)).await,
        Err(Refused::UrlNotAllowed(e)) => {
            return failure_reply(out, false, "model_url_not_allowed", &e).await
        }
    };
    model.base_url = target.base_url;
    let request = ChatRequest {
        model: &model,
        messages: &call.messages,
        tools: &call.tools,
    };
    let prepared = match prepare(&request, target.api_key.as_deref()) {
        Ok(p) => p,
        Err(LlmError::Rejected { status, message }) => {
            return reply(out, status, error("provider_not_configured", message)).await
        }
        Err(e) => return reply(out, 500, error("internal", e)).await,
    };
    let mut builder = Request::builder();
    builder.method(Method::Post).uri(prepared.url);
    for (name, value) in prepared.headers {
        builder.header(name, value);
    }
    let outbound = builder.body(prepared.body.to_string()).build();
    let host = authority(outbound.uri()).to_string();
    let response = match send(outbound).await {
        Ok(r) => r,
        Err(code) => {
            let (retryable, message) = unreachable(&host, &code);
            return failure_reply(out, retryable, "provider_unreachable", &message).await;
        }
    };
    let mut headers = Vec::new();
    for name in ["content-type", "retry-after"] {
        if let Some(v) = response.headers().get(name).into_iter().next() {
            headers.push((name.to_string(), v));
        }
    }
    let relay = OutgoingResponse::new(Fields::from_list(&headers).expect("valid headers"));
    let _ = relay.set_status_code(response.status());
    let mut sink = relay.take_body();
    out.set(relay);
    let mut chunks = response.take_body_stream();
    while let Some(chunk) = chunks.next().await {
        match chunk {
            Ok(bytes) => {
                if sink.send(bytes).await.is_err() {
                    return;
                }
            }
            // The caller sees a cut stream and treats it as truncated.
            Err(_) => return,
        }
    }
}

/// Sends `request`; the transport's own error code when it fails (the
/// body is written alongside, so a refused request reports why rather than
/// a closed body stream).
async fn send(request: Request) -> Result<IncomingResponse, ErrorCode> {
    let (outgoing, body) = match request.try_into_outgoing_request() {
        Ok(r) => r,
        Err(e) => return Err(ErrorCode::InternalError(Some(e.to_string()))),
    };
    let mut sink = outgoing.take_body();
    let write = async move {
        if let Some(body) = body {
            // A failed write shows up as the response's error.
            let _ = sink.send(body).await;
        }
        drop(sink);
    };
    let response = spin_sdk::http::send::<OutgoingRequest, IncomingResponse>(outgoing);
    let ((), response) = futures::join!(write, response);
    response.map_err(|e| match e {
        spin_sdk::http::SendError::Http(code) => code,
        other => ErrorCode::InternalError(Some(other.to_string())),
    })
}

/// The `host[:port]` of `url`.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

/// Whether a failure to reach `host` may pass on retry, and what to tell
/// the user (what happened and the setting or check that fixes it).
fn unreachable(host: &str, code: &ErrorCode) -> (bool, String) {
    match code {
        ErrorCode::HttpRequestDenied => {
            let local = spin_sdk::variables::get("local_llm_host").unwrap_or_default();
            (false, format!(
                "the gateway may not connect to {host}: a local OpenAI-compatible server must match LOCAL_LLM_HOST (now `{local}`; `127.0.0.1:*` allows any local port); other hosts must be added to the gateway's allowed_outbound_hosts in spin.toml"
            ))
        }
        ErrorCode::DnsError(_) | ErrorCode::DestinationNotFound => (
            false,
            format!("cannot resolve {host}: check the base URL's host name"),
        ),
        ErrorCode::TlsProtocolError
        | ErrorCode::TlsCertificateError
        | ErrorCode::TlsAlertReceived(_) => (
            false,
            format!(
                "TLS with {host} failed ({code:?}): check that the URL's scheme (https or http) matches the server, and its certificate"
            ),
        ),
        ErrorCode::ConnectionRefused => (
            true,
            format!("connection to {host} refused: is the server running and listening there?"),
        ),
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout => {
            (true, format!("{host} did not answer in time"))
        }
        ErrorCode::DestinationUnavailable => (true, format!("{host} is unreachable")),
        ErrorCode::ConnectionTerminated => (
            true,
            format!("{host} closed the connection before it answered"),
        ),
        other => (true, format!("calling {host} failed: {other:?}")),
    }
}

/// 502 (may pass on retry) or 424 (will not), marked as the gateway's own
/// refusal or failure to reach the provider.
async fn failure_reply(out: ResponseOutparam, retryable: bool, code: &str, message: &str) {
    let headers = Fields::from_list(&[
        ("content-type".to_string(), b"application/json".to_vec()),
        (
            UNREACHABLE_HEADER.to_string(),
            if retryable { "retryable" } else { "final" }.into(),
        ),
    ])
    .expect("valid headers");
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(if retryable { 502 } else { 424 });
    let body = error(code, message).to_string();
    let _ = out.set_with_body(response, body.into_bytes()).await;
}
