//! Cancelling runs: a waiting run stops at once, a run in a model call is
//! interrupted mid-call, and the thread can continue afterwards.

use std::time::Duration;

use serde_json::json;
use synatra_tests::fake_llm::{Answer, FakeLlm};
use synatra_tests::runs::{
    agent_config, cancel_and_settle, kinds, publish, start, start_thread, wait_for,
};

#[test]
fn cancelling_a_run_stops_it_and_the_thread_can_continue() {
    let fake = FakeLlm::start(vec![Answer::Delayed(
        Duration::from_millis(1500),
        Box::new(Answer::ToolCall {
            name: "add_numbers".into(),
            arguments: json!({ "numbers": [1, 1] }),
        }),
    )]);
    let app = start();
    publish(&app, "slow", &agent_config(&fake, "m", json!({})));
    let id = start_thread(&app, "slow", "take your time", "normal");
    fake.wait_for_calls(1);
    let t = cancel_and_settle(&app, &id, Duration::from_secs(30));
    assert_eq!(t["runs"][0]["status"], "cancelled");
    assert_eq!(fake.calls(), 1, "no model call after the cancellation");
    // A message to a cancelled thread starts a new run.
    fake.push([Answer::Text("back".into())]);
    let more = app.owner.client.post(
        &format!("/api/v1/orgs/{}/threads/{id}/messages", app.org),
        json!({ "message": "again" }),
    );
    assert_eq!(more.status, 201);
    wait_for(&app, &id, &["completed"], Duration::from_secs(30));
}

#[test]
fn cancelling_interrupts_a_model_call_in_progress() {
    // The model would answer after 60 s; the test waits at most 15 s.
    let fake = FakeLlm::start(vec![Answer::Delayed(
        Duration::from_secs(60),
        Box::new(Answer::Text("too late".into())),
    )]);
    let app = start();
    publish(&app, "stuck", &agent_config(&fake, "m", json!({})));
    let id = start_thread(&app, "stuck", "think hard", "normal");
    fake.wait_for_calls(1);
    let t = cancel_and_settle(&app, &id, Duration::from_secs(15));
    assert_eq!(
        t["runs"][0]["steps"], 0,
        "the interrupted call recorded nothing"
    );
    assert_eq!(kinds(&t), vec!["user"]);
    assert!(app.host.log().contains("interrupting the running step"));
}
