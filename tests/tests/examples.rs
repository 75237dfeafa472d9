//! The examples under `examples/`, run as a user would run them against
//! `make up` (here a test server, with a fake provider standing in).

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use synatra_tests::fake_llm::{tool_results, Answer, FakeLlm};
use synatra_tests::runs::config_for_fakes;
use synatra_tests::{repo_root, run_script, Host, ScriptRun, DEFAULT_ORIGINS};

/// The model's side of the refund desk: a form, then the refund, then the
/// answer.
fn refund_desk_model() -> FakeLlm {
    FakeLlm::start_instant(|body: &Value| match tool_results(body) {
        0 => Answer::ToolCall {
            name: "human_request".into(),
            arguments: json!({ "title": "Which order, and how much?", "fields": [
                { "name": "details", "kind": "form", "schema": { "type": "object",
                  "required": ["order", "cents"],
                  "properties": { "order": { "type": "string" }, "cents": { "type": "integer" } } } }
            ] }),
        },
        1 => Answer::ToolCall {
            name: "refund".into(),
            arguments: json!({ "order": "A-1001", "cents": 1250 }),
        },
        _ => Answer::Text("Refunded 1250 cents on order A-1001.".into()),
    })
}

#[test]
fn the_refund_desk_example_runs_in_one_command() {
    let fake = refund_desk_model();
    let host = Host::start(&config_for_fakes().env("APP_ORIGINS", DEFAULT_ORIGINS));
    let mut script = Command::new(repo_root().join("examples/refund-desk/run.sh"));
    script
        .env("SYNATRA", &host.base)
        .env("LLM_URL", fake.base_url());
    let ScriptRun {
        status,
        stdout,
        stderr,
    } = run_script(script, Duration::from_secs(150));
    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("the agent asks: Which order, and how much?"),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"approving {"tool":"refund","params":{"cents":1250,"order":"A-1001"}}"#),
        "{stdout}"
    );
    assert!(
        stdout.contains("the agent: Refunded 1250 cents on order A-1001."),
        "{stdout}"
    );
    // The tool ran once, with the form's answer, after the approval.
    assert_eq!(fake.calls(), 3);
    let last = fake.received()[2].body["messages"].to_string();
    assert!(last.contains("refunded"), "{last}");
}
