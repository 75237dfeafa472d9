//! Model calls over outbound HTTP, streamed; the wire formats live in
//! `synatra-llm`. Keys come from the `*_api_key` variables.

use futures::StreamExt;
use spin_sdk::http::{IncomingResponse, Method, Request};
use spin_sdk::variables;
use synatra_agents::ModelConfig;
use synatra_llm::sse::SseParser;
use synatra_llm::{
    key_variable, prepare, ChatRequest, Completion, Delta, LlmError, Message, Stream, ToolSpec,
};

/// Calls the model, passing streamed text to `on_text` as it arrives.
pub async fn complete(
    model: &ModelConfig,
    messages: &[Message],
    tools: &[ToolSpec],
    mut on_text: impl FnMut(&str),
) -> Result<Completion, LlmError> {
    let api_key = variables::get(key_variable(model.provider))
        .ok()
        .filter(|k| !k.trim().is_empty());
    let call = prepare(
        &ChatRequest {
            model,
            messages,
            tools,
        },
        api_key.as_deref(),
    )?;
    let mut builder = Request::builder();
    builder.method(Method::Post).uri(call.url);
    for (name, value) in call.headers {
        builder.header(name, value);
    }
    let outbound = builder.body(call.body.to_string()).build();
    let response: IncomingResponse = spin_sdk::http::send(outbound)
        .await
        .map_err(|e| LlmError::Unavailable(format!("request failed: {e}")))?;
    let status = response.status();
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
