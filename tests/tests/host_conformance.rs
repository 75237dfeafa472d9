//! The host behaves like Spin: routing, headers, private routes, outbound
//! rules, variables, Postgres, key-value, and limits that never take it down.
//!
//! The cases in `on_both_hosts!` run twice on the same component and
//! manifest, under `synatra up` and under the released Spin CLI (4.x), and
//! expect the same outcome from both; the rest test deliberate extras of our
//! host (limits under `[component.*.tool.synatra]`, refusals Spin lacks).

use std::io::{Read, Write};
use std::net::TcpListener;

use serde_json::Value;
use synatra_tests::spin::{host_port, Backend, SpinUp};
use synatra_tests::{
    fresh_database, live_instances, temp_dir, wasm, write_file, Host, HostConfig, Server,
};

/// A local HTTP server that waits `delay` before answering; returns its port.
fn slow_server(delay: std::time::Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                std::thread::sleep(delay);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\nlate",
                );
            });
        }
    });
    port
}

/// A local HTTP server answering `pong` to everything; returns its port.
fn pong_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\npong",
            );
        }
    });
    port
}

fn manifest(extra_variables: &str, allowed_port: u16) -> String {
    let source = wasm("conformance_component").display().to_string();
    format!(
        r#"
spin_manifest_version = 2
[application]
name = "conformance"
[variables]
greeting = {{ default = "hello" }}
database_url = {{ required = true, secret = true }}
database_host = {{ default = "unset:1" }}
{extra_variables}

[[trigger.http]]
route = "/..."
component = "root"
[[trigger.http]]
route = "/api/..."
component = "api"
[[trigger.http]]
route = "/api/exact"
component = "exact"
[[trigger.http]]
route = "/users/:id/..."
component = "users"
[[trigger.http]]
route = {{ private = true }}
component = "hidden"
[[trigger.http]]
route = "/limited/..."
component = "limited"
[[trigger.http]]
route = "/spinner/..."
component = "spinner"
[[trigger.http]]
route = "/single/..."
component = "single"
[[trigger.http]]
route = "/data/..."
component = "data"
[[trigger.http]]
route = "/impatient/..."
component = "impatient"

[component.root]
source = "{source}"
allowed_outbound_hosts = ["http://self", "http://hidden.spin.internal", "http://127.0.0.1:{allowed_port}"]
variables = {{ component_name = "root", greeting = "{{{{ greeting }}}}", database_url = "{{{{ database_url }}}}" }}
[component.api]
source = "{source}"
variables = {{ component_name = "api" }}
[component.exact]
source = "{source}"
variables = {{ component_name = "exact" }}
[component.users]
source = "{source}"
variables = {{ component_name = "users" }}
[component.hidden]
source = "{source}"
variables = {{ component_name = "hidden" }}
[component.limited]
source = "{source}"
variables = {{ component_name = "limited" }}
[component.limited.tool.synatra]
memory_limit_mb = 32
timeout_ms = 500
[component.spinner]
source = "{source}"
variables = {{ component_name = "spinner" }}
[component.spinner.tool.synatra]
timeout_ms = 3000
[component.single]
source = "{source}"
variables = {{ component_name = "single" }}
[component.single.tool.synatra]
timeout_ms = 8000
max_concurrency = 1
[component.impatient]
source = "{source}"
allowed_outbound_hosts = ["http://127.0.0.1:*"]
variables = {{ component_name = "impatient" }}
[component.impatient.tool.synatra]
outbound_timeout_ms = 300
[component.data]
source = "{source}"
allowed_outbound_hosts = ["postgres://{{{{ database_host }}}}"]
key_value_stores = ["default"]
variables = {{ component_name = "data", database_url = "{{{{ database_url }}}}" }}
"#
    )
}

