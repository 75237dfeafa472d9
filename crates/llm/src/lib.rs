//! Provider-neutral chat types and the wire adapters that turn them into
//! provider requests and parse provider responses (streamed or not). No I/O
//! here: the agent-step component sends the bytes.

pub mod anthropic;
pub mod google;
pub mod openai;
pub mod sse;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use synatra_agents::Provider;

/// One tool call requested by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: Value,
}

/// A conversation message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    System {
        text: String,
    },
    User {
        text: String,
    },
    Assistant {
        text: String,
        tool_calls: Vec<ToolCall>,
    },
    Tool {
        call_id: String,
        name: String,
        content: String,
    },
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: Value,
}

/// Token counts reported by the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// A complete model turn.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    pub finish_reason: String,
}

/// A piece of a streamed turn worth showing as it arrives.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    Text(String),
}

/// What the model is asked.
#[derive(Debug, Clone)]
pub struct ChatRequest<'a> {
    pub model: &'a synatra_agents::ModelConfig,
    pub messages: &'a [Message],
    pub tools: &'a [ToolSpec],
}

/// Why a model call failed, and whether to try again.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmError {
    /// Rate limited (429); wait at least this long if the provider said so.
    RateLimited {
        retry_after_secs: Option<u64>,
        message: String,
    },
    /// 5xx, timeouts, dropped connections: retry with backoff.
    Unavailable(String),
    /// The response ended early (no terminal event): retry.
    Truncated(String),
    /// The response could not be understood: retry, it may be transient.
    Malformed(String),
    /// 4xx other than 429: retrying will not help.
    Rejected { status: u16, message: String },
    /// The provider could not be reached (the gateway says why); retried
    /// only when it may pass (a refused, reset or timed-out connection).
    Unreachable { retryable: bool, message: String },
}

/// How the gateway marks its own answers about reaching a provider (as
/// opposed to the provider's): the header's value is `retryable` or `final`.
pub const UNREACHABLE_HEADER: &str = "synatra-provider-unreachable";

impl LlmError {
    /// Whether a retry may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Rejected { .. } => false,
            LlmError::Unreachable { retryable, .. } => *retryable,
            _ => true,
        }
    }

    /// Classifies a non-2xx HTTP answer.
    pub fn from_status(status: u16, retry_after: Option<&str>, body: &str) -> Self {
        let message = error_message(body).unwrap_or_else(|| truncate(body, 300));
        match status {
            429 => LlmError::RateLimited {
                retry_after_secs: retry_after.and_then(|v| v.trim().parse().ok()),
                message,
            },
            408 | 409 | 500..=599 => LlmError::Unavailable(format!("HTTP {status}: {message}")),
            _ => LlmError::Rejected { status, message },
        }
    }
}

impl std::fmt::Display for LlmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LlmError::RateLimited { message, .. } => write!(f, "rate limited: {message}"),
            LlmError::Unavailable(m) => write!(f, "provider unavailable: {m}"),
            LlmError::Truncated(m) => write!(f, "response truncated: {m}"),
            LlmError::Malformed(m) => write!(f, "malformed response: {m}"),
            LlmError::Rejected { status: s @ (401 | 403), message } => write!(
                f,
                "the provider refused the credentials (HTTP {s}): {message}; check the environment's provider credential or the key variable"
            ),
            LlmError::Rejected { status: 404, message } => write!(
                f,
                "the provider does not know this model or URL (HTTP 404): {message}; check `model.model` and the base URL"
            ),
            LlmError::Rejected { status, message } => write!(
                f,
                "provider rejected the request (HTTP {status}): {message}"
            ),
            LlmError::Unreachable { message, .. } => f.write_str(message),
        }
    }
}

/// An HTTP request ready to send to a provider.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCall {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

/// The variable holding the API key for `provider`.
pub fn key_variable(provider: Provider) -> &'static str {
    match provider {
        Provider::Openai | Provider::OpenaiCompatible => "openai_api_key",
        Provider::Anthropic => "anthropic_api_key",
        Provider::Google => "google_generative_ai_api_key",
    }
}

