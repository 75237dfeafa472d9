//! Durable runs end to end: the real host's dispatcher, the agent-step
//! component, a real PostgreSQL, and a fake OpenAI server: tool calls and
//! streamed answers, limits, releases, thread listing, event streams,
//! inline advancing without a dispatcher, and replaying a continued thread.
//! Providers, cancellation and sub-agents have files of their own.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use synatra_tests::fake_llm::{Answer, FakeLlm};
use synatra_tests::runs::{
    agent_config, agent_with_tools, answer_in_new_org, config_for_fakes, kinds, publish,
    sse_events, start, start_on, start_thread, store_key, wait_for,
};
use synatra_tests::{metric, metrics, psql, try_psql};

#[test]
fn agent_calls_a_tool_then_answers_and_tokens_stream() {
    let fake = FakeLlm::start(vec![
        Answer::ToolCall {
            name: "add_numbers".into(),
            arguments: json!({ "numbers": [2, 3] }),
        },
        Answer::Text("The sum of 2 and 3 is 5.".into()),
    ]);
    let app = start();
    store_key(&app, "openai", "sk-test-key", &fake.base_url());
    publish(
        &app,
        "adder",
        &agent_config(&fake, "gpt-4o-mini", json!({})),
    );
    let id = start_thread(&app, "adder", "What is 2 + 3?", "normal");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(
        kinds(&t),
        vec!["user", "tool_call", "tool_result", "assistant"]
    );
    assert_eq!(t["messages"][2]["content"]["result"], json!({ "sum": 5.0 }));
    assert_eq!(
        t["messages"][3]["content"]["text"],
        "The sum of 2 and 3 is 5."
    );
    let run = &t["runs"][0];
    assert_eq!(run["status"], "completed");
    assert_eq!(run["steps"], 3);
    assert_eq!(run["tokens_in"], 42);
    assert_eq!(run["tokens_out"], 18);
    assert_eq!(run["release"]["version"], "0.0.1");

    let received = fake.received();
    assert_eq!(received.len(), 2, "one model call per recorded model step");
    assert_eq!(
        received[0].authorization.as_deref(),
        Some("Bearer sk-test-key")
    );
    let first = &received[0].body;
    assert_eq!(first["model"], "gpt-4o-mini");
    assert_eq!(first["stream"], true);
    assert_eq!(
        first["messages"][0],
        json!({ "role": "system", "content": "You add numbers." })
    );
    assert_eq!(first["tools"][0]["function"]["name"], "add_numbers");
    let second = &received[1].body["messages"];
    assert_eq!(
        second[2]["tool_calls"][0]["function"]["name"],
        "add_numbers"
    );
    assert_eq!(second[3]["role"], "tool");

    let tokens = synatra_tests::psql(
        &app.host.database_url,
        &format!("SELECT string_agg(data->>'text', '' ORDER BY id) FROM run_events WHERE thread_id = '{id}' AND kind = 'token'"),
    );
    assert_eq!(
        tokens, "The sum of 2 and 3 is 5.",
        "streamed text arrives as token events"
    );
}

#[test]
fn max_iterations_stops_a_looping_agent() {
    let call = Answer::ToolCall {
        name: "add_numbers".into(),
        arguments: json!({ "numbers": [1] }),
    };
    let fake = FakeLlm::start(vec![call.clone(), call.clone(), call]);
    let app = start();
    publish(
        &app,
        "looper",
        &agent_config(&fake, "m", json!({ "max_iterations": 2 })),
    );
    let id = start_thread(&app, "looper", "loop", "normal");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "failed");
    assert!(t["runs"][0]["error"]
        .as_str()
        .unwrap()
        .contains("max_iterations (2)"));
    assert_eq!(fake.calls(), 2);
}

