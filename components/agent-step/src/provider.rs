//! Model calls, streamed. The request goes to the gateway component, which
//! adds the org's credential (this component never sees a key) and relays
//! the provider's answer; the wire formats live in `synatra-llm`.

use futures::StreamExt;
use serde_json::json;
use spin_sdk::http::{IncomingResponse, Method};
use synatra_agents::ModelConfig;
use synatra_llm::sse::SseParser;
use synatra_llm::{Completion, Delta, LlmError, Message, Stream, ToolSpec};

use synatra_names::services::GATEWAY_LLM as GATEWAY;

/// Whose credentials a call uses.
pub struct Caller<'a> {
    pub org_id: &'a str,
    pub environment_id: Option<&'a str>,
    /// The credential the claim loaded with the run, passed on unopened (the
    /// gateway checks its seal, and reads the row when it has none).
    pub credential: Option<&'a serde_json::Value>,
}

/// Calls the model, passing streamed text to `on_text` as it arrives.
pub async fn complete(
    caller: &Caller<'_>,
    model: &ModelConfig,
    messages: &[Message],
    tools: &[ToolSpec],
    mut on_text: impl FnMut(&str),
) -> Result<Completion, LlmError> {
    let body = json!({
        "org_id": caller.org_id,
        "environment_id": caller.environment_id,
        "credential": caller.credential,
        "model": model,
        "messages": messages,
        "tools": tools,
    });
    let outbound = synatra_internal::request(Method::Post, GATEWAY, body.to_string());
    let response: IncomingResponse = spin_sdk::http::send(outbound)
        .await
        .map_err(|e| LlmError::Unavailable(format!("request failed: {e}")))?;
    let status = response.status();
    if let Some(kind) = response
        .headers()
        .get(synatra_llm::UNREACHABLE_HEADER)
        .first()
    {
        let retryable = kind.as_slice() == b"retryable";
        let body = response.into_body().await.unwrap_or_default();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or("the provider could not be reached")
            .to_string();
        return Err(LlmError::Unreachable { retryable, message });
    }
    if !(200..300).contains(&status) {
        let retry_after = response
            .headers()
            .get("retry-after")
            .first()
            .map(|v| String::from_utf8_lossy(v).to_string());
        let body = response.into_body().await.unwrap_or_default();
        return Err(LlmError::from_status(
            status,
            retry_after.as_deref(),
            &String::from_utf8_lossy(&body),
        ));
    }
    let mut sse = SseParser::default();
    let mut stream = Stream::new(model.provider);
    let mut chunks = response.take_body_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| LlmError::Truncated(format!("connection dropped: {e:?}")))?;
        for data in sse.feed(&chunk) {
            for delta in stream.feed(&data)? {
                let Delta::Text(t) = delta;
                on_text(&t);
            }
        }
    }
    stream.finish()
}
