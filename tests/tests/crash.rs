//! Crashes: kill -9 the host during model calls and between steps, restart
//! it, and check that every run completes with each step recorded exactly
//! once and no model call repeated for a step already recorded. Two hosts on
//! one database never execute the same step twice.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use synatra_tests::fake_llm::{Answer, FakeLlm, Received};
use synatra_tests::runs::{
    agent_config, agent_with_tools, config_for_fakes, create_tool, kinds, publish, start_on,
    start_thread, wait_for,
};
use synatra_tests::{psql, Host};

/// Tool results already in the request: which model turn this is.
fn turn(body: &Value) -> usize {
    body["messages"]
        .as_array()
        .map_or(0, |m| m.iter().filter(|m| m["role"] == "tool").count())
}

/// Calls `add_numbers` for `turns` turns, then answers; waits `delay(turn)` first.
fn responder(
    turns: usize,
    delay: impl Fn(usize) -> Duration + Send + 'static,
) -> impl Fn(&Value) -> Answer + Send {
    move |body| {
        let t = turn(body);
        let answer = if t < turns {
            Answer::ToolCall {
                name: "add_numbers".into(),
                arguments: json!({ "numbers": [t, 1] }),
            }
        } else {
            Answer::Text("All done.".into())
        };
        Answer::Delayed(delay(t), Box::new(answer))
    }
}

/// A cheap pseudo-random number in `0..n` (test timing only).
fn jitter(n: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    (nanos / 1000) % n.max(1)
}

/// Per model step of the run: (iteration, recorded_at in ms since the epoch).
fn recorded_llm_steps(db: &str, thread: &str) -> Vec<(usize, f64)> {
    psql(
        db,
        &format!(
            "SELECT (s.input->>'iteration') || ' ' || (extract(epoch FROM s.recorded_at) * 1000)::text
             FROM run_steps s JOIN runs r ON r.id = s.run_id
             WHERE r.thread_id = '{thread}' AND s.kind = 'llm' ORDER BY s.seq"
        ),
    )
    .lines()
    .map(|l| {
        let (i, t) = l.split_once(' ').unwrap();
        (i.parse().unwrap(), t.parse().unwrap())
    })
    .collect()
}

/// Requests the fake received for a turn whose step was already recorded.
fn repeated_calls(received: &[Received], steps: &[(usize, f64)]) -> Vec<String> {
    received
        .iter()
        .filter_map(|r| {
            let t = turn(&r.body);
            let at = r.wall.duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0;
            steps
                .iter()
                .find(|(i, recorded)| *i == t && *recorded < at)
                .map(|(_, recorded)| {
                    format!("turn {t} called at {at:.0} after being recorded at {recorded:.0}")
                })
        })
        .collect()
}

/// `(steps recorded, highest seq)` of a thread's runs: no gaps means
/// `highest seq = steps - 1`. A seq cannot be recorded twice (it is the
/// primary key); a step repeated under another seq shows in the thread's
/// messages and the model calls, which the tests count.
fn step_summary(db: &str, thread: &str) -> (i64, i64) {
    let row = psql(
        db,
        &format!(
            "SELECT count(*) || ' ' || coalesce(max(s.seq), -1)
             FROM run_steps s JOIN runs r ON r.id = s.run_id WHERE r.thread_id = '{thread}'"
        ),
    );
    let v: Vec<i64> = row.split(' ').map(|x| x.parse().unwrap()).collect();
    (v[0], v[1])
}

#[test]
fn kill_during_a_model_call_then_restart_completes_without_repeats() {
    let first = Arc::new(AtomicUsize::new(0));
    let seen = first.clone();
    let fake = FakeLlm::start_with(responder(1, move |_| {
        // The very first call hangs long enough to kill the host under it.
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            Duration::from_secs(3)
        } else {
            Duration::ZERO
        }
    }));
    let config = config_for_fakes().env("SYNATRA_RUN_LEASE_SECS", "1");
    let mut app = start_on(&config);
    publish(&app, "adder", &agent_config(&fake, "m", json!({})));
    let id = start_thread(&app, "adder", "add", "normal");
    fake.wait_for_calls(1);
    app.crash_and_restart(&config);
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(
        kinds(&t),
        vec!["user", "tool_call", "tool_result", "assistant"]
    );
    assert_eq!(step_summary(&app.host.database_url, &id), (3, 2));
    assert_eq!(
        fake.calls(),
        3,
        "the interrupted call, its retry, the final turn"
    );
    let steps = recorded_llm_steps(&app.host.database_url, &id);
    assert_eq!(
        repeated_calls(&fake.received(), &steps),
        Vec::<String>::new()
    );
}

