//! Agents: working copy vs immutable releases, semver bumps, checkout,
//! validation that names the field.

use serde_json::{json, Value};
use synatra_tests::{create_org, sign_up, start_app, User};

fn config(model: &str) -> Value {
    json!({
        "model": { "provider": "anthropic", "model": model, "temperature": 0.3, "max_output_tokens": 512 },
        "system_prompt": "You are helpful.",
        "limits": { "max_iterations": 5 }
    })
}

fn setup() -> (synatra_tests::Host, User, String) {
    let host = start_app();
    let owner = sign_up(&host, "agents");
    let org = create_org(&owner, "agents");
    let r = owner.client.post(
        &format!("/api/v1/orgs/{org}/agents"),
        json!({ "slug": "support", "name": "Support", "description": "Answers tickets" }),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["current_release"], Value::Null);
    (host, owner, org)
}

#[test]
fn releases_freeze_the_working_copy_and_bump_semver() {
    let (_host, owner, org) = setup();
    let c = &owner.client;
    let agent = format!("/api/v1/orgs/{org}/agents/support");
    let wc = c.send(
        "PUT",
        &format!("{agent}/working-copy"),
        Some(&json!({ "config": config("claude-a") })),
    );
    assert_eq!(wc.status, 200, "{:?}", wc.body);
    assert_eq!(
        wc.body["config"]["limits"]["max_tool_calls_per_iteration"], 10,
        "defaults filled in"
    );

    let r1 = c.post(
        &format!("{agent}/releases"),
        json!({ "bump": "minor", "notes": "first" }),
    );
    assert_eq!(r1.status, 201, "{:?}", r1.body);
    assert_eq!(r1.body["version"], "0.1.0");
    assert_eq!(c.get(&agent).body["current_release"]["version"], "0.1.0");

    // Editing the working copy does not touch the release.
    c.send(
        "PUT",
        &format!("{agent}/working-copy"),
        Some(&json!({ "config": config("claude-b") })),
    );
    let r2 = c.post(&format!("{agent}/releases"), json!({ "bump": "patch" }));
    assert_eq!(r2.body["version"], "0.1.1");
    let r3 = c.post(&format!("{agent}/releases"), json!({ "bump": "major" }));
    assert_eq!(r3.body["version"], "1.0.0");
    let list = c.get(&format!("{agent}/releases"));
    let versions: Vec<&str> = list.body["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, vec!["1.0.0", "0.1.1", "0.1.0"]);
    let first = &list.body["releases"][2];
    assert_eq!(first["config"]["model"]["model"], "claude-a");
    assert_eq!(first["notes"], "first");

    // Checkout copies a release back into the working copy; current release unchanged.
    let co = c.post(&format!("{agent}/releases/0.1.0/checkout"), json!({}));
    assert_eq!(co.status, 200, "{:?}", co.body);
    assert_eq!(
        c.get(&format!("{agent}/working-copy")).body["config"]["model"]["model"],
        "claude-a"
    );
    assert_eq!(c.get(&agent).body["current_release"]["version"], "1.0.0");
    assert_eq!(
        c.post(&format!("{agent}/releases/9.9.9/checkout"), json!({}))
            .status,
        404
    );
    assert_eq!(
        c.post(&format!("{agent}/releases/latest/checkout"), json!({}))
            .status,
        404
    );
}

#[test]
fn invalid_config_is_rejected_naming_the_field_and_never_publishes() {
    let (_host, owner, org) = setup();
    let c = &owner.client;
    let agent = format!("/api/v1/orgs/{org}/agents/support");
    let bad = c.send(
        "PUT",
        &format!("{agent}/working-copy"),
        Some(&json!({ "config": { "model": { "provider": "openai", "model": "x", "temperature": 9 } } })),
    );
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.body["error"]["details"]["fields"][0]["field"],
        "config.model.temperature"
    );
    let unknown = c.send(
        "PUT",
        &format!("{agent}/working-copy"),
        Some(&json!({ "config": { "sytem_prompt": "typo" } })),
    );
    assert_eq!(
        unknown.body["error"]["details"]["fields"][0]["field"],
        "config.sytem_prompt"
    );

    // A draft without a model is a valid working copy but cannot publish.
    let draft = c.send(
        "PUT",
        &format!("{agent}/working-copy"),
        Some(&json!({ "config": { "system_prompt": "draft" } })),
    );
    assert_eq!(draft.status, 200);
    let publish = c.post(&format!("{agent}/releases"), json!({ "bump": "patch" }));
    assert_eq!(publish.status, 400);
    assert_eq!(
        publish.body["error"]["details"]["fields"][0]["field"],
        "config.model"
    );
    assert_eq!(
        c.get(&format!("{agent}/releases")).body["releases"],
        json!([])
    );
    let bump = c.post(&format!("{agent}/releases"), json!({ "bump": "huge" }));
    assert_eq!(bump.body["error"]["details"]["fields"][0]["field"], "bump");
}

#[test]
fn agents_are_addressed_by_slug_or_id_and_slugs_are_unique_per_org() {
    let (host, owner, org) = setup();
    let c = &owner.client;
    let list = c.get(&format!("/api/v1/orgs/{org}/agents"));
    let id = list.body["agents"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        c.get(&format!("/api/v1/orgs/{org}/agents/{id}")).body["slug"],
        "support"
    );
    let dup = c.post(
        &format!("/api/v1/orgs/{org}/agents"),
        json!({ "slug": "support", "name": "Again" }),
    );
    assert_eq!((dup.status, dup.code()), (409, "slug_taken"));

    let patched = c.patch(
        &format!("/api/v1/orgs/{org}/agents/{id}"),
        json!({ "slug": "helpdesk", "description": null }),
    );
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(patched.body["slug"], "helpdesk");
    assert_eq!(patched.body["description"], Value::Null);
    assert_eq!(patched.body["name"], "Support");

    // Same slug in another org is fine; agents never leak across orgs.
    let other_owner = sign_up(&host, "other");
    let other = create_org(&other_owner, "other");
    assert_eq!(
        other_owner
            .client
            .post(
                &format!("/api/v1/orgs/{other}/agents"),
                json!({ "slug": "helpdesk", "name": "H" })
            )
            .status,
        201
    );
    assert_eq!(
        other_owner
            .client
            .get(&format!("/api/v1/orgs/{other}/agents/{id}"))
            .status,
        404
    );

    assert_eq!(
        c.delete(&format!("/api/v1/orgs/{org}/agents/helpdesk"))
            .status,
        204
    );
    assert_eq!(
        c.get(&format!("/api/v1/orgs/{org}/agents/helpdesk")).status,
        404
    );
}

#[test]
fn releases_are_immutable_in_the_database() {
    let (host, owner, org) = setup();
    let c = &owner.client;
    let agent = format!("/api/v1/orgs/{org}/agents/support");
    c.send(
        "PUT",
        &format!("{agent}/working-copy"),
        Some(&json!({ "config": config("m") })),
    );
    assert_eq!(
        c.post(&format!("{agent}/releases"), json!({ "bump": "patch" }))
            .status,
        201
    );
    let err = synatra_tests::try_psql(
        &host.database_url,
        "UPDATE agent_releases SET notes = 'tampered'",
    )
    .expect_err("releases must not be updatable");
    assert!(err.contains("immutable"), "{err}");
}
