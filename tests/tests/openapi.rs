//! The OpenAPI document against the server: it covers every route of the
//! table, the reference page shows them, and real answers of a newcomer's
//! session (accounts, orgs, keys, agents, releases, threads, tools,
//! approvals, credentials; successes and errors) validate against it.

use std::time::Duration;

use serde_json::{json, Value};
use synatra_authz::ROUTES;
use synatra_tests::contract::route_of;
use synatra_tests::fake_llm::{tool_results, Answer, FakeLlm};
use synatra_tests::runs::{allow_model_url, config_for_fakes, wait_for, App};
use synatra_tests::{Client, Host, Reply};

/// Remembers which answers and routes a session saw; the test client checks
/// each answer against the document (`synatra_tests::contract`).
struct Session {
    checked: usize,
    routes: std::collections::BTreeSet<&'static str>,
}

impl Session {
    fn call(&mut self, c: &Client, method: &str, path: &str, body: Option<Value>) -> Reply {
        let reply = c.send(method, path, body.as_ref());
        self.checked += 1;
        if let Some(route) = route_of(method, path) {
            self.routes.insert(route.path);
        }
        reply
    }
}

#[test]
fn the_document_covers_every_route_and_the_page_shows_them() {
    let host = Host::start(&config_for_fakes());
    let c = host.client();
    let doc = c.get("/api/v1/openapi.json");
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    for spec in ROUTES {
        let op = &doc.body["paths"][synatra_openapi::openapi_path(spec.path)]
            [spec.method.to_ascii_lowercase()];
        assert!(op.is_object(), "{} {} is missing", spec.method, spec.path);
        assert!(op["x-synatra-access"].is_string());
    }
    for scheme in ["session", "apiKey", "tickSecret"] {
        assert!(doc.body["components"]["securitySchemes"][scheme].is_object());
    }
    let page = c.get("/api/v1/docs");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let text = page.body.as_str().unwrap();
    for spec in ROUTES {
        let shown = synatra_openapi::openapi_path(spec.path);
        assert!(text.contains(&format!("<code>{shown}</code>")), "{shown}");
    }
}

