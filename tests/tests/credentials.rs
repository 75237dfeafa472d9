//! Provider credentials: sealed with AES-256-GCM by the gateway, never
//! returned or logged, bound to their row, used per environment, with the
//! operator's keys only for orgs allowed them; keys go nowhere but home.

use std::time::Duration;

use serde_json::json;
use synatra_tests::fake_llm::{Answer, FakeLlm};
use synatra_tests::runs::{config_for_fakes, publish, publish_as_is, start_on, wait_for, App};

const PROD_KEY: &str = "sk-prod-secret-value-123";
const STAGING_KEY: &str = "sk-staging-secret-value-456";
const FALLBACK_KEY: &str = "sk-env-fallback-789";

fn put(app: &App, env: &str, provider: &str, body: serde_json::Value) -> synatra_tests::Reply {
    app.owner.client.send(
        "PUT",
        &format!(
            "/api/v1/orgs/{}/environments/{env}/llm-providers/{provider}",
            app.org
        ),
        Some(&body),
    )
}

fn thread_in(app: &App, env: &str) -> String {
    thread_in_agent(app, "keyed", env)
}

#[test]
fn credentials_are_sealed_masked_never_logged_and_used_per_environment() {
    let fake = FakeLlm::start(vec![Answer::Text("ok".into()); 4]);
    let app = start_on(&config_for_fakes().env("OPENAI_API_KEY", FALLBACK_KEY));
    for (env, key) in [("production", PROD_KEY), ("staging", STAGING_KEY)] {
        let r = put(
            &app,
            env,
            "openai",
            json!({ "api_key": key, "base_url": fake.base_url() }),
        );
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert!(
            !r.body.to_string().contains(key),
            "the key is never returned"
        );
        assert_eq!(r.body["has_api_key"], true);
        assert_eq!(r.body["api_key"], format!("sk-…{}", &key[key.len() - 4..]));
    }
    let listed = app.owner.client.get(&format!(
        "/api/v1/orgs/{}/environments/production/llm-providers",
        app.org
    ));
    assert_eq!(listed.body["providers"][0]["base_url"], fake.base_url());
    assert!(!listed.body.to_string().contains(PROD_KEY));
    let stored = synatra_tests::psql(
        &app.host.database_url,
        "SELECT encode(api_key_sealed, 'hex') FROM llm_credentials",
    );
    let prod_hex: String = PROD_KEY.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(!stored.contains(&prod_hex), "stored sealed, not in clear");

    // The agent names no base_url: the environment's credential supplies it.
    publish_keyed(&app);
    for env in ["production", "staging"] {
        let id = thread_in(&app, env);
        let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
        assert_eq!(t["status"], "completed", "{t:#}");
    }
    let auth: Vec<String> = fake
        .received()
        .iter()
        .map(|r| r.authorization.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        auth,
        vec![
            format!("Bearer {PROD_KEY}"),
            format!("Bearer {STAGING_KEY}")
        ]
    );

    // Without a stored key nothing is sent: the operator's key serves only
    // orgs allowed it, and only toward the provider's own API.
    let cleared = put(&app, "production", "openai", json!({ "api_key": null }));
    assert_eq!(cleared.body["has_api_key"], false);
    let id = thread_in(&app, "production");
    wait_for(&app, &id, &["completed"], Duration::from_secs(30));
    assert_eq!(fake.received()[2].authorization, None);

    let log = app.host.log();
    for key in [PROD_KEY, STAGING_KEY, FALLBACK_KEY] {
        assert!(!log.contains(key), "a key appeared in the host log");
    }
}

#[test]
fn a_sealed_key_moved_to_another_row_does_not_open() {
    let fake = FakeLlm::start(vec![Answer::Text("never".into())]);
    let app = start_on(&config_for_fakes());
    assert_eq!(
        put(&app, "production", "openai", json!({ "api_key": PROD_KEY })).status,
        200
    );
    assert_eq!(
        put(
            &app,
            "staging",
            "openai",
            json!({ "api_key": STAGING_KEY, "base_url": fake.base_url() })
        )
        .status,
        200
    );
    synatra_tests::psql(
        &app.host.database_url,
        "UPDATE llm_credentials s SET api_key_sealed = p.api_key_sealed
         FROM llm_credentials p JOIN environments e ON e.id = p.environment_id AND e.slug = 'production'
         WHERE s.environment_id <> p.environment_id",
    );
    publish_keyed(&app);
    let id = thread_in(&app, "staging");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "failed");
    assert!(
        t["runs"][0]["error"]
            .as_str()
            .unwrap()
            .contains("cannot be used"),
        "{t:#}"
    );
    assert_eq!(
        fake.calls(),
        0,
        "nothing was sent with a key that did not open"
    );
}

