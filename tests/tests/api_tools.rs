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
