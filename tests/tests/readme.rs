//! The README's quick start, run word for word with bash against a test
//! server (a fake OpenAI-compatible provider stands in for Ollama), so the
//! document a newcomer follows cannot drift from the server.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use synatra_tests::fake_llm::{tool_results, Answer, FakeLlm};
use synatra_tests::runs::config_for_fakes;
use synatra_tests::{repo_root, run_script, temp_dir, Host, ScriptRun, DEFAULT_ORIGINS};

/// The ```` ```lang ```` blocks of the README section titled `title`, in order.
fn readme_blocks(title: &str, lang: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let start = readme
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("no section `{title}` in the README"));
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    section
        .split(&format!("```{lang}\n"))
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
    let blocks = readme_blocks("First agent in five minutes", "sh");
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
    // No write leaves a notice behind (a stray ROLLBACK once warned on each).
    let log = host.log();
    assert!(!log.contains("no transaction in progress"), "{log}");
    assert!(!log.contains(" WARN "), "{log}");
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

/// The shell blocks of the README section `title` whose text contains
/// `marker`, in order.
fn blocks_with(title: &str, marker: &str) -> Vec<String> {
    let blocks: Vec<String> = readme_blocks(title, "sh")
        .into_iter()
        .filter(|b| b.contains(marker))
        .collect();
    assert!(
        !blocks.is_empty(),
        "no block with `{marker}` under `{title}`"
    );
    blocks
}

/// After `make up`: the health checks of the first section, against the
/// test server's addresses instead of the default ports.
#[test]
fn the_readme_health_checks_answer_as_printed() {
    let host = Host::start(&config_for_fakes());
    let block = blocks_with("Two commands", "curl").join("\n");
    let stated = block
        .lines()
        .find_map(|l| l.strip_prefix("# {"))
        .map(|rest| format!("{{{rest}"))
        .expect("the README states the health answer");
    let script = block
        .replace("localhost:3000", host.base.trim_start_matches("http://"))
        .replace("localhost:9090", host.admin.trim_start_matches("http://"));
    let mut bash = Command::new("bash");
    bash.arg("-c").arg(format!("set -euo pipefail\n{script}"));
    let ScriptRun { status, stdout, .. } = run_script(bash, Duration::from_secs(30));
    assert!(status.success(), "{stdout}");
    assert!(stdout.contains(&stated), "not `{stated}`:\n{stdout}");
    assert!(stdout.contains("# TYPE synatra_"), "metrics: {stdout}");
    assert!(stdout.ends_with("ok"), "admin health: {stdout}");
}

