//! A local fake LLM provider speaking the real wire formats of OpenAI Chat
//! Completions, Anthropic Messages and Google Gemini `streamGenerateContent`
//! (SSE streaming, tool calls, usage, error bodies, Retry-After), with a
//! script of answers (or a responder) and a log of every request. Like the
//! real providers it keeps connections alive (streams are chunked), so
//! connection reuse is observable (`connections`).

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
    /// Several tool calls in one streamed answer (OpenAI wire).
    ToolCalls(Vec<(String, Value)>),
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
    /// A text answer streamed a word at a time, one word per interval
    /// (OpenAI wire): a long call that keeps making progress.
    Trickle(Duration, String),
}

/// A received request.
#[derive(Debug, Clone)]
pub struct Received {
    pub body: Value,
    /// Request line path, e.g. `/v1/messages`.
    pub path: String,
    /// Lower-cased request headers.
    pub headers: Vec<(String, String)>,
    pub authorization: Option<String>,
    pub at: Instant,
    /// Wall-clock arrival time, comparable with database timestamps.
    pub wall: std::time::SystemTime,
}

/// Computes an answer from the request body (instead of a script).
pub type Responder = Box<dyn Fn(&Value) -> Answer + Send>;

struct State {
    script: VecDeque<Answer>,
    responder: Option<Responder>,
    received: Vec<Received>,
    /// Pause after each streamed chunk, so streaming is observable.
    chunk_gap: Duration,
    /// TCP connections accepted.
    connections: usize,
}

impl Default for State {
    fn default() -> Self {
        State {
            script: VecDeque::new(),
            responder: None,
            received: Vec::new(),
            chunk_gap: Duration::from_millis(2),
            connections: 0,
        }
    }
}

/// A response being written, with the pause after each streamed chunk.
struct Out {
    stream: TcpStream,
    gap: Duration,
    /// Whether writes are framed as HTTP/1.1 chunks (a stream's body).
    chunked: bool,
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.chunked || buf.is_empty() {
            return self.stream.write(buf);
        }
        let mut framed = format!("{:x}\r\n", buf.len()).into_bytes();
        framed.extend_from_slice(buf);
        framed.extend_from_slice(b"\r\n");
        self.stream.write_all(&framed)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

/// The running fake.
pub struct FakeLlm {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl FakeLlm {
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

    /// Like [`Self::start_with`], streaming without pauses (as fast as a
    /// provider could answer), for benchmarks of the platform's own time.
    pub fn start_instant(responder: impl Fn(&Value) -> Answer + Send + 'static) -> Self {
        Self::launch(State {
            responder: Some(Box::new(responder)),
            chunk_gap: Duration::ZERO,
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
                state.lock().unwrap().connections += 1;
                std::thread::spawn(move || {
                    let _ = serve(stream, &state);
                });
            }
        });
        Self { port, state }
    }

