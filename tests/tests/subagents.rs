//! Sub-agents: a delegated call runs as the sub-agent's own durable run on
//! its own thread; cancelling either side settles the other.

use std::time::Duration;

use serde_json::json;
use synatra_tests::fake_llm::{Answer, FakeLlm};
use synatra_tests::psql;
use synatra_tests::runs::{
    cancel, cancel_and_settle, kinds, messages_of, newest_thread_of, publish,
    publish_boss_and_helper, start, start_thread, wait_for,
};

#[test]
fn a_subagent_answers_a_delegated_call_as_its_own_durable_run() {
    let fake = FakeLlm::start(vec![
        // Parent: delegate.
        Answer::ToolCall {
            name: "delegate_to_math_helper".into(),
            arguments: json!({ "message": "Add 2 and 3." }),
        },
        // Child: use its tool, then answer (slowly, so the parent is seen waiting).
        Answer::Delayed(
            Duration::from_millis(800),
            Box::new(Answer::ToolCall {
                name: "add_numbers".into(),
                arguments: json!({ "numbers": [2, 3] }),
            }),
        ),
        Answer::Text("It is 5.".into()),
        // Parent: final answer.
        Answer::Text("My helper says 5.".into()),
    ]);
    let app = start();
    publish_boss_and_helper(&app, &fake, "math-helper");
    let id = start_thread(&app, "boss", "What is 2 + 3? Ask your helper.", "normal");
    wait_for(&app, &id, &["waiting_subagent"], Duration::from_secs(20));
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(
        kinds(&t),
        vec!["user", "tool_call", "tool_result", "assistant"]
    );
    assert_eq!(
        t["messages"][2]["content"]["result"],
        json!({ "answer": "It is 5." })
    );
    assert_eq!(t["messages"][3]["content"]["text"], "My helper says 5.");

    let r = fake.received();
    let models = fake.models();
    assert_eq!(
        models,
        vec!["boss-model", "helper-model", "helper-model", "boss-model"]
    );
    assert_eq!(
        r[0].body["tools"][0]["function"]["name"],
        "delegate_to_math_helper"
    );
    assert_eq!(
        r[1].body["messages"][1],
        json!({ "role": "user", "content": "Add 2 and 3." })
    );

    // The child is its own thread and run, linked to the parent run.
    let threads = app.owner.client.get(&format!(
        "/api/v1/orgs/{}/threads?agent=math-helper",
        app.org
    ));
    let child_id = threads.body["threads"][0]["id"].as_str().unwrap();
    let child = synatra_tests::runs::thread(&app, child_id);
    assert_eq!(child["status"], "completed");
    assert_eq!(child["runs"][0]["parent_run_id"], t["runs"][0]["id"]);
    assert_eq!(
        kinds(&child),
        vec!["user", "tool_call", "tool_result", "assistant"]
    );
}

#[test]
fn cancelling_a_parent_cancels_its_working_subagent() {
    let fake = FakeLlm::start(vec![
        Answer::ToolCall {
            name: "delegate_to_slow_helper".into(),
            arguments: json!({ "message": "Think for a minute." }),
        },
        // The child's model call would take a minute.
        Answer::Delayed(
            Duration::from_secs(60),
            Box::new(Answer::Text("late".into())),
        ),
    ]);
    let app = start();
    publish_boss_and_helper(&app, &fake, "slow-helper");
    let id = start_thread(&app, "boss", "delegate", "normal");
    wait_for(&app, &id, &["waiting_subagent"], Duration::from_secs(20));
    fake.wait_for_calls(2);
    cancel_and_settle(&app, &id, Duration::from_secs(15));
    let child = newest_thread_of(&app, "slow-helper");
    let c = wait_for(
        &app,
        &child,
        &["cancelled", "completed", "failed"],
        Duration::from_secs(15),
    );
    assert_eq!(c["status"], "cancelled", "{c:#}");
    assert_eq!(fake.calls(), 2);
}

