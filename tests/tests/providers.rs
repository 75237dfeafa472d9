//! Model providers end to end: the OpenAI, Anthropic and Gemini wire
//! formats through the gateway, provider keys, and what a provider's errors
//! (429 with Retry-After, 5xx, broken or malformed streams, 4xx) do to a run.

use std::io::Write;
use std::net::TcpListener;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use synatra_tests::fake_llm::{Answer, FakeLlm};
use synatra_tests::runs::{
    agent_config, config_for_fakes, kinds, publish, sse_events, start, start_on, start_thread,
    wait_for,
};

#[test]
fn rate_limits_server_errors_and_broken_streams_are_retried() {
    let fake = FakeLlm::start(vec![
        Answer::Status {
            status: 429,
            retry_after: Some(2),
        },
        Answer::Status {
            status: 503,
            retry_after: None,
        },
        Answer::Truncated,
        Answer::Malformed,
        Answer::Text("Finally.".into()),
    ]);
    let app = start();
    publish(&app, "patient", &agent_config(&fake, "m", json!({})));
    let id = start_thread(&app, "patient", "hi", "normal");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(fake.calls(), 5);
    // The 429 said `Retry-After: 2`. Ignoring it, the 50 ms backoff and the
    // 1 s sweep would call again within about 1.05 s.
    let received = fake.received();
    let gap = received[1].at.duration_since(received[0].at);
    assert!(
        gap >= Duration::from_secs(2),
        "the call after a 429 with Retry-After: 2 came {gap:?} later"
    );
    assert_eq!(kinds(&t), vec!["user", "assistant"]);
    assert_eq!(t["runs"][0]["steps"], 1, "failed attempts record no step");
}

#[test]
fn a_persistent_failure_fails_the_run_with_a_clear_error() {
    let fake = FakeLlm::start(vec![
        Answer::Status {
            status: 500,
            retry_after: None
        };
        6
    ]);
    let app = start();
    publish(&app, "doomed", &agent_config(&fake, "m", json!({})));
    let id = start_thread(&app, "doomed", "hi", "normal");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "failed");
    assert_eq!(fake.calls(), 6, "the first call and five retries");
    let error = t["runs"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("after 5 retries") && error.contains("500"),
        "{error}"
    );
    assert_eq!(kinds(&t).last().unwrap(), "error");

    let fake = FakeLlm::start(vec![Answer::Status {
        status: 401,
        retry_after: None,
    }]);
    let app = start();
    publish(&app, "rejected", &agent_config(&fake, "m", json!({})));
    let id = start_thread(&app, "rejected", "hi", "normal");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "failed");
    assert_eq!(fake.calls(), 1, "a rejected request is not retried");
    let error = t["runs"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("refused the credentials (HTTP 401)"),
        "{error}"
    );

    let fake = FakeLlm::start(vec![Answer::Status {
        status: 404,
        retry_after: None,
    }]);
    publish(
        &app,
        "unknown",
        &agent_config(&fake, "no-such-model", json!({})),
    );
    let id = start_thread(&app, "unknown", "hi", "normal");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    let error = t["runs"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("does not know this model or URL (HTTP 404)"),
        "{error}"
    );
    assert_eq!(fake.calls(), 1);
}

/// Publishes an `openai-compatible` agent calling `base_url` (no key goes
/// there), starts a thread and returns the run's error.
fn run_error(app: &synatra_tests::runs::App, slug: &str, base_url: &str) -> String {
    let config =
        json!({ "model": { "provider": "openai-compatible", "model": "m", "base_url": base_url } });
    publish(app, slug, &config);
    let id = start_thread(app, slug, "hi", "normal");
    let t = wait_for(app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "failed", "{t:#}");
    t["runs"][0]["error"].as_str().unwrap().to_string()
}

/// A local port that refuses connections while the returned socket lives:
/// bound and never listening, so no other process (a parallel test's host)
/// can be given the port meanwhile, as it could a port merely found free.
fn refusing_port() -> (OwnedFd, u16) {
    // SAFETY: plain socket calls on a descriptor this function owns, with
    // an address buffer of the size passed.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let socket = OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let at = &mut addr as *mut libc::sockaddr_in as *mut libc::sockaddr;
        assert_eq!(
            libc::bind(fd, at, len),
            0,
            "bind: {}",
            std::io::Error::last_os_error()
        );
        assert_eq!(libc::getsockname(fd, at, &mut len), 0, "getsockname");
        (socket, u16::from_be(addr.sin_port))
    }
}

