//! Section 6, load: simulated users, each in an org of their own, for a fixed
//! window against the fake provider. A user signs in, then three times:
//! starts a thread whose agent calls a tool held for approval, follows the
//! thread's events until the approval appears, approves, and follows the
//! events until the run ends; then signs in again. Every answer must be
//! the expected one (the error count must be 0). The health route, called
//! once per thread, is the baseline of the latency ratios.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use serde_json::{json, Value};
use synatra_tests::fake_llm::{tool_results, Answer, FakeLlm};
use synatra_tests::runs::{allow_model_url, config_for_fakes};
use synatra_tests::{create_org, sign_up, Client, Host, User};

use crate::step;

/// Simulated users and how long they work.
pub const USERS: usize = 200;
pub const WINDOW: Duration = Duration::from_secs(60);

const PASSWORD: &str = "correct horse battery";

/// What the window produced.
pub struct LoadFigures {
    pub requests: usize,
    pub threads: usize,
    pub errors: usize,
    /// Up to five error descriptions.
    pub samples: Vec<String>,
    pub secs: f64,
    /// Route → (count, p50 ms, p99 ms).
    pub routes: BTreeMap<&'static str, (usize, f64, f64)>,
}

/// One user's timings and errors.
#[derive(Default)]
struct Tally {
    times: Vec<(&'static str, Duration)>,
    threads: usize,
    errors: Vec<String>,
}

impl Tally {
    /// Times `f`, which answers whether the reply was the expected one.
    fn time<T>(&mut self, route: &'static str, f: impl FnOnce() -> (bool, T, String)) -> Option<T> {
        let started = Instant::now();
        let (ok, value, shown) = f();
        self.times.push((route, started.elapsed()));
        if ok {
            Some(value)
        } else {
            self.errors.push(format!("{route}: {shown}"));
            None
        }
    }
}

/// Sets up the users and runs the window.
pub fn measure() -> Result<LoadFigures> {
    let fake = FakeLlm::start_instant(|body| {
        if tool_results(body) == 0 {
            Answer::ToolCall {
                name: "approve_me".into(),
                arguments: json!({}),
            }
        } else {
            Answer::Text("approved and done".into())
        }
    });
    let config = config_for_fakes()
        .env("SIGNUP_LIMIT_PER_HOUR", "100000")
        .env("RUST_LOG", "warn");
    let host = Host::start(&config);

    step(&format!(
        "load: signing up {USERS} users, each with an org, a held tool and an agent"
    ));
    let users: Vec<(User, String)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let (host, fake) = (&host, &fake);
                s.spawn(move || {
                    (w..USERS)
                        .step_by(8)
                        .map(|_| set_up_user(host, fake))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|h| h.join().expect("setup thread"))
            .collect()
    });

    step(&format!("load: {USERS} users for {} s", WINDOW.as_secs()));
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let workers: Vec<_> = users
            .iter()
            .map(|(user, org)| {
                let stop = &stop;
                s.spawn(move || work(user, org, stop))
            })
            .collect();
        std::thread::sleep(WINDOW);
        stop.store(true, Ordering::Relaxed);
        workers
            .into_iter()
            .map(|h| h.join().expect("user thread"))
            .collect()
    });
    let secs = started.elapsed().as_secs_f64();

    let mut by_route: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
    let (mut threads, mut errors) = (0, Vec::new());
    for t in tallies {
        threads += t.threads;
        errors.extend(t.errors);
        for (route, d) in t.times {
            by_route.entry(route).or_default().push(d);
        }
    }
    let requests = by_route.values().map(Vec::len).sum();
    let routes = by_route
        .into_iter()
        .map(|(route, mut times)| {
            times.sort();
            let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
            (route, (times.len(), at(0.5), at(0.99)))
        })
        .collect();
    Ok(LoadFigures {
        requests,
        threads,
        errors: errors.len(),
        samples: errors.into_iter().take(5).collect(),
        secs,
        routes,
    })
}

