//! Model calls over outbound HTTP, streamed, through the wire adapters of
//! `synatra-llm`. Keys come from the `*_api_key` variables.

use futures::StreamExt;
use spin_sdk::http::{IncomingResponse, Method, Request};
use spin_sdk::variables;
use synatra_agents::{ModelConfig, Provider};
use synatra_llm::sse::SseParser;
use synatra_llm::{openai, ChatRequest, Completion, Delta, LlmError, Message, ToolSpec};

fn key(variable: &str) -> Option<String> {
    variables::get(variable)
        .ok()
        .filter(|k| !k.trim().is_empty())
}

/// Calls the model, passing streamed text to `on_text` as it arrives.
pub async fn complete(
    model: &ModelConfig,
    messages: &[Message],
    tools: &[ToolSpec],
    mut on_text: impl FnMut(&str),
) -> Result<Completion, LlmError> {
    let request = ChatRequest {
        model,
        messages,
        tools,
    };
    let (url, body, auth) = match model.provider {
        Provider::Openai | Provider::OpenaiCompatible => {
            let api_key = key("openai_api_key");
            if model.provider == Provider::Openai && model.base_url.is_none() && api_key.is_none() {
                return Err(LlmError::Rejected {
                    status: 401,
                    message: "no API key configured for openai (set OPENAI_API_KEY)".into(),
                });
            }
            (
                openai::url(model.base_url.as_deref()),
                openai::request_body(&request),
                api_key,
            )
        }
        other => {
            return Err(LlmError::Rejected {
                status: 501,
                message: format!("provider `{}` is not supported yet", other.as_str()),
            })
        }
    };
    let mut builder = Request::builder();
    builder
        .method(Method::Post)
        .uri(url)
        .header("content-type", "application/json")
        .header("accept", "text/event-stream");
    if let Some(k) = auth {
        builder.header("authorization", format!("Bearer {k}"));
    }
    let outbound = builder.body(body.to_string()).build();
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
    let mut stream = openai::Stream::default();
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