/// Starts `backend` on the conformance manifest with a fresh database, the
/// extra environment and, if given, a runtime config file.
fn start_on(
    backend: &Backend,
    extra_env: &[(&str, &str)],
    runtime_config: Option<&str>,
) -> (Box<dyn Server>, u16) {
    let port = pong_server();
    let dir = temp_dir("host");
    let path = write_file(&dir, "spin.toml", &manifest("", port));
    let database = fresh_database();
    let mut env: Vec<(String, String)> = vec![
        ("SPIN_VARIABLE_DATABASE_URL".into(), database.clone()),
        ("SPIN_VARIABLE_DATABASE_HOST".into(), host_port(&database)),
    ];
    env.extend(
        extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let mut args = Vec::new();
    if let Some(text) = runtime_config {
        let file = write_file(&dir, "runtime-config.toml", text);
        args = vec![
            "--runtime-config-file".to_string(),
            file.display().to_string(),
        ];
    }
    let server: Box<dyn Server> = match backend {
        Backend::Synatra => {
            let mut config = HostConfig::new(path);
            config.database_url = database;
            config.args = args;
            for (k, v) in &env {
                config = config.env(k, v);
            }
            Box::new(Host::start(&config))
        }
        Backend::Spin(bin) => {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Box::new(SpinUp::start(bin, &path, &env, &args))
        }
    };
    (server, port)
}

fn start(extra_env: &[(&str, &str)]) -> (Host, u16) {
    let port = pong_server();
    let dir = temp_dir("host");
    let path = write_file(&dir, "spin.toml", &manifest("", port));
    let mut config = HostConfig::new(path);
    for (k, v) in extra_env {
        config = config.env(k, v);
    }
    (Host::start(&config), port)
}

synatra_tests::on_both_hosts!(
    exact_route_beats_wildcard_and_spin_headers_are_set,
    client_cannot_forge_spin_headers,
    named_segments_are_passed_as_path_match_headers,
    private_route_is_unreachable_from_outside_but_reachable_internally,
    self_requests_are_routed_in_process,
    outbound_host_not_allowed_is_denied_and_allowed_one_works,
    variables_resolve_from_defaults_environment_and_runtime_config,
    required_variable_missing_fails_startup_naming_it,
    unknown_manifest_field_fails_startup,
    postgres_round_trip_with_transaction_and_nulls,
    postgres_types_parameters_and_errors_follow_spin,
    postgres_address_outside_allowed_hosts_is_refused,
    a_query_matching_no_rows_is_not_answered_and_synatra_db_never_sends_one,
    key_value_store_round_trip_and_undeclared_store_denied,
    trapping_component_gets_500_and_the_server_keeps_serving,
);

fn component_of(body: &Value) -> &str {
    body["component"].as_str().unwrap_or("?")
}

fn exact_route_beats_wildcard_and_spin_headers_are_set(backend: &Backend) {
    let (host, _) = start_on(backend, &[], None);
    let c = host.client();
    let exact = c.get("/api/exact");
    assert_eq!(exact.status, 200);
    assert_eq!(component_of(&exact.body), "exact");
    assert_eq!(exact.body["headers"]["spin-path-info"], "");

    let wild = c.get("/api/other/thing?x=1");
    assert_eq!(component_of(&wild.body), "api");
    let h = &wild.body["headers"];
    assert_eq!(h["spin-path-info"], "/other/thing");
    assert_eq!(h["spin-matched-route"], "/api/...");
    assert_eq!(h["spin-component-route"], "/api");
    assert_eq!(h["spin-base-path"], "/");
    assert!(h["spin-full-url"]
        .as_str()
        .unwrap()
        .ends_with("/api/other/thing?x=1"));
    assert!(h["spin-client-addr"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    if matches!(backend, Backend::Synatra) {
        assert!(wild.header("x-request-id").is_some());
    }

    assert_eq!(component_of(&c.get("/elsewhere").body), "root");
}

fn client_cannot_forge_spin_headers(backend: &Backend) {
    let (host, _) = start_on(backend, &[], None);
    let reply = host.client().send_raw("GET", "/api/exact", None);
    assert_eq!(reply.body["headers"]["spin-path-info"], "");
    let forged = ureq::get(&format!("{}/api/x", host.base()))
        .set("spin-path-info", "/forged")
        .set("spin-matched-route", "/forged/...")
        .call()
        .unwrap()
        .into_json::<Value>()
        .unwrap();
    assert_eq!(forged["headers"]["spin-path-info"], "/x");
    assert_eq!(forged["headers"]["spin-matched-route"], "/api/...");
}

fn named_segments_are_passed_as_path_match_headers(backend: &Backend) {
    let (host, _) = start_on(backend, &[], None);
    let reply = host.client().get("/users/42/profile");
    assert_eq!(component_of(&reply.body), "users");
    assert_eq!(reply.body["headers"]["spin-path-match-id"], "42");
    assert_eq!(reply.body["headers"]["spin-path-info"], "/profile");
}

fn private_route_is_unreachable_from_outside_but_reachable_internally(backend: &Backend) {
    let (host, _) = start_on(backend, &[], None);
    let c = host.client();
    for path in ["/hidden", "/hidden/echo", "/"] {
        assert_ne!(component_of(&c.get(path).body), "hidden", "{path}");
    }
    let via_root = c.get("/fetch?url=http%3A%2F%2Fhidden.spin.internal%2Fecho");
    assert_eq!(via_root.status, 200, "{:?}", via_root.body);
    let inner: Value = serde_json::from_str(via_root.body["body"].as_str().unwrap()).unwrap();
    assert_eq!(component_of(&inner), "hidden");
    assert_eq!(inner["headers"]["spin-path-info"], "/echo");

    // `api` has no allowed_outbound_hosts: service chaining is denied too.
    let denied = c.get("/api/fetch?url=http%3A%2F%2Fhidden.spin.internal%2Fecho");
    assert_eq!(denied.status, 502, "{:?}", denied.body);
}

fn self_requests_are_routed_in_process(backend: &Backend) {
    let (host, _) = start_on(backend, &[], None);
    let reply = host
        .client()
        .get("/fetch?url=http%3A%2F%2Fself.alt%2Fapi%2Fexact");
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let inner: Value = serde_json::from_str(reply.body["body"].as_str().unwrap()).unwrap();
    assert_eq!(component_of(&inner), "exact");
}

fn outbound_host_not_allowed_is_denied_and_allowed_one_works(backend: &Backend) {
    let (host, port) = start_on(backend, &[], None);
    let c = host.client();
    let allowed = c.get(&format!("/fetch?url=http%3A%2F%2F127.0.0.1%3A{port}%2F"));
    assert_eq!(allowed.status, 200, "{:?}", allowed.body);
    assert_eq!(allowed.body["body"], "pong");

    let denied = c.get(&format!(
        "/api/fetch?url=http%3A%2F%2F127.0.0.1%3A{port}%2F"
    ));
    assert_eq!(denied.status, 502);
    assert!(
        denied.body["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("denied"),
        "{:?}",
        denied.body
    );
    if matches!(backend, Backend::Synatra) {
        assert!(host.log().contains("outbound request denied"));
    }
}

fn variables_resolve_from_defaults_environment_and_runtime_config(backend: &Backend) {
    let (host, _) = start_on(backend, &[], None);
    let reply = host.client().get("/var?name=greeting");
    assert_eq!(reply.body["value"], "hello");
    let missing = host.client().get("/var?name=nope");
    assert_eq!(missing.status, 404);

    let (host, _) = start_on(backend, &[("SPIN_VARIABLE_GREETING", "bonjour")], None);
    assert_eq!(
        host.client().get("/var?name=greeting").body["value"],
        "bonjour"
    );

    // A static provider in the runtime config comes before the environment.
    let config = "[[variables_provider]]\ntype = \"static\"\nvalues = { greeting = \"hallo\" }\n";
    let (host, _) = start_on(
        backend,
        &[("SPIN_VARIABLE_GREETING", "bonjour")],
        Some(config),
    );
    assert_eq!(
        host.client().get("/var?name=greeting").body["value"],
        "hallo"
    );

    // An env provider with its own prefix.
    let config = "[[variables_provider]]\ntype = \"env\"\nprefix = \"MYAPP\"\n";
    let (host, _) = start_on(backend, &[("MYAPP_GREETING", "hej")], Some(config));
    assert_eq!(host.client().get("/var?name=greeting").body["value"], "hej");
}

/// The log of a start that must fail.
fn failed_start(backend: &Backend, manifest_text: &str) -> String {
    let dir = temp_dir("failing");
    let path = write_file(&dir, "spin.toml", manifest_text);
    let database = fresh_database();
    match backend {
        Backend::Synatra => Host::try_start(&HostConfig::new(path))
            .err()
            .expect("start-up must fail"),
        Backend::Spin(bin) => SpinUp::start_failure(
            bin,
            &path,
            &[("SPIN_VARIABLE_DATABASE_URL".into(), database)],
        ),
    }
}

fn required_variable_missing_fails_startup_naming_it(backend: &Backend) {
    let log = failed_start(backend, &manifest("must_have = { required = true }", 1));
    assert!(log.contains("must_have"), "{log}");
}

fn unknown_manifest_field_fails_startup(backend: &Backend) {
    let text = manifest("", 1).replace("[component.api]", "[component.api]\nsurprise = true");
    let log = failed_start(backend, &text);
    assert!(log.contains("surprise"), "{log}");
}

fn postgres_round_trip_with_transaction_and_nulls(backend: &Backend) {
    let (host, _) = start_on(backend, &[], None);
    let reply = host.client().get("/data/pg");
    assert_eq!(reply.status, 200, "{:?}\n{}", reply.body, host.log());
    assert_eq!(reply.body["note"], "hello");
    assert_eq!(reply.body["n_is_null"], true);
    assert_eq!(reply.body["at_is_datetime"], true);
    assert_eq!(
        reply.body["columns"],
        serde_json::json!(["note", "n", "at"])
    );
}

/// Spin 4.0.2's answers to the conformance component's `pg_types` cases,
/// recorded from the released CLI: every host must give the same.
const SPIN_PG_TYPES: &str = include_str!("spin_pg_types.json");

fn postgres_types_parameters_and_errors_follow_spin(backend: &Backend) {
    let (host, _) = start_on(backend, &[], None);
    let reply = host.client().get("/data/pg_types");
    assert_eq!(reply.status, 200, "{:?}\n{}", reply.body, host.log());
    let expected: Value = serde_json::from_str(SPIN_PG_TYPES).unwrap();
    let cases = expected.as_object().unwrap();
    assert_eq!(
        reply.body.as_object().unwrap().len(),
        cases.len(),
        "{:#}",
        reply.body
    );
    for (case, outcome) in cases {
        assert_eq!(&reply.body[case], outcome, "case `{case}`");
    }
}

fn a_query_matching_no_rows_is_not_answered_and_synatra_db_never_sends_one(backend: &Backend) {
    let (host, _) = start_on(backend, &[], None);
    // Spin 4.0.2 never answers it (spinframework/spin#3671); ours refuses it.
    let raw = ureq::get(&format!("{}/data/pg_no_rows", host.base()))
        .timeout(std::time::Duration::from_secs(3))
        .call();
    match backend {
        Backend::Spin(_) => assert!(
            matches!(raw, Err(ureq::Error::Transport(_))),
            "Spin 4.0.2 answered a query matching no rows: {raw:?}; \
             if a newer Spin fixed spinframework/spin#3671, relax this case"
        ),
        Backend::Synatra => {
            let Err(ureq::Error::Status(500, reply)) = raw else {
                panic!("expected a refusal, got {raw:?}");
            };
            let body = reply.into_string().unwrap();
            assert!(body.contains("spinframework/spin#3671"), "{body}");
        }
    }
    // Through synatra-db every statement yields a row, so both answer.
    let wrapped = host.client().get("/data/pg_no_rows_wrapped");
    assert_eq!(wrapped.status, 200, "{:?}\n{}", wrapped.body, host.log());
    assert_eq!(
        wrapped.body,
        serde_json::json!({ "empty": [], "ordered": [5, 4, 3, 2, 1], "returning": [7, 8], "update nothing": [] })
    );
}

fn postgres_address_outside_allowed_hosts_is_refused(backend: &Backend) {
    let (host, _) = start_on(backend, &[], None);
    // `root` may not reach the database: its allowed hosts have no postgres entry.
    let reply = host.client().get("/pg");
    assert_eq!(reply.status, 500);
    if matches!(backend, Backend::Synatra) {
        assert!(
            host.log().contains("allowed_outbound_hosts"),
            "{}",
            host.log()
        );
    }
}

#[test]
fn postgres_through_a_unix_socket_is_refused_even_for_an_allowed_host() {
    let (host, _) = start(&[]);
    let reply = host.client().get("/data/pg_socket");
    assert_eq!(reply.status, 403, "{:?}", reply.body);
    assert!(
        reply.body["error"]
            .as_str()
            .unwrap()
            .contains("Unix-socket database addresses are not allowed"),
        "{:?}",
        reply.body
    );
}

fn key_value_store_round_trip_and_undeclared_store_denied(backend: &Backend) {
    let (host, _) = start_on(backend, &[], None);
    let c = host.client();
    let reply = c.get("/data/kv");
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["value"], "hi");
    assert_eq!(reply.body["keys"], serde_json::json!(["greeting"]));
    assert_eq!(c.get("/data/kv?store=secret").status, 403);
}

fn trapping_component_gets_500_and_the_server_keeps_serving(backend: &Backend) {
    let (host, _) = start_on(backend, &[], None);
    let c = host.client();
    let reply = c.get("/limited/trap");
    assert_eq!(reply.status, 500);
    if matches!(backend, Backend::Synatra) {
        assert_eq!(reply.code(), "component_failed");
    }
    assert_eq!(c.get("/api/exact").status, 200);
}

#[test]
fn infinite_loop_hits_epoch_deadline_with_504_and_host_keeps_serving() {
    let (host, _) = start(&[]);
    let c = host.client();
    let started = std::time::Instant::now();
    let reply = c.get("/limited/loop");
    assert_eq!(reply.status, 504);
    assert_eq!(reply.code(), "component_timeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(c.get("/api/exact").status, 200);
    let metrics = ureq::get(&format!("{}/metrics", host.admin))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics.contains(r#"synatra_component_errors_total{component="limited",kind="timeout"} 1"#),
        "{metrics}"
    );
}

#[test]
fn memory_bomb_hits_limit_with_500_and_host_keeps_serving() {
    let (host, _) = start(&[]);
    let c = host.client();
    let reply = c.get("/limited/alloc");
    assert_eq!(reply.status, 500);
    assert_eq!(reply.code(), "component_memory_limit");
    assert_eq!(c.get("/api/exact").status, 200);
    assert!(host.log().contains("memory"));
}

#[test]
fn concurrent_loops_do_not_starve_other_requests() {
    let (host, _) = start(&[]);
    // Four endless loops (more than the host has cores), each stopped by
    // its 3 s limit.
    let looping: Vec<_> = (0..4)
        .map(|_| {
            let c = host.client();
            std::thread::spawn(move || {
                let status = c.get("/spinner/loop").status;
                (status, std::time::Instant::now())
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(host.client().get("/api/exact").status, 200);
    let answered = std::time::Instant::now();
    // Answered while the loops still spin: a starved request would only be
    // answered once they were stopped.
    for t in looping {
        let (status, ended) = t.join().unwrap();
        assert_eq!(status, 504);
        assert!(answered < ended, "the request waited for a loop to end");
    }
}

/// A component's `max_concurrency` slots are its own: with its one slot
/// taken, a second request waits 5 s and gets 503 `component_busy`, while
/// other components answer at once.
#[test]
fn a_full_component_answers_busy_and_others_keep_serving() {
    let (host, _) = start(&[]);
    let c = host.client();
    let looping = std::thread::spawn(move || c.get("/single/loop").status);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while live_instances(&host.admin) < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the loop never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(host.client().get("/api/exact").status, 200);
    let busy = host.client().get("/single/loop");
    assert_eq!((busy.status, busy.code()), (503, "component_busy"));
    assert_eq!(looping.join().unwrap(), 504);
}

#[test]
fn sigterm_shuts_down_gracefully() {
    // The root component may reach a server that answers after 1 s.
    let slow = slow_server(std::time::Duration::from_secs(1));
    let dir = temp_dir("host");
    let path = write_file(&dir, "spin.toml", &manifest("", slow));
    let mut host = Host::start(&HostConfig::new(path));
    assert_eq!(host.client().get("/api/exact").status, 200);
    let c = host.client();
    let in_flight = std::thread::spawn(move || {
        c.get(&format!("/fetch?url=http%3A%2F%2F127.0.0.1%3A{slow}%2F"))
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let status = host.stop();
    assert!(status.success(), "{status:?}\n{}", host.log());
    assert!(host.log().contains("stopped"));
    // The request that was in flight when SIGTERM came was finished.
    let reply = in_flight.join().unwrap();
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["body"], "late");
}

#[test]
fn outbound_requests_time_out_per_component_setting() {
    let (host, _) = start(&[]);
    // The server answers after 3 s; the component allows 300 ms.
    let slow = slow_server(std::time::Duration::from_secs(3));
    let reply = host.client().get(&format!(
        "/impatient/fetch?url=http%3A%2F%2F127.0.0.1%3A{slow}%2F"
    ));
    assert_eq!(reply.status, 502, "{:?}", reply.body);
    assert!(
        reply.body["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("timeout"),
        "{:?}",
        reply.body
    );
}

/// The admin port: `/health`, and `/metrics` as OpenMetrics text whose
/// every sample belongs to a declared family (`x_total` of counter `x`,
/// `x_bucket`/`_sum`/`_count` of histogram `x`).
#[test]
fn the_admin_port_serves_health_and_well_formed_openmetrics() {
    let (host, _) = start(&[]);
    assert_eq!(host.client().get("/api/exact").status, 200);
    let health = ureq::get(&format!("{}/health", host.admin)).call().unwrap();
    assert_eq!(health.into_string().unwrap(), "ok");
    let metrics = ureq::get(&format!("{}/metrics", host.admin))
        .call()
        .unwrap();
    assert!(metrics
        .content_type()
        .starts_with("application/openmetrics-text"));
    let text = metrics.into_string().unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    let mut families = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            families.insert(name.to_string(), kind.to_string());
        }
    }
    let suffixes = |kind: &str| -> &[&str] {
        match kind {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            _ => &[""],
        }
    };
    for sample in text.lines().filter(|l| !l.starts_with('#')) {
        let name = sample.split(['{', ' ']).next().unwrap();
        let declared = families.iter().any(|(family, kind)| {
            suffixes(kind)
                .iter()
                .any(|s| name == format!("{family}{s}"))
        });
        assert!(declared, "sample `{name}` has no # TYPE family");
    }
    assert!(text.contains("# TYPE synatra_http_requests counter"));
    assert!(text.contains("synatra_http_requests_total{"));
}
