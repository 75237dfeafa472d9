//! The whole application on two hosts: each flow runs under `synatra up`
//! (its dispatcher advances runs) and under the released Spin's `spin up`
//! on an empty database (the API applies the migrations, advances runs
//! inline, and a ticker calls `POST /api/v1/tick` as a CronJob would), and
//! must end in the same state on both.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use synatra_tests::fake_llm::{Answer, FakeLlm};
use synatra_tests::runs::{
    agent_config, agent_with_tools, cancel_and_settle, config_for_fakes, create_tool, kinds,
    messages_of, publish, publish_boss_and_helper, sse_events, start_thread, wait_for, App,
};
use synatra_tests::spin::{host_port, Backend, SpinUp};
use synatra_tests::{
    app_manifest, fresh_database, psql, temp_dir, Client, Host, Server, TEST_ENCRYPTION_KEY,
    TEST_ORIGIN, TEST_TICK_SECRET,
};

/// The application with an owner and an org, a ticker calling the tick
/// route every 200 ms, and the database it uses.
struct Running {
    app: App<Box<dyn Server>>,
    database_url: String,
    _ticker: Ticker,
}

/// Calls `POST /api/v1/tick` in a loop until dropped.
struct Ticker(Arc<AtomicBool>);

impl Ticker {
    fn start(base: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let client = Client::new(base).with_bearer(TEST_TICK_SECRET);
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let reply = client.post("/api/v1/tick", json!({}));
                if reply.status != 200 {
                    // The flows that need the tick then time out, showing this.
                    eprintln!("tick: {} {:?}", reply.status, reply.body);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Ticker(stop)
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn start(backend: &Backend) -> Running {
    let (server, database_url): (Box<dyn Server>, String) = match backend {
        Backend::Synatra => {
            let config = config_for_fakes();
            let url = config.database_url.clone();
            (Box::new(Host::start(&config)), url)
        }
        Backend::Spin(bin) => {
            // An empty database: nothing of ours has migrated it.
            let url = fresh_database();
            let dir = temp_dir("spin-app");
            let manifest = app_manifest(&dir);
            let env: Vec<(String, String)> = [
                ("DATABASE_URL", url.as_str()),
                ("DATABASE_HOST", host_port(&url).as_str()),
                ("SERVICE_SECRET", "test-service-secret"),
                ("ENCRYPTION_KEY", TEST_ENCRYPTION_KEY),
                ("TICK_SECRET", TEST_TICK_SECRET),
                ("APP_ORIGINS", TEST_ORIGIN),
                ("LOCAL_LLM_HOST", "127.0.0.1:*"),
                ("LLM_RETRY_BASE_MS", "50"),
            ]
            .iter()
            .map(|(k, v)| (format!("SPIN_VARIABLE_{k}"), v.to_string()))
            .collect();
            (Box::new(SpinUp::start(bin, &manifest, &env, &[])), url)
        }
    };
    let ticker = Ticker::start(server.base());
    Running {
        app: App::on(server),
        database_url,
        _ticker: ticker,
    }
}

synatra_tests::on_both_hosts!(
    an_api_key_a_stored_credential_and_a_streamed_answer,
    a_javascript_tool_held_for_any_member_runs_once_approved,
    a_human_request_is_answered_and_the_run_goes_on,
    a_wait_timer_wakes_the_run,
    an_undecided_approval_times_out,
    cancelling_a_waiting_thread_ends_it,
    a_subagent_answers_its_parent,
);

const WAIT: Duration = Duration::from_secs(30);

fn an_api_key_a_stored_credential_and_a_streamed_answer(backend: &Backend) {
    let fake = FakeLlm::start(vec![
        Answer::ToolCall {
            name: "add_numbers".into(),
            arguments: json!({ "numbers": [2, 3] }),
        },
        Answer::Text("The sum of 2 and 3 is 5.".into()),
    ]);
    let run = start(backend);
    let app = &run.app;
    let key = app.owner.client.post(
        &format!("/api/v1/orgs/{}/api-keys", app.org),
        json!({ "name": "ci", "role": "builder" }),
    );
    assert_eq!(key.status, 201, "{:?}", key.body);
    let bot = app
        .host
        .client()
        .with_bearer(key.body["token"].as_str().unwrap());
    let stored = app.owner.client.send(
        "PUT",
        &format!(
            "/api/v1/orgs/{}/environments/production/llm-providers/openai",
            app.org
        ),
        Some(&json!({ "api_key": "sk-stored-key-123456", "base_url": fake.base_url() })),
    );
    assert_eq!(stored.status, 200, "{:?}", stored.body);
    publish(app, "adder", &agent_config(&fake, "gpt-4o-mini", json!({})));

    let created = bot.post(
        &format!("/api/v1/orgs/{}/threads", app.org),
        json!({ "agent": "adder", "message": "What is 2 + 3?" }),
    );
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["thread"]["id"].as_str().unwrap();
    let t = wait_for(app, id, &["completed", "failed"], WAIT);
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(kinds(&t), ["user", "tool_call", "tool_result", "assistant"]);
    assert_eq!(t["messages"][2]["content"]["result"], json!({ "sum": 5.0 }));
    assert_eq!(t["runs"][0]["steps"], 3);
    assert_eq!(t["runs"][0]["release"]["version"], "0.0.1");
    assert!(t["created_at"].as_str().unwrap().ends_with('Z'), "{t:#}");
    let received = fake.received();
    assert_eq!(received.len(), 2, "one model call per recorded step");
    assert_eq!(
        received[0].authorization.as_deref(),
        Some("Bearer sk-stored-key-123456"),
        "the stored credential, not the fallback key"
    );

    let events = app
        .owner
        .client
        .get(&format!("/api/v1/orgs/{}/threads/{id}/events", app.org));
    assert_eq!(events.header("content-type"), Some("text/event-stream"));
    let events = sse_events(events.body.as_str().unwrap());
    let tokens: String = events
        .iter()
        .filter(|(_, e, _)| e == "token")
        .map(|(_, _, d)| d["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tokens, "The sum of 2 and 3 is 5.");
    assert_eq!(events.last().map(|(_, e, _)| e.as_str()), Some("end"));
}

fn refund_tool(policy: &str) -> Value {
    json!({
        "name": "refund",
        "params": { "type": "object", "required": ["order_id"],
                    "properties": { "order_id": { "type": "string" } } },
        "code": "console.log('refunding', params.order_id); return { refunded: params.order_id };",
        "approval": { "policy": policy, "self_approval": true, "timeout_secs": 3600 }
    })
}

fn refund_agent(run: &Running, fake: &FakeLlm) {
    let app = &run.app;
    create_tool(app, &refund_tool("any-member"));
    publish(app, "refunder", &agent_with_tools(fake, &["refund"]));
}

fn refund_answers() -> Vec<Answer> {
    vec![
        Answer::ToolCall {
            name: "refund".into(),
            arguments: json!({ "order_id": "A-1" }),
        },
        Answer::Text("Refunded A-1.".into()),
    ]
}

fn approval_id(run: &Running, id: &str) -> String {
    let t = wait_for(&run.app, id, &["waiting_approval"], WAIT);
    let approvals = messages_of(&t, "approval");
    approvals[0]["content"]["id"].as_str().unwrap().to_string()
}

fn approval_status(run: &Running, approval: &str) -> String {
    let app = &run.app;
    let a = app
        .owner
        .client
        .get(&format!("/api/v1/orgs/{}/approvals/{approval}", app.org));
    a.body["status"].as_str().unwrap_or_default().to_string()
}

fn a_javascript_tool_held_for_any_member_runs_once_approved(backend: &Backend) {
    let fake = FakeLlm::start(refund_answers());
    let run = start(backend);
    refund_agent(&run, &fake);
    let app = &run.app;
    let id = start_thread(app, "refunder", "refund A-1", "normal");
    let approval = approval_id(&run, &id);
    assert_eq!(fake.calls(), 1);
    let decided = app.owner.client.post(
        &format!("/api/v1/orgs/{}/approvals/{approval}/approve", app.org),
        json!({ "comment": "ok" }),
    );
    assert_eq!(decided.status, 200, "{:?}", decided.body);
    let t = wait_for(app, &id, &["completed", "failed"], WAIT);
    assert_eq!(t["status"], "completed", "{t:#}");
    let results = messages_of(&t, "tool_result");
    assert_eq!(
        results[0]["content"]["result"],
        json!({ "refunded": "A-1" })
    );
    assert_eq!(fake.calls(), 2);
    let steps = psql(
        &run.database_url,
        &format!(
            "SELECT string_agg(kind, ',' ORDER BY seq) FROM run_steps WHERE run_id = '{}'",
            t["runs"][0]["id"].as_str().unwrap()
        ),
    );
    assert_eq!(steps, "llm,approval,tool,llm", "the call ran exactly once");
}

fn a_human_request_is_answered_and_the_run_goes_on(backend: &Backend) {
    let fake = FakeLlm::start(vec![
        Answer::ToolCall {
            name: "human_request".into(),
            arguments: json!({ "title": "Go ahead?", "fields": [{ "name": "ok", "kind": "confirm" }] }),
        },
        Answer::Text("Going ahead.".into()),
    ]);
    let run = start(backend);
    let app = &run.app;
    let agent =
        json!({ "model": { "provider": "openai", "model": "m", "base_url": fake.base_url() } });
    publish(app, "asker", &agent);
    let id = start_thread(app, "asker", "ask me", "normal");
    let t = wait_for(app, &id, &["waiting_user"], WAIT);
    let request = messages_of(&t, "human_request")[0]["content"]["request_id"]
        .as_str()
        .unwrap()
        .to_string();
    let answered = app.owner.client.post(
        &format!(
            "/api/v1/orgs/{}/threads/{id}/human-requests/{request}/respond",
            app.org
        ),
        json!({ "status": "responded", "data": { "ok": true } }),
    );
    assert_eq!(answered.status, 200, "{:?}", answered.body);
    let t = wait_for(app, &id, &["completed", "failed"], WAIT);
    assert_eq!(t["status"], "completed", "{t:#}");
    let sent = &fake.received()[1].body["messages"];
    let answer = sent
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .and_then(|m| serde_json::from_str::<Value>(m["content"].as_str()?).ok())
        .unwrap_or_else(|| panic!("no tool message: {sent:#}"));
    assert_eq!(answer["data"], json!({ "ok": true }), "{answer:#}");
}

fn a_wait_timer_wakes_the_run(backend: &Backend) {
    let fake = FakeLlm::start(vec![
        Answer::ToolCall {
            name: "wait".into(),
            arguments: json!({ "seconds": 1 }),
        },
        Answer::Text("Rested.".into()),
    ]);
    let run = start(backend);
    let app = &run.app;
    publish(app, "sleeper", &agent_with_tools(&fake, &["wait"]));
    let id = start_thread(app, "sleeper", "rest", "normal");
    let t = wait_for(app, &id, &["completed", "failed"], WAIT);
    assert_eq!(t["status"], "completed", "{t:#}");
    let received = fake.received();
    let waited = received[1].at.duration_since(received[0].at);
    assert!(
        waited >= Duration::from_millis(950),
        "woke after {waited:?}"
    );
}

fn an_undecided_approval_times_out(backend: &Backend) {
    let fake = FakeLlm::start(refund_answers());
    let run = start(backend);
    refund_agent(&run, &fake);
    let app = &run.app;
    let id = start_thread(app, "refunder", "refund A-1", "normal");
    let approval = approval_id(&run, &id);
    // Time passes: the approval's expiry and the run's timer are due now.
    psql(
        &run.database_url,
        &format!(
            "WITH a AS (UPDATE approvals SET expires_at = now() WHERE id = '{approval}' RETURNING run_id)
             UPDATE runs SET wake_at = now() WHERE id IN (SELECT run_id FROM a)"
        ),
    );
    let t = wait_for(app, &id, &["failed", "completed"], WAIT);
    assert_eq!(t["status"], "failed", "{t:#}");
    assert!(
        t["runs"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("timeout"),
        "{t:#}"
    );
    assert_eq!(approval_status(&run, &approval), "timed_out");
    assert_eq!(fake.calls(), 1, "the model is not called again");
}

fn cancelling_a_waiting_thread_ends_it(backend: &Backend) {
    let fake = FakeLlm::start(refund_answers());
    let run = start(backend);
    refund_agent(&run, &fake);
    let app = &run.app;
    let id = start_thread(app, "refunder", "refund A-1", "normal");
    let approval = approval_id(&run, &id);
    let t = cancel_and_settle(app, &id, WAIT);
    assert_eq!(t["runs"][0]["status"], "cancelled");
    assert_eq!(approval_status(&run, &approval), "cancelled");
}

fn a_subagent_answers_its_parent(backend: &Backend) {
    let fake = FakeLlm::start(vec![
        Answer::ToolCall {
            name: "delegate_to_math_helper".into(),
            arguments: json!({ "message": "Add 2 and 3." }),
        },
        Answer::ToolCall {
            name: "add_numbers".into(),
            arguments: json!({ "numbers": [2, 3] }),
        },
        Answer::Text("It is 5.".into()),
        Answer::Text("My helper says 5.".into()),
    ]);
    let run = start(backend);
    let app = &run.app;
    publish_boss_and_helper(app, &fake, "math-helper");
    let id = start_thread(app, "boss", "What is 2 + 3?", "normal");
    let t = wait_for(app, &id, &["completed", "failed"], WAIT);
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(kinds(&t), ["user", "tool_call", "tool_result", "assistant"]);
    assert_eq!(
        t["messages"][2]["content"]["result"],
        json!({ "answer": "It is 5." })
    );
    let models = fake.models();
    assert_eq!(
        models,
        ["boss-model", "helper-model", "helper-model", "boss-model"]
    );
}
