//! JavaScript tools in the tool-js sandbox, run once through
//! `POST /tools/{tool}/test`: results converted to JSON, console captured,
//! failures (throw, loop, memory bomb, network, files, env, huge or non-JSON
//! results) end as clean tool errors, and the host keeps serving.

use serde_json::{json, Value};
use synatra_tests::fake_llm::{Answer, FakeLlm};
use synatra_tests::runs::{agent_with_tools, answer_in_new_org, publish, start_thread};
use synatra_tests::{create_org, live_instances, psql, sign_up, start_app, Host, User};

struct Lab {
    host: Host,
    owner: User,
    org: String,
}

fn lab() -> Lab {
    let host = start_app();
    let owner = sign_up(&host, "js");
    let org = create_org(&owner, "js");
    Lab { host, owner, org }
}

/// Saves tool `name` with `code` and runs it with `params`.
fn run(lab: &Lab, name: &str, code: &str, params: Value, timeout_ms: u64) -> Value {
    let def = json!({
        "name": name,
        "params": { "type": "object", "properties": { "name": { "type": "string" } } },
        "timeout_ms": timeout_ms,
        "code": code,
    });
    let created = lab
        .owner
        .client
        .post(&format!("/api/v1/orgs/{}/tools", lab.org), def);
    assert_eq!(created.status, 201, "{:?}", created.body);
    let r = lab.owner.client.post(
        &format!("/api/v1/orgs/{}/tools/{name}/test", lab.org),
        json!({ "params": params }),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

#[test]
fn a_tool_returns_json_and_its_console_output() {
    let lab = lab();
    let out = run(
        &lab,
        "greet",
        "console.log('greeting', params.name); return { greeting: 'hi ' + params.name, when: new Date(0), big: 10n ** 20n, nothing: undefined };",
        json!({ "name": "Ada" }),
        5000,
    );
    assert_eq!(out["ok"], true, "{out:#}");
    assert_eq!(
        out["result"],
        json!({ "greeting": "hi Ada", "when": "1970-01-01T00:00:00.000Z", "big": "100000000000000000000" })
    );
    assert_eq!(out["logs"], json!(["greeting Ada"]));
    let awaited = run(
        &lab,
        "awaits",
        "const x = await Promise.resolve(41); return x + 1;",
        json!({}),
        5000,
    );
    assert_eq!(awaited["result"], 42);
}

#[test]
fn arguments_are_validated_against_the_tool_schema() {
    let lab = lab();
    run(
        &lab,
        "typed",
        "return params.name;",
        json!({ "name": "x" }),
        5000,
    );
    let r = lab.owner.client.post(
        &format!("/api/v1/orgs/{}/tools/typed/test", lab.org),
        json!({ "params": { "name": 5 } }),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["error"]["details"]["fields"][0]["field"],
        "params.name"
    );
}

#[test]
fn failures_are_clean_tool_errors_and_the_host_keeps_serving() {
    let lab = lab();
    // (name, code, timeout ms, what the error must mention)
    let cases = [
        ("thrower", "throw new Error('boom');", 1000, "boom"),
        ("looper", "while (true) {}", 1000, "time limit"),
        (
            "hog",
            "const a = []; while (true) { a.push('x'.repeat(8 * 1024 * 1024) + a.length); }",
            60000,
            "memory",
        ),
        (
            "fetcher",
            "return await fetch('https://example.com');",
            1000,
            "fetch",
        ),
        (
            "requirer",
            "return require('fs').readFileSync('/etc/passwd');",
            1000,
            "require",
        ),
        ("envreader", "return process.env.HOME;", 1000, "process"),
        (
            "huge",
            "return 'x'.repeat(2 * 1024 * 1024);",
            5000,
            "exceeds",
        ),
        ("fn", "return () => 1;", 1000, "not JSON"),
        // Syntax errors name the line of the tool's own code.
        ("typo", "const a = 1;\nreturn a +;", 1000, "line 2"),
        ("typo1", "return (;", 1000, "line 1, col 9"),
    ];
    for (name, code, timeout, expect) in cases {
        let out = run(&lab, name, code, json!({}), timeout);
        assert_eq!(out["ok"], false, "{name}: {out:#}");
        let error = out["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(expect),
            "{name}: `{error}` should mention `{expect}`"
        );
        assert_eq!(
            lab.host.client().get("/api/v1/health").status,
            200,
            "after {name}"
        );
    }
}

#[test]
fn calls_share_no_state() {
    let lab = lab();
    let first = run(
        &lab,
        "counter",
        "globalThis.n = (globalThis.n || 0) + 1; return globalThis.n;",
        json!({}),
        5000,
    );
    assert_eq!(first["result"], 1);
    let again = lab.owner.client.post(
        &format!("/api/v1/orgs/{}/tools/counter/test", lab.org),
        json!({ "params": {} }),
    );
    assert_eq!(
        again.body["result"], 1,
        "a fresh engine in a fresh instance each call"
    );
}

#[test]
fn a_nul_character_in_a_result_or_log_is_stored_not_fatal() {
    use std::time::Duration;
    use synatra_tests::fake_llm::{Answer, FakeLlm};
    use synatra_tests::runs::{
        config_for_fakes, messages_of, publish, start_on, start_thread, wait_for,
    };
    let fake = FakeLlm::start(vec![
        Answer::ToolCall {
            name: "nul".into(),
            arguments: json!({}),
        },
        Answer::Text("Stored.".into()),
    ]);
    let app = start_on(&config_for_fakes());
    let def = json!({ "name": "nul", "params": { "type": "object" },
                      "code": "console.log('x\\u0000y'); return { text: 'a\\u0000b' };" });
    let created = app
        .owner
        .client
        .post(&format!("/api/v1/orgs/{}/tools", app.org), def);
    assert_eq!(created.status, 201, "{:?}", created.body);
    publish(&app, "nul", &agent_with_tools(&fake, &["nul"]));
    let id = start_thread(&app, "nul", "go", "normal");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed", "{t:#}");
    let result = messages_of(&t, "tool_result")[0];
    assert_eq!(result["content"]["result"]["text"], "a\u{fffd}b");
    assert_eq!(fake.calls(), 2, "the tool ran once and the run went on");
}

/// Waiting work gives its pooled connection back and stays within its
/// org's limits: 40 endless-loop tool tests and 40 event streams of one org
/// at once (the pool has 20 connections; both limits set to 40) while a
/// newcomer signs up, starts a thread in an org of their own and gets the
/// answer; the 41st of each is refused with 429; every slot is given back.
#[test]
fn one_orgs_waiting_work_holds_no_connection_and_keeps_to_its_limits() {
    let slow = FakeLlm::start(vec![Answer::Delayed(
        std::time::Duration::from_secs(25),
        Box::new(Answer::Text("late".into())),
    )]);
    let fast = FakeLlm::start(vec![Answer::Text("still here".into())]);
    let app = synatra_tests::runs::start_on(
        &synatra_tests::runs::config_for_fakes()
            .env("MAX_TOOL_TESTS_PER_ORG", "40")
            .env("MAX_EVENT_STREAMS_PER_ORG", "40"),
    );
    let c = &app.owner.client;
    let tool = json!({
        "name": "spin", "params": { "type": "object" }, "timeout_ms": 20000,
        "code": "while (true) {}",
    });
    let r = c.post(&format!("/api/v1/orgs/{}/tools", app.org), tool);
    assert_eq!(r.status, 201, "{:?}", r.body);
    publish(&app, "slow", &agent_with_tools(&slow, &[]));
    let thread = start_thread(&app, "slow", "take your time", "normal");
    let test_path = format!("/api/v1/orgs/{}/tools/spin/test", app.org);
    let events_path = format!("/api/v1/orgs/{}/threads/{thread}/events", app.org);
    let testers: Vec<_> = (0..40)
        .map(|_| {
            let (c, path) = (c.clone(), test_path.clone());
            std::thread::spawn(move || c.post(&path, json!({ "params": {} })))
        })
        .collect();
    let streams: Vec<_> = (0..40)
        .map(|_| {
            let (c, path) = (c.clone(), events_path.clone());
            std::thread::spawn(move || c.get(&path))
        })
        .collect();
    // Each test is an API instance waiting on a tool-js instance; each
    // stream an API instance; each holds one of its org's slots.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let held = |kind: &str| {
        psql(
            &app.host.database_url,
            &format!("SELECT count(*) FROM org_slots WHERE kind = '{kind}'"),
        )
    };
    while live_instances(&app.host.admin) < 120
        || held("tool_test") != "40"
        || held("event_stream") != "40"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the 40 tool tests and 40 streams never ran at once"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let over = c.post(&test_path, json!({ "params": {} }));
    assert_eq!(
        (over.status, over.code()),
        (429, "org_limit_reached"),
        "{:?}",
        over.body
    );
    assert_eq!(over.header("retry-after"), Some("1"));
    let over = c.get(&events_path);
    assert_eq!(
        (over.status, over.code()),
        (429, "org_limit_reached"),
        "{:?}",
        over.body
    );
    answer_in_new_org(&app.host, &fast);
    for t in testers {
        let r = t.join().unwrap();
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["ok"], false, "{:?}", r.body);
    }
    for s in streams {
        assert_eq!(s.join().unwrap().status, 200);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let held = psql(&app.host.database_url, "SELECT count(*) FROM org_slots");
        if held == "0" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{held} slots never given back"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