/// A provider the gateway cannot reach fails the run saying why: a host it
/// may not call at once, naming the setting; a refused connection after
/// its retries (it may be a server restarting).
#[test]
fn unreachable_providers_fail_saying_what_happened_and_only_passing_failures_retry() {
    let app = start();
    // `localhost` is not `127.0.0.1`, the only local host the tests allow.
    let denied = run_error(&app, "denied", "http://localhost:9/v1");
    assert!(
        denied.starts_with("model call failed: the gateway may not connect to localhost:9")
            && denied.contains("LOCAL_LLM_HOST (now `127.0.0.1:*`"),
        "{denied}"
    );
    let (_refusing, port) = refusing_port();
    let refused = run_error(&app, "refused", &format!("http://127.0.0.1:{port}/v1"));
    assert!(
        refused.starts_with(&format!(
            "model call failed after 5 retries: connection to 127.0.0.1:{port} refused"
        )),
        "{refused}"
    );
}

/// A server on a free port that accepts connections and counts them; with
/// `answer` it writes that and closes, without it it never says a word.
fn counting_server(answer: Option<&'static [u8]>) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut silent = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            match answer {
                Some(bytes) => {
                    let _ = stream.write_all(bytes);
                }
                None => silent.push(stream),
            }
        }
    });
    (port, accepted)
}

/// The other ways a provider can be out of reach each say what happened,
/// and only a passing one is retried: a host name that does not resolve and
/// TLS with a plain-http server fail at once; a server that accepts and
/// never answers times out (the manifest's `outbound_timeout_ms` for the
/// gateway, here 300 ms) and is retried.
#[test]
fn unresolvable_hosts_tls_failures_and_silent_servers_each_say_what_happened() {
    let config = config_for_fakes().env("LOCAL_LLM_HOST", "*:*");
    let manifest = std::fs::read_to_string(&config.manifest).unwrap();
    let timeout = "outbound_timeout_ms = 120000";
    assert!(
        manifest.contains(timeout),
        "the gateway's model-call timeout"
    );
    let manifest = manifest.replace(timeout, "outbound_timeout_ms = 300");
    std::fs::write(&config.manifest, manifest).unwrap();
    let app = start_on(&config);

    let unresolved = run_error(&app, "dns", "http://no-such-host.invalid/v1");
    assert_eq!(
        unresolved,
        "model call failed: cannot resolve no-such-host.invalid: check the base URL's host name"
    );

    let (port, accepted) = counting_server(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"));
    let tls = run_error(&app, "tls", &format!("https://127.0.0.1:{port}/v1"));
    assert!(
        tls.starts_with(&format!(
            "model call failed: TLS with 127.0.0.1:{port} failed"
        )) && tls.contains("check that the URL's scheme (https or http) matches the server"),
        "{tls}"
    );
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "a TLS failure is not retried"
    );

    let (port, accepted) = counting_server(None);
    let silent = run_error(&app, "silent", &format!("http://127.0.0.1:{port}/v1"));
    assert_eq!(
        silent,
        format!("model call failed after 5 retries: 127.0.0.1:{port} did not answer in time")
    );
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        6,
        "the first call and five retries"
    );
}

/// Model calls share the host's kept-alive connection to a provider: two
/// threads, four calls (one answered 429) on one TCP connection; a stream
/// cut mid-body is never reused, so its retry opens the second connection.
/// `synatra_outbound_requests` counts both kinds. After 4 s idle a
/// connection is closed, so the next call opens a new one.
#[test]
fn model_calls_reuse_a_kept_alive_connection_until_it_breaks() {
    let fake = FakeLlm::start(vec![
        Answer::ToolCall {
            name: "add_numbers".into(),
            arguments: json!({ "numbers": [4, 5] }),
        },
        Answer::Status {
            status: 429,
            retry_after: None,
        },
        Answer::Text("Nine.".into()),
        Answer::Text("Again.".into()),
        Answer::Truncated,
        Answer::Text("After the cut.".into()),
        Answer::Text("After a pause.".into()),
    ]);
    let app = start();
    publish(&app, "adder", &agent_config(&fake, "m", json!({})));
    let answered = || {
        let id = start_thread(&app, "adder", "What is 4 + 5?", "normal");
        let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
        assert_eq!(t["status"], "completed", "{t:#}");
    };
    answered();
    answered();
    assert_eq!(fake.calls(), 4);
    assert_eq!(fake.connections(), 1, "every call went over one connection");
    answered();
    assert_eq!(fake.calls(), 6);
    assert_eq!(fake.connections(), 2, "the cut connection was not reused");
    // The host's metrics say the same.
    let requests = |connection: &str| {
        let series = format!("synatra_outbound_requests_total{{connection=\"{connection}\"}}");
        synatra_tests::metric(&app.host.admin, &series)
    };
    assert_eq!((requests("new"), requests("reused")), (2, 4));
    // An idle connection is kept 4 s (common servers close theirs at 5 s).
    std::thread::sleep(Duration::from_millis(4500));
    answered();
    assert_eq!((fake.calls(), fake.connections()), (7, 3));
    assert_eq!((requests("new"), requests("reused")), (3, 4));
}