#[test]
fn credential_input_is_validated() {
    let app = start_on(&config_for_fakes());
    assert_eq!(
        put(
            &app,
            "production",
            "martian",
            json!({ "api_key": "sk-1234567890" })
        )
        .status,
        404
    );
    assert_eq!(
        put(
            &app,
            "moon",
            "openai",
            json!({ "api_key": "sk-1234567890" })
        )
        .status,
        404
    );
    let r = put(
        &app,
        "production",
        "openai",
        json!({ "base_url": "ftp://x.example" }),
    );
    assert_eq!(r.body["error"]["details"]["fields"][0]["field"], "base_url");
    // A URL that would send the key elsewhere, or push our path into a query.
    for (url, why) in [
        ("https://attacker.example@api.openai.com/v1", "user"),
        ("https://api.openai.com/v1?x=", "query"),
    ] {
        let r = put(&app, "production", "openai", json!({ "base_url": url }));
        assert_eq!((r.status, r.code()), (400, "validation_failed"), "{url}");
        let field = &r.body["error"]["details"]["fields"][0];
        assert_eq!(field["field"], "base_url");
        assert!(
            field["message"].as_str().unwrap().contains(why),
            "{url}: {field}"
        );
    }
    for bad in [
        json!("https://x.example"),
        json!(["https://u:p@x.example/v1"]),
        json!([7]),
    ] {
        let r = put(
            &app,
            "production",
            "openai",
            json!({ "allowed_base_urls": bad }),
        );
        assert_eq!((r.status, r.code()), (400, "validation_failed"), "{bad}");
        assert_eq!(
            r.body["error"]["details"]["fields"][0]["field"],
            "allowed_base_urls"
        );
    }
    let r = put(&app, "production", "openai", json!({}));
    assert_eq!(r.status, 400);
    let r = put(&app, "production", "openai", json!({ "api_key": "short" }));
    assert_eq!(r.body["error"]["details"]["fields"][0]["field"], "api_key");
    let del = app.owner.client.delete(&format!(
        "/api/v1/orgs/{}/environments/production/llm-providers/openai",
        app.org
    ));
    assert_eq!(del.status, 404);
}