/// Builds the streamed request for the agent's provider. A provider's own
/// API without a key is refused here (a local `base_url` may need none).
pub fn prepare(req: &ChatRequest, api_key: Option<&str>) -> Result<HttpCall, LlmError> {
    let m = req.model;
    if api_key.is_none() && m.base_url.is_none() && m.provider != Provider::OpenaiCompatible {
        return Err(LlmError::Rejected {
            status: 401,
            message: format!(
                "no {} API key in this environment: an org admin stores one with PUT /api/v1/orgs/{{org}}/environments/{{env}}/llm-providers/{} (the operator's {} serves only orgs listed in FALLBACK_KEY_ORGS)",
                m.provider.as_str(),
                m.provider.as_str(),
                key_variable(m.provider).to_ascii_uppercase()
            ),
        });
    }
    if m.provider == Provider::OpenaiCompatible && m.base_url.is_none() {
        return Err(LlmError::Rejected {
            status: 400,
            message: "an openai-compatible model needs a server URL: set `base_url` on the environment's openai-compatible credential (PUT /api/v1/orgs/{org}/environments/{env}/llm-providers/openai-compatible)".into(),
        });
    }
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("accept", "text/event-stream".to_string()),
    ];
    let (url, body) = match m.provider {
        Provider::Openai | Provider::OpenaiCompatible => {
            if let Some(k) = api_key {
                headers.push(("authorization", format!("Bearer {k}")));
            }
            (
                openai::url(m.base_url.as_deref()),
                openai::request_body(req),
            )
        }
        Provider::Anthropic => {
            if let Some(k) = api_key {
                headers.push(("x-api-key", k.to_string()));
            }
            headers.push(("anthropic-version", anthropic::VERSION.to_string()));
            (
                anthropic::url(m.base_url.as_deref()),
                anthropic::request_body(req),
            )
        }
        Provider::Google => {
            if let Some(k) = api_key {
                headers.push(("x-goog-api-key", k.to_string()));
            }
            (
                google::url(m.base_url.as_deref(), &m.model),
                google::request_body(req),
            )
        }
    };
    Ok(HttpCall { url, headers, body })
}

/// A streamed answer being assembled, whatever the provider.
pub enum Stream {
    OpenAi(openai::Stream),
    Anthropic(anthropic::Stream),
    Google(google::Stream),
}

impl Stream {
    /// An empty stream for `provider`'s wire format.
    pub fn new(provider: Provider) -> Self {
        match provider {
            Provider::Openai | Provider::OpenaiCompatible => Stream::OpenAi(Default::default()),
            Provider::Anthropic => Stream::Anthropic(Default::default()),
            Provider::Google => Stream::Google(Default::default()),
        }
    }

    /// Applies one SSE `data` payload; returns text to show now.
    pub fn feed(&mut self, data: &str) -> Result<Vec<Delta>, LlmError> {
        match self {
            Stream::OpenAi(s) => s.feed(data),
            Stream::Anthropic(s) => s.feed(data),
            Stream::Google(s) => s.feed(data),
        }
    }

    /// The whole turn; every tool call has an id of its own.
    pub fn finish(self) -> Result<Completion, LlmError> {
        let mut completion = match self {
            Stream::OpenAi(s) => s.finish(),
            Stream::Anthropic(s) => s.finish(),
            Stream::Google(s) => s.finish(),
        }?;
        distinct_call_ids(&mut completion.tool_calls);
        Ok(completion)
    }
}

/// Gives a call without an id, or with the id of an earlier call of the
/// turn, the id `call_<n>` (some OpenAI-compatible servers send none): an
/// approval or a result answers exactly one call.
fn distinct_call_ids(calls: &mut [ToolCall]) {
    let mut seen = std::collections::HashSet::new();
    for i in 0..calls.len() {
        if calls[i].id.is_empty() || !seen.insert(calls[i].id.clone()) {
            let mut n = i;
            let id = loop {
                let candidate = format!("call_{n}");
                if !calls.iter().any(|c| c.id == candidate) && seen.insert(candidate.clone()) {
                    break candidate;
                }
                n += calls.len();
            };
            calls[i].id = id;
        }
    }
}