/// Runs the tool-then-answer conversation against `provider`'s wire format.
fn tool_then_answer(provider: &str) -> (FakeLlm, Value, String) {
    let fake = FakeLlm::start(vec![
        Answer::ToolCall {
            name: "add_numbers".into(),
            arguments: json!({ "numbers": [4, 5] }),
        },
        Answer::Text("Four plus five is nine.".into()),
    ]);
    let app = start();
    let key = if provider == "anthropic" {
        "sk-ant-test"
    } else {
        "goog-test"
    };
    synatra_tests::runs::store_key(&app, provider, key, &fake.root_url());
    let config = json!({
        "model": { "provider": provider, "model": format!("{provider}-model"), "base_url": fake.root_url(), "max_output_tokens": 256 },
        "system_prompt": "You add numbers.",
        "tools": ["add_numbers"],
    });
    publish(&app, "adder", &config);
    let id = start_thread(&app, "adder", "What is 4 + 5?", "normal");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    // The streamed text, as a client sees it over Server-Sent Events.
    let events = app
        .owner
        .client
        .get(&format!("/api/v1/orgs/{}/threads/{id}/events", app.org));
    let tokens = sse_events(events.body.as_str().unwrap_or(""))
        .iter()
        .filter(|(_, e, _)| e == "token")
        .map(|(_, _, d)| d["text"].as_str().unwrap_or("").to_string())
        .collect();
    (fake, t, tokens)
}

fn header<'a>(r: &'a synatra_tests::fake_llm::Received, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn anthropic_messages_with_tool_use_end_to_end() {
    let (fake, t, tokens) = tool_then_answer("anthropic");
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(
        kinds(&t),
        vec!["user", "tool_call", "tool_result", "assistant"]
    );
    assert_eq!(t["messages"][2]["content"]["result"], json!({ "sum": 9.0 }));
    assert_eq!(tokens, "Four plus five is nine.");
    assert_eq!(t["runs"][0]["tokens_in"], 42);
    let r = fake.received();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].path, "/v1/messages");
    assert_eq!(header(&r[0], "x-api-key"), Some("sk-ant-test"));
    assert_eq!(header(&r[0], "anthropic-version"), Some("2023-06-01"));
    assert_eq!(r[0].body["system"], "You add numbers.");
    assert_eq!(r[0].body["max_tokens"], 256);
    let second = &r[1].body["messages"];
    assert_eq!(second[1]["content"][0]["type"], "tool_use");
    assert_eq!(second[2]["content"][0]["type"], "tool_result");
}

#[test]
fn google_gemini_with_function_calls_end_to_end() {
    let (fake, t, tokens) = tool_then_answer("google");
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(
        kinds(&t),
        vec!["user", "tool_call", "tool_result", "assistant"]
    );
    assert_eq!(tokens, "Four plus five is nine.");
    let r = fake.received();
    assert_eq!(r.len(), 2);
    assert_eq!(
        r[0].path,
        "/v1beta/models/google-model:streamGenerateContent?alt=sse"
    );
    assert_eq!(header(&r[0], "x-goog-api-key"), Some("goog-test"));
    assert_eq!(
        r[0].body["systemInstruction"]["parts"][0]["text"],
        "You add numbers."
    );
    assert_eq!(r[0].body["generationConfig"]["maxOutputTokens"], 256);
    let second = &r[1].body["contents"];
    assert_eq!(second[1]["parts"][0]["functionCall"]["name"], "add_numbers");
    assert_eq!(
        second[2]["parts"][0]["functionResponse"]["response"],
        json!({ "sum": 9.0 })
    );
}

#[test]
fn openai_compatible_server_needs_no_key() {
    let fake = FakeLlm::start(vec![Answer::Text("Local answer.".into())]);
    let app = synatra_tests::runs::start();
    let config = json!({ "model": { "provider": "openai-compatible", "model": "llama3", "base_url": fake.base_url(), "max_output_tokens": 64 } });
    publish(&app, "local", &config);
    let id = start_thread(&app, "local", "hi", "normal");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed", "{t:#}");
    let r = fake.received();
    assert_eq!(r[0].authorization, None);
    assert_eq!(r[0].body["max_tokens"], 64);
}

#[test]
fn a_missing_provider_key_fails_the_run_naming_the_variable() {
    let app = synatra_tests::runs::start();
    publish(
        &app,
        "keyless",
        &json!({ "model": { "provider": "anthropic", "model": "claude" } }),
    );
    let id = start_thread(&app, "keyless", "hi", "normal");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "failed");
    assert!(
        t["runs"][0]["error"]
            .as_str()
            .unwrap()
            .contains("ANTHROPIC_API_KEY"),
        "{t:#}"
    );
}