/// The WIT tool uploads, run word for word after the quick start's first
/// block (sign-up, org, API key), from a directory laid out like the
/// repository's root; the uploaded tool then runs.
#[test]
fn the_readme_tool_uploads_run_word_for_word() {
    let host = Host::start(&config_for_fakes().env("APP_ORIGINS", DEFAULT_ORIGINS));
    let dir = temp_dir("readme-uploads");
    let built = synatra_tests::wasm("hello_tool");
    std::fs::create_dir_all(dir.join("target/wasm32-wasip2")).unwrap();
    std::os::unix::fs::symlink(
        built.parent().unwrap(),
        dir.join("target/wasm32-wasip2/release"),
    )
    .unwrap();
    let mut blocks = vec![readme_blocks("First agent in five minutes", "sh")[0].clone()];
    blocks.extend(blocks_with("Agents and durable runs", "hello_tool.wasm"));
    blocks.extend(blocks_with(
        "Agents and durable runs",
        "tools/hello/component",
    ));
    let mut bash = Command::new("bash");
    bash.arg("-c")
        .arg(format!("set -euo pipefail\n{}", blocks.join("\n")))
        .current_dir(&dir)
        .env("SYNATRA", &host.base);
    let ScriptRun {
        status,
        stdout,
        stderr,
    } = run_script(bash, Duration::from_secs(60));
    assert!(status.success(), "{stdout}\n{stderr}");
    // The last two answers: the tool created from base64, then its raw
    // replacement with the same bytes, which keeps its version.
    let answers: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let [.., created, replaced] = answers.as_slice() else {
        panic!("{stdout}")
    };
    assert_eq!(
        (&created["name"], &created["kind"]),
        (&json!("hello"), &json!("wit"))
    );
    assert_eq!(replaced["kind"], "wit", "{stdout}");
    assert_eq!(replaced["component_sha256"], created["component_sha256"]);
    assert_eq!(replaced["version"], created["version"]);
    // The README's user signs in and the tool answers.
    let ada = host
        .client()
        .with_origin(DEFAULT_ORIGINS.split(',').next().unwrap());
    let r = ada.post(
        "/api/v1/auth/login",
        json!({ "email": "ada@example.com", "password": "correct horse battery" }),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = ada.post(
        "/api/v1/orgs/acme/tools/hello/test",
        json!({ "params": { "name": "Ada" } }),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["result"], json!({ "greeting": "Hello, Ada!" }));
}

/// `make spin-up` as the README prints it (database address aside), from
/// the repository's root: the released Spin serves the app, migrates an
/// empty database, and the ticker's secret is the one the API expects.
/// `make components` is already done by `make test` (and cargo's lock is
/// held while tests run), so `make` is told not to rebuild it.
#[test]
fn make_spin_up_serves_the_app_under_the_released_spin() {
    let Some(spin) = synatra_tests::spin::spin_or_skip() else {
        return;
    };
    let block = blocks_with("Running under `spin up`", "make spin-up").join("\n");
    let database = synatra_tests::fresh_database();
    let script = block.replace("postgres://user:pass@127.0.0.1:5432/synatra", &database);
    assert_ne!(script, block, "the README's database address changed");
    let port = embedded_postgres::free_port().unwrap();
    let data = temp_dir("spin-up-script");
    let mut bash = Command::new("bash");
    bash.arg("-c")
        .arg(format!(
            "set -euo pipefail\nmake() {{ command make -o components \"$@\"; }}\n{script}"
        ))
        .current_dir(repo_root())
        .env("SPIN_BIN", &spin)
        .env("LISTEN", format!("127.0.0.1:{port}"))
        .env("SYNATRA_DATA_DIR", &data)
        .env("TICK_EVERY", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(data.join("out.log")).unwrap())
        .stderr(std::fs::File::create(data.join("err.log")).unwrap());
    // Its own process group: the script, Spin and Spin's trigger child all
    // go when the test ends.
    std::os::unix::process::CommandExt::process_group(&mut bash, 0);
    let group = KillGroup(bash.spawn().expect("bash"));
    let log = || {
        let read = |f: &str| std::fs::read_to_string(data.join(f)).unwrap_or_default();
        format!("{}\n{}", read("out.log"), read("err.log"))
    };
    let base = format!("http://127.0.0.1:{port}");
    let client = synatra_tests::Client::new(&base);
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let health = loop {
        let up = ureq::get(&format!("{base}/.well-known/spin/health"))
            .timeout(Duration::from_secs(1))
            .call()
            .is_ok();
        if up {
            break client.get("/api/v1/health");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no answer:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        (health.status, health.body["database"].as_str()),
        (200, Some("ok")),
        "{:?}\n{}",
        health.body,
        log()
    );
    let secrets = std::fs::read_to_string(data.join("spin-secrets.env")).expect("secrets");
    let tick_secret = secrets
        .lines()
        .find_map(|l| l.strip_prefix("TICK_SECRET="))
        .expect("a tick secret");
    let tick = client
        .with_bearer(tick_secret)
        .send("POST", "/api/v1/tick", None);
    assert_eq!(tick.status, 200, "{:?}\n{}", tick.body, log());
    let wrong = client
        .with_bearer("wrong")
        .send("POST", "/api/v1/tick", None);
    assert_eq!(wrong.status, 401, "{:?}", wrong.body);
    drop(group);
}

/// A process leading its own group; the whole group is killed (and the
/// leader reaped) when dropped.
struct KillGroup(std::process::Child);

impl Drop for KillGroup {
    fn drop(&mut self) {
        // SAFETY: signalling the process group this test started.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// The configuration section's runtime config file takes effect (and wins
/// over the plain variable, as the precedence says), and its per-component
/// limits table is accepted as printed and applied.
#[test]
fn the_readme_configuration_examples_take_effect() {
    let examples = readme_blocks("Configuration", "toml");
    let [runtime_config, limits] = examples.as_slice() else {
        panic!("expected two TOML blocks, found {}", examples.len())
    };
    let dir = temp_dir("readme-config");
    let file = dir.join("runtime-config.toml");
    std::fs::write(&file, runtime_config).unwrap();
    let mut config = config_for_fakes();
    config.args = vec!["--runtime-config-file".into(), file.display().to_string()];
    let host = Host::start(&config);
    // Sign-up sends no Origin (as in the quick start); the cookie's writes do.
    let client = host.client();
    let r = client.post(
        "/api/v1/auth/signup",
        json!({ "email": "grace@example.com", "password": "correct horse battery", "name": "Grace" }),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let create = |origin: &str| {
        let c = client.clone().with_origin(origin);
        c.post(
            "/api/v1/orgs",
            json!({ "name": "Acme", "slug": format!("acme-{}", origin.len()) }),
        )
    };
    assert_eq!(create("https://synatra.example.com").status, 201);
    let refused = create(synatra_tests::TEST_ORIGIN);
    assert_eq!(refused.code(), "origin_not_allowed", "{:?}", refused.body);

    // The limits table in place of the API's own.
    let manifest = synatra_tests::app_manifest(&temp_dir("readme-limits"));
    let text = std::fs::read_to_string(&manifest).unwrap();
    let start = text
        .find("[component.api.tool.synatra]\n")
        .expect("api limits");
    let end = start + text[start..].find("\n\n").expect("end of table");
    std::fs::write(
        &manifest,
        format!("{}{}{}", &text[..start], limits.trim_end(), &text[end..]),
    )
    .unwrap();
    let mut config = config_for_fakes();
    config.manifest = manifest;
    let host = Host::start(&config);
    let client = host.client();
    assert_eq!(client.get("/api/v1/health").status, 200);
    let max: u64 = limits
        .lines()
        .find_map(|l| l.strip_prefix("max_body_bytes = "))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("max_body_bytes in the example");
    // A body declared one byte over the example's limit is refused unread.
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(host.base.trim_start_matches("http://")).unwrap();
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        max + 1
    );
    tcp.write_all(head.as_bytes()).unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
}
