//! Widgets and human requests: output widgets recorded on the thread, a
//! blocking request that puts the thread in waiting_user, answers validated
//! against the request, skip by a new message, cancellation.

use std::time::Duration;

use serde_json::{json, Value};
use synatra_tests::fake_llm::{Answer, FakeLlm};
use synatra_tests::runs::{
    kinds, messages_of, publish, start, start_thread, thread, wait_for, App,
};

fn agent(fake: &FakeLlm) -> Value {
    json!({ "model": { "provider": "openai", "model": "m", "base_url": fake.base_url() } })
}

fn ask() -> Answer {
    Answer::ToolCall {
        name: "human_request".into(),
        arguments: json!({ "title": "Approve the refund?", "fields": [
            { "name": "ok", "kind": "confirm" },
            { "name": "speed", "kind": "question", "options": ["now", "later"] },
            { "name": "details", "kind": "form", "schema": { "type": "object", "required": ["amount"],
                "properties": { "amount": { "type": "number", "maximum": 500 } } } }
        ] }),
    }
}

fn pending_request(app: &App, id: &str) -> String {
    let t = wait_for(app, id, &["waiting_user"], Duration::from_secs(30));
    let m = messages_of(&t, "human_request")
        .into_iter()
        .next()
        .expect("request message");
    m["content"]["request_id"].as_str().unwrap().to_string()
}

fn respond(app: &App, id: &str, request: &str, body: Value) -> synatra_tests::Reply {
    app.owner.client.post(
        &format!(
            "/api/v1/orgs/{}/threads/{id}/human-requests/{request}/respond",
            app.org
        ),
        body,
    )
}

#[test]
fn widgets_show_and_a_human_request_waits_for_a_valid_answer() {
    let fake = FakeLlm::start(vec![
        Answer::ToolCall {
            name: "output_table".into(),
            arguments: json!({ "columns": ["order", "amount"], "rows": [["o1", 20], ["o2", 35]] }),
        },
        ask(),
        Answer::Text("Refund sent.".into()),
    ]);
    let app = start();
    publish(&app, "refunds", &agent(&fake));
    let id = start_thread(&app, "refunds", "refund order o1", "normal");
    let request = pending_request(&app, &id);
    let t = thread(&app, &id);
    let widget = messages_of(&t, "widget")[0];
    assert_eq!(widget["content"]["type"], "output_table");
    assert_eq!(widget["content"]["spec"]["rows"][1], json!(["o2", 35]));

    let bad = respond(
        &app,
        &id,
        &request,
        json!({ "status": "responded", "data": { "ok": "yes", "speed": "never", "details": { "amount": 900 } } }),
    );
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    let fields: Vec<&str> = bad.body["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["data.ok", "data.speed", "data.details.amount"]);
    assert_eq!(
        thread(&app, &id)["status"],
        "waiting_user",
        "a rejected answer changes nothing"
    );

    let good = json!({ "ok": true, "speed": "now", "details": { "amount": 20 } });
    assert_eq!(
        respond(
            &app,
            &id,
            &request,
            json!({ "status": "responded", "data": good })
        )
        .status,
        200
    );
    let again = respond(
        &app,
        &id,
        &request,
        json!({ "status": "responded", "data": good }),
    );
    assert_eq!((again.status, again.code()), (409, "request_not_pending"));
    let unknown = respond(
        &app,
        &id,
        "00000000-0000-4000-8000-000000000000",
        json!({ "status": "responded", "data": good }),
    );
    assert_eq!((unknown.status, unknown.code()), (404, "not_found"));
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(
        kinds(&t),
        vec![
            "user",
            "tool_call",
            "widget",
            "tool_result",
            "tool_call",
            "human_request",
            "tool_result",
            "assistant"
        ]
    );
    let seen = &fake.received()[2].body["messages"];
    let answer: Value = serde_json::from_str(
        seen.as_array().unwrap().last().unwrap()["content"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(answer, json!({ "status": "responded", "data": good }));
}

#[test]
fn a_new_message_skips_a_pending_request_and_the_run_continues() {
    let fake = FakeLlm::start(vec![
        ask(),
        Answer::Text("Understood, skipping.".into()),
        Answer::Text("Hello again.".into()),
    ]);
    let app = start();
    publish(&app, "asker", &agent(&fake));
    let id = start_thread(&app, "asker", "refund", "normal");
    pending_request(&app, &id);
    let r = app.owner.client.post(
        &format!("/api/v1/orgs/{}/threads/{id}/messages", app.org),
        json!({ "message": "never mind" }),
    );
    assert_eq!(r.status, 202, "{:?}", r.body);
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed", "{t:#}");
    let result = *messages_of(&t, "tool_result").last().unwrap();
    assert_eq!(
        result["content"]["result"],
        json!({ "status": "skipped", "data": { "message": "never mind" } })
    );
    assert_eq!(
        t["runs"].as_array().unwrap().len(),
        1,
        "the same run continued"
    );
    // Continued later, the history puts the skipping message after the
    // request's result (providers refuse a user turn between a call and its result).
    let r = app.owner.client.post(
        &format!("/api/v1/orgs/{}/threads/{id}/messages", app.org),
        json!({ "message": "hello" }),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed", "{t:#}");
    let sent = &fake.received()[2].body["messages"];
    let roles: Vec<&str> = sent
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["user", "assistant", "tool", "user", "assistant", "user"],
        "{sent:#}"
    );
    assert_eq!(sent[3]["content"], "never mind");
}

#[test]
fn cancelling_a_request_resumes_the_run_with_that_outcome_and_bad_requests_are_tool_errors() {
    let fake = FakeLlm::start(vec![
        Answer::ToolCall {
            name: "human_request".into(),
            arguments: json!({ "title": "x", "fields": [] }),
        },
        ask(),
        Answer::Text("Cancelled, then.".into()),
    ]);
    let app = start();
    publish(&app, "asker", &agent(&fake));
    let id = start_thread(&app, "asker", "refund", "normal");
    let request = pending_request(&app, &id);
    let t = thread(&app, &id);
    let first = messages_of(&t, "tool_result")[0];
    assert_eq!(
        first["content"]["is_error"], true,
        "an empty form is refused to the model"
    );
    let r = respond(&app, &id, &request, json!({ "status": "cancelled" }));
    assert_eq!(r.status, 200, "{:?}", r.body);
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed");
    let result = *messages_of(&t, "tool_result").last().unwrap();
    assert_eq!(result["content"]["result"]["status"], "cancelled");
    let missing = respond(
        &app,
        &id,
        "00000000-0000-0000-0000-000000000000",
        json!({ "status": "skipped" }),
    );
    assert_eq!((missing.status, missing.code()), (404, "not_found"));
}