    /// `http://127.0.0.1:<port>/v1`: an OpenAI-style `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// `http://127.0.0.1:<port>`: an Anthropic or Google `base_url`.
    pub fn root_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// The `model` each request asked for, in order.
    pub fn models(&self) -> Vec<String> {
        self.received()
            .iter()
            .map(|r| r.body["model"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// TCP connections accepted so far (a kept-alive connection serves
    /// several requests).
    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    /// Number of requests received.
    pub fn calls(&self) -> usize {
        self.state.lock().unwrap().received.len()
    }

    /// Waits until at least `n` requests arrived; panics after 30 s, so a
    /// regression fails the test instead of hanging the suite.
    pub fn wait_for_calls(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.calls() < n {
            assert!(
                Instant::now() < deadline,
                "the fake received {} requests, not {n}, in 30 s",
                self.calls()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Adds answers to the end of the script.
    pub fn push(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.lock().unwrap().script.extend(answers);
    }
}

/// Serves the requests of one connection until the client closes it or an
/// answer cuts it.
fn serve(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    // As a provider would: a streamed chunk goes out at once (without it,
    // Nagle's algorithm holds a chunk until the previous one is acknowledged).
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    while serve_one(&mut reader, &stream, state)? {}
    Ok(())
}

/// Serves one request; whether the connection stays open for another.
fn serve_one(
    reader: &mut BufReader<TcpStream>,
    stream: &TcpStream,
    state: &Mutex<State>,
) -> std::io::Result<bool> {
    let gap = state.lock().unwrap().chunk_gap;
    let mut length = 0usize;
    let mut chunked = false;
    let mut authorization = None;
    let mut headers = Vec::new();
    let mut request_line = String::new();
    if reader.read_line(&mut request_line)? == 0 {
        return Ok(false);
    }
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().unwrap_or(0),
                "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
                "authorization" => authorization = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    let body = if chunked {
        read_chunked(reader)?
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
            path: request_line.split(' ').nth(1).unwrap_or("").to_string(),
            headers,
            authorization,
            at: Instant::now(),
            wall: std::time::SystemTime::now(),
        });
        answer
    };
    let mut out = Out {
        stream: stream.try_clone()?,
        gap,
        chunked: false,
    };
    let wire = if request_line.starts_with("POST /v1/chat/completions") {
        Wire::OpenAi
    } else if request_line.starts_with("POST /v1/messages") {
        Wire::Anthropic
    } else if request_line.starts_with("POST /v1beta/models/")
        && request_line.contains(":streamGenerateContent")
    {
        Wire::Google
    } else {
        respond_status(&mut out, 404, None, "unknown endpoint")?;
        return Ok(true);
    };
    let Some(answer) = answer else {
        respond_status(&mut out, 500, None, "the fake has no scripted answer left")?;
        return Ok(true);
    };
    let cut = cuts_the_connection(&answer);
    answer_with(&mut out, wire, answer)?;
    if cut {
        return Ok(false);
    }
    if out.chunked {
        out.chunked = false;
        out.write_all(b"0\r\n\r\n")?;
    }
    Ok(true)
}

/// Whether `answer` ends by closing the connection mid-body.
fn cuts_the_connection(answer: &Answer) -> bool {
    match answer {
        Answer::Truncated => true,
        Answer::Delayed(_, inner) => cuts_the_connection(inner),
        _ => false,
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

/// The wire format a request asked for.
#[derive(Debug, Clone, Copy)]
enum Wire {
    OpenAi,
    Anthropic,
    Google,
}

/// A tool call id unique within the test process, as providers' ids are.
fn call_id() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("call_{}_{n}", std::process::id())
}

/// Tool results in a request of any wire format: which model turn it is.
pub fn tool_results(body: &Value) -> usize {
    let openai_or_anthropic = body["messages"].as_array().into_iter().flatten().map(|m| {
        if m["role"] == "tool" {
            return 1;
        }
        m["content"].as_array().map_or(0, |c| {
            c.iter().filter(|b| b["type"] == "tool_result").count()
        })
    });
    let google = body["contents"].as_array().into_iter().flatten().map(|c| {
        c["parts"].as_array().map_or(0, |p| {
            p.iter()
                .filter(|p| p.get("functionResponse").is_some())
                .count()
        })
    });
    openai_or_anthropic.chain(google).sum()
}

fn answer_with(out: &mut Out, wire: Wire, answer: Answer) -> std::io::Result<()> {
    match answer {
        Answer::Delayed(d, inner) => {
            std::thread::sleep(d);
            answer_with(out, wire, *inner)
        }
        Answer::Status {
            status,
            retry_after,
        } => respond_status(out, status, retry_after, "scripted error"),
        Answer::Trickle(every, text) => {
            start_stream(out)?;
            for piece in text.split_inclusive(' ') {
                chunk(
                    out,
                    json!({ "choices": [{ "index": 0, "delta": { "content": piece } }] }),
                )?;
                std::thread::sleep(every);
            }
            openai_finish(out, "stop")
        }
        Answer::Text(text) => {
            start_stream(out)?;
            let pieces: Vec<&str> = text.split_inclusive(' ').collect();
            match wire {
                Wire::OpenAi => {
                    for piece in pieces {
                        chunk(
                            out,
                            json!({ "choices": [{ "index": 0, "delta": { "content": piece } }] }),
                        )?;
                    }
                    openai_finish(out, "stop")
                }
                Wire::Anthropic => {
                    anthropic_start(out)?;
                    chunk(
                        out,
                        json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } }),
                    )?;
                    for piece in pieces {
                        chunk(
                            out,
                            json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": piece } }),
                        )?;
                    }
                    chunk(out, json!({ "type": "content_block_stop", "index": 0 }))?;
                    anthropic_finish(out, "end_turn")
                }
                Wire::Google => {
                    let n = pieces.len();
                    for (i, piece) in pieces.into_iter().enumerate() {
                        let mut c = json!({ "candidates": [{ "content": { "role": "model", "parts": [{ "text": piece }] } }] });
                        if i + 1 == n {
                            c["candidates"][0]["finishReason"] = json!("STOP");
                            c["usageMetadata"] =
                                json!({ "promptTokenCount": 21, "candidatesTokenCount": 9 });
                        }
                        chunk(out, c)?;
                    }
                    Ok(())
                }
            }
        }
        Answer::ToolCall { name, arguments } => {
            start_stream(out)?;
            let args = arguments.to_string();
            let (a, b) = args.split_at(args.len() / 2);
            let id = call_id();
            match wire {
                Wire::OpenAi => {
                    chunk(
                        out,
                        json!({ "choices": [{ "index": 0, "delta": { "tool_calls": [{ "index": 0, "id": id, "type": "function", "function": { "name": name, "arguments": a } }] } }] }),
                    )?;
                    chunk(
                        out,
                        json!({ "choices": [{ "index": 0, "delta": { "tool_calls": [{ "index": 0, "function": { "arguments": b } }] } }] }),
                    )?;
                    openai_finish(out, "tool_calls")
                }
                Wire::Anthropic => {
                    anthropic_start(out)?;
                    chunk(
                        out,
                        json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "tool_use", "id": id, "name": name, "input": {} } }),
                    )?;
                    chunk(
                        out,
                        json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "input_json_delta", "partial_json": a } }),
                    )?;
                    chunk(
                        out,
                        json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "input_json_delta", "partial_json": b } }),
                    )?;
                    chunk(out, json!({ "type": "content_block_stop", "index": 0 }))?;
                    anthropic_finish(out, "tool_use")
                }
                Wire::Google => chunk(
                    out,
                    json!({
                        "candidates": [{ "content": { "role": "model", "parts": [{ "functionCall": { "name": name, "args": arguments } }] }, "finishReason": "STOP" }],
                        "usageMetadata": { "promptTokenCount": 21, "candidatesTokenCount": 9 },
                    }),
                ),
            }
        }
        Answer::ToolCalls(calls) => {
            assert!(
                matches!(wire, Wire::OpenAi),
                "ToolCalls is scripted for the OpenAI wire"
            );
            start_stream(out)?;
            for (i, (name, arguments)) in calls.iter().enumerate() {
                chunk(
                    out,
                    json!({ "choices": [{ "index": 0, "delta": { "tool_calls": [{ "index": i, "id": call_id(), "type": "function", "function": { "name": name, "arguments": arguments.to_string() } }] } }] }),
                )?;
            }
            openai_finish(out, "tool_calls")
        }
        Answer::Truncated => {
            start_stream(out)?;
            match wire {
                Wire::OpenAi => chunk(
                    out,
                    json!({ "choices": [{ "index": 0, "delta": { "content": "I was about to" } }] }),
                ),
                Wire::Anthropic => anthropic_start(out),
                Wire::Google => chunk(
                    out,
                    json!({ "candidates": [{ "content": { "parts": [{ "text": "I was" }] } }] }),
                ),
            }
        }
        Answer::Malformed => {
            start_stream(out)?;
            out.write_all(b"data: {this is not json\n\n")
        }
    }
}

