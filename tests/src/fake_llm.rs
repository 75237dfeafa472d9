//! A local fake of OpenAI's Chat Completions endpoint speaking the real wire
//! format (SSE streaming, tool calls, usage, error bodies, Retry-After), with
//! a script of answers and a log of every request it received.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A streamed text answer.
    Text(String),
    /// A streamed tool call.
    ToolCall { name: String, arguments: Value },
    /// An HTTP error with an OpenAI error body.
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// A stream that stops before its `finish_reason`.
    Truncated,
    /// A stream chunk that is not JSON.
    Malformed,
    /// Waits, then gives the inner answer.
    Delayed(Duration, Box<Answer>),
}

/// A received request.
#[derive(Debug, Clone)]
pub struct Received {
    pub body: Value,
    pub authorization: Option<String>,
    pub at: Instant,
    /// Wall-clock arrival time, comparable with database timestamps.
    pub wall: std::time::SystemTime,
}

/// Computes an answer from the request body (instead of a script).
pub type Responder = Box<dyn Fn(&Value) -> Answer + Send>;

#[derive(Default)]
struct State {
    script: VecDeque<Answer>,
    responder: Option<Responder>,
    received: Vec<Received>,
}

/// The running fake.
pub struct FakeOpenAi {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl FakeOpenAi {
    /// Starts the fake with `script`; answers in order, then 500s.
    pub fn start(script: Vec<Answer>) -> Self {
        Self::launch(State {
            script: script.into(),
            ..State::default()
        })
    }

    /// Starts the fake answering every request with `responder(body)`.
    pub fn start_with(responder: impl Fn(&Value) -> Answer + Send + 'static) -> Self {
        Self::launch(State {
            responder: Some(Box::new(responder)),
            ..State::default()
        })
    }

    fn launch(state: State) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(state));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &state);
                });
            }
        });
        Self { port, state }
    }

    /// `http://127.0.0.1:<port>/v1`, for an agent's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Requests received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Number of requests received.
    pub fn calls(&self) -> usize {
        self.state.lock().unwrap().received.len()
    }

    /// Adds answers to the end of the script.
    pub fn push(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.lock().unwrap().script.extend(answers);
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut length = 0usize;
    let mut chunked = false;
    let mut authorization = None;
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().unwrap_or(0),
                "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
                "authorization" => authorization = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    let body = if chunked {
        read_chunked(&mut reader)?
    } else {
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        body
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let answer = {
        let mut s = state.lock().unwrap();
        let answer = match &s.responder {
            Some(r) => Some(r(&body)),
            None => s.script.pop_front(),
        };
        s.received.push(Received {
            body,
            authorization,
            at: Instant::now(),
            wall: std::time::SystemTime::now(),
        });
        answer
    };
    let mut out = stream;
    if !request_line.starts_with("POST /v1/chat/completions") {
        return respond_status(&mut out, 404, None, "unknown endpoint");
    }
    match answer {
        Some(a) => answer_with(&mut out, a),
        None => respond_status(&mut out, 500, None, "the fake has no scripted answer left"),
    }
}

/// Reads an HTTP/1.1 chunked body.
fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size)?;
        let size =
            usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        if size == 0 {
            let mut trailer = String::new();
            reader.read_line(&mut trailer)?;
            return Ok(body);
        }
        let mut chunk = vec![0u8; size + 2];
        reader.read_exact(&mut chunk)?;
        body.extend_from_slice(&chunk[..size]);
    }
}

fn answer_with(out: &mut TcpStream, answer: Answer) -> std::io::Result<()> {
    match answer {
        Answer::Delayed(d, inner) => {
            std::thread::sleep(d);
            answer_with(out, *inner)
        }
        Answer::Status {
            status,
            retry_after,
        } => respond_status(out, status, retry_after, "scripted error"),
        Answer::Text(text) => {
            start_stream(out)?;
            for piece in text.split_inclusive(' ') {
                chunk(
                    out,
                    json!({ "choices": [{ "index": 0, "delta": { "content": piece } }] }),
                )?;
            }
            finish_stream(out, "stop")
        }
        Answer::ToolCall { name, arguments } => {
            start_stream(out)?;
            let args = arguments.to_string();
            let (a, b) = args.split_at(args.len() / 2);
            chunk(
                out,
                json!({ "choices": [{ "index": 0, "delta": { "tool_calls": [{ "index": 0, "id": format!("call_{}", std::process::id()), "type": "function", "function": { "name": name, "arguments": a } }] } }] }),
            )?;
            chunk(
                out,
                json!({ "choices": [{ "index": 0, "delta": { "tool_calls": [{ "index": 0, "function": { "arguments": b } }] } }] }),
            )?;
            finish_stream(out, "tool_calls")
        }
        Answer::Truncated => {
            start_stream(out)?;
            chunk(
                out,
                json!({ "choices": [{ "index": 0, "delta": { "content": "I was about to" } }] }),
            )
        }
        Answer::Malformed => {
            start_stream(out)?;
            out.write_all(b"data: {this is not json\n\n")
        }
    }
}

fn respond_status(
    out: &mut TcpStream,
    status: u16,
    retry_after: Option<u64>,
    message: &str,
) -> std::io::Result<()> {
    let body = json!({ "error": { "message": message, "type": "fake_error", "code": status } })
        .to_string();
    let retry = retry_after
        .map(|s| format!("retry-after: {s}\r\n"))
        .unwrap_or_default();
    write!(
        out,
        "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\n{retry}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn start_stream(out: &mut TcpStream) -> std::io::Result<()> {
    out.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n")
}

fn chunk(out: &mut TcpStream, value: Value) -> std::io::Result<()> {
    write!(out, "data: {value}\n\n")?;
    out.flush()?;
    std::thread::sleep(Duration::from_millis(2));
    Ok(())
}

fn finish_stream(out: &mut TcpStream, reason: &str) -> std::io::Result<()> {
    chunk(
        out,
        json!({ "choices": [{ "index": 0, "delta": {}, "finish_reason": reason }] }),
    )?;
    chunk(
        out,
        json!({ "choices": [], "usage": { "prompt_tokens": 21, "completion_tokens": 9, "total_tokens": 30 } }),
    )?;
    out.write_all(b"data: [DONE]\n\n")
}
