//! User tool definitions: validation naming the field, reserved names,
//! content versions, name or id addressing, org isolation.

use serde_json::{json, Value};
use synatra_tests::{create_org, sign_up, start_app};

fn def() -> Value {
    json!({
        "name": "refund_order",
        "description": "Refunds an order",
        "params": { "type": "object", "required": ["order_id"], "properties": { "order_id": { "type": "string" } } },
        "returns": { "type": "object" },
        "timeout_ms": 5000,
        "code": "return { refunded: params.order_id };",
        "approval": { "policy": "owner-only", "self_approval": false, "review": true, "timeout_secs": 3600 }
    })
}

#[test]
fn tools_are_validated_versioned_and_isolated() {
    let host = start_app();
    let owner = sign_up(&host, "toolsmith");
    let org = create_org(&owner, "tools");
    let c = &owner.client;
    let created = c.post(&format!("/api/v1/orgs/{org}/tools"), def());
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["approval"]["policy"], "owner-only");
    assert_eq!(created.body["kind"], "javascript");
    let v1 = created.body["version"].as_str().unwrap().to_string();
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        c.get(&format!("/api/v1/orgs/{org}/tools/{id}")).body["name"],
        "refund_order"
    );

    let dup = c.post(&format!("/api/v1/orgs/{org}/tools"), def());
    assert_eq!((dup.status, dup.code()), (409, "name_taken"));

    let mut changed = def();
    changed["code"] = json!("return { refunded: true };");
    let put = c.send(
        "PUT",
        &format!("/api/v1/orgs/{org}/tools/refund_order"),
        Some(&changed),
    );
    assert_eq!(put.status, 200, "{:?}", put.body);
    assert_ne!(put.body["version"], v1.as_str(), "new content, new version");
    let same = c.send(
        "PUT",
        &format!("/api/v1/orgs/{org}/tools/refund_order"),
        Some(&changed),
    );
    assert_eq!(
        same.body["version"], put.body["version"],
        "same content, same version"
    );
    let versions = synatra_tests::psql(
        &host.database_url,
        &format!("SELECT count(*) FROM tool_versions WHERE tool_id = '{id}'"),
    );
    assert_eq!(versions, "2");

    let mut bad = def();
    bad["name"] = json!("wait");
    bad["timeout_ms"] = json!(99);
    bad["params"] = json!({ "type": "object", "required": ["x"] });
    let r = c.post(&format!("/api/v1/orgs/{org}/tools"), bad);
    assert_eq!(r.status, 400);
    let fields: Vec<&str> = r.body["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["name", "params", "timeout_ms"]);

    let other = sign_up(&host, "stranger");
    let other_org = create_org(&other, "elsewhere");
    assert_eq!(
        other
            .client
            .get(&format!("/api/v1/orgs/{other_org}/tools/{id}"))
            .status,
        404
    );
    assert_eq!(
        other
            .client
            .get(&format!("/api/v1/orgs/{org}/tools"))
            .status,
        404
    );

    assert_eq!(
        c.delete(&format!("/api/v1/orgs/{org}/tools/refund_order"))
            .status,
        204
    );
    assert_eq!(
        c.get(&format!("/api/v1/orgs/{org}/tools/refund_order"))
            .status,
        404
    );
}

