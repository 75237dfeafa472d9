//! WIT tools: components implementing the `synatra:tool` world, uploaded
//! through the API (imports outside the world refused by name), run by the
//! host with fuel, an epoch deadline and a memory limit; every failure (loop,
//! memory bomb, panic, huge or non-JSON result, files, environment) ends as a
//! clean tool error, and the host keeps serving. Also used in an agent run.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use synatra_tests::fake_llm::{Answer, FakeLlm};
use synatra_tests::runs::{
    agent_with_tools, config_for_fakes, kinds, messages_of, publish, start_on, wait_for, App,
};
use synatra_tests::wasm;

fn component(name: &str) -> String {
    let bytes = std::fs::read(wasm(name)).expect("component built");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn tool(name: &str, component: &str, timeout_ms: u64) -> Value {
    json!({
        "name": name,
        "description": "Greets (and misbehaves on request)",
        "params": { "type": "object", "properties": { "mode": { "type": "string" }, "name": { "type": "string" } } },
        "timeout_ms": timeout_ms,
        "component": component,
    })
}

fn upload(app: &App, def: Value) -> synatra_tests::Reply {
    app.owner
        .client
        .post(&format!("/api/v1/orgs/{}/tools", app.org), def)
}

fn test_call(app: &App, tool: &str, params: Value) -> Value {
    let r = app.owner.client.post(
        &format!("/api/v1/orgs/{}/tools/{tool}/test", app.org),
        json!({ "params": params }),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

#[test]
fn a_wit_tool_runs_with_logs_and_no_state_between_calls() {
    let app = start_on(&config_for_fakes());
    let r = upload(&app, tool("greet", &component("tool_wit_component"), 5000));
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["kind"], "wit");
    assert_eq!(r.body["component_sha256"].as_str().unwrap().len(), 64);
    assert!(
        r.body.get("component").is_none(),
        "the bytes are not echoed"
    );
    for _ in 0..2 {
        let out = test_call(&app, "greet", json!({ "name": "ada" }));
        assert_eq!(out["ok"], true, "{out:#}");
        // A fresh instance per call: the call counter never passes 1.
        assert_eq!(
            out["result"],
            json!({ "greeting": "hello, ada", "calls": 1 })
        );
        assert_eq!(out["logs"], json!(["info: greeting ada"]));
    }
}

#[test]
fn misbehaving_wit_tools_end_as_clean_errors_and_the_host_keeps_serving() {
    let app = start_on(&config_for_fakes());
    let r = upload(&app, tool("rogue", &component("tool_wit_component"), 1000));
    assert_eq!(r.status, 201, "{:?}", r.body);
    let cases = [
        ("loop", "time limit (1000 ms"),
        ("sleep", "time limit (1000 ms)"),
        ("allocate", "memory limit"),
        ("panic", "crashed"),
        ("huge", "larger than"),
        ("not_json", "not JSON"),
        ("fail", "refused: the order is already refunded"),
        // No preopened directories: files do not exist for a tool.
        ("file", "no_file"),
    ];
    for (mode, expected) in cases {
        let out = test_call(&app, "rogue", json!({ "mode": mode }));
        assert_eq!(out["ok"], false, "{mode}: {out:#}");
        let error = out["error"].as_str().unwrap();
        assert!(error.contains(expected), "{mode}: {error}");
    }
    // The host's environment is not the tool's.
    let out = test_call(&app, "rogue", json!({ "mode": "env" }));
    assert_eq!(out["result"], json!({ "variables": 0 }), "{out:#}");
    let health = app.owner.client.get("/api/v1/health");
    assert_eq!(health.status, 200);
    let out = test_call(&app, "rogue", json!({ "name": "still here" }));
    assert_eq!(out["ok"], true, "{out:#}");
}

#[test]
fn uploads_outside_the_tool_world_are_refused_naming_the_import() {
    let app = start_on(&config_for_fakes());
    let r = upload(
        &app,
        tool("net", &component("tool_wit_net_component"), 1000),
    );
    assert_eq!(
        (r.status, r.code()),
        (422, "invalid_component"),
        "{:?}",
        r.body
    );
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("`wasi:sockets/"), "{message}");
    // An HTTP component (it may fetch) is no tool either.
    let r = upload(&app, tool("web", &component("hello_component"), 1000));
    assert_eq!(r.code(), "invalid_component", "{:?}", r.body);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("imports `"));
    let r = upload(&app, tool("junk", "bm90IHdhc20=", 1000));
    assert_eq!(r.code(), "invalid_component", "{:?}", r.body);
    let r = upload(&app, tool("nobase64", "%%%", 1000));
    assert_eq!((r.status, r.code()), (400, "validation_failed"));
    let tools = app
        .owner
        .client
        .get(&format!("/api/v1/orgs/{}/tools", app.org));
    assert_eq!(tools.body["tools"], json!([]), "nothing half-saved");
}

