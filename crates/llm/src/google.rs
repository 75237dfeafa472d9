//! Google Gemini `streamGenerateContent` (SSE) with function calls.

use serde_json::{json, Value};

use crate::{ChatRequest, Completion, Delta, Encoded, LlmError, Message, ToolCall, Usage};

/// Default API base.
pub const DEFAULT_BASE: &str = "https://generativelanguage.googleapis.com";

/// The streaming request URL for `model` at `base_url` (or the default).
pub fn url(base_url: Option<&str>, model: &str) -> String {
    format!(
        "{}/v1beta/models/{}:streamGenerateContent?alt=sse",
        base_url.unwrap_or(DEFAULT_BASE).trim_end_matches('/'),
        path_segment(model)
    )
}

/// `s` percent-encoded as one URL path segment: a model name cannot reach
/// another path (`../`) or the query.
fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The JSON body of a `generateContent` request. Function results travel as
/// `functionResponse` parts in user turns; consecutive turns of one role merge.
pub fn request_body(req: &ChatRequest) -> Value {
    let m = req.model;
    let (system, contents) = crate::alternating_turns(req.messages, |message| {
        let (role, parts) = match message {
            Message::System { text } => return Encoded::System(json!({ "text": text })),
            Message::User { text } => ("user", vec![json!({ "text": text })]),
            Message::Assistant { text, tool_calls } => {
                let mut parts = Vec::new();
                if !text.is_empty() {
                    parts.push(json!({ "text": text }));
                }
                for c in tool_calls {
                    parts.push(json!({ "functionCall": { "name": c.name, "args": c.arguments } }));
                }
                ("model", parts)
            }
            Message::Tool { name, content, .. } => {
                let response = serde_json::from_str::<Value>(content)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or_else(|| json!({ "result": content }));
                (
                    "user",
                    vec![json!({ "functionResponse": { "name": name, "response": response } })],
                )
            }
        };
        Encoded::Turn(role, parts)
    });
    let mut generation = json!({});
    if let Some(t) = m.temperature {
        generation["temperature"] = json!(t);
    }
    if let Some(p) = m.top_p {
        generation["topP"] = json!(p);
    }
    if let Some(n) = m.max_output_tokens {
        generation["maxOutputTokens"] = json!(n);
    }
    let mut body = json!({
        "contents": contents.into_iter().map(|(role, parts)| json!({ "role": role, "parts": parts })).collect::<Vec<_>>(),
        "generationConfig": generation,
    });
    if !system.is_empty() {
        body["systemInstruction"] = json!({ "parts": system });
    }
    if !req.tools.is_empty() {
        let decls: Vec<Value> = req
            .tools
            .iter()
            .map(|t| json!({ "name": t.name, "description": t.description, "parameters": t.parameters }))
            .collect();
        body["tools"] = json!([{ "functionDeclarations": decls }]);
    }
    body
}

/// Accumulates a streamed response from its chunks.
#[derive(Default)]
pub struct Stream {
    text: String,
    calls: Vec<ToolCall>,
    usage: Usage,
    finish_reason: Option<String>,
}

impl Stream {
    /// Applies one SSE `data` payload; returns text to show now.
    pub fn feed(&mut self, data: &str) -> Result<Vec<Delta>, LlmError> {
        let v = crate::parse_event(data)?;
        crate::in_band_error(&v)?;
        if let Some(u) = v.get("usageMetadata") {
            self.usage = Usage {
                input_tokens: u["promptTokenCount"]
                    .as_u64()
                    .unwrap_or(self.usage.input_tokens),
                output_tokens: u["candidatesTokenCount"]
                    .as_u64()
                    .unwrap_or(self.usage.output_tokens),
            };
        }
        let mut deltas = Vec::new();
        let candidate = &v["candidates"][0];
        for part in candidate["content"]["parts"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(t) = part["text"].as_str() {
                self.text.push_str(t);
                deltas.push(Delta::Text(t.to_string()));
            }
            if let Some(call) = part.get("functionCall") {
                let id = call["id"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("call_{}", self.calls.len()));
                self.calls.push(ToolCall {
                    id,
                    name: call["name"].as_str().unwrap_or_default().to_string(),
                    arguments: call.get("args").cloned().unwrap_or_else(|| json!({})),
                });
            }
        }
        if let Some(r) = candidate["finishReason"].as_str() {
            self.finish_reason = Some(r.to_string());
        }
        Ok(deltas)
    }

    /// The whole turn; an error if no chunk carried a `finishReason`.
    pub fn finish(self) -> Result<Completion, LlmError> {
        let finish_reason = self
            .finish_reason
            .ok_or_else(|| LlmError::Truncated("the stream ended without a finishReason".into()))?;
        if finish_reason == "SAFETY" || finish_reason == "RECITATION" {
            return Err(LlmError::Rejected {
                status: 200,
                message: format!("the model stopped: {finish_reason}"),
            });
        }
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
    use synatra_agents::{ModelConfig, Provider};

    #[test]
    fn request_uses_contents_function_parts_and_generation_config() {
        let m = ModelConfig {
            temperature: Some(0.5),
            max_output_tokens: Some(64),
            ..crate::test_model(Provider::Google, "gemini-x")
        };
        let (messages, tools) = crate::test_conversation("call_0");
        let b = request_body(&ChatRequest {
            model: &m,
            messages: &messages,
            tools: &tools,
        });
        assert_eq!(b["systemInstruction"]["parts"][0]["text"], "sys");
        assert_eq!(b["contents"][1]["role"], "model");
        assert_eq!(b["contents"][1]["parts"][0]["functionCall"]["name"], "add");
        assert_eq!(
            b["contents"][2]["parts"][0]["functionResponse"]["response"],
            json!({"sum":1})
        );
        assert_eq!(
            b["generationConfig"],
            json!({ "temperature": 0.5, "maxOutputTokens": 64 })
        );
        assert_eq!(b["tools"][0]["functionDeclarations"][0]["name"], "add");
        assert_eq!(url(None, "gemini-x"), "https://generativelanguage.googleapis.com/v1beta/models/gemini-x:streamGenerateContent?alt=sse");
        assert_eq!(
            url(Some("http://h"), "../../x?key=1#y"),
            "http://h/v1beta/models/..%2F..%2Fx%3Fkey%3D1%23y:streamGenerateContent?alt=sse"
        );
    }

    fn run(s: &str) -> Result<Completion, LlmError> {
        crate::replay(Provider::Google, s).1
    }

    #[test]
    fn streamed_text_and_function_calls_are_assembled() {
        let stream = concat!(
            "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Let me \"}]}}]}\r\n\r\n",
            "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"add.\"},{\"functionCall\":{\"name\":\"add_numbers\",\"args\":{\"numbers\":[2,3]}}}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":12,\"candidatesTokenCount\":7}}\r\n\r\n",
        );
        let c = run(stream).unwrap();
        crate::assert_tool_answer(&c, "call_0");
        let cut = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Let\"}]}}]}\n\n";
        assert!(matches!(run(cut), Err(LlmError::Truncated(_))));
    }
}
