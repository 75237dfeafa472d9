//! OpenAI Chat Completions (`POST {base}/chat/completions`), also spoken by
//! OpenAI-compatible servers (vLLM, Ollama, LiteLLM).

use serde_json::{json, Value};
use synatra_agents::Provider;

use crate::{ChatRequest, Completion, Delta, LlmError, Message, ToolCall, Usage};

/// Default API base.
pub const DEFAULT_BASE: &str = "https://api.openai.com/v1";

/// The request URL for `base_url` (or the default).
pub fn url(base_url: Option<&str>) -> String {
    format!(
        "{}/chat/completions",
        base_url.unwrap_or(DEFAULT_BASE).trim_end_matches('/')
    )
}

/// The JSON body of a streamed chat completion request.
pub fn request_body(req: &ChatRequest) -> Value {
    let m = req.model;
    let messages: Vec<Value> = req.messages.iter().map(message).collect();
    let mut body = json!({
        "model": m.model,
        "messages": messages,
        "stream": true,
        "stream_options": { "include_usage": true },
    });
    if let Some(t) = m.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(p) = m.top_p {
        body["top_p"] = json!(p);
    }
    if let Some(n) = m.max_output_tokens {
        // OpenAI's current name; compatible servers still expect the old one.
        let key = if m.provider == Provider::Openai {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        body[key] = json!(n);
    }
    if let Some(r) = &m.reasoning {
        body["reasoning_effort"] = serde_json::to_value(r.effort).unwrap_or(Value::Null);
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| json!({ "type": "function", "function": { "name": t.name, "description": t.description, "parameters": t.parameters } }))
            .collect();
    }
    body
}

fn message(m: &Message) -> Value {
    match m {
        Message::System { text } => json!({ "role": "system", "content": text }),
        Message::User { text } => json!({ "role": "user", "content": text }),
        Message::Assistant { text, tool_calls } => {
            let mut v = json!({ "role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) } });
            if !tool_calls.is_empty() {
                v["tool_calls"] = tool_calls
                    .iter()
                    .map(|c| json!({ "id": c.id, "type": "function", "function": { "name": c.name, "arguments": c.arguments.to_string() } }))
                    .collect();
            }
            v
        }
        Message::Tool {
            call_id, content, ..
        } => json!({ "role": "tool", "tool_call_id": call_id, "content": content }),
    }
}

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Accumulates a streamed completion from its `data:` payloads.
#[derive(Debug, Default)]
pub struct Stream {
    text: String,
    calls: Vec<PartialCall>,
    usage: Usage,
    finish_reason: Option<String>,
    done: bool,
}

impl Stream {
    /// Applies one SSE `data` payload; returns text to show now.
    pub fn feed(&mut self, data: &str) -> Result<Vec<Delta>, LlmError> {
        if data.trim() == "[DONE]" {
            self.done = true;
            return Ok(Vec::new());
        }
        let v = crate::parse_event(data)?;
        crate::in_band_error(&v)?;
        if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
            self.usage = usage(u);
        }
        let mut deltas = Vec::new();
        for choice in v["choices"].as_array().into_iter().flatten() {
            let delta = &choice["delta"];
            if let Some(t) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                self.text.push_str(t);
                deltas.push(Delta::Text(t.to_string()));
            }
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                let index = call["index"].as_u64().unwrap_or(self.calls.len() as u64) as usize;
                while self.calls.len() <= index {
                    self.calls.push(PartialCall::default());
                }
                let slot = &mut self.calls[index];
                if let Some(id) = call["id"].as_str() {
                    slot.id = id.to_string();
                }
                if let Some(name) = call["function"]["name"].as_str() {
                    slot.name.push_str(name);
                }
                if let Some(args) = call["function"]["arguments"].as_str() {
                    slot.arguments.push_str(args);
                }
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                self.finish_reason = Some(reason.to_string());
            }
        }
        Ok(deltas)
    }

    /// The whole turn; an error if the stream ended before it finished.
    pub fn finish(self) -> Result<Completion, LlmError> {
        let Some(finish_reason) = self.finish_reason else {
            return Err(LlmError::Truncated(
                "the stream ended without a finish_reason".into(),
            ));
        };
        let tool_calls = self
            .calls
            .into_iter()
            .map(|c| {
                let arguments = if c.arguments.trim().is_empty() {
                    json!({})
                } else {
                    serde_json::from_str(&c.arguments).map_err(|e| {
                        LlmError::Malformed(format!("tool call arguments are not JSON: {e}"))
                    })?
                };
                Ok(ToolCall {
                    id: c.id,
                    name: c.name,
                    arguments,
                })
            })
            .collect::<Result<_, LlmError>>()?;
        Ok(Completion {
            text: self.text,
            tool_calls,
            usage: self.usage,
            finish_reason,
        })
    }
}

fn usage(u: &Value) -> Usage {
    Usage {
        input_tokens: u["prompt_tokens"].as_u64().unwrap_or(0),
        output_tokens: u["completion_tokens"].as_u64().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synatra_agents::ModelConfig;

    fn model(provider: Provider) -> ModelConfig {
        ModelConfig {
            temperature: Some(0.1),
            max_output_tokens: Some(100),
            ..crate::test_model(provider, "gpt-4o-mini")
        }
    }

    #[test]
    fn request_carries_messages_tools_and_provider_specific_token_limit() {
        let m = model(Provider::Openai);
        let (messages, tools) = crate::test_conversation("c1");
        let body = request_body(&ChatRequest {
            model: &m,
            messages: &messages,
            tools: &tools,
        });
        assert_eq!(body["max_completion_tokens"], 100);
        assert_eq!(body["messages"][2]["content"], Value::Null);
        assert_eq!(
            body["messages"][2]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        assert_eq!(body["messages"][3]["tool_call_id"], "c1");
        assert_eq!(body["tools"][0]["function"]["name"], "add");
        let compat = request_body(&ChatRequest {
            model: &model(Provider::OpenaiCompatible),
            messages: &messages,
            tools: &[],
        });
        assert_eq!(compat["max_tokens"], 100);
        assert!(compat.get("tools").is_none());
        assert_eq!(
            url(Some("http://127.0.0.1:8000/v1/")),
            "http://127.0.0.1:8000/v1/chat/completions"
        );
    }

    const TOOL_STREAM: &str = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Let me \"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"add.\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"add_numbers\",\"arguments\":\"\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"numbers\\\":\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"[2,3]}\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":7}}\n\n",
        "data: [DONE]\n\n",
    );

    fn run(stream: &str) -> (Vec<Delta>, Result<Completion, LlmError>) {
        crate::replay(Provider::Openai, stream)
    }

    #[test]
    fn streamed_tool_calls_and_usage_are_assembled() {
        let (deltas, completion) = run(TOOL_STREAM);
        let c = completion.unwrap();
        assert_eq!(
            deltas,
            vec![Delta::Text("Let me ".into()), Delta::Text("add.".into())]
        );
        crate::assert_tool_answer(&c, "call_1");
        assert_eq!(c.finish_reason, "tool_calls");
    }

    #[test]
    fn truncated_and_malformed_streams_are_errors() {
        let cut = &TOOL_STREAM[..TOOL_STREAM.find("finish_reason").unwrap() - 40];
        assert!(matches!(run(cut).1, Err(LlmError::Truncated(_))));
        assert!(matches!(
            run("data: {not json}\n\n").1,
            Err(LlmError::Malformed(_))
        ));
        let in_band = "data: {\"error\":{\"message\":\"overloaded\"}}\n\n";
        assert!(matches!(run(in_band).1, Err(LlmError::Unavailable(_))));
    }
}