#[test]
fn an_agent_calls_a_wit_tool_in_a_run() {
    let fake = FakeLlm::start(vec![
        Answer::ToolCall {
            name: "greet".into(),
            arguments: json!({ "name": "grace" }),
        },
        Answer::Text("Greeted.".into()),
    ]);
    let app = start_on(&config_for_fakes());
    let r = upload(&app, tool("greet", &component("tool_wit_component"), 5000));
    assert_eq!(r.status, 201, "{:?}", r.body);
    publish(&app, "greeter", &agent_with_tools(&fake, &["greet"]));
    let id = synatra_tests::runs::start_thread(&app, "greeter", "greet grace", "normal");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(kinds(&t), ["user", "tool_call", "tool_result", "assistant"]);
    assert_eq!(
        t["messages"][2]["content"]["result"],
        json!({ "greeting": "hello, grace", "calls": 1 })
    );
    // The model saw the tool's schema and got its result.
    let first = &fake.received()[0].body;
    assert_eq!(first["tools"][0]["function"]["name"], "greet");
    assert!(fake.received()[1].body.to_string().contains("hello, grace"));
}

#[test]
fn tools_see_their_calls_idempotency_key() {
    let fake = FakeLlm::start(vec![
        Answer::ToolCalls(vec![
            ("js_key".into(), json!({})),
            ("wit_key".into(), json!({ "mode": "key" })),
        ]),
        Answer::Text("Keys seen.".into()),
    ]);
    let app = start_on(&config_for_fakes());
    let js = json!({ "name": "js_key", "params": { "type": "object" },
                     "code": "return { key: context.idempotencyKey };" });
    assert_eq!(upload(&app, js).status, 201);
    let wit = upload(
        &app,
        tool("wit_key", &component("tool_wit_component"), 5000),
    );
    assert_eq!(wit.status, 201, "{:?}", wit.body);
    // A test call is not part of a run: no key.
    let out = test_call(&app, "wit_key", json!({ "mode": "key" }));
    assert_eq!(out["result"], json!({ "key": null }), "{out:#}");
    let out = test_call(&app, "js_key", json!({}));
    assert_eq!(out["result"], json!({ "key": null }), "{out:#}");

    publish(
        &app,
        "keys",
        &agent_with_tools(&fake, &["js_key", "wit_key"]),
    );
    let id = synatra_tests::runs::start_thread(&app, "keys", "keys?", "normal");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed", "{t:#}");
    let run = t["runs"][0]["id"].as_str().unwrap();
    let keys: Vec<Value> = messages_of(&t, "tool_result")
        .into_iter()
        .map(|m| m["content"]["result"]["key"].clone())
        .collect();
    // Step 0 is the model turn; the calls are steps 1 and 2.
    assert_eq!(
        keys,
        vec![json!(format!("{run}:1")), json!(format!("{run}:2"))]
    );
}

#[test]
fn a_raw_wasm_upload_turns_a_tool_into_a_wit_tool() {
    let app = start_on(&config_for_fakes());
    let js = json!({ "name": "greeter", "params": { "type": "object" }, "code": "return 1;" });
    let created = upload(&app, js);
    assert_eq!(created.status, 201);
    let path = format!("/api/v1/orgs/{}/tools/greeter/component", app.org);
    let wasm = std::fs::read(wasm("hello_tool")).unwrap();
    // JSON is not a component; a core module or garbage is refused by name.
    let wrong_type =
        app.owner
            .client
            .send_raw("PUT", &path, Some(("application/json", wasm.clone())));
    assert_eq!(
        (wrong_type.status, wrong_type.code()),
        (415, "unsupported_media_type")
    );
    let junk = app.owner.client.send_raw(
        "PUT",
        &path,
        Some(("application/wasm", b"not wasm".to_vec())),
    );
    assert_eq!((junk.status, junk.code()), (422, "invalid_component"));
    let r = app
        .owner
        .client
        .send_raw("PUT", &path, Some(("application/wasm", wasm)));
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["kind"], "wit");
    assert!(r.body.get("code").is_none());
    assert_ne!(r.body["version"], created.body["version"]);
    let out = test_call(&app, "greeter", json!({ "name": "Ada" }));
    assert_eq!(
        out["result"],
        json!({ "greeting": "Hello, Ada!" }),
        "{out:#}"
    );
    assert_eq!(out["logs"], json!(["info: greeting Ada"]));
}

/// At most 16 WIT tool calls run at once per host; more wait their turn.
/// Twenty calls that each sleep until their 1 s deadline: sixteen end after
/// about 1 s, the four that waited for a turn after about 2 s.
#[test]
fn at_most_sixteen_wit_calls_run_at_once_and_the_rest_wait_their_turn() {
    // The org's own limit on tool tests is raised out of the way.
    let app = start_on(&config_for_fakes().env("MAX_TOOL_TESTS_PER_ORG", "20"));
    let r = upload(&app, tool("sleepy", &component("tool_wit_component"), 1000));
    assert_eq!(r.status, 201, "{:?}", r.body);
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let c = app.owner.client.clone();
            let path = format!("/api/v1/orgs/{}/tools/sleepy/test", app.org);
            std::thread::spawn(move || c.post(&path, json!({ "params": { "mode": "sleep" } })))
        })
        .collect();
    let mut durations = Vec::new();
    for call in calls {
        let r = call.join().unwrap();
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["ok"], false);
        assert!(
            r.body["error"].as_str().unwrap().contains("time limit"),
            "{:?}",
            r.body
        );
        durations.push(r.body["duration_ms"].as_f64().unwrap());
    }
    // A call that ran at once ends soon after its 1 s budget; one that
    // waited for a turn also spent part of another call's second.
    let waited = durations.iter().filter(|ms| **ms >= 1500.0).count();
    assert!(
        (4..=8).contains(&waited),
        "{waited} of 20 calls waited for a turn (16 at once leaves 4): {durations:?}"
    );
}
