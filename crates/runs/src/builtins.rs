//! The built-in tools: `add_numbers`, the `wait` timer, and the delegation
//! tools that hand a task to a sub-agent.

use serde_json::{json, Value};
use synatra_llm::ToolSpec;

/// The built-in tool that starts a durable timer.
pub const WAIT_TOOL: &str = "wait";

/// Longest `wait` (one year), in seconds.
pub const MAX_WAIT_SECONDS: f64 = 31_536_000.0;

/// Built-in tools available to agents that list them in `tools` (until user
/// tools exist): `add_numbers`, and `wait` (a durable timer).
pub fn builtin_tools(enabled: &[String]) -> Vec<ToolSpec> {
    let all = [
        ToolSpec {
            name: "add_numbers".into(),
            description: "Adds a list of numbers and returns their sum.".into(),
            parameters: json!({
                "type": "object",
                "properties": { "numbers": { "type": "array", "items": { "type": "number" } } },
                "required": ["numbers"],
            }),
        },
        ToolSpec {
            name: WAIT_TOOL.into(),
            description: "Pauses the run for a number of seconds (survives restarts).".into(),
            parameters: json!({
                "type": "object",
                "properties": { "seconds": { "type": "number", "minimum": 0, "maximum": MAX_WAIT_SECONDS } },
                "required": ["seconds"],
            }),
        },
    ];
    all.into_iter()
        .filter(|t| enabled.contains(&t.name))
        .collect()
}

/// Prefix of the tools that delegate to sub-agents: `delegate_to_<slug>`.
pub const DELEGATE_PREFIX: &str = "delegate_to_";

/// The delegation tool for a sub-agent (its slug with `-` as `_`).
pub fn delegate_tool(slug: &str, name: &str, description: &str) -> ToolSpec {
    ToolSpec {
        name: format!("{DELEGATE_PREFIX}{}", slug.replace('-', "_")),
        description: format!("Delegate a task to the agent \"{name}\": {description}"),
        parameters: json!({
            "type": "object",
            "properties": { "message": { "type": "string", "description": "What the agent should do" } },
            "required": ["message"],
        }),
    }
}

/// The validated duration of a `wait` call, in milliseconds.
pub fn wait_millis(arguments: &Value) -> Result<i64, String> {
    match arguments["seconds"].as_f64() {
        Some(s) if (0.0..=MAX_WAIT_SECONDS).contains(&s) => Ok((s * 1000.0) as i64),
        _ => Err(format!(
            "`seconds` must be a number from 0 to {MAX_WAIT_SECONDS}"
        )),
    }
}

/// Runs a built-in tool; `Err` is a tool error the model sees.
pub fn run_builtin(name: &str, arguments: &Value) -> Result<Value, String> {
    match name {
        "add_numbers" => {
            let numbers = arguments["numbers"]
                .as_array()
                .ok_or("`numbers` must be an array of numbers")?;
            let mut sum = 0.0;
            for n in numbers {
                sum += n.as_f64().ok_or("`numbers` must contain only numbers")?;
            }
            Ok(json!({ "sum": sum }))
        }
        other => Err(format!(
            "no tool named `{other}` is available to this agent"
        )),
    }
}