/// The deepest chain allowed (three levels below the thread's run) is
/// cancelled whole by one request on the top thread.
#[test]
fn one_request_cancels_a_chain_three_levels_deep() {
    let delegate = |to: &str| Answer::ToolCall {
        name: format!("delegate_to_{to}"),
        arguments: json!({ "message": "pass it on" }),
    };
    let fake = FakeLlm::start(vec![
        delegate("first"),
        delegate("second"),
        delegate("third"),
        // The deepest model call would take a minute.
        Answer::Delayed(
            Duration::from_secs(60),
            Box::new(Answer::Text("late".into())),
        ),
    ]);
    let app = start();
    let config = |subagents: &[&str]| {
        json!({
            "model": { "provider": "openai", "model": "m", "base_url": fake.base_url() },
            "subagents": subagents,
        })
    };
    publish(&app, "third", &config(&[]));
    publish(&app, "second", &config(&["third"]));
    publish(&app, "first", &config(&["second"]));
    publish(&app, "top", &config(&["first"]));
    let id = start_thread(&app, "top", "go deep", "normal");
    fake.wait_for_calls(4);
    let r = app.owner.client.post(
        &format!("/api/v1/orgs/{}/threads/{id}/cancel", app.org),
        json!({}),
    );
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.body["cancelled_runs"], 4, "every level was asked at once");
    for agent in ["first", "second", "third"] {
        let child = newest_thread_of(&app, agent);
        let t = wait_for(
            &app,
            &child,
            &["cancelled", "completed", "failed"],
            Duration::from_secs(15),
        );
        assert_eq!(t["status"], "cancelled", "{agent}: {t:#}");
    }
    let t = wait_for(
        &app,
        &id,
        &["cancelled", "completed", "failed"],
        Duration::from_secs(15),
    );
    assert_eq!(t["status"], "cancelled", "{t:#}");
    assert_eq!(fake.calls(), 4);
}

#[test]
fn cancelling_a_subagents_thread_resumes_its_parent_with_the_outcome() {
    let fake = FakeLlm::start(vec![
        Answer::ToolCall {
            name: "delegate_to_slow_helper".into(),
            arguments: json!({ "message": "Think for a minute." }),
        },
        Answer::Delayed(
            Duration::from_secs(60),
            Box::new(Answer::Text("late".into())),
        ),
        Answer::Text("The helper was stopped.".into()),
    ]);
    let app = start();
    publish_boss_and_helper(&app, &fake, "slow-helper");
    let id = start_thread(&app, "boss", "delegate", "normal");
    wait_for(&app, &id, &["waiting_subagent"], Duration::from_secs(20));
    fake.wait_for_calls(2);
    let child = newest_thread_of(&app, "slow-helper");
    cancel(&app, &child);
    // The parent is not left waiting: the delegated call fails, the model answers.
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(20));
    assert_eq!(t["status"], "completed", "{t:#}");
    let result = messages_of(&t, "tool_result")[0];
    assert_eq!(result["content"]["is_error"], true);
    assert!(result["content"]["result"]["error"]
        .as_str()
        .unwrap()
        .contains("cancelled"));
}