#[test]
fn runs_stay_pinned_to_their_release_and_playground_uses_the_working_copy() {
    let fake = FakeLlm::start(vec![
        Answer::Text("one".into()),
        Answer::Text("two".into()),
        Answer::Text("three".into()),
        Answer::Text("four".into()),
    ]);
    let app = start();
    publish(&app, "pinned", &agent_config(&fake, "model-v1", json!({})));
    let id = start_thread(&app, "pinned", "first", "normal");
    wait_for(&app, &id, &["completed"], Duration::from_secs(30));

    publish(&app, "pinned", &agent_config(&fake, "model-v2", json!({})));
    // The old thread continues on 0.0.1; a new thread gets 0.0.2.
    let more = app.owner.client.post(
        &format!("/api/v1/orgs/{}/threads/{id}/messages", app.org),
        json!({ "message": "second" }),
    );
    assert_eq!(more.status, 201, "{:?}", more.body);
    let t = wait_for(&app, &id, &["completed"], Duration::from_secs(30));
    assert_eq!(t["runs"].as_array().unwrap().len(), 2);
    let fresh = start_thread(&app, "pinned", "new", "normal");
    wait_for(&app, &fresh, &["completed"], Duration::from_secs(30));

    // Playground: the working copy, unpublished.
    let wc = agent_config(&fake, "model-draft", json!({}));
    app.owner.client.send(
        "PUT",
        &format!("/api/v1/orgs/{}/agents/pinned/working-copy", app.org),
        Some(&json!({ "config": wc })),
    );
    let play = start_thread(&app, "pinned", "try", "playground");
    wait_for(&app, &play, &["completed"], Duration::from_secs(30));

    let models = fake.models();
    assert_eq!(
        models,
        vec!["model-v1", "model-v1", "model-v2", "model-draft"]
    );
    // The continued run saw the thread's history.
    let history = &fake.received()[1].body["messages"];
    assert_eq!(history[1], json!({ "role": "user", "content": "first" }));
    assert_eq!(history[2], json!({ "role": "assistant", "content": "one" }));
    assert_eq!(history[3], json!({ "role": "user", "content": "second" }));
}

