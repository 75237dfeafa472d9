//! A WIT tool that tries to reach the network directly (a TCP connection),
//! which pulls `wasi:sockets` into its imports: the upload must be refused.

wit_bindgen::generate!({ path: "../../../wit/tool", world: "tool" });

struct Tool;

impl Guest for Tool {
    fn call(params: String) -> Result<String, ToolError> {
        match std::net::TcpStream::connect(params.trim_matches('"')) {
            Ok(_) => Ok("\"connected\"".into()),
            Err(e) => Err(ToolError {
                code: "no_network".into(),
                message: e.to_string(),
            }),
        }
    }
}

export!(Tool);
