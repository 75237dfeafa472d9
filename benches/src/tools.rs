//! Tool figures: a hello tool run through `POST /tools/{tool}/test`, in
//! JavaScript (API → tool-js sandbox, fresh Boa engine per call) and as a
//! WIT component (`examples/hello-tool`, API → host, fresh instance per
//! call), against the same function in Rust; calls/s at concurrency 8.

use std::time::{Duration, Instant};

use anyhow::Result;
use base64::Engine as _;
use serde_json::{json, Value};
use synatra_tests::{app_config, create_org, sign_up, Host, User};

use crate::{percentile, step};

/// Figures of one tool kind.
pub struct ToolRun {
    pub call_p50_us: f64,
    pub call_p99_us: f64,
    pub sandbox_p50_us: f64,
    pub sandbox_p99_us: f64,
    pub calls_per_s_8: f64,
}

/// Measured figures.
pub struct ToolFigures {
    pub javascript: ToolRun,
    pub wit: ToolRun,
    pub native_us: f64,
}

/// The hello tool, natively.
fn greet(params: &Value) -> Value {
    json!({ "greeting": format!("Hello, {}!", params["name"].as_str().unwrap_or_default()) })
}

/// Runs the tool benchmarks.
pub fn measure() -> Result<ToolFigures> {
    step(
        "tool calls: hello tool in JavaScript and as a WIT component vs native Rust, concurrency 8",
    );
    // Eight concurrent tests of one org: its limit (default 4) is raised.
    let host = Host::start(&app_config().env("MAX_TOOL_TESTS_PER_ORG", "8"));
    let owner = sign_up(&host, "bench");
    let org = create_org(&owner, "bench");
    let body = json!({ "params": { "name": "Ada" } });
    let javascript = json!({ "name": "greet_js", "params": { "type": "object" },
        "code": "return { greeting: 'Hello, ' + params.name + '!' };" });
    let wasm = std::fs::read(synatra_tests::wasm("hello_tool"))?;
    let wit = json!({ "name": "greet_wit", "params": { "type": "object" },
        "component": base64::engine::general_purpose::STANDARD.encode(wasm) });
    let javascript = measure_tool(&owner, &org, javascript, &body)?;
    let wit = measure_tool(&owner, &org, wit, &body)?;

    let n = 100_000;
    let started = Instant::now();
    let mut sink = 0usize;
    for _ in 0..n {
        sink += greet(std::hint::black_box(&body["params"]))
            .to_string()
            .len();
    }
    std::hint::black_box(sink);
    let native_us = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    Ok(ToolFigures {
        javascript,
        wit,
        native_us,
    })
}

/// Creates tool `def` and times `POST /tools/{tool}/test` sequentially, then
/// counts calls/s from 8 threads for 5 s.
fn measure_tool(owner: &User, org: &str, def: Value, body: &Value) -> Result<ToolRun> {
    let name = def["name"].as_str().unwrap_or_default().to_string();
    let created = owner.client.post(&format!("/api/v1/orgs/{org}/tools"), def);
    anyhow::ensure!(
        created.status == 201,
        "tool not created: {:?}",
        created.body
    );
    let path = format!("/api/v1/orgs/{org}/tools/{name}/test");
    let (mut calls, mut sandbox) = (Vec::new(), Vec::new());
    for i in 0..220 {
        let started = Instant::now();
        let r = owner.client.post(&path, body.clone());
        let elapsed = started.elapsed();
        anyhow::ensure!(r.body["ok"] == true, "tool failed: {:?}", r.body);
        anyhow::ensure!(
            r.body["result"]["greeting"] == "Hello, Ada!",
            "{:?}",
            r.body
        );
        if i >= 20 {
            calls.push(elapsed);
            sandbox.push(Duration::from_secs_f64(
                r.body["duration_ms"].as_f64().unwrap_or(0.0) / 1e3,
            ));
        }
    }
    calls.sort();
    sandbox.sort();

    let started = Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let client = owner.client.clone();
            let (path, body) = (path.clone(), body.clone());
            std::thread::spawn(move || {
                let mut done = 0u32;
                while started.elapsed() < Duration::from_secs(5) {
                    if client.post(&path, body.clone()).body["ok"] == true {
                        done += 1;
                    }
                }
                done
            })
        })
        .collect();
    let total: u32 = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    Ok(ToolRun {
        call_p50_us: percentile(&calls, 0.5),
        call_p99_us: percentile(&calls, 0.99),
        sandbox_p50_us: percentile(&sandbox, 0.5),
        sandbox_p99_us: percentile(&sandbox, 0.99),
        calls_per_s_8: f64::from(total) / started.elapsed().as_secs_f64(),
    })
}