#[test]
fn twenty_random_kill9s_lose_and_duplicate_nothing() {
    const TURNS: usize = 60;
    let fake = FakeLlm::start_with(responder(TURNS, |_| {
        Duration::from_millis(30 + jitter(150))
    }));
    let config = config_for_fakes().env("SYNATRA_RUN_LEASE_SECS", "1");
    let mut app = start_on(&config);
    publish(
        &app,
        "marathon",
        &agent_config(&fake, "m", json!({ "max_iterations": 100 })),
    );
    let id = start_thread(&app, "marathon", "keep adding", "normal");
    let mut kills_mid_run = 0;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(150 + jitter(700)));
        let status = synatra_tests::runs::thread(&app, &id)["status"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if status == "active" {
            kills_mid_run += 1;
        }
        app.crash_and_restart(&config);
    }
    let t = wait_for(
        &app,
        &id,
        &["completed", "failed"],
        Duration::from_secs(120),
    );
    assert_eq!(t["status"], "completed", "{t:#}");
    let db = &app.host.database_url;
    let steps = 2 * TURNS as i64 + 1;
    assert_eq!(
        step_summary(db, &id),
        (steps, steps - 1),
        "every step recorded, no gaps"
    );
    let k = kinds(&t);
    assert_eq!(k.iter().filter(|k| *k == "tool_call").count(), TURNS);
    assert_eq!(k.iter().filter(|k| *k == "tool_result").count(), TURNS);
    assert_eq!(k.iter().filter(|k| *k == "assistant").count(), 1);
    let llm_steps = recorded_llm_steps(db, &id);
    let repeats = repeated_calls(&fake.received(), &llm_steps);
    let lost = fake.calls() - llm_steps.len();
    eprintln!(
        "20 kill -9s ({kills_mid_run} while the run was active): {} steps recorded, {} model calls, {lost} lost to kills and retried, {} repeated after recording",
        steps,
        fake.calls(),
        repeats.len()
    );
    assert!(
        repeats.is_empty(),
        "model called again for recorded steps: {repeats:#?}"
    );
    // A kill loses at most the one model call in flight.
    assert!(
        lost <= 20,
        "{lost} model calls lost to 20 kills: some were repeated"
    );
    assert!(
        kills_mid_run >= 10,
        "most kills should land mid-run ({kills_mid_run})"
    );
    // Usage is counted once per recorded step, never for lost calls.
    assert_eq!(t["runs"][0]["tokens_in"], 21 * llm_steps.len() as i64);
}

#[test]
fn two_hosts_on_one_database_never_run_a_step_twice() {
    // Model calls outlast the 1 s lease, so each host's claims race the
    // other's renewals: a call in flight must never be taken over.
    let fake = FakeLlm::start_with(responder(1, |_| Duration::from_millis(200 + jitter(1300))));
    let config = config_for_fakes().env("SYNATRA_RUN_LEASE_SECS", "1");
    let app = start_on(&config);
    let mut second_config = config_for_fakes().env("SYNATRA_RUN_LEASE_SECS", "1");
    second_config.database_url = app.host.database_url.clone();
    let second = Host::start(&second_config);
    publish(&app, "shared", &agent_config(&fake, "m", json!({})));
    let ids: Vec<String> = (0..16)
        .map(|i| start_thread(&app, "shared", &format!("job {i}"), "normal"))
        .collect();
    for id in &ids {
        let t = wait_for(&app, id, &["completed", "failed"], Duration::from_secs(60));
        assert_eq!(t["status"], "completed", "{t:#}");
        assert_eq!(step_summary(&app.host.database_url, id), (3, 2));
    }
    assert_eq!(fake.calls(), 32, "two model calls per run, none duplicated");
    let advanced = |h: &Host| h.log().matches("run advanced").count();
    let (first, other) = (advanced(&app.host), advanced(&second));
    eprintln!("advances: first host {first}, second host {other}");
    assert!(
        first > 0 && other > 0,
        "both hosts must share the work (first {first}, second {other})"
    );
}