/// A model config with only provider and model set (adapter tests).
#[cfg(test)]
pub(crate) fn test_model(provider: Provider, model: &str) -> synatra_agents::ModelConfig {
    synatra_agents::ModelConfig {
        provider,
        model: model.into(),
        temperature: None,
        top_p: None,
        max_output_tokens: None,
        base_url: None,
        reasoning: None,
    }
}

/// The conversation every adapter's request test encodes: a system prompt,
/// a user turn, an assistant turn calling `add` as `call_id`, and its result;
/// with the one tool offered.
#[cfg(test)]
pub(crate) fn test_conversation(call_id: &str) -> (Vec<Message>, Vec<ToolSpec>) {
    let messages = vec![
        Message::System { text: "sys".into() },
        Message::User { text: "hi".into() },
        Message::Assistant {
            text: String::new(),
            tool_calls: vec![ToolCall {
                id: call_id.into(),
                name: "add".into(),
                arguments: serde_json::json!({"a": 1}),
            }],
        },
        Message::Tool {
            call_id: call_id.into(),
            name: "add".into(),
            content: "{\"sum\":1}".into(),
        },
    ];
    let tools = vec![ToolSpec {
        name: "add".into(),
        description: "adds".into(),
        parameters: serde_json::json!({"type": "object"}),
    }];
    (messages, tools)
}

/// What every adapter's recorded stream assembles to: "Let me add.", one
/// call of `add_numbers` with `{"numbers":[2,3]}` as `call_id`, and 12
/// tokens in, 7 out.
#[cfg(test)]
pub(crate) fn assert_tool_answer(c: &Completion, call_id: &str) {
    assert_eq!(c.text, "Let me add.");
    assert_eq!(
        c.tool_calls,
        vec![ToolCall {
            id: call_id.into(),
            name: "add_numbers".into(),
            arguments: serde_json::json!({"numbers": [2, 3]}),
        }]
    );
    assert_eq!(
        c.usage,
        Usage {
            input_tokens: 12,
            output_tokens: 7
        }
    );
}

/// Feeds a whole SSE body through `provider`'s stream (adapter tests).
#[cfg(test)]
pub(crate) fn replay(provider: Provider, body: &str) -> (Vec<Delta>, Result<Completion, LlmError>) {
    let mut sse = sse::SseParser::default();
    let mut stream = Stream::new(provider);
    let mut deltas = Vec::new();
    for data in sse.feed(body.as_bytes()) {
        match stream.feed(&data) {
            Ok(d) => deltas.extend(d),
            Err(e) => return (deltas, Err(e)),
        }
    }
    (deltas, stream.finish())
}

/// `{"error":{"message":...}}` (OpenAI, Anthropic, Google all use this shape).
fn error_message(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    v["error"]["message"].as_str().map(str::to_string)
}

/// One streamed event's JSON; a payload that is not JSON is `Malformed`.
fn parse_event(data: &str) -> Result<Value, LlmError> {
    serde_json::from_str(data).map_err(|e| {
        LlmError::Malformed(format!("bad stream event ({e}): {}", truncate(data, 200)))
    })
}

/// An in-band `{"error":{"message":…}}` in an OpenAI or Gemini stream, as
/// `Unavailable` (retried).
fn in_band_error(event: &Value) -> Result<(), LlmError> {
    match event.get("error") {
        None => Ok(()),
        Some(err) => Err(LlmError::Unavailable(
            err["message"]
                .as_str()
                .unwrap_or("stream error")
                .to_string(),
        )),
    }
}