#[test]
fn a_tool_in_use_is_neither_deleted_nor_renamed_and_releases_pin_it() {
    let host = start_app();
    let owner = sign_up(&host, "pinner");
    let org = create_org(&owner, "pins");
    let c = &owner.client;
    assert_eq!(
        c.post(&format!("/api/v1/orgs/{org}/tools"), def()).status,
        201
    );
    let agents = format!("/api/v1/orgs/{org}/agents");
    assert_eq!(
        c.post(&agents, json!({ "slug": "support", "name": "S" }))
            .status,
        201
    );
    let unknown = c.send(
        "PUT",
        &format!("{agents}/support/working-copy"),
        Some(&json!({ "config": { "tools": ["refund_order", "nope"] } })),
    );
    assert_eq!(unknown.status, 400);
    assert_eq!(
        unknown.body["error"]["details"]["fields"][0]["field"],
        "config.tools[1]"
    );
    let wc = c.send(
        "PUT",
        &format!("{agents}/support/working-copy"),
        Some(&json!({ "config": {
            "model": { "provider": "openai", "model": "m" }, "tools": ["refund_order"] } })),
    );
    assert_eq!(wc.status, 200, "{:?}", wc.body);
    let release = c.post(
        &format!("{agents}/support/releases"),
        json!({ "bump": "minor" }),
    );
    assert_eq!(release.status, 201, "{:?}", release.body);
    let version = c
        .get(&format!("/api/v1/orgs/{org}/tools/refund_order"))
        .body["version"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        release.body["config"]["tools"],
        json!([format!("refund_order@{version}")])
    );

    let gone = c.send(
        "DELETE",
        &format!("/api/v1/orgs/{org}/tools/refund_order"),
        None,
    );
    assert_eq!((gone.status, gone.code()), (409, "tool_in_use"));
    assert!(gone.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("agent `support`"));
    let mut renamed = def();
    renamed["name"] = json!("refund_v2");
    let r = c.send(
        "PUT",
        &format!("/api/v1/orgs/{org}/tools/refund_order"),
        Some(&renamed),
    );
    assert_eq!((r.status, r.code()), (409, "tool_in_use"));
    // Editing it in place is fine: the release keeps the pinned version.
    let mut edited = def();
    edited["description"] = json!("Refunds an order, faster");
    let r = c.send(
        "PUT",
        &format!("/api/v1/orgs/{org}/tools/refund_order"),
        Some(&edited),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_ne!(r.body["version"], version.as_str());
}

#[test]
fn members_see_tools_and_releases_without_code_or_configs() {
    let host = start_app();
    let owner = sign_up(&host, "redactor");
    let org = create_org(&owner, "redact");
    let member = sign_up(&host, "reader");
    synatra_tests::add_member(&owner, &org, &member, "member");
    let builder = sign_up(&host, "maker");
    synatra_tests::add_member(&owner, &org, &builder, "builder");
    let created = owner
        .client
        .post(&format!("/api/v1/orgs/{org}/tools"), def());
    assert_eq!(created.status, 201, "{:?}", created.body);
    let agents = format!("/api/v1/orgs/{org}/agents");
    assert_eq!(
        owner
            .client
            .post(&agents, json!({ "slug": "helper", "name": "Helper" }))
            .status,
        201
    );
    let wc = owner.client.send(
        "PUT",
        &format!("{agents}/helper/working-copy"),
        Some(
            &json!({ "config": { "model": { "provider": "openai", "model": "m" },
                                   "system_prompt": "secret sauce" } }),
        ),
    );
    assert_eq!(wc.status, 200, "{:?}", wc.body);
    let released = owner.client.post(
        &format!("{agents}/helper/releases"),
        json!({ "bump": "minor" }),
    );
    assert_eq!(released.status, 201, "{:?}", released.body);
    for (who, sees) in [(&member, false), (&builder, true)] {
        let tool = who
            .client
            .get(&format!("/api/v1/orgs/{org}/tools/refund_order"));
        assert_eq!(tool.status, 200);
        assert_eq!(
            tool.body.get("code").is_some(),
            sees,
            "{}: {:?}",
            who.email,
            tool.body
        );
        assert_eq!(tool.body["params"]["required"][0], "order_id");
        let listed = who.client.get(&format!("/api/v1/orgs/{org}/tools"));
        assert_eq!(listed.body["tools"][0].get("code").is_some(), sees);
        let releases = who.client.get(&format!("{agents}/helper/releases"));
        let first = &releases.body["releases"][0];
        assert!(first["version"].is_string(), "{:?}", releases.body);
        assert_eq!(
            first.get("config").is_some(),
            sees,
            "{}: {first}",
            who.email
        );
    }
}