#[test]
fn a_durable_timer_survives_a_kill9_and_fires_on_time() {
    let fake = FakeLlm::start(vec![
        Answer::ToolCall {
            name: "wait".into(),
            arguments: json!({ "seconds": 2 }),
        },
        Answer::Text("Rested.".into()),
    ]);
    let config = config_for_fakes().env("SYNATRA_RUN_LEASE_SECS", "1");
    let mut app = start_on(&config);
    publish(&app, "sleeper", &agent_with_tools(&fake, &["wait"]));
    let id = start_thread(&app, "sleeper", "rest a bit", "normal");
    let db = app.host.database_url.clone();
    // Kill the host while the run sleeps on its timer.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while psql(
        &db,
        &format!("SELECT count(*) FROM runs WHERE thread_id = '{id}' AND status = 'waiting'"),
    ) != "1"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never started waiting"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    app.crash_and_restart(&config);
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(
        kinds(&t),
        vec!["user", "tool_call", "tool_result", "assistant"]
    );
    let until: f64 = psql(
        &db,
        &format!("SELECT s.output->>'until_ms' FROM run_steps s JOIN runs r ON r.id = s.run_id WHERE r.thread_id = '{id}' AND s.kind = 'wait'"),
    )
    .parse()
    .unwrap();
    let resumed = fake.received()[1]
        .wall
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0;
    assert!(
        resumed >= until,
        "the run resumed before its timer: {resumed} < {until}"
    );
    // Nor late: due runs are swept every second; the restart is done by then.
    assert!(
        resumed - until < 10_000.0,
        "the run resumed {} ms after its timer",
        resumed - until
    );
    assert_eq!(fake.calls(), 2);
    assert_eq!(step_summary(&db, &id), (4, 3));
}

/// A run whose step fails every time (here: the approval it waits on was
/// deleted behind its back) is failed on its fifth crash, with the last
/// error, by the host's dispatcher and by the API's inline advancer alike.
/// Four crashes are seeded (real ones back off 1 + 2 + 4 + 8 s first); the
/// step's own failure is the fifth.
#[test]
fn a_run_with_four_crashes_behind_it_fails_on_the_fifth() {
    for inline in [false, true] {
        let fake = FakeLlm::start(vec![Answer::ToolCall {
            name: "held".into(),
            arguments: json!({}),
        }]);
        let mut config = config_for_fakes();
        if inline {
            config = config
                .env("SYNATRA_DISPATCHER_WORKERS", "0")
                .env("RUN_DISPATCHER", "inline");
        }
        let app = start_on(&config);
        let tool = json!({ "name": "held", "params": { "type": "object" }, "code": "return 1;",
                           "approval": { "policy": "any-member" } });
        create_tool(&app, &tool);
        publish(&app, "doomed", &agent_with_tools(&fake, &["held"]));
        let id = start_thread(&app, "doomed", "go", "normal");
        wait_for(&app, &id, &["waiting_approval"], Duration::from_secs(30));
        let db = &app.host.database_url;
        psql(
            db,
            &format!("DELETE FROM approvals WHERE thread_id = '{id}'"),
        );
        // Four crashes already counted: the next failure is the fifth.
        psql(
            db,
            &format!("UPDATE runs SET status = 'ready', wake_at = NULL, crashes = 4 WHERE thread_id = '{id}'"),
        );
        let t = wait_for(&app, &id, &["failed", "completed"], Duration::from_secs(30));
        assert_eq!(t["status"], "failed", "inline={inline}: {t:#}");
        let error = t["runs"][0]["error"].as_str().unwrap();
        assert!(
            error.starts_with("the agent step failed 5 times") && error.contains("vanished"),
            "inline={inline}: {error}"
        );
        assert_eq!(kinds(&t).last().unwrap(), "error");
    }
}