/// One message as a provider's request encodes it.
enum Encoded {
    /// A system instruction, sent apart from the turns.
    System(Value),
    /// Content blocks (parts) of a turn of `role`.
    Turn(&'static str, Vec<Value>),
}

/// Encodes `messages`, merging consecutive turns of one role (Anthropic and
/// Gemini want the roles to alternate): the system instructions and the turns.
fn alternating_turns(
    messages: &[Message],
    encode: impl Fn(&Message) -> Encoded,
) -> (Vec<Value>, Vec<(&'static str, Vec<Value>)>) {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in messages {
        match encode(message) {
            Encoded::System(s) => system.push(s),
            Encoded::Turn(role, blocks) => match turns.last_mut() {
                Some((r, b)) if *r == role => b.extend(blocks),
                _ => turns.push((role, blocks)),
            },
        }
    }
    (system, turns)
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_picks_url_and_auth_headers_per_provider() {
        let mut m = test_model(Provider::Anthropic, "claude");
        let req = |m: &synatra_agents::ModelConfig| {
            prepare(
                &ChatRequest {
                    model: m,
                    messages: &[],
                    tools: &[],
                },
                Some("k"),
            )
        };
        let call = req(&m).unwrap();
        assert_eq!(call.url, "https://api.anthropic.com/v1/messages");
        assert!(call.headers.contains(&("x-api-key", "k".into())));
        m.provider = Provider::Google;
        assert!(req(&m)
            .unwrap()
            .headers
            .contains(&("x-goog-api-key", "k".into())));
        m.provider = Provider::Openai;
        assert!(req(&m)
            .unwrap()
            .headers
            .contains(&("authorization", "Bearer k".into())));
        let no_key = prepare(
            &ChatRequest {
                model: &m,
                messages: &[],
                tools: &[],
            },
            None,
        )
        .unwrap_err();
        assert!(no_key.to_string().contains("OPENAI_API_KEY"), "{no_key}");
        m.provider = Provider::OpenaiCompatible;
        m.base_url = Some("http://127.0.0.1:11434/v1".into());
        assert!(prepare(
            &ChatRequest {
                model: &m,
                messages: &[],
                tools: &[]
            },
            None
        )
        .is_ok());
    }

    #[test]
    fn every_call_of_a_turn_gets_its_own_id() {
        let call = |id: &str| ToolCall {
            id: id.into(),
            name: "refund".into(),
            arguments: serde_json::json!({}),
        };
        let mut calls = vec![call(""), call(""), call("call_1"), call("a"), call("a")];
        distinct_call_ids(&mut calls);
        let ids: Vec<&str> = calls.iter().map(|c| c.id.as_str()).collect();
        let unique: std::collections::HashSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), calls.len(), "{ids:?}");
        assert_eq!(ids[2], "call_1", "a given id is kept");
        assert_eq!(ids[3], "a", "the first of two equal ids is kept");
        // A stream of calls without ids assembles to distinct ids.
        let stream = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"a\",\"arguments\":\"{}\"}},{\"index\":1,\"function\":{\"name\":\"b\",\"arguments\":\"{}\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: [DONE]\n\n",
        );
        let c = replay(Provider::Openai, stream).1.unwrap();
        assert_eq!(c.tool_calls.len(), 2);
        assert!(c.tool_calls.iter().all(|c| !c.id.is_empty()));
        assert_ne!(c.tool_calls[0].id, c.tool_calls[1].id);
    }

    #[test]
    fn statuses_are_classified_for_retry() {
        let e = LlmError::from_status(429, Some("7"), r#"{"error":{"message":"slow down"}}"#);
        assert_eq!(
            e,
            LlmError::RateLimited {
                retry_after_secs: Some(7),
                message: "slow down".into()
            }
        );
        assert!(e.is_retryable());
        assert!(LlmError::from_status(503, None, "oops").is_retryable());
        let bad = LlmError::from_status(401, None, r#"{"error":{"message":"bad key"}}"#);
        assert!(!bad.is_retryable());
        assert!(bad.to_string().contains("bad key"));
    }
}
