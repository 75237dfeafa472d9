//! Anthropic Messages (`POST {base}/v1/messages`) with `tool_use`, streamed.

use serde_json::{json, Value};

use crate::{ChatRequest, Completion, Delta, Encoded, LlmError, Message, ToolCall, Usage};

/// Default API base.
pub const DEFAULT_BASE: &str = "https://api.anthropic.com";
/// The API version header value.
pub const VERSION: &str = "2023-06-01";
/// `max_tokens` is required by the API; used when the agent sets none.
const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The request URL for `base_url` (or the default).
pub fn url(base_url: Option<&str>) -> String {
    format!(
        "{}/v1/messages",
        base_url.unwrap_or(DEFAULT_BASE).trim_end_matches('/')
    )
}

/// The JSON body of a streamed Messages request. Consecutive messages of
/// one role are merged (the API wants user and assistant to alternate);
/// tool results travel in user messages.
pub fn request_body(req: &ChatRequest) -> Value {
    let m = req.model;
    let (system, turns) = crate::alternating_turns(req.messages, |message| {
        let (role, blocks) = match message {
            Message::System { text } => return Encoded::System(json!(text)),
            Message::User { text } => ("user", vec![json!({ "type": "text", "text": text })]),
            Message::Assistant { text, tool_calls } => {
                let mut blocks = Vec::new();
                if !text.is_empty() {
                    blocks.push(json!({ "type": "text", "text": text }));
                }
                for c in tool_calls {
                    blocks.push(json!({ "type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments }));
                }
                ("assistant", blocks)
            }
            Message::Tool {
                call_id, content, ..
            } => (
                "user",
                vec![json!({ "type": "tool_result", "tool_use_id": call_id, "content": content })],
            ),
        };
        Encoded::Turn(role, blocks)
    });
    let mut body = json!({
        "model": m.model,
        "max_tokens": m.max_output_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": turns.into_iter().map(|(role, content)| json!({ "role": role, "content": content })).collect::<Vec<_>>(),
        "stream": true,
    });
    if !system.is_empty() {
        let texts: Vec<&str> = system.iter().filter_map(Value::as_str).collect();
        body["system"] = json!(texts.join("\n\n"));
    }
    if let Some(t) = m.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(p) = m.top_p {
        body["top_p"] = json!(p);
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| json!({ "name": t.name, "description": t.description, "input_schema": t.parameters }))
            .collect();
    }
    body
}

enum Block {
    Text,
    Tool {
        id: String,
        name: String,
        json: String,
    },
}

/// Accumulates a streamed message from its events.
#[derive(Default)]
pub struct Stream {
    text: String,
    blocks: Vec<Option<Block>>,
    calls: Vec<ToolCall>,
    usage: Usage,
    stop_reason: Option<String>,
}

impl Stream {
    /// Applies one SSE `data` payload; returns text to show now.
    pub fn feed(&mut self, data: &str) -> Result<Vec<Delta>, LlmError> {
        let v = crate::parse_event(data)?;
        let index = v["index"].as_u64().unwrap_or(0) as usize;
        match v["type"].as_str().unwrap_or("") {
            "message_start" => {
                self.usage.input_tokens =
                    v["message"]["usage"]["input_tokens"].as_u64().unwrap_or(0);
                self.usage.output_tokens =
                    v["message"]["usage"]["output_tokens"].as_u64().unwrap_or(0);
            }
            "content_block_start" => {
                while self.blocks.len() <= index {
                    self.blocks.push(None);
                }
                let b = &v["content_block"];
                self.blocks[index] = Some(match b["type"].as_str() {
                    Some("tool_use") => Block::Tool {
                        id: b["id"].as_str().unwrap_or_default().to_string(),
                        name: b["name"].as_str().unwrap_or_default().to_string(),
                        json: String::new(),
                    },
                    _ => Block::Text,
                });
            }
            "content_block_delta" => {
                let d = &v["delta"];
                match (
                    self.blocks.get_mut(index).and_then(Option::as_mut),
                    d["type"].as_str(),
                ) {
                    (Some(Block::Text), Some("text_delta")) => {
                        let t = d["text"].as_str().unwrap_or_default();
                        self.text.push_str(t);
                        return Ok(vec![Delta::Text(t.to_string())]);
                    }
                    (Some(Block::Tool { json, .. }), Some("input_json_delta")) => {
                        json.push_str(d["partial_json"].as_str().unwrap_or_default());
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some(Some(Block::Tool { id, name, json })) =
                    self.blocks.get_mut(index).map(Option::take)
                {
                    let arguments = if json.trim().is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str(&json).map_err(|e| {
                            LlmError::Malformed(format!("tool_use input is not JSON: {e}"))
                        })?
                    };
                    self.calls.push(ToolCall {
                        id,
                        name,
                        arguments,
                    });
                }
            }
            "message_delta" => {
                if let Some(r) = v["delta"]["stop_reason"].as_str() {
                    self.stop_reason = Some(r.to_string());
                }
                if let Some(o) = v["usage"]["output_tokens"].as_u64() {
                    self.usage.output_tokens = o;
                }
            }
            "error" => {
                let message = v["error"]["message"]
                    .as_str()
                    .unwrap_or("stream error")
                    .to_string();
                return Err(match v["error"]["type"].as_str() {
                    Some("rate_limit_error") => LlmError::RateLimited {
                        retry_after_secs: None,
                        message,
                    },
                    Some("invalid_request_error") => LlmError::Rejected {
                        status: 400,
                        message,
                    },
                    _ => LlmError::Unavailable(message),
                });
            }
            _ => {}
        }
        Ok(Vec::new())
    }

    /// The whole turn; an error if the stream ended before `message_delta`.
    pub fn finish(self) -> Result<Completion, LlmError> {
        let finish_reason = self
            .stop_reason
            .ok_or_else(|| LlmError::Truncated("the stream ended without a stop_reason".into()))?;
        Ok(Completion {
            text: self.text,
            tool_calls: self.calls,
            usage: self.usage,
            finish_reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synatra_agents::Provider;

    #[test]
    fn request_merges_roles_and_carries_tool_results_in_user_turns() {
        let m = crate::test_model(Provider::Anthropic, "claude-x");
        let (messages, tools) = crate::test_conversation("t1");
        let b = request_body(&ChatRequest {
            model: &m,
            messages: &messages,
            tools: &tools,
        });
        assert_eq!(b["system"], "sys");
        assert_eq!(b["max_tokens"], 4096);
        // An empty text turn sends only its tool use.
        assert_eq!(
            b["messages"][1]["content"],
            json!([{"type": "tool_use", "id": "t1", "name": "add", "input": {"a": 1}}])
        );
        assert_eq!(b["messages"][2]["role"], "user");
        assert_eq!(b["messages"][2]["content"][0]["tool_use_id"], "t1");
        assert_eq!(b["tools"][0]["input_schema"]["type"], "object");
    }

    const STREAM: &str = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: ping\ndata: {\"type\":\"ping\"}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me add.\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"add_numbers\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"numbers\\\": [2,\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" 3]}\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":7}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );

    fn run(s: &str) -> Result<Completion, LlmError> {
        crate::replay(Provider::Anthropic, s).1
    }

    #[test]
    fn streamed_text_and_tool_use_are_assembled() {
        let c = run(STREAM).unwrap();
        crate::assert_tool_answer(&c, "toolu_1");
        assert_eq!(c.finish_reason, "tool_use");
    }

    #[test]
    fn cut_streams_and_error_events_fail() {
        let cut = &STREAM[..STREAM.find("event: message_delta").unwrap()];
        assert!(matches!(run(cut), Err(LlmError::Truncated(_))));
        let overloaded = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        assert!(matches!(run(overloaded), Err(LlmError::Unavailable(_))));
    }
}
