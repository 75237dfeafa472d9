//! A WIT tool whose `mode` argument picks what it does, so one component
//! covers the sandbox tests: a greeting with a log line, an endless loop, a
//! sleep that blocks in a host call, unbounded allocation, reading a file or
//! the environment, a panic, a huge or non-JSON result, and state that must
//! not survive between calls.

use std::sync::atomic::{AtomicU32, Ordering};

wit_bindgen::generate!({ path: "../../../wit/tool", world: "tool" });

use synatra::tool::log::{log, Level};

/// Calls this instance has served (a fresh instance per call: always 1).
static CALLS: AtomicU32 = AtomicU32::new(0);

struct Tool;

fn field<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    // The tests pass flat objects of strings: {"mode":"x","name":"y"}.
    let key = format!("\"{name}\":\"");
    let start = params.find(&key)? + key.len();
    let len = params[start..].find('"')?;
    Some(&params[start..start + len])
}

impl Guest for Tool {
    fn call(params: String) -> Result<String, ToolError> {
        let calls = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
        match field(&params, "mode").unwrap_or("greet") {
            "greet" => {
                let name = field(&params, "name").unwrap_or("world");
                log(Level::Info, &format!("greeting {name}"));
                Ok(format!(
                    "{{\"greeting\":\"hello, {name}\",\"calls\":{calls}}}"
                ))
            }
            "key" => Ok(match synatra::tool::context::idempotency_key() {
                Some(key) => format!("{{\"key\":\"{key}\"}}"),
                None => "{\"key\":null}".into(),
            }),
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "sleep" => {
                // Blocks in a host call (a WASI poll), not in Wasm code.
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok("\"woke\"".into())
            }
            "allocate" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "file" => match std::fs::read_to_string("/etc/passwd") {
                Ok(text) => Ok(format!("{{\"leaked\":{}}}", text.len())),
                Err(e) => Err(ToolError {
                    code: "no_file".into(),
                    message: e.to_string(),
                }),
            },
            "env" => Ok(format!("{{\"variables\":{}}}", std::env::vars().count())),
            "panic" => panic!("the tool gave up"),
            "huge" => Ok(format!("\"{}\"", "x".repeat(8 << 20))),
            "not_json" => Ok("this is not JSON".into()),
            "fail" => Err(ToolError {
                code: "refused".into(),
                message: "the order is already refunded".into(),
            }),
            other => Err(ToolError {
                code: "bad_mode".into(),
                message: format!("unknown mode {other}"),
            }),
        }
    }
}

export!(Tool);
