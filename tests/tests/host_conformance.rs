//! The host behaves like Spin: routing, headers, private routes, outbound
//! rules, variables, Postgres, key-value, and limits that never take it down.

use std::io::{Read, Write};
use std::net::TcpListener;

use serde_json::Value;
use synatra_tests::{temp_dir, wasm, write_file, Host, HostConfig};

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

fn component_of(body: &Value) -> &str {
    body["component"].as_str().unwrap_or("?")
}

#[test]
fn exact_route_beats_wildcard_and_spin_headers_are_set() {
    let (host, _) = start(&[]);
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
    assert!(wild.header("x-request-id").is_some());

    assert_eq!(component_of(&c.get("/elsewhere").body), "root");
}

#[test]
fn client_cannot_forge_spin_headers() {
    let (host, _) = start(&[]);
    let reply = host.client().send_raw("GET", "/api/exact", None);
    assert_eq!(reply.body["headers"]["spin-path-info"], "");
    let forged = ureq::get(&format!("{}/api/x", host.base))
        .set("spin-path-info", "/forged")
        .set("spin-matched-route", "/forged/...")
        .call()
        .unwrap()
        .into_json::<Value>()
        .unwrap();
    assert_eq!(forged["headers"]["spin-path-info"], "/x");
    assert_eq!(forged["headers"]["spin-matched-route"], "/api/...");
}

#[test]
fn named_segments_are_passed_as_path_match_headers() {
    let (host, _) = start(&[]);
    let reply = host.client().get("/users/42/profile");
    assert_eq!(component_of(&reply.body), "users");
    assert_eq!(reply.body["headers"]["spin-path-match-id"], "42");
    assert_eq!(reply.body["headers"]["spin-path-info"], "/profile");
}

#[test]
fn private_route_is_unreachable_from_outside_but_reachable_internally() {
    let (host, _) = start(&[]);
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

#[test]
fn self_requests_are_routed_in_process() {
    let (host, _) = start(&[]);
    let reply = host
        .client()
        .get("/fetch?url=http%3A%2F%2Fself.alt%2Fapi%2Fexact");
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let inner: Value = serde_json::from_str(reply.body["body"].as_str().unwrap()).unwrap();
    assert_eq!(component_of(&inner), "exact");
}

#[test]
fn outbound_host_not_allowed_is_denied_and_allowed_one_works() {
    let (host, port) = start(&[]);
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
    assert!(host.log().contains("outbound request denied"));
}

#[test]
fn variables_resolve_from_defaults_and_environment() {
    let (host, _) = start(&[]);
    let reply = host.client().get("/var?name=greeting");
    assert_eq!(reply.body["value"], "hello");
    let missing = host.client().get("/var?name=nope");
    assert_eq!(missing.status, 404);

    let (host, _) = start(&[("SPIN_VARIABLE_GREETING", "bonjour")]);
    assert_eq!(
        host.client().get("/var?name=greeting").body["value"],
        "bonjour"
    );
}

#[test]
fn required_variable_missing_fails_startup_naming_it() {
    let dir = temp_dir("required");
    let path = write_file(
        &dir,
        "spin.toml",
        &manifest("must_have = { required = true }", 1),
    );
    let log = Host::try_start(&HostConfig::new(path))
        .err()
        .expect("start-up must fail");
    assert!(log.contains("must_have"), "{log}");
}

#[test]
fn unknown_manifest_field_fails_startup_naming_it() {
    let dir = temp_dir("unknown");
    let text = manifest("", 1).replace("[component.api]", "[component.api]\nsurprise = true");
    let path = write_file(&dir, "spin.toml", &text);
    let log = Host::try_start(&HostConfig::new(path))
        .err()
        .expect("start-up must fail");
    assert!(log.contains("surprise"), "{log}");
}

#[test]
fn postgres_round_trip_with_transaction_and_nulls() {
    let (host, _) = start(&[]);
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

#[test]
fn postgres_address_outside_allowed_hosts_is_refused() {
    let (host, _) = start(&[]);
    // `root` may not reach the database: its allowed hosts have no postgres entry.
    let reply = host.client().get("/pg");
    assert_eq!(reply.status, 500);
    assert!(
        host.log().contains("allowed_outbound_hosts"),
        "{}",
        host.log()
    );
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

#[test]
fn key_value_store_round_trip_and_undeclared_store_denied() {
    let (host, _) = start(&[]);
    let c = host.client();
    let reply = c.get("/data/kv");
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["value"], "hi");
    assert_eq!(reply.body["keys"], serde_json::json!(["greeting"]));
    assert_eq!(c.get("/data/kv?store=secret").status, 403);
}

#[test]
fn trapping_component_gets_500_and_host_keeps_serving() {
    let (host, _) = start(&[]);
    let c = host.client();
    let reply = c.get("/limited/trap");
    assert_eq!(reply.status, 500);
    assert_eq!(reply.code(), "component_failed");
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
    let looping: Vec<_> = (0..4)
        .map(|_| {
            let c = host.client();
            std::thread::spawn(move || c.get("/limited/loop").status)
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(host.client().get("/api/exact").status, 200);
    for t in looping {
        assert_eq!(t.join().unwrap(), 504);
    }
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let (mut host, _) = start(&[]);
    assert_eq!(host.client().get("/api/exact").status, 200);
    let status = host.stop();
    assert!(status.success(), "{status:?}\n{}", host.log());
    assert!(host.log().contains("stopped"));
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
