//! An example Synatra WIT tool: `call({"name": "Ada"})` returns
//! `{"greeting": "Hello, Ada!"}` and logs a line. Build it with
//! `cargo build --release --target wasm32-wasip2 -p hello-tool` and upload
//! `target/wasm32-wasip2/release/hello_tool.wasm` (see the README).

wit_bindgen::generate!({ path: "../../wit/tool", world: "tool" });

use serde_json::{json, Value};
use synatra::tool::log::{log, Level};

struct HelloTool;

impl Guest for HelloTool {
    fn call(params: String) -> Result<String, ToolError> {
        let params: Value = serde_json::from_str(&params).map_err(|e| ToolError {
            code: "bad_params".into(),
            message: e.to_string(),
        })?;
        let name = params["name"].as_str().unwrap_or("world");
        log(Level::Info, &format!("greeting {name}"));
        Ok(json!({ "greeting": format!("Hello, {name}!") }).to_string())
    }
}

export!(HelloTool);