/// A user with an org of their own, an approval-held tool and an agent
/// calling it on `fake`.
fn set_up_user(host: &Host, fake: &FakeLlm) -> (User, String) {
    let user = sign_up(host, "load");
    let org = create_org(&user, "load");
    let c = &user.client;
    let tool = json!({ "name": "approve_me", "params": { "type": "object" }, "code": "return 1;",
                       "approval": { "policy": "any-member" } });
    let r = c.post(&format!("/api/v1/orgs/{org}/tools"), tool);
    assert_eq!(r.status, 201, "{:?}", r.body);
    allow_model_url(c, &org, "openai", &fake.base_url());
    let agents = format!("/api/v1/orgs/{org}/agents");
    let r = c.post(&agents, json!({ "slug": "held", "name": "held" }));
    assert_eq!(r.status, 201, "{:?}", r.body);
    let config = json!({ "config": {
        "model": { "provider": "openai", "model": "load", "base_url": fake.base_url() },
        "tools": ["approve_me"],
    } });
    let r = c.send("PUT", &format!("{agents}/held/working-copy"), Some(&config));
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = c.post(
        &format!("{agents}/held/releases"),
        json!({ "bump": "patch" }),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    (user, org)
}

/// One user's loop until `stop`.
fn work(user: &User, org: &str, stop: &AtomicBool) -> Tally {
    let c: &Client = &user.client;
    let mut tally = Tally::default();
    let mut done = 0usize;
    while !stop.load(Ordering::Relaxed) {
        if done.is_multiple_of(3) {
            let body = json!({ "email": user.email, "password": PASSWORD });
            let signed_in = tally.time("POST /auth/login", || {
                let r = c.post("/api/v1/auth/login", body);
                (r.status == 200, (), format!("{} {}", r.status, r.body))
            });
            if signed_in.is_none() {
                break;
            }
        }
        if one_thread(c, org, &mut tally).is_none() {
            break;
        }
        tally.threads += 1;
        done += 1;
    }
    tally
}

/// A thread from start to end; None after an error.
fn one_thread(c: &Client, org: &str, tally: &mut Tally) -> Option<()> {
    tally.time("GET /health", || {
        let r = c.get("/api/v1/health");
        (r.status == 200, (), format!("{} {}", r.status, r.body))
    })?;
    let id = tally.time("POST /threads", || {
        let r = c.post(
            &format!("/api/v1/orgs/{org}/threads"),
            json!({ "agent": "held", "message": "go" }),
        );
        let id = r.body["thread"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (r.status == 201, id, format!("{} {}", r.status, r.body))
    })?;
    let events = format!("/api/v1/orgs/{org}/threads/{id}/events");
    let (approval, last) = tally.time("GET /events (until approval)", || {
        let mut approval = None;
        let (status, last) = c.read_events(&events, |event, data: &Value| {
            if event == "message" && data["kind"] == "approval" {
                approval = data["content"]["id"].as_str().map(str::to_string);
            }
            approval.is_some()
        });
        let ok = status == 200 && approval.is_some();
        (
            ok,
            (approval.unwrap_or_default(), last),
            format!("{status}, no approval"),
        )
    })?;
    tally.time("POST /approvals/{id}/approve", || {
        let r = c.post(
            &format!("/api/v1/orgs/{org}/approvals/{approval}/approve"),
            json!({}),
        );
        (r.status == 200, (), format!("{} {}", r.status, r.body))
    })?;
    let after = last.map_or(String::new(), |l| format!("?after={l}"));
    tally.time("GET /events (until the end)", || {
        let (mut completed, mut seen) = (false, Vec::new());
        let (status, _) = c.read_events(&format!("{events}{after}"), |event, data: &Value| {
            completed |= event == "run" && data["status"] == "completed";
            seen.push(format!("{event} {data}"));
            event == "end"
        });
        let shown = format!("{status}, run not completed; events: {}", seen.join(" | "));
        (status == 200 && completed, (), shown)
    })
}

/// Prints the figures.
pub fn report(f: &LoadFigures) -> Result<()> {
    println!();
    println!(
        "== load: {USERS} users (one org each) for {:.0} s: sign in, thread, events, approve, events ==",
        f.secs
    );
    println!(
        "{} requests ({:.0}/s), {} threads completed ({:.1}/s), errors: {}",
        f.requests,
        f.requests as f64 / f.secs,
        f.threads,
        f.threads as f64 / f.secs,
        f.errors
    );
    for s in &f.samples {
        println!("  error: {s}");
    }
    let base = f.routes.get("GET /health").map_or(1.0, |r| r.1.max(1e-3));
    println!(
        "{:<32} {:>8} {:>10} {:>10} {:>14}",
        "route", "count", "p50 ms", "p99 ms", "p50 / health"
    );
    for (route, (n, p50, p99)) in &f.routes {
        println!(
            "{route:<32} {n:>8} {p50:>10.1} {p99:>10.1} {:>13.1}x",
            p50 / base
        );
    }
    ensure!(f.threads > 0, "no thread completed");
    Ok(())
}