#[test]
fn threads_need_a_release_and_list_with_filters_and_pages() {
    let fake = FakeLlm::start(vec![
        Answer::Text("a".into()),
        Answer::Text("b".into()),
        Answer::Text("c".into()),
    ]);
    let app = start();
    let c = &app.owner.client;
    assert_eq!(
        c.post(
            &format!("/api/v1/orgs/{}/agents", app.org),
            json!({ "slug": "draft", "name": "D" })
        )
        .status,
        201
    );
    let r = c.post(
        &format!("/api/v1/orgs/{}/threads", app.org),
        json!({ "agent": "draft", "message": "hi" }),
    );
    assert_eq!((r.status, r.code()), (409, "agent_not_released"));
    let r = c.post(
        &format!("/api/v1/orgs/{}/threads", app.org),
        json!({ "agent": "nope", "message": "hi" }),
    );
    assert_eq!(r.status, 404);
    let r = c.post(
        &format!("/api/v1/orgs/{}/threads", app.org),
        json!({ "agent": "draft" }),
    );
    assert_eq!(r.body["error"]["details"]["fields"][0]["field"], "message");

    publish(&app, "lister", &agent_config(&fake, "m", json!({})));
    let ids: Vec<String> = (0..3)
        .map(|i| start_thread(&app, "lister", &format!("q{i}"), "normal"))
        .collect();
    for id in &ids {
        wait_for(&app, id, &["completed"], Duration::from_secs(30));
    }
    let page1 = c.get(&format!(
        "/api/v1/orgs/{}/threads?limit=2&status=completed&agent=lister",
        app.org
    ));
    assert_eq!(page1.status, 200, "{:?}", page1.body);
    let got: Vec<&str> = page1.body["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![ids[2].as_str(), ids[1].as_str()], "newest first");
    let cursor = page1.body["next_cursor"].as_str().unwrap();
    let page2 = c.get(&format!(
        "/api/v1/orgs/{}/threads?limit=2&after={cursor}",
        app.org
    ));
    assert_eq!(page2.body["threads"][0]["id"], ids[0].as_str());
    assert_eq!(page2.body["next_cursor"], Value::Null);
    assert_eq!(
        c.get(&format!("/api/v1/orgs/{}/threads?status=bogus", app.org))
            .status,
        400
    );
    assert_eq!(
        c.get(&format!("/api/v1/orgs/{}/threads?status=failed", app.org))
            .body["threads"],
        json!([])
    );
}

#[test]
fn events_stream_over_sse_and_resume_from_an_event_id() {
    let fake = FakeLlm::start(vec![Answer::Delayed(
        Duration::from_millis(300),
        Box::new(Answer::Text("Streaming works fine today.".into())),
    )]);
    let app = start();
    publish(&app, "talker", &agent_config(&fake, "m", json!({})));
    let id = start_thread(&app, "talker", "talk", "normal");
    let path = format!("/api/v1/orgs/{}/threads/{id}/events", app.org);
    let reply = app.owner.client.get(&path);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    let events = sse_events(reply.body.as_str().unwrap());
    let names: Vec<&str> = events.iter().map(|(_, e, _)| e.as_str()).collect();
    assert_eq!(names.first(), Some(&"message"), "{names:?}");
    assert_eq!(names.last(), Some(&"end"), "{names:?}");
    let tokens: String = events
        .iter()
        .filter(|(_, e, _)| e == "token")
        .map(|(_, _, d)| d["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tokens, "Streaming works fine today.");
    let assistant = events
        .iter()
        .find(|(_, e, d)| e == "message" && d["kind"] == "assistant")
        .expect("the final message is an event");
    assert!(events
        .iter()
        .any(|(_, e, d)| e == "run" && d["status"] == "completed"));

    // Resume after the assistant message: only later events come.
    let after = assistant.0.unwrap();
    let resumed = sse_events(
        app.owner
            .client
            .get(&format!("{path}?after={after}"))
            .body
            .as_str()
            .unwrap(),
    );
    assert!(
        resumed
            .iter()
            .filter_map(|(id, _, _)| *id)
            .all(|i| i > after),
        "{resumed:?}"
    );
    assert!(resumed
        .iter()
        .any(|(_, e, d)| e == "run" && d["status"] == "completed"));
    assert!(!resumed.iter().any(|(_, e, _)| e == "token"));

    // An EventSource reconnecting sends `Last-Event-ID` instead: the same.
    let key = app.owner.client.post(
        &format!("/api/v1/orgs/{}/api-keys", app.org),
        json!({ "name": "sse", "role": "member" }),
    );
    let token = key.body["token"].as_str().unwrap();
    let reconnected = ureq::get(&format!("{}{path}", app.host.base))
        .set("authorization", &format!("Bearer {token}"))
        .set("last-event-id", &after.to_string())
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let reconnected = sse_events(&reconnected);
    let ids: Vec<i64> = reconnected.iter().filter_map(|(id, _, _)| *id).collect();
    let expected: Vec<i64> = resumed.iter().filter_map(|(id, _, _)| *id).collect();
    assert_eq!(ids, expected, "Last-Event-ID resumes where ?after= does");
    assert!(!ids.is_empty());
    let bad = app.owner.client.get(&format!("{path}?after=yesterday"));
    assert_eq!(bad.status, 400);
}

#[test]
fn max_active_time_fails_a_busy_run_but_excludes_waiting() {
    let slow = |a: Answer| Answer::Delayed(Duration::from_millis(700), Box::new(a));
    let fake = FakeLlm::start(vec![
        slow(Answer::ToolCall {
            name: "add_numbers".into(),
            arguments: json!({ "numbers": [1] }),
        }),
        slow(Answer::Text("late".into())),
        Answer::ToolCall {
            name: "wait".into(),
            arguments: json!({ "seconds": 1.5 }),
        },
        Answer::Text("rested".into()),
    ]);
    let app = start();
    let config = json!({
        "model": { "provider": "openai", "model": "m", "base_url": fake.base_url() },
        "tools": ["add_numbers", "wait"],
        "limits": { "max_active_time": 1 },
    });
    publish(&app, "timed", &config);
    let busy = start_thread(&app, "timed", "work", "normal");
    let t = wait_for(
        &app,
        &busy,
        &["completed", "failed"],
        Duration::from_secs(30),
    );
    assert_eq!(t["status"], "failed", "{t:#}");
    assert!(t["runs"][0]["error"]
        .as_str()
        .unwrap()
        .contains("max_active_time"));

    // 1.5 s asleep on a timer does not count against the 1 s budget.
    let idle = start_thread(&app, "timed", "rest", "normal");
    let t = wait_for(
        &app,
        &idle,
        &["completed", "failed"],
        Duration::from_secs(30),
    );
    assert_eq!(t["status"], "completed", "{t:#}");
    assert!(t["runs"][0]["active_ms"].as_i64().unwrap() < 1000);
}

#[test]
fn without_a_dispatcher_the_api_advances_runs_inline() {
    // As under plain `spin up`: no host dispatcher, so the API itself claims
    // and advances runs through http://agent-step.spin.internal.
    let fake = FakeLlm::start(vec![
        Answer::ToolCall {
            name: "add_numbers".into(),
            arguments: json!({ "numbers": [20, 22] }),
        },
        Answer::Text("42".into()),
        Answer::ToolCall {
            name: "wait".into(),
            arguments: json!({ "seconds": 1 }),
        },
        Answer::Text("awake".into()),
    ]);
    let config = synatra_tests::runs::config_for_fakes()
        .env("SYNATRA_DISPATCHER_WORKERS", "0")
        .env("RUN_DISPATCHER", "inline");
    let app = synatra_tests::runs::start_on(&config);
    assert!(app.host.log().contains("run dispatcher disabled"));
    publish(
        &app,
        "inline",
        &agent_with_tools(&fake, &["add_numbers", "wait"]),
    );
    let id = start_thread(&app, "inline", "sum", "normal");
    // The request itself ran the whole run.
    let t = synatra_tests::runs::thread(&app, &id);
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(
        kinds(&t),
        vec!["user", "tool_call", "tool_result", "assistant"]
    );

    // A timer is picked up by a later request once due.
    let more = app.owner.client.post(
        &format!("/api/v1/orgs/{}/threads/{id}/messages", app.org),
        json!({ "message": "rest" }),
    );
    assert_eq!(more.status, 201);
    assert_eq!(synatra_tests::runs::thread(&app, &id)["status"], "active");
    std::thread::sleep(Duration::from_millis(1300));
    let t = wait_for(&app, &id, &["completed"], Duration::from_secs(10));
    assert_eq!(
        t["messages"].as_array().unwrap().last().unwrap()["content"]["text"],
        "awake"
    );
}

#[test]
fn a_continued_thread_replays_earlier_tool_calls_with_their_results() {
    let fake = FakeLlm::start(vec![
        Answer::ToolCall {
            name: "add_numbers".into(),
            arguments: json!({ "numbers": [2, 3] }),
        },
        Answer::Text("5".into()),
        Answer::Text("Still 5.".into()),
    ]);
    let app = start();
    publish(&app, "adder", &agent_config(&fake, "m", json!({})));
    let id = start_thread(&app, "adder", "2+3?", "normal");
    wait_for(&app, &id, &["completed"], Duration::from_secs(30));
    let more = app.owner.client.post(
        &format!("/api/v1/orgs/{}/threads/{id}/messages", app.org),
        json!({ "message": "sure?" }),
    );
    assert_eq!(more.status, 201);
    wait_for(&app, &id, &["completed"], Duration::from_secs(30));
    let roles: Vec<String> = fake.received()[2].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        roles,
        vec!["system", "user", "assistant", "tool", "assistant", "user"]
    );
    let messages = &fake.received()[2].body["messages"];
    assert_eq!(
        messages[2]["tool_calls"][0]["function"]["name"],
        "add_numbers"
    );
    assert_eq!(messages[3]["content"], "{\"sum\":5.0}");
}

#[test]
fn a_threads_messages_come_in_pages() {
    let fake = FakeLlm::start(vec![
        Answer::Text("one".into()),
        Answer::Text("two".into()),
        Answer::Text("three".into()),
    ]);
    let app = start();
    publish(&app, "pager", &agent_config(&fake, "m", json!({})));
    let id = start_thread(&app, "pager", "first", "normal");
    wait_for(&app, &id, &["completed"], Duration::from_secs(30));
    for message in ["second", "third"] {
        let r = app.owner.client.post(
            &format!("/api/v1/orgs/{}/threads/{id}/messages", app.org),
            json!({ "message": message }),
        );
        assert_eq!(r.status, 201);
        wait_for(&app, &id, &["completed"], Duration::from_secs(30));
    }
    let path = format!("/api/v1/orgs/{}/threads/{id}", app.org);
    let whole = app.owner.client.get(&path).body;
    assert_eq!(whole["messages"].as_array().unwrap().len(), 6);
    assert_eq!(whole["next_cursor"], Value::Null);
    let mut paged = Vec::new();
    let mut query = "limit=4".to_string();
    loop {
        let page = app.owner.client.get(&format!("{path}?{query}")).body;
        paged.extend(page["messages"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_i64() {
            Some(cursor) => query = format!("limit=4&after={cursor}"),
            None => break,
        }
    }
    assert_eq!(Value::from(paged), whole["messages"]);
    for bad in ["limit=0", "limit=501", "after=abc", "after=-1"] {
        let r = app.owner.client.get(&format!("{path}?{bad}"));
        assert_eq!((r.status, r.code()), (400, "validation_failed"), "{bad}");
    }
}

#[test]
fn an_agent_with_threads_is_archived_never_deleted() {
    let fake = FakeLlm::start(vec![Answer::Text("hi".into())]);
    let app = start();
    publish(&app, "keeper", &agent_config(&fake, "m", json!({})));
    let id = start_thread(&app, "keeper", "hello", "normal");
    wait_for(&app, &id, &["completed"], Duration::from_secs(30));
    let c = &app.owner.client;
    let agents = format!("/api/v1/orgs/{}/agents", app.org);

    let archived = c.delete(&format!("{agents}/keeper"));
    assert_eq!(archived.status, 200, "{:?}", archived.body);
    assert!(
        archived.body["archived_at"].is_string(),
        "{:?}",
        archived.body
    );
    // Hidden from the list, still readable, and its thread with it.
    assert_eq!(c.get(&agents).body["agents"], json!([]));
    assert_eq!(c.get(&format!("{agents}/keeper")).status, 200);
    let thread = c.get(&format!("/api/v1/orgs/{}/threads/{id}", app.org));
    assert_eq!(thread.body["messages"].as_array().unwrap().len(), 2);
    // It starts nothing new.
    let refused = [
        c.post(
            &format!("/api/v1/orgs/{}/threads", app.org),
            json!({ "agent": "keeper", "message": "again" }),
        ),
        c.post(
            &format!("/api/v1/orgs/{}/threads/{id}/messages", app.org),
            json!({ "message": "again" }),
        ),
        c.post(
            &format!("{agents}/keeper/releases"),
            json!({ "bump": "patch" }),
        ),
    ];
    for r in refused {
        assert_eq!(
            (r.status, r.code()),
            (409, "agent_archived"),
            "{:?}",
            r.body
        );
    }
    // The database itself refuses to drop an agent that threads name.
    let db = &app.host.database_url;
    let err = try_psql(db, "DELETE FROM agents WHERE slug = 'keeper'").unwrap_err();
    assert!(err.contains("foreign key"), "{err}");

    // An agent no thread names is deleted.
    publish(&app, "unused", &agent_config(&fake, "m", json!({})));
    assert_eq!(c.delete(&format!("{agents}/unused")).status, 204);
    assert_eq!(c.get(&format!("{agents}/unused")).status, 404);

    // Deleting the org removes everything.
    assert_eq!(c.delete(&format!("/api/v1/orgs/{}", app.org)).status, 204);
    let left = psql(
        db,
        &format!("SELECT count(*) FROM threads WHERE id = '{id}'"),
    );
    assert_eq!(left, "0");
}

/// Claiming takes turns between orgs and no org may hold every worker:
/// with 4 workers (3 runs per org at most), a hundred hour-long runs of one
/// org leave a worker for another org's new run.
#[test]
fn one_orgs_long_runs_never_hold_every_worker() {
    let slow = FakeLlm::start_with(|_| {
        Answer::Delayed(
            Duration::from_secs(3600),
            Box::new(Answer::Text("late".into())),
        )
    });
    let fast = FakeLlm::start(vec![Answer::Text("here".into())]);
    let app = start_on(&config_for_fakes().env("SYNATRA_DISPATCHER_WORKERS", "4"));
    publish(&app, "slow", &agent_config(&slow, "m", json!({})));
    for _ in 0..100 {
        start_thread(&app, "slow", "take your time", "normal");
    }
    slow.wait_for_calls(3);

    // Another org's new run finds a worker.
    answer_in_new_org(&app.host, &fast);
    assert_eq!(slow.calls(), 3, "the first org kept to 3 of the 4 workers");
}

/// A notified run is claimed by its id (SQL `claim_run`), not found by a
/// scan of the ready runs: the host counts how it claimed each run. (An idle
/// worker's once-a-second sweep may win a race for one of them.)
#[test]
fn a_notified_run_is_claimed_by_its_id() {
    let fake = FakeLlm::start_with(|_| Answer::Text("done".into()));
    let app = start();
    publish(&app, "echo", &agent_config(&fake, "m", json!({})));
    for message in ["one", "two", "three"] {
        let id = start_thread(&app, "echo", message, "normal");
        wait_for(&app, &id, &["completed"], Duration::from_secs(30));
    }
    let admin = &app.host.admin;
    let by_id = metric(admin, "synatra_run_claims_total{by=\"id\"}");
    let by_scan = metric(admin, "synatra_run_claims_total{by=\"scan\"}");
    assert_eq!(by_id + by_scan, 3, "{}", metrics(admin));
    assert!(by_id >= 2, "{}", metrics(admin));
}

/// With no notified run left, a host scans for ready runs no notification
/// named (due timers, expired leases) once per sweep interval (1 s), not
/// each time a worker ends a run: thirty runs one after another cost at
/// most one empty scan per second they took (and one for the second the
/// count starts in), plus one after each run a scan claimed (more may have
/// been waiting) and the host's first scan, were it that late.
#[test]
fn ending_runs_do_not_each_scan_for_the_next() {
    let fake = FakeLlm::start_with(|_| Answer::Text("done".into()));
    let app = start();
    publish(&app, "echo", &agent_config(&fake, "m", json!({})));
    let admin = &app.host.admin;
    let exposed = metrics(admin);
    assert!(
        exposed.contains("synatra_empty_run_scans_total "),
        "the host counts empty scans: {exposed}"
    );
    let before = metric(admin, "synatra_empty_run_scans_total");
    let started = Instant::now();
    for i in 0..30 {
        let id = start_thread(&app, "echo", &format!("run {i}"), "normal");
        wait_for(&app, &id, &["completed"], Duration::from_secs(30));
    }
    let secs = started.elapsed().as_secs_f64().ceil() as i64;
    let empty = metric(admin, "synatra_empty_run_scans_total") - before;
    let by_scan = metric(admin, "synatra_run_claims_total{by=\"scan\"}");
    assert!(
        empty <= secs + 1 + by_scan + 1,
        "{empty} empty scans in {secs} s for 30 runs: {}",
        metrics(admin)
    );
}

/// The host's connections to its database can drop (a restart, a proxy's
/// timeout): pooled ones that failed are closed, the dispatcher's own claim
/// connection is replaced, and runs go on.
#[test]
fn runs_go_on_after_the_database_drops_the_hosts_connections() {
    let fake = FakeLlm::start_with(|_| Answer::Text("done".into()));
    let app = start();
    publish(&app, "echo", &agent_config(&fake, "m", json!({})));
    let id = start_thread(&app, "echo", "before", "normal");
    wait_for(&app, &id, &["completed"], Duration::from_secs(30));
    let cut = psql(
        &app.host.database_url,
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()) t",
    );
    assert!(
        cut.parse::<u32>().expect("a count") >= 2,
        "the host's pooled and claim connections were cut: {cut}"
    );
    // A pooled connection idle this long is checked before it is handed out.
    std::thread::sleep(Duration::from_secs(6));
    let id = start_thread(&app, "echo", "after", "normal");
    wait_for(&app, &id, &["completed"], Duration::from_secs(30));
}

/// A host told its database server's Unix socket (`DATABASE_SOCKET`, as the
/// embedded server has) connects through it: its own pool, the
/// dispatcher's claim connection, and the components, which still name the
/// server by its TCP address (the one their allowed hosts are checked on).
#[test]
fn the_host_and_its_components_reach_a_local_database_through_its_socket() {
    assert!(
        synatra_tests::database_socket().is_some(),
        "the test server listens on a Unix socket"
    );
    let fake = FakeLlm::start_with(|_| Answer::Text("done".into()));
    let app = start();
    publish(&app, "echo", &agent_config(&fake, "m", json!({})));
    let id = start_thread(&app, "echo", "hello", "normal");
    wait_for(&app, &id, &["completed"], Duration::from_secs(30));
    // Every other backend of this database is the host's (this query's own
    // connection is TCP); a Unix-socket client has no address.
    let counts = psql(
        &app.host.database_url,
        "SELECT count(*) FILTER (WHERE client_addr IS NULL) || ' ' || count(*) FILTER (WHERE client_addr IS NOT NULL)
         FROM pg_stat_activity
         WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
    );
    let (socket, tcp) = counts.split_once(' ').expect("two counts");
    assert_eq!(tcp, "0", "no host connection over TCP (socket {socket})");
    // The host's pool, the claim connection, and the components' pool.
    assert!(
        socket.parse::<u32>().expect("a count") >= 3,
        "connections through the socket: {socket}"
    );
}

/// `?follow=true` keeps a thread's stream open across runs: a client
/// subscribes to a settled thread first, then posts, and sees the new run.
#[test]
fn a_followed_stream_stays_open_for_the_next_run() {
    let fake = FakeLlm::start(vec![
        Answer::Text("first".into()),
        Answer::Text("second".into()),
    ]);
    let app = start();
    let config =
        json!({ "model": { "provider": "openai", "model": "m", "base_url": fake.base_url() } });
    publish(&app, "echo", &config);
    let id = start_thread(&app, "echo", "one", "normal");
    wait_for(&app, &id, &["completed"], Duration::from_secs(30));
    let events = format!("/api/v1/orgs/{}/threads/{id}/events", app.org);
    // Without follow, the stream of a settled thread replays and ends.
    let (_, plain) = read_all(&app.owner.client, &events);
    assert_eq!(plain.last().map(String::as_str), Some("end"));

    let c = app.owner.client.clone();
    let followed = format!("{events}?follow=true");
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let (status, _) = c.read_events(&followed, |event, data| {
            seen.push(event.to_string());
            event == "message" && data["kind"] == "assistant" && data["content"]["text"] == "second"
        });
        (status, seen)
    });
    std::thread::sleep(Duration::from_millis(1500));
    let r = app.owner.client.post(
        &format!("/api/v1/orgs/{}/threads/{id}/messages", app.org),
        json!({ "message": "two" }),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let (status, seen) = reader.join().unwrap();
    assert_eq!(status, 200);
    assert!(!seen.contains(&"end".to_string()), "{seen:?}");
    let bad = app.owner.client.get(&format!("{events}?follow=maybe"));
    assert_eq!((bad.status, bad.code()), (400, "validation_failed"));
}

/// Every event name of a stream read to its end.
fn read_all(c: &synatra_tests::Client, path: &str) -> (u16, Vec<String>) {
    let mut seen = Vec::new();
    let (status, _) = c.read_events(path, |event, _| {
        seen.push(event.to_string());
        false
    });
    (status, seen)
}

#[test]
fn the_answer_that_completes_a_run_ends_it_in_the_same_statement() {
    let fake = FakeLlm::start(vec![Answer::Text("done".into())]);
    let app = start();
    publish(&app, "short", &agent_config(&fake, "m", json!({})));
    let id = start_thread(&app, "short", "hi", "normal");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed", "{t:#}");
    let db = &app.host.database_url;
    // The answer's last streamed text, its message and the run's end, in
    // that order, after the user's message and the run's start.
    let kinds = psql(
        db,
        &format!("SELECT string_agg(kind || coalesce(':' || (data->>'status'), ''), ',' ORDER BY id) FROM thread_events WHERE thread_id = '{id}'"),
    );
    assert_eq!(kinds, "message,run:ready,token,message,run:completed");
    let run = t["runs"][0]["id"].as_str().unwrap().to_string();
    let steps = |run: &str| {
        psql(
            db,
            &format!("SELECT count(*) FROM run_steps WHERE run_id = '{run}'"),
        )
    };
    assert_eq!(steps(&run), "1");

    // The same statement, on a run someone asked to stop meanwhile: the
    // step is recorded and the run ends cancelled, as the loop would end it.
    psql(
        db,
        &format!("UPDATE runs SET status = 'ready', lease_owner = 'test', lease_expires_at = now() + interval '1 hour', cancel_requested = true WHERE id = '{run}'"),
    );
    let record = |lease: &str, seq: i32| {
        psql(
            db,
            &format!("SELECT record_step('{run}', '{lease}', 30, 0, {seq}, 'llm', '{run}:{seq}', '{{}}', '{{}}', '[]', '[]', 0, 0, 'completed')"),
        )
    };
    assert_eq!(record("another", 1), "lease_lost");
    assert_eq!(steps(&run), "1", "a lost lease records nothing");
    assert_eq!(record("test", 1), "ended cancelled");
    assert_eq!(steps(&run), "2");
    let ended = psql(
        db,
        &format!("SELECT r.status || ',' || (r.lease_owner IS NULL) || ',' || t.status FROM runs r JOIN threads t ON t.id = r.thread_id WHERE r.id = '{run}'"),
    );
    assert_eq!(ended, "cancelled,true,cancelled");
}
