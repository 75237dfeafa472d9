//! `POST /llm/complete`: the model call with the org's credential, the
//! provider's answer streamed back unchanged (status, Retry-After, body).

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use spin_sdk::http::{
    Fields, IncomingResponse, Method, OutgoingResponse, Request, ResponseOutparam,
};
use synatra_agents::ModelConfig;
use synatra_llm::{key_variable, prepare, ChatRequest, LlmError, Message, ToolSpec};

use crate::{credentials, error, reply};

#[derive(Deserialize)]
struct Complete {
    org_id: String,
    environment_id: Option<String>,
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
    let (api_key, base_url) = match credentials::resolve(
        &call.org_id,
        call.environment_id.as_deref(),
        model.provider.as_str(),
        key_variable(model.provider),
    ) {
        Ok(r) => r,
        // A credential that cannot be opened will not open on retry either.
        Err(e) => return reply(out, 400, error("credential_unusable", e)).await,
    };
    if model.base_url.is_none() {
        model.base_url = base_url;
    }
    let request = ChatRequest {
        model: &model,
        messages: &call.messages,
        tools: &call.tools,
    };
    let prepared = match prepare(&request, api_key.as_deref()) {
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
    let response: IncomingResponse = match spin_sdk::http::send(outbound).await {
        Ok(r) => r,
        Err(e) => return reply(out, 502, error("provider_unreachable", e)).await,
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