#[test]
fn loops_and_too_deep_chains_are_refused_when_saved() {
    let fake = FakeLlm::start(vec![]);
    let app = start();
    let config = |subagents: &[&str]| {
        json!({
            "model": { "provider": "openai", "model": "m", "base_url": fake.base_url() },
            "subagents": subagents,
        })
    };
    // alpha → bravo → charlie → delta: three levels below a thread's run, the default limit.
    publish(&app, "delta", &config(&[]));
    publish(&app, "charlie", &config(&["delta"]));
    publish(&app, "bravo", &config(&["charlie"]));
    publish(&app, "alpha", &config(&["bravo"]));
    let c = &app.owner.client;
    let agents = format!("/api/v1/orgs/{}/agents", app.org);
    assert_eq!(
        c.post(&agents, json!({ "slug": "top", "name": "top" }))
            .status,
        201
    );
    let save = |slug: &str, subagents: &[&str]| {
        let r = c.send(
            "PUT",
            &format!("{agents}/{slug}/working-copy"),
            Some(&json!({ "config": config(subagents) })),
        );
        let message = r.body["error"]["details"]["fields"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (r.status, message)
    };
    let (status, why) = save("top", &["alpha"]);
    assert_eq!(status, 400);
    assert_eq!(
        why,
        "delegation would be 4 levels deep (top → alpha → bravo → charlie → delta); at most 3 are allowed (max_delegation_depth)"
    );
    assert_eq!(
        save("delta", &["alpha"]),
        (
            400,
            "delegation may not loop: delta → alpha → bravo → charlie → delta".into()
        )
    );
    assert_eq!(
        save("delta", &["delta"]),
        (400, "delegation may not loop: delta → delta".into())
    );
    // Shortening the chain below (working copy and release) makes room above.
    publish(&app, "bravo", &config(&[]));
    assert_eq!(save("top", &["alpha"]).0, 200);
    // Other agents' working copies count too: bravo may not take charlie
    // back now that top's working copy names alpha.
    assert_eq!(
        save("bravo", &["charlie"]).0,
        400,
        "top → alpha → bravo → charlie → delta"
    );
}

/// A loop saved before saving checked for loops (or by another version)
/// is still refused when the model asks for it.
#[test]
fn an_agent_cannot_delegate_to_itself_at_run_time_and_the_model_is_told_why() {
    let fake = FakeLlm::start(vec![
        Answer::ToolCall {
            name: "delegate_to_echo".into(),
            arguments: json!({ "message": "Ask yourself." }),
        },
        Answer::Text("I answer myself then.".into()),
    ]);
    let app = start();
    let echo = json!({
        "model": { "provider": "openai", "model": "echo-model", "base_url": fake.base_url() },
    });
    publish(&app, "echo", &echo);
    psql(
        &app.host.database_url,
        "ALTER TABLE agent_releases DISABLE TRIGGER agent_releases_no_update;
         UPDATE agent_releases SET config = jsonb_set(config, '{subagents}', '[\"echo\"]');
         ALTER TABLE agent_releases ENABLE TRIGGER agent_releases_no_update;",
    );
    let id = start_thread(&app, "echo", "go", "normal");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed", "{t:#}");
    let result = messages_of(&t, "tool_result")[0];
    assert_eq!(result["content"]["is_error"], true, "{result:#}");
    let error = result["content"]["result"]["error"].as_str().unwrap();
    assert!(error.contains("may not loop"), "{error}");
    // No run of the agent was started for the refused call.
    let threads = app
        .owner
        .client
        .get(&format!("/api/v1/orgs/{}/threads?agent=echo", app.org));
    assert_eq!(threads.body["threads"].as_array().unwrap().len(), 1);
    assert_eq!(fake.calls(), 2);
}

/// An agent others delegate to is protected like a tool in use.
#[test]
fn an_agent_used_as_a_subagent_cannot_be_deleted() {
    let fake = FakeLlm::start(vec![]);
    let app = start();
    publish_boss_and_helper(&app, &fake, "helper");
    let agents = format!("/api/v1/orgs/{}/agents", app.org);
    let c = &app.owner.client;
    let r = c.send("DELETE", &format!("{agents}/helper"), None);
    assert_eq!((r.status, r.code()), (409, "agent_in_use"), "{:?}", r.body);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("boss"));
    // Once the boss's working copy and release no longer name it, it goes.
    let alone =
        json!({ "model": { "provider": "openai", "model": "m", "base_url": fake.base_url() } });
    publish(&app, "boss", &alone);
    assert_eq!(
        c.send("DELETE", &format!("{agents}/helper"), None).status,
        204
    );
}
