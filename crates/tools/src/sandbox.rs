//! The protocol between a tool's caller and its sandbox (the tool-js
//! component, or the host's runner of WIT tool components): the typed
//! answer both sides use, and the bounds on what a sandbox passes back.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest result, in bytes of JSON.
pub const MAX_RESULT: usize = 1 << 20;
/// Most console lines kept.
pub const MAX_LOGS: usize = 200;
/// Longest console line kept, in bytes.
pub const MAX_LOG_LINE: usize = 2000;
/// Longest error message passed on, in bytes.
pub const MAX_ERROR: usize = 4 << 10;

/// One call's answer: the tool's failure (exception, limit, bad result) is
/// data (`ok: false`), never a server error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolAnswer {
    pub ok: bool,
    /// The tool's JSON result when `ok`.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub result: Value,
    /// What went wrong, for the model and the tool's author, when not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Console output, at most [`MAX_LOGS`] lines.
    #[serde(default)]
    pub logs: Vec<String>,
}

impl ToolAnswer {
    /// The tool returned `result`.
    pub fn success(result: Value, logs: Vec<String>) -> Self {
        ToolAnswer {
            ok: true,
            result,
            error: None,
            logs,
        }
    }

    /// The call failed; the message is cut at [`MAX_ERROR`] bytes.
    pub fn failure(error: &str, logs: Vec<String>) -> Self {
        ToolAnswer {
            ok: false,
            result: Value::Null,
            error: Some(truncated(error, MAX_ERROR).to_string()),
            logs,
        }
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub fn truncated(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Keeps a console line within the bounds.
pub fn push_log(logs: &mut Vec<String>, line: &str) {
    if logs.len() < MAX_LOGS {
        logs.push(truncated(line, MAX_LOG_LINE).to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_keep_their_wire_shape() {
        let ok = ToolAnswer::success(json!({ "sum": 3 }), vec!["hi".into()]);
        assert_eq!(
            serde_json::to_value(&ok).unwrap(),
            json!({ "ok": true, "result": { "sum": 3 }, "logs": ["hi"] })
        );
        let failed: ToolAnswer =
            serde_json::from_value(json!({ "ok": false, "error": "boom" })).unwrap();
        assert_eq!(failed, ToolAnswer::failure("boom", vec![]));
        let long = "é".repeat(MAX_ERROR);
        let cut = ToolAnswer::failure(&long, vec![]).error.unwrap();
        assert!(
            cut.len() <= MAX_ERROR && cut.len() > MAX_ERROR - 2,
            "{}",
            cut.len()
        );
    }

    #[test]
    fn logs_are_bounded_in_lines_and_length() {
        let mut logs = Vec::new();
        for _ in 0..MAX_LOGS + 5 {
            push_log(&mut logs, &"x".repeat(MAX_LOG_LINE + 10));
        }
        assert_eq!(logs.len(), MAX_LOGS);
        assert!(logs.iter().all(|l| l.len() == MAX_LOG_LINE));
        assert_eq!(truncated("héllo", 2), "h");
    }
}