#[test]
fn real_answers_validate_against_the_document() {
    let fake = FakeLlm::start_instant(|body: &Value| {
        if tool_results(body) == 0 {
            Answer::ToolCall {
                name: "refund".into(),
                arguments: json!({ "order": "A-1" }),
            }
        } else {
            Answer::Text("done".into())
        }
    });
    let host = Host::start(&config_for_fakes());
    let mut k = Session {
        checked: 0,
        routes: Default::default(),
    };
    let web = host.client().with_origin(synatra_tests::TEST_ORIGIN);
    let signup =
        json!({ "email": "ada@example.com", "password": "correct horse battery", "name": "Ada" });
    k.call(&web, "GET", "/api/v1/health", None);
    k.call(&web, "GET", "/api/v1/openapi.json", None);
    k.call(&web, "POST", "/api/v1/auth/signup", Some(signup.clone()));
    k.call(&web, "POST", "/api/v1/auth/signup", Some(signup));
    let wrong = json!({ "email": "ada@example.com", "password": "wrong password" });
    k.call(&web, "POST", "/api/v1/auth/login", Some(wrong));
    let right = json!({ "email": "ada@example.com", "password": "correct horse battery" });
    k.call(&web, "POST", "/api/v1/auth/login", Some(right));
    k.call(&web, "GET", "/api/v1/me", None);
    k.call(
        &web,
        "POST",
        "/api/v1/orgs",
        Some(json!({ "name": "Acme", "slug": "acme" })),
    );
    k.call(
        &web,
        "POST",
        "/api/v1/orgs",
        Some(json!({ "name": "Acme", "slug": "acme" })),
    );
    k.call(&web, "POST", "/api/v1/orgs", Some(json!({ "name": 7 })));
    k.call(&web, "GET", "/api/v1/orgs", None);
    k.call(&web, "GET", "/api/v1/orgs/acme", None);
    k.call(&web, "GET", "/api/v1/orgs/nowhere", None);
    k.call(&web, "GET", "/api/v1/orgs/acme/environments", None);
    k.call(&web, "GET", "/api/v1/orgs/acme/channels", None);
    k.call(
        &web,
        "POST",
        "/api/v1/orgs/acme/channels",
        Some(json!({ "slug": "ops", "name": "Ops" })),
    );
    k.call(&web, "GET", "/api/v1/orgs/acme/channels/ops/members", None);
    k.call(&web, "GET", "/api/v1/orgs/acme/members", None);
    let invite = json!({ "email": "bo@example.com", "role": "member" });
    let invitation = k.call(&web, "POST", "/api/v1/orgs/acme/invitations", Some(invite));
    k.call(&web, "GET", "/api/v1/orgs/acme/invitations", None);
    let revoke = format!(
        "/api/v1/orgs/acme/invitations/{}",
        invitation.body["id"].as_str().unwrap()
    );
    k.call(&web, "DELETE", &revoke, None);
    k.call(&web, "DELETE", &revoke, None);
    let spare = k.call(
        &web,
        "POST",
        "/api/v1/orgs/acme/api-keys",
        Some(json!({ "name": "spare", "role": "member" })),
    );
    let spare = format!(
        "/api/v1/orgs/acme/api-keys/{}",
        spare.body["id"].as_str().unwrap()
    );
    k.call(&web, "DELETE", &spare, None);
    let key = k.call(
        &web,
        "POST",
        "/api/v1/orgs/acme/api-keys",
        Some(json!({ "name": "ci", "role": "admin" })),
    );
    k.call(&web, "GET", "/api/v1/orgs/acme/api-keys", None);
    let bot = host
        .client()
        .with_bearer(key.body["token"].as_str().unwrap());
    k.call(&bot, "GET", "/api/v1/me", None);
    k.call(&host.client(), "GET", "/api/v1/me", None);

    let app = App {
        host,
        owner: synatra_tests::User {
            client: web.clone(),
            id: String::new(),
            email: String::new(),
        },
        org: "acme".into(),
    };
    allow_model_url(&bot, "acme", "openai", &fake.base_url());
    k.call(
        &bot,
        "GET",
        "/api/v1/orgs/acme/environments/production/llm-providers",
        None,
    );
    k.call(
        &bot,
        "PUT",
        "/api/v1/orgs/acme/environments/production/llm-providers/openai",
        Some(json!({ "base_url": "ftp://x" })),
    );
    let tool = json!({ "name": "refund", "params": { "type": "object", "properties": { "order": { "type": "string" } } },
                       "code": "return { refunded: params.order };", "approval": { "policy": "any-member" } });
    k.call(&bot, "POST", "/api/v1/orgs/acme/tools", Some(tool));
    k.call(&bot, "GET", "/api/v1/orgs/acme/tools", None);
    k.call(&bot, "GET", "/api/v1/orgs/acme/tools/refund", None);
    k.call(
        &bot,
        "POST",
        "/api/v1/orgs/acme/tools/refund/test",
        Some(json!({ "params": { "order": "T" } })),
    );
    k.call(
        &bot,
        "POST",
        "/api/v1/orgs/acme/agents",
        Some(json!({ "slug": "clerk", "name": "Clerk" })),
    );
    k.call(&bot, "GET", "/api/v1/orgs/acme/agents", None);
    k.call(
        &bot,
        "PATCH",
        "/api/v1/orgs/acme/agents/clerk",
        Some(json!({ "description": "Refunds" })),
    );
    let config = json!({ "config": { "model": { "provider": "openai", "model": "m", "base_url": fake.base_url() }, "tools": ["refund"] } });
    k.call(
        &bot,
        "PUT",
        "/api/v1/orgs/acme/agents/clerk/working-copy",
        Some(config),
    );
    k.call(
        &bot,
        "GET",
        "/api/v1/orgs/acme/agents/clerk/working-copy",
        None,
    );
    k.call(
        &bot,
        "POST",
        "/api/v1/orgs/acme/agents/clerk/releases",
        Some(json!({ "bump": "minor" })),
    );
    k.call(&bot, "GET", "/api/v1/orgs/acme/agents/clerk/releases", None);
    k.call(&bot, "GET", "/api/v1/orgs/acme/agents/clerk", None);
    let created = k.call(
        &bot,
        "POST",
        "/api/v1/orgs/acme/threads",
        Some(json!({ "agent": "clerk", "message": "refund A-1" })),
    );
    let id = created.body["thread"]["id"].as_str().unwrap().to_string();
    wait_for(&app, &id, &["waiting_approval"], Duration::from_secs(30));
    k.call(&bot, "GET", "/api/v1/orgs/acme/threads", None);
    k.call(
        &bot,
        "GET",
        &format!("/api/v1/orgs/acme/threads/{id}"),
        None,
    );
    let inbox = k.call(
        &bot,
        "GET",
        "/api/v1/orgs/acme/approvals?status=pending",
        None,
    );
    let approval = inbox.body["approvals"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    k.call(
        &bot,
        "GET",
        &format!("/api/v1/orgs/acme/approvals/{approval}"),
        None,
    );
    k.call(
        &bot,
        "POST",
        &format!("/api/v1/orgs/acme/approvals/{approval}/approve"),
        Some(json!({})),
    );
    k.call(
        &bot,
        "POST",
        &format!("/api/v1/orgs/acme/approvals/{approval}/approve"),
        Some(json!({})),
    );
    wait_for(&app, &id, &["completed"], Duration::from_secs(30));
    k.call(
        &bot,
        "GET",
        &format!("/api/v1/orgs/acme/threads/{id}"),
        None,
    );
    let thread = format!("/api/v1/orgs/acme/threads/{id}");
    k.call(&bot, "GET", &format!("{thread}/events"), None);
    let again = json!({ "message": "again" });
    k.call(
        &bot,
        "POST",
        &format!("{thread}/messages"),
        Some(again.clone()),
    );
    k.call(&bot, "POST", &format!("{thread}/messages"), Some(again));
    k.call(&bot, "POST", &format!("{thread}/cancel"), Some(json!({})));
    k.call(&bot, "DELETE", "/api/v1/orgs/acme/tools/refund", None);

    eprintln!(
        "validated {} answers of {} routes against the document",
        k.checked,
        k.routes.len()
    );
    assert!(k.routes.len() >= 32, "{:?}", k.routes);
}

/// The error codes written in the API's source, with their statuses:
/// `ApiError::new(status, "code"`, `conflict("code"` and `on_conflict("code"`
/// (409), `retry_later("code"` (429).
fn codes_in_source() -> Vec<(u16, String)> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &synatra_tests::repo_root().join("components/api/src"),
        &mut files,
    );
    let mut codes = Vec::new();
    for file in files {
        // Whitespace folded, so a call split over lines reads as one.
        let text: String = std::fs::read_to_string(&file)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let quoted = |rest: &str| -> Option<String> {
            let rest = rest.trim_start().strip_prefix('"')?;
            let code = &rest[..rest.find('"')?];
            code.chars()
                .all(|c| c.is_ascii_lowercase() || c == '_')
                .then(|| code.to_string())
        };
        for (i, _) in text.match_indices("ApiError::new(") {
            let rest = &text[i + "ApiError::new(".len()..];
            let Some((status, rest)) = rest.split_once(',') else {
                continue;
            };
            if let (Ok(status), Some(code)) = (status.trim().parse(), quoted(rest)) {
                codes.push((status, code));
            }
        }
        for (call, status) in [("conflict(", 409), ("retry_later(", 429)] {
            for (i, _) in text.match_indices(call) {
                if let Some(code) = quoted(&text[i + call.len()..]) {
                    codes.push((status, code));
                }
            }
        }
    }
    codes.sort();
    codes.dedup();
    codes
}

/// Every error code the API's source can answer is documented, with its
/// status, on at least one route (the end-to-end tests then check each
/// answer they meet against its own route).
#[test]
fn every_error_code_in_the_api_source_is_documented() {
    let codes = codes_in_source();
    assert!(codes.len() > 30, "the scan found only {codes:?}");
    let doc = synatra_openapi::document();
    let mut documented = std::collections::BTreeSet::new();
    for ops in doc["paths"].as_object().unwrap().values() {
        for op in ops.as_object().unwrap().values() {
            for (status, response) in op["responses"].as_object().unwrap() {
                let text = response["description"].as_str().unwrap_or_default();
                for code in text.split([' ', ',', ';']) {
                    documented.insert((status.clone(), code.to_string()));
                }
            }
        }
    }
    let missing: Vec<_> = codes
        .iter()
        .filter(|(status, code)| !documented.contains(&(status.to_string(), code.clone())))
        .collect();
    assert!(missing.is_empty(), "undocumented: {missing:?}");
}
