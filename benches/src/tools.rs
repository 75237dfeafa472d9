//! JavaScript tool figures: a hello tool run through `POST /tools/{tool}/test`
//! (API → tool-js sandbox, fresh Boa engine per call) against the same
//! function written in Rust, and concurrent tool calls/s at concurrency 8.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{json, Value};
use synatra_tests::{create_org, sign_up, start_app};

use crate::{percentile, step};

/// Measured figures.
pub struct ToolFigures {
    pub call_p50_us: f64,
    pub call_p99_us: f64,
    pub sandbox_p50_us: f64,
    pub sandbox_p99_us: f64,
    pub native_us: f64,
    pub calls_per_s_8: f64,
}

/// The hello tool, natively.
fn greet(params: &Value) -> Value {
    json!({ "greeting": format!("hi {}", params["name"].as_str().unwrap_or_default()) })
}

/// Runs the tool benchmarks.
pub fn measure() -> Result<ToolFigures> {
    step("JavaScript tool calls: hello tool vs native Rust, concurrency 8");
    let host = start_app();
    let owner = sign_up(&host, "bench");
    let org = create_org(&owner, "bench");
    let def = json!({ "name": "greet", "params": { "type": "object" }, "code": "return { greeting: 'hi ' + params.name };" });
    anyhow::ensure!(
        owner
            .client
            .post(&format!("/api/v1/orgs/{org}/tools"), def)
            .status
            == 201,
        "tool not created"
    );
    let path = format!("/api/v1/orgs/{org}/tools/greet/test");
    let body = json!({ "params": { "name": "Ada" } });
    let (mut calls, mut sandbox) = (Vec::new(), Vec::new());
    for i in 0..220 {
        let started = Instant::now();
        let r = owner.client.post(&path, body.clone());
        let elapsed = started.elapsed();
        anyhow::ensure!(r.body["ok"] == true, "tool failed: {:?}", r.body);
        if i >= 20 {
            calls.push(elapsed);
            sandbox.push(Duration::from_secs_f64(
                r.body["duration_ms"].as_f64().unwrap_or(0.0) / 1e3,
            ));
        }
    }
    calls.sort();
    sandbox.sort();

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
    let calls_per_s_8 = f64::from(total) / started.elapsed().as_secs_f64();

    Ok(ToolFigures {
        call_p50_us: percentile(&calls, 0.5),
        call_p99_us: percentile(&calls, 0.99),
        sandbox_p50_us: percentile(&sandbox, 0.5),
        sandbox_p99_us: percentile(&sandbox, 0.99),
        native_us,
        calls_per_s_8,
    })
}