/// An agent's `base_url` is a listening socket that must never see a key:
/// neither the stored one nor the operator's, even with fallback keys on.
#[test]
fn keys_never_leave_for_an_agents_url() {
    let home = FakeLlm::start(vec![Answer::Text("from home".into())]);
    let thief = FakeLlm::start(vec![Answer::Text("stolen?".into()); 2]);
    let other_org = "00000000-0000-4000-8000-000000000000";
    let app = start_on(
        &config_for_fakes()
            .env("OPENAI_API_KEY", FALLBACK_KEY)
            .env("FALLBACK_KEY_ORGS", other_org),
    );
    let r = put(
        &app,
        "production",
        "openai",
        json!({ "api_key": PROD_KEY, "base_url": home.base_url() }),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["allowed_base_urls"], json!([]));
    let stealing =
        json!({ "model": { "provider": "openai", "model": "m", "base_url": thief.base_url() } });
    publish_as_is(&app, "thief", &stealing);

    // Not allowed: the run fails at once, naming the setting; no retries.
    let id = thread_in_agent(&app, "thief", "production");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    let error = t["runs"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("is not allowed in this environment") && error.contains("allowed_base_urls"),
        "{t:#}"
    );
    assert!(!error.contains("retries"), "refused, not retried: {error}");
    assert_eq!(thief.calls(), 0);

    // Allowed by an admin: called, but without the key stored for home.
    let r = put(
        &app,
        "production",
        "openai",
        json!({ "allowed_base_urls": [thief.base_url()] }),
    );
    assert_eq!(r.body["allowed_base_urls"], json!([thief.base_url()]));
    assert_eq!(r.body["has_api_key"], true, "the key is kept");
    let id = thread_in_agent(&app, "thief", "production");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed", "{t:#}");

    // Staging stores no key; this org is not allowed the operator's.
    let r = put(
        &app,
        "staging",
        "openai",
        json!({ "allowed_base_urls": [thief.base_url()] }),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let id = thread_in_agent(&app, "thief", "staging");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed", "{t:#}");
    publish_as_is(
        &app,
        "plain",
        &json!({ "model": { "provider": "openai", "model": "m" } }),
    );
    let id = thread_in_agent(&app, "plain", "staging");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    let error = t["runs"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("no openai API key in this environment"),
        "{t:#}"
    );
    assert!(error.contains("FALLBACK_KEY_ORGS"), "{error}");

    // The key does go home.
    let id = thread_in_agent(&app, "plain", "production");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(
        home.received()[0].authorization.as_deref(),
        Some(&*format!("Bearer {PROD_KEY}"))
    );

    let seen = thief.received();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        assert_eq!(request.authorization, None);
        let all = format!("{:?} {}", request.headers, request.body);
        assert!(
            !all.contains(PROD_KEY) && !all.contains(FALLBACK_KEY),
            "{all}"
        );
    }
}

/// A run's credential comes with its claim (SQL `load_run`), sealed by the
/// gateway over its key and URLs: once the gateway has read and sealed the
/// row, its model calls read nothing. A write of the row clears the seal, so
/// the next run's gateway reads it again, and seals it anew.
#[test]
fn a_runs_credential_travels_with_its_claim_until_the_row_changes() {
    let home = FakeLlm::start_with(|_| Answer::Text("ok".into()));
    let moved = FakeLlm::start_with(|_| Answer::Text("ok".into()));
    let app = start_on(&config_for_fakes());
    let r = put(
        &app,
        "production",
        "openai",
        json!({ "api_key": PROD_KEY, "base_url": home.base_url() }),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    publish_keyed(&app);
    let sealed = || {
        synatra_tests::psql(
            &app.host.database_url,
            "SELECT count(*) FROM llm_credentials WHERE url_seal IS NOT NULL",
        )
    };
    assert_eq!(sealed(), "0", "a stored row has no seal yet");
    let run = || {
        let before = gateway_statements(&app);
        let id = thread_in(&app, "production");
        let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
        assert_eq!(t["status"], "completed", "{t:#}");
        gateway_statements(&app) - before
    };

    assert!(
        run() >= 2,
        "the first run's gateway read the row and sealed it"
    );
    assert_eq!(sealed(), "1");
    assert_eq!(run(), 0, "the next run brought the credential with it");
    assert_eq!(home.calls(), 2);

    let r = put(
        &app,
        "production",
        "openai",
        json!({ "base_url": moved.base_url() }),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(sealed(), "0", "a write clears the seal");
    assert!(run() >= 1, "the row was read again");
    assert_eq!(moved.calls(), 1, "the call went to the new URL");
    assert_eq!(sealed(), "1", "and the row was sealed again");
    assert_eq!(run(), 0);
    let auth: Vec<_> = [home.received(), moved.received()]
        .concat()
        .into_iter()
        .map(|r| r.authorization)
        .collect();
    assert_eq!(auth, vec![Some(format!("Bearer {PROD_KEY}")); 4]);
}

/// A seal opens only for the row it was made for: one moved to another
/// environment's row does not, and that row is read instead.
#[test]
fn a_url_seal_moved_to_another_row_does_not_open() {
    let fake = FakeLlm::start_with(|_| Answer::Text("ok".into()));
    let app = start_on(&config_for_fakes());
    for (env, key) in [("production", PROD_KEY), ("staging", STAGING_KEY)] {
        let r = put(
            &app,
            env,
            "openai",
            json!({ "api_key": key, "base_url": fake.base_url() }),
        );
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    publish_keyed(&app);
    for env in ["production", "staging"] {
        let id = thread_in(&app, env);
        wait_for(&app, &id, &["completed"], Duration::from_secs(30));
    }
    synatra_tests::psql(
        &app.host.database_url,
        "UPDATE llm_credentials s SET url_seal = p.url_seal
         FROM llm_credentials p JOIN environments e ON e.id = p.environment_id AND e.slug = 'production'
         WHERE s.environment_id <> p.environment_id",
    );
    let before = gateway_statements(&app);
    let id = thread_in(&app, "staging");
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed", "{t:#}");
    assert!(
        gateway_statements(&app) > before,
        "the gateway read the row whose seal did not open"
    );
    assert_eq!(
        fake.received().last().and_then(|r| r.authorization.clone()),
        Some(format!("Bearer {STAGING_KEY}"))
    );
    assert!(app.host.log().contains("did not match its seal"));
}

/// Statements the gateway has run (the host's histogram of them).
fn gateway_statements(app: &App) -> i64 {
    synatra_tests::metric(
        &app.host.admin,
        "synatra_postgres_statement_seconds_count{component=\"gateway\"}",
    )
}

/// Publishes agent `keyed`: OpenAI, with no URL of its own.
fn publish_keyed(app: &App) {
    publish(
        app,
        "keyed",
        &json!({ "model": { "provider": "openai", "model": "m" } }),
    );
}

fn thread_in_agent(app: &App, agent: &str, env: &str) -> String {
    let r = app.owner.client.post(
        &format!("/api/v1/orgs/{}/threads", app.org),
        json!({ "agent": agent, "message": "hi", "environment": env }),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["thread"]["id"].as_str().unwrap().to_string()
}