fn anthropic_start(out: &mut Out) -> std::io::Result<()> {
    chunk(
        out,
        json!({ "type": "message_start", "message": { "id": "msg_fake", "type": "message", "role": "assistant", "content": [], "usage": { "input_tokens": 21, "output_tokens": 1 } } }),
    )?;
    chunk(out, json!({ "type": "ping" }))
}

fn anthropic_finish(out: &mut Out, reason: &str) -> std::io::Result<()> {
    chunk(
        out,
        json!({ "type": "message_delta", "delta": { "stop_reason": reason }, "usage": { "output_tokens": 9 } }),
    )?;
    chunk(out, json!({ "type": "message_stop" }))
}

fn respond_status(
    out: &mut Out,
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
        "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\n{retry}content-length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn start_stream(out: &mut Out) -> std::io::Result<()> {
    out.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")?;
    out.chunked = true;
    Ok(())
}

fn chunk(out: &mut Out, value: Value) -> std::io::Result<()> {
    // One write, so one HTTP chunk per event.
    out.write_all(format!("data: {value}\n\n").as_bytes())?;
    out.flush()?;
    if !out.gap.is_zero() {
        std::thread::sleep(out.gap);
    }
    Ok(())
}

fn openai_finish(out: &mut Out, reason: &str) -> std::io::Result<()> {
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
