//! The path a new user takes: `synatra up` with no `DATABASE_URL` runs its
//! own PostgreSQL under the data directory. After a `kill -9` of the host it
//! comes back on the first try with the data intact, and two hosts never run
//! a server on one data directory.

use serde_json::json;
use synatra_tests::{app_manifest, sign_up, temp_dir, Host, HostConfig, TEST_ORIGIN};

fn embedded_config() -> HostConfig {
    let dir = temp_dir("embedded");
    HostConfig::embedded(app_manifest(&dir)).env("APP_ORIGINS", TEST_ORIGIN)
}

#[test]
fn a_restart_right_after_kill_9_works_on_the_first_try_and_keeps_the_data() {
    let config = embedded_config();
    let mut host = Host::start(&config);
    let user = sign_up(&host, "survivor");
    host.kill9();

    // At once, as `make up` again would: no retry by the caller.
    let host = Host::try_start(&config).unwrap_or_else(|log| panic!("restart failed:\n{log}"));
    let login = host.client().with_origin(TEST_ORIGIN).post(
        "/api/v1/auth/login",
        json!({ "email": user.email, "password": "correct horse battery" }),
    );
    assert_eq!(login.status, 200, "{:?}", login.body);
}

#[test]
fn a_second_host_on_the_same_data_directory_is_refused_naming_the_first() {
    let config = embedded_config();
    let first = Host::start(&config);
    let log = Host::try_start(&config)
        .err()
        .expect("a second host on one data directory must not start");
    assert!(log.contains("runs the embedded PostgreSQL"), "{log}");
    assert!(
        log.contains(&first.pid().to_string()),
        "names the first host: {log}"
    );
    assert_eq!(
        first.client().get("/api/v1/health").status,
        200,
        "the first keeps serving"
    );
}
