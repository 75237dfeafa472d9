//! The README's quick start, run word for word with bash against a test
//! server (a fake OpenAI-compatible provider stands in for Ollama), so the
//! document a newcomer follows cannot drift from the server.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use synatra_tests::fake_llm::{tool_results, Answer, FakeLlm};
use synatra_tests::runs::config_for_fakes;
use synatra_tests::{repo_root, run_script, temp_dir, Host, ScriptRun, DEFAULT_ORIGINS};

/// The shell blocks of the README section titled `title`, in order.
fn shell_blocks(title: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let start = readme
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("no section `{title}` in the README"));
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    section
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().expect("a closed block").to_string())
        .collect()
}

/// The model's side of the quick start: a tool call for each question,
/// then an answer from the tool's result.
fn provider() -> FakeLlm {
    FakeLlm::start_instant(|body: &Value| {
        let asked = body["messages"].to_string();
        if tool_results(body) > 0 {
            let text = if asked.contains("A-1001") {
                "Refunded 1250 cents on order A-1001."
            } else {
                "19 + 23 = 42."
            };
            return Answer::Text(text.into());
        }
        if asked.contains("A-1001") {
            Answer::ToolCall {
                name: "refund".into(),
                arguments: json!({ "order": "A-1001", "cents": 1250 }),
            }
        } else {
            Answer::ToolCall {
                name: "add_numbers".into(),
                arguments: json!({ "numbers": [19, 23] }),
            }
        }
    })
}

#[test]
fn the_quick_start_runs_word_for_word() {
    let blocks = shell_blocks("First agent in five minutes");
    assert!(blocks.len() >= 4, "found {} blocks", blocks.len());
    let fake = provider();
    // The default origins (the README's Origin header is one of them).
    let host = Host::start(&config_for_fakes().env("APP_ORIGINS", DEFAULT_ORIGINS));
    let dir = temp_dir("quick-start");
    let script = format!("set -euo pipefail\n{}", blocks.join("\n"));
    let mut bash = Command::new("bash");
    bash.arg("-c")
        .arg(&script)
        .current_dir(&dir)
        .env("SYNATRA", &host.base)
        .env("LLM_URL", fake.base_url());
    let ScriptRun {
        status,
        stdout,
        stderr,
    } = run_script(bash, Duration::from_secs(120));
    assert!(
        status.success(),
        "the quick start failed ({status}):\n{stdout}\n{stderr}"
    );
    // Both threads streamed their answers and ended.
    assert!(stdout.contains("event: token\n"), "{stdout}");
    for answer in ["19 + 23 = 42.", "Refunded 1250 cents on order A-1001."] {
        assert!(
            stdout.contains(&json!({ "text": answer }).to_string()),
            "no answer `{answer}`:\n{stdout}"
        );
    }
    assert_eq!(stdout.matches("event: end").count(), 2, "{stdout}");
    assert!(
        stdout.contains("\"refunded\":1250"),
        "the tool ran: {stdout}"
    );
    // The model was reached only through the credential's URL.
    assert_eq!(fake.calls(), 4);
    assert!(fake.received().iter().all(|r| r.authorization.is_none()));
}

/// Every JSON example of the README parses, and the agent configuration
/// example is accepted exactly as printed and publishes.
#[test]
fn the_readme_json_examples_are_valid_and_the_agent_config_publishes() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let blocks: Vec<Value> = readme
        .split("```json\n")
        .skip(1)
        .map(|b| {
            let text = b.split("```").next().unwrap();
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}:\n{text}"))
        })
        .collect();
    let config = blocks
        .iter()
        .find(|b| b.get("config").is_some())
        .expect("the agent configuration example");
    let app = synatra_tests::runs::start();
    let c = &app.owner.client;
    let agents = format!("/api/v1/orgs/{}/agents", app.org);
    assert_eq!(
        c.post(&agents, json!({ "slug": "example", "name": "Example" }))
            .status,
        201
    );
    let r = c.send(
        "PUT",
        &format!("{agents}/example/working-copy"),
        Some(config),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = c.post(
        &format!("{agents}/example/releases"),
        json!({ "bump": "major" }),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["config"]["limits"]["max_active_time"], 600);
}