/// A model call that takes longer than the lease (3 s in tests) keeps the
/// run: the dispatcher renews the lease while the step works, so the call is
/// recorded once and never repeated by another claim.
#[test]
fn a_call_longer_than_the_lease_is_recorded_once() {
    let fake = FakeLlm::start(vec![Answer::Delayed(
        Duration::from_secs(7),
        Box::new(Answer::Text("slow but sure".into())),
    )]);
    let app = start_on(&config_for_fakes());
    publish(&app, "slow", &agent_config(&fake, "slow", json!({})));
    let id = start_thread(&app, "slow", "take your time", "normal");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(40));
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(
        fake.calls(),
        1,
        "the call was not repeated by a second claim"
    );
    assert_eq!(kinds(&t), ["user", "assistant"]);
}

#[test]
fn without_a_dispatcher_a_call_longer_than_the_lease_is_made_once_while_ticks_run() {
    // As under `spin up`: the API advances the run inline with a 3 s lease
    // while schedulers call the tick every 100 ms; the model streams for
    // about 8 s. The agent step renews its lease as the model streams, so no
    // tick takes the run over and repeats the call.
    let fake = FakeLlm::start(vec![Answer::Trickle(
        Duration::from_millis(800),
        "one two three four five six seven eight nine ten".into(),
    )]);
    let config = config_for_fakes()
        .env("SYNATRA_DISPATCHER_WORKERS", "0")
        .env("RUN_DISPATCHER", "inline")
        .env("INLINE_LEASE_SECS", "3");
    let app = start_on(&config);
    publish(&app, "slow", &agent_config(&fake, "slow", json!({})));
    // Three tickers, so that while one tick request is itself advancing the
    // run (it may win the first claim), the others keep trying to claim it.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tickers: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            let client = app
                .host
                .client()
                .with_bearer(synatra_tests::TEST_TICK_SECRET);
            std::thread::spawn(move || {
                let mut ticks = 0;
                while !stop.load(Ordering::Relaxed) {
                    assert_eq!(client.post("/api/v1/tick", json!({})).status, 200);
                    ticks += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                ticks
            })
        })
        .collect();
    let id = start_thread(&app, "slow", "take your time", "normal");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(40));
    stop.store(true, Ordering::Relaxed);
    let ticks: usize = tickers.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(ticks > 40, "the tickers ran throughout: {ticks} ticks");
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(fake.calls(), 1, "the call was not repeated by a tick");
    assert_eq!(kinds(&t), ["user", "assistant"]);
}

/// kill -9 while a sandboxed JavaScript tool is running: after the restart
/// the call runs again with the same idempotency key (so a tool can make its
/// side effect idempotent), its result is recorded once, and the model is
/// not called again for the turn that asked for it.
#[test]
fn a_kill_during_a_sandboxed_tool_call_reruns_it_with_the_same_key() {
    let fake = FakeLlm::start(vec![
        Answer::ToolCall {
            name: "slow_key".into(),
            arguments: json!({}),
        },
        Answer::Text("Got it.".into()),
    ]);
    let config = config_for_fakes().env("SYNATRA_RUN_LEASE_SECS", "1");
    let mut app = start_on(&config);
    // Busy for 2 s, then answers with the key it was given.
    let code = "const end = Date.now() + 2000; while (Date.now() < end) {} \
                return { key: context.idempotencyKey };";
    let tool = json!({ "name": "slow_key", "params": { "type": "object" }, "code": code });
    create_tool(&app, &tool);
    publish(&app, "keyed", &agent_with_tools(&fake, &["slow_key"]));
    let id = start_thread(&app, "keyed", "go", "normal");
    let db = app.host.database_url.clone();
    // The model turn is recorded and the tool is running: kill the host.
    fake.wait_for_calls(1);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while step_summary(&db, &id).0 < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the model turn was never recorded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(step_summary(&db, &id), (1, 0), "killed while the tool runs");
    app.crash_and_restart(&config);
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(60));
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(
        kinds(&t),
        vec!["user", "tool_call", "tool_result", "assistant"]
    );
    let run_id = t["runs"][0]["id"].as_str().unwrap();
    let result = &synatra_tests::runs::messages_of(&t, "tool_result")[0]["content"];
    assert_eq!(result["result"]["key"], format!("{run_id}:1"), "{result:#}");
    assert_eq!(step_summary(&db, &id), (3, 2));
    assert_eq!(fake.calls(), 2, "the model was not asked again");
}
