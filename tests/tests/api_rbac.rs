//! The RBAC matrix: walks every route of `synatra_authz::ROUTES` and checks
//! unauthenticated → 401, another org's user → 404, a role below the route's
//! → 403, the route's role and above → 2xx. Fixtures are an exhaustive match
//! on `RouteId`, so a new route does not compile until it is in the matrix.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use synatra_authz::{Access, Role, RouteId, RouteSpec, ROUTES};
use synatra_tests::{
    add_member, create_org, sign_up, start_app, Client, Host, User, TEST_ORIGIN, TEST_TICK_SECRET,
};

struct World {
    host: Host,
    org: String,
    /// A thread every member can see.
    thread: String,
    users: BTreeMap<&'static str, User>,
    outsider: User,
}

impl World {
    fn user(&self, role: Role) -> &User {
        &self.users[role.as_str()]
    }

    fn owner(&self) -> &User {
        self.user(Role::Owner)
    }

    /// A new thread whose run has ended (the matrix agent has no API key, so
    /// its runs fail at once), ready for another message.
    fn finished_thread(&self) -> String {
        let r = self.owner().client.post(
            &format!("/api/v1/orgs/{}/threads", self.org),
            json!({ "agent": AGENT, "message": "hi" }),
        );
        let id = r.body["thread"]["id"].as_str().unwrap().to_string();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let t = self
                .owner()
                .client
                .get(&format!("/api/v1/orgs/{}/threads/{id}", self.org));
            if t.body["status"] != "active" {
                return id;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "thread never finished: {:?}",
                t.body
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// A pending `any-member` approval on the shared thread's run.
    fn pending_approval(&self) -> String {
        synatra_tests::psql(
            &self.host.database_url,
            &format!(
                "WITH i AS (INSERT INTO approvals (org_id, thread_id, run_id, call_id, tool_name, tool_version,
                     policy, self_approval, review, params, params_schema, expires_at)
                 SELECT org_id, thread_id, id, 'c', '{TOOL}', 'v', 'any-member', true, false, '{{}}',
                     '{{\"type\":\"object\"}}', now() + interval '1 hour'
                 FROM runs WHERE thread_id = '{}' LIMIT 1 RETURNING id) SELECT id FROM i",
                self.thread
            ),
        )
        .trim()
        .to_string()
    }

    fn fresh_member(&self) -> User {
        let u = sign_up(&self.host, "target");
        add_member(self.owner(), &self.org, &u, "member");
        u
    }

    /// Method, path and body for calling `spec` as a caller with `role`
    /// (None: not an org member), creating whatever the call consumes.
    fn fixture(
        &self,
        spec: &RouteSpec,
        role: Option<Role>,
        caller_email: &str,
    ) -> (String, Option<Value>) {
        let org = &self.org;
        let owner = self.owner();
        let unique = format!("{}-{}", spec.path.len(), rand_suffix());
        let (path, body) = match spec.id {
            RouteId::Health => ("/health".to_string(), None),
            RouteId::OpenApi => ("/openapi.json".to_string(), None),
            RouteId::ApiReference => ("/docs".to_string(), None),
            RouteId::Tick => ("/tick".to_string(), None),
            RouteId::Signup => (
                "/auth/signup".into(),
                Some(
                    json!({ "email": format!("new-{unique}@example.com"), "password": "correct horse battery", "name": "N" }),
                ),
            ),
            RouteId::Login => (
                "/auth/login".into(),
                Some(json!({ "email": owner.email, "password": "correct horse battery" })),
            ),
            RouteId::Logout => ("/auth/logout".into(), Some(json!({}))),
            RouteId::Me => ("/me".into(), None),
            RouteId::CreateOrg => (
                "/orgs".into(),
                Some(json!({ "name": "M", "slug": format!("m-{unique}") })),
            ),
            RouteId::ListOrgs => ("/orgs".into(), None),
            RouteId::GetOrg => (format!("/orgs/{org}"), None),
            RouteId::DeleteOrg => {
                if role == Some(Role::Owner) {
                    (format!("/orgs/{}", create_org(owner, "throwaway")), None)
                } else {
                    (format!("/orgs/{org}"), None)
                }
            }
            RouteId::ListEnvironments => (format!("/orgs/{org}/environments"), None),
            RouteId::ListChannels => (format!("/orgs/{org}/channels"), None),
            RouteId::CreateChannel => (
                format!("/orgs/{org}/channels"),
                Some(json!({ "slug": format!("c-{unique}"), "name": "C" })),
            ),
            RouteId::ListChannelMembers => (format!("/orgs/{org}/channels/general/members"), None),
            RouteId::PutChannelMember => (
                format!(
                    "/orgs/{org}/channels/general/members/{}",
                    self.fresh_member().id
                ),
                Some(json!({ "role": "owner" })),
            ),
            RouteId::RemoveChannelMember => (
                format!(
                    "/orgs/{org}/channels/general/members/{}",
                    self.fresh_member().id
                ),
                None,
            ),
            RouteId::ListMembers => (format!("/orgs/{org}/members"), None),
            RouteId::UpdateMember => (
                format!("/orgs/{org}/members/{}", self.fresh_member().id),
                Some(json!({ "role": "builder" })),
            ),
            RouteId::RemoveMember => (
                format!("/orgs/{org}/members/{}", self.fresh_member().id),
                None,
            ),
            RouteId::CreateInvitation => (
                format!("/orgs/{org}/invitations"),
                Some(json!({ "email": format!("inv-{unique}@example.com"), "role": "member" })),
            ),
            RouteId::ListInvitations => (format!("/orgs/{org}/invitations"), None),
            RouteId::RevokeInvitation => {
                let inv = owner.client.post(
                    &format!("/api/v1/orgs/{org}/invitations"),
                    json!({ "email": format!("rev-{unique}@example.com"), "role": "member" }),
                );
                (
                    format!(
                        "/orgs/{org}/invitations/{}",
                        inv.body["id"].as_str().unwrap()
                    ),
                    None,
                )
            }
            RouteId::AcceptInvitation => {
                let other = create_org(owner, "joinme");
                let inv = owner.client.post(
                    &format!("/api/v1/orgs/{other}/invitations"),
                    json!({ "email": if caller_email.is_empty() { "nobody@example.com" } else { caller_email }, "role": "member" }),
                );
                (
                    format!(
                        "/invitations/{}/accept",
                        inv.body["token"].as_str().unwrap()
                    ),
                    Some(json!({})),
                )
            }
            RouteId::CreateApiKey => (
                format!("/orgs/{org}/api-keys"),
                Some(json!({ "name": "k", "role": "member" })),
            ),
            RouteId::ListApiKeys => (format!("/orgs/{org}/api-keys"), None),
            RouteId::CreateAgent => (
                format!("/orgs/{org}/agents"),
                Some(json!({ "slug": format!("a-{unique}"), "name": "A" })),
            ),
            RouteId::ListAgents => (format!("/orgs/{org}/agents"), None),
            RouteId::GetAgent => (format!("/orgs/{org}/agents/{AGENT}"), None),
            RouteId::UpdateAgent => (
                format!("/orgs/{org}/agents/{AGENT}"),
                Some(json!({ "name": "Renamed" })),
            ),
            RouteId::DeleteAgent => {
                let slug = format!("del-{unique}");
                let r = owner.client.post(
                    &format!("/api/v1/orgs/{org}/agents"),
                    json!({ "slug": slug, "name": "D" }),
                );
                assert_eq!(r.status, 201, "{:?}", r.body);
                (format!("/orgs/{org}/agents/{slug}"), None)
            }
            RouteId::GetWorkingCopy => (format!("/orgs/{org}/agents/{AGENT}/working-copy"), None),
            RouteId::PutWorkingCopy => (
                format!("/orgs/{org}/agents/{AGENT}/working-copy"),
                Some(json!({ "config": agent_config() })),
            ),
            RouteId::CreateRelease => (
                format!("/orgs/{org}/agents/{AGENT}/releases"),
                Some(json!({ "bump": "patch" })),
            ),
            RouteId::ListReleases => (format!("/orgs/{org}/agents/{AGENT}/releases"), None),
            RouteId::CheckoutRelease => (
                format!("/orgs/{org}/agents/{AGENT}/releases/0.0.1/checkout"),
                Some(json!({})),
            ),
            RouteId::CreateThread => (
                format!("/orgs/{org}/threads"),
                Some(json!({ "agent": AGENT, "message": "hi" })),
            ),
            RouteId::ListThreads => (format!("/orgs/{org}/threads"), None),
            RouteId::GetThread => (format!("/orgs/{org}/threads/{}", self.thread), None),
            RouteId::PostMessage => (
                format!("/orgs/{org}/threads/{}/messages", self.finished_thread()),
                Some(json!({ "message": "more" })),
            ),
            RouteId::RespondHumanRequest => {
                let request = synatra_tests::psql(
                    &self.host.database_url,
                    &format!(
                        "WITH i AS (INSERT INTO human_requests (org_id, thread_id, run_id, call_id, request)
                         SELECT org_id, thread_id, id, 'c', '{{\"title\":\"t\",\"fields\":[{{\"name\":\"ok\",\"kind\":\"confirm\"}}]}}'
                         FROM runs WHERE thread_id = '{}' LIMIT 1 RETURNING id) SELECT id FROM i",
                        self.thread
                    ),
                );
                (
                    format!(
                        "/orgs/{org}/threads/{}/human-requests/{request}/respond",
                        self.thread
                    ),
                    Some(json!({ "status": "responded", "data": { "ok": true } })),
                )
            }
            RouteId::ThreadEvents => (format!("/orgs/{org}/threads/{}/events", self.thread), None),
            RouteId::CreateTool => (
                format!("/orgs/{org}/tools"),
                Some(tool_def(&format!("t_{}", unique.replace('-', "_")))),
            ),
            RouteId::ListTools => (format!("/orgs/{org}/tools"), None),
            RouteId::GetTool => (format!("/orgs/{org}/tools/{TOOL}"), None),
            RouteId::PutTool => (format!("/orgs/{org}/tools/{TOOL}"), Some(tool_def(TOOL))),
            RouteId::TestTool => (
                format!("/orgs/{org}/tools/{TOOL}/test"),
                Some(json!({ "params": {} })),
            ),
            // The body (the `.wasm`) is sent raw by `call`.
            RouteId::PutToolComponent => {
                let name = format!("wit_{}", unique.replace('-', "_"));
                let r = owner
                    .client
                    .post(&format!("/api/v1/orgs/{org}/tools"), tool_def(&name));
                assert_eq!(r.status, 201, "{:?}", r.body);
                (format!("/orgs/{org}/tools/{name}/component"), None)
            }
            RouteId::DeleteTool => {
                let name = format!("d_{}", unique.replace('-', "_"));
                let r = owner
                    .client
                    .post(&format!("/api/v1/orgs/{org}/tools"), tool_def(&name));
                assert_eq!(r.status, 201, "{:?}", r.body);
                (format!("/orgs/{org}/tools/{name}"), None)
            }
            RouteId::ListLlmProviders => (
                format!("/orgs/{org}/environments/production/llm-providers"),
                None,
            ),
            RouteId::PutLlmProvider => (
                format!("/orgs/{org}/environments/staging/llm-providers/openai"),
                Some(json!({ "api_key": "sk-matrix-key-1234" })),
            ),
            RouteId::DeleteLlmProvider => {
                let path =
                    format!("/api/v1/orgs/{org}/environments/staging/llm-providers/anthropic");
                let put = owner.client.send(
                    "PUT",
                    &path,
                    Some(&json!({ "api_key": "sk-ant-matrix-1234" })),
                );
                assert_eq!(put.status, 200, "{:?}", put.body);
                (
                    format!("/orgs/{org}/environments/staging/llm-providers/anthropic"),
                    None,
                )
            }
            RouteId::CancelThread => (
                format!("/orgs/{org}/threads/{}/cancel", self.thread),
                Some(json!({})),
            ),
            RouteId::ListApprovals => (format!("/orgs/{org}/approvals?status=pending"), None),
            RouteId::GetApproval => (
                format!("/orgs/{org}/approvals/{}", self.pending_approval()),
                None,
            ),
            RouteId::Approve => (
                format!("/orgs/{org}/approvals/{}/approve", self.pending_approval()),
                Some(json!({ "comment": "ok" })),
            ),
            RouteId::Reject => (
                format!("/orgs/{org}/approvals/{}/reject", self.pending_approval()),
                Some(json!({})),
            ),
            RouteId::DeleteApiKey => {
                let key = owner.client.post(
                    &format!("/api/v1/orgs/{org}/api-keys"),
                    json!({ "name": "d", "role": "member" }),
                );
                (
                    format!("/orgs/{org}/api-keys/{}", key.body["id"].as_str().unwrap()),
                    None,
                )
            }
        };
        (format!("/api/v1{path}"), body)
    }

    /// Calls `spec` as `role`; the test client checks the answer against
    /// the OpenAPI document (`synatra_tests::contract`).
    fn call(&self, spec: &RouteSpec, client: &Client, role: Option<Role>, email: &str) -> u16 {
        let (path, body) = self.fixture(spec, role, email);
        let reply = if spec.id == RouteId::PutToolComponent {
            let wasm = std::fs::read(synatra_tests::wasm("hello_tool")).expect("hello tool built");
            client.send_raw(spec.method, &path, Some(("application/wasm", wasm)))
        } else {
            client.send(spec.method, &path, body.as_ref())
        };
        reply.status
    }
}

/// The tool every matrix org has.
const TOOL: &str = "matrix_tool";

fn tool_def(name: &str) -> Value {
    json!({ "name": name, "params": { "type": "object" }, "code": "return 1;" })
}

/// The agent every matrix org has, with release 0.0.1 published.
const AGENT: &str = "matrix-agent";

fn agent_config() -> Value {
    json!({ "model": { "provider": "openai", "model": "gpt-4o-mini" }, "system_prompt": "Help." })
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn world() -> World {
    let host = start_app();
    let owner = sign_up(&host, "owner");
    let org = create_org(&owner, "matrix");
    let mut users = BTreeMap::new();
    for role in [Role::Admin, Role::Builder, Role::Member] {
        let u = sign_up(&host, role.as_str());
        add_member(&owner, &org, &u, role.as_str());
        users.insert(role.as_str(), u);
    }
    let c = &owner.client;
    assert_eq!(
        c.post(
            &format!("/api/v1/orgs/{org}/agents"),
            json!({ "slug": AGENT, "name": "M" })
        )
        .status,
        201
    );
    let path = format!("/api/v1/orgs/{org}/agents/{AGENT}");
    assert_eq!(
        c.send(
            "PUT",
            &format!("{path}/working-copy"),
            Some(&json!({ "config": agent_config() }))
        )
        .status,
        200
    );
    assert_eq!(
        c.post(&format!("{path}/releases"), json!({ "bump": "patch" }))
            .status,
        201
    );
    assert_eq!(
        c.post(&format!("/api/v1/orgs/{org}/tools"), tool_def(TOOL))
            .status,
        201
    );
    let thread = c.post(
        &format!("/api/v1/orgs/{org}/threads"),
        json!({ "agent": AGENT, "message": "hi" }),
    );
    assert_eq!(thread.status, 201, "{:?}", thread.body);
    let thread = thread.body["thread"]["id"].as_str().unwrap().to_string();
    users.insert("owner", owner);
    let outsider = sign_up(&host, "outsider");
    create_org(&outsider, "elsewhere");
    World {
        host,
        org,
        thread,
        users,
        outsider,
    }
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

#[test]
fn every_route_enforces_its_access_rule() {
    let w = world();
    // A new client per call: a public sign-in must not authenticate later calls.
    let anonymous = || Client::new(&w.host.base).with_origin(TEST_ORIGIN);
    let mut report = Vec::new();
    let mut failures = Vec::new();
    let mut check = |spec: &RouteSpec, who: &str, status: u16, ok: bool| {
        report.push(format!(
            "{:6} {:40} {:10} {status}",
            spec.method, spec.path, who
        ));
        if !ok {
            failures.push(format!(
                "{} {} as {who}: got {status}",
                spec.method, spec.path
            ));
        }
    };
    for spec in ROUTES {
        match spec.access {
            Access::Public => {
                let s = w.call(spec, &anonymous(), None, "");
                check(spec, "anonymous", s, is_success(s));
            }
            Access::Operator => {
                let s = w.call(spec, &anonymous(), None, "");
                check(spec, "anonymous", s, s == 401);
                let owner = w.owner();
                let s = w.call(spec, &owner.client, Some(Role::Owner), &owner.email);
                check(spec, "org owner", s, s == 401);
                let operator = Client::new(&w.host.base).with_bearer(TEST_TICK_SECRET);
                let s = w.call(spec, &operator, None, "");
                check(spec, "tick secret", s, is_success(s));
            }
            Access::Authenticated => {
                let s = w.call(spec, &anonymous(), None, "");
                check(spec, "anonymous", s, s == 401);
                let fresh = sign_up(&w.host, "fresh");
                let s = w.call(spec, &fresh.client, None, &fresh.email);
                check(spec, "signed-in", s, is_success(s));
            }
            Access::Org(min) => {
                let s = w.call(spec, &anonymous(), None, "");
                check(spec, "anonymous", s, s == 401);
                let s = w.call(spec, &w.outsider.client, None, &w.outsider.email);
                check(spec, "other-org", s, s == 404);
                for role in Role::ALL {
                    let user = w.user(role);
                    let s = w.call(spec, &user.client, Some(role), &user.email);
                    let expected_ok = if role >= min { is_success(s) } else { s == 403 };
                    check(spec, role.as_str(), s, expected_ok);
                }
            }
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(
        failures.is_empty(),
        "access rule violations:\n{}",
        failures.join("\n")
    );
}

#[test]
fn api_keys_get_exactly_their_role_on_org_routes() {
    let w = world();
    let mut failures = Vec::new();
    for role in Role::ALL {
        let key = w.owner().client.post(
            &format!("/api/v1/orgs/{}/api-keys", w.org),
            json!({ "name": role.as_str(), "role": role.as_str() }),
        );
        assert_eq!(key.status, 201, "{:?}", key.body);
        let client = Client::new(&w.host.base).with_bearer(key.body["token"].as_str().unwrap());
        for spec in ROUTES {
            let Access::Org(min) = spec.access else {
                continue;
            };
            if spec.id == RouteId::DeleteOrg && role == Role::Owner {
                continue; // the owner fixture deletes a throwaway org the key cannot reach
            }
            let s = w.call(spec, &client, Some(role), "");
            // Keys cannot mint keys or invite people: revoking one ends its access.
            let person_only = matches!(spec.id, RouteId::CreateApiKey | RouteId::CreateInvitation);
            let ok = if role >= min && !person_only {
                is_success(s)
            } else {
                s == 403
            };
            if !ok {
                failures.push(format!(
                    "{} {} with {role} key: {s}",
                    spec.method, spec.path
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Rows of every table but the sign-in and sign-up counters (which count
/// refused attempts by design) and the org slots (held only while a tool
/// test or stream lasts).
fn rows(db: &str) -> i64 {
    synatra_tests::psql(
        db,
        "SELECT sum((xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I', tablename), false, true, '')))[1]::text::bigint)
         FROM pg_tables WHERE schemaname = 'public'
           AND tablename NOT IN ('login_failures', 'signup_attempts', 'org_slots')",
    )
    .parse()
    .expect("a row count")
}

/// [`rows`] once background work (a run a request started) has settled.
fn settled_rows(db: &str) -> i64 {
    let mut last = rows(db);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let now = rows(db);
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Generated bodies for a route whose valid body is `valid`: broken and
/// hostile JSON, and each field replaced by wrong types, extreme numbers,
/// deep nesting, NUL, a 1 MiB string, plus unknown and duplicate keys.
fn hostile_bodies(valid: &Value) -> Vec<Vec<u8>> {
    let mut bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"x\"".to_vec(),
        b"{".to_vec(),
        b"{\"a\":\"\xff\xfe\"}".to_vec(),
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
        b"{\"x\":\"\\u0000\"}".to_vec(),
    ];
    let deep = (0..200).fold(json!(1), |v, _| json!([v]));
    let wrong = [
        json!(1e308),
        json!(-1),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(true),
        json!([]),
        json!({}),
        Value::Null,
        json!("\u{0}"),
        json!("a".repeat(1 << 20)),
        deep,
    ];
    let Some(fields) = valid.as_object() else {
        return bodies;
    };
    for key in fields.keys() {
        for w in &wrong {
            let mut body = valid.clone();
            body[key.as_str()] = w.clone();
            bodies.push(body.to_string().into_bytes());
        }
        // The same key twice, the second one wrong.
        let text = valid.to_string();
        let dup = format!("{},\"{key}\":[1]}}", &text[..text.len() - 1]);
        bodies.push(dup.into_bytes());
    }
    let mut unknown = valid.clone();
    unknown["zz_unknown_field"] = json!(1);
    bodies.push(unknown.to_string().into_bytes());
    bodies
}

/// Walks the route table with hostile bodies (as the org owner, so access
/// never hides a handler): never a 5xx, and a refused request (4xx) changes
/// no row anywhere. The count of cases is printed for the closing note.
#[test]
fn hostile_bodies_never_cause_a_5xx_or_a_partial_write() {
    let w = world();
    let db = &w.host.database_url;
    let owner = w.owner();
    let mut failures = Vec::new();
    let mut cases = 0;
    for spec in ROUTES {
        // Routes that end the session or the org on success are left out,
        // as is accepting an invitation (its body is `{}`; the fixture
        // invites a caller other than the owner).
        if matches!(
            spec.id,
            RouteId::Logout | RouteId::DeleteOrg | RouteId::Tick | RouteId::AcceptInvitation
        ) {
            continue;
        }
        let (path, valid) = w.fixture(spec, Some(Role::Owner), &owner.email);
        let Some(valid) = valid else { continue };
        let mut before = settled_rows(db);
        for body in hostile_bodies(&valid) {
            cases += 1;
            let r =
                owner
                    .client
                    .send_raw(spec.method, &path, Some(("application/json", body.clone())));
            let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).to_string();
            if r.status >= 500 {
                failures.push(format!(
                    "{} {}: {} for {shown}: {:?}",
                    spec.method, spec.path, r.status, r.body
                ));
            }
            let after = if is_success(r.status) {
                settled_rows(db)
            } else {
                rows(db)
            };
            if (400..500).contains(&r.status) && after != before {
                failures.push(format!(
                    "{} {}: {} wrote {} rows for {shown}",
                    spec.method,
                    spec.path,
                    r.status,
                    after - before
                ));
            }
            before = after;
        }
    }
    eprintln!("fuzzed {cases} hostile bodies across the route table");
    assert!(cases > 300, "only {cases} cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Hostile query strings: each parameter a route reads (and one it does
/// not), as negative, huge, fractional, NUL, invalid UTF-8, broken
/// percent-escapes, injection attempts, long and repeated values.
fn hostile_queries() -> Vec<String> {
    let values = [
        "-1",
        "0",
        "1.5",
        "99999999999999999999999",
        "1e308",
        "%00",
        "%FF%FE",
        "%zz",
        "%27%3B%20DROP%20TABLE%20users%3B--",
        "..%2F..%2Fetc",
        "null",
        "",
        &"a".repeat(8 << 10),
    ]
    .map(str::to_string);
    let params = [
        "limit",
        "after",
        "status",
        "agent",
        "channel",
        "kind",
        "zz_unknown",
    ];
    let mut queries: Vec<String> = params
        .iter()
        .flat_map(|p| values.iter().map(move |v| format!("{p}={v}")))
        .collect();
    queries.push("limit=1&limit=x".into());
    queries.push("after".into());
    queries.push("&&==&".into());
    queries
}

/// Every GET route of the table with hostile query strings (as the owner):
/// never a 5xx, and a refused request changes no row.
#[test]
fn hostile_query_strings_never_cause_a_5xx_or_a_write() {
    let w = world();
    let db = &w.host.database_url;
    let owner = w.owner();
    let mut failures = Vec::new();
    let mut cases = 0;
    for spec in ROUTES.iter().filter(|s| s.method == "GET") {
        let (path, _) = w.fixture(spec, Some(Role::Owner), &owner.email);
        let before = settled_rows(db);
        for query in hostile_queries() {
            cases += 1;
            let r = owner
                .client
                .send_raw("GET", &format!("{path}?{query}"), None);
            let shown = &query[..query.len().min(60)];
            if r.status >= 500 {
                failures.push(format!(
                    "GET {}?{shown}: {} {:?}",
                    spec.path, r.status, r.body
                ));
            }
            if (400..500).contains(&r.status) && rows(db) != before {
                failures.push(format!(
                    "GET {}?{shown}: {} wrote rows",
                    spec.path, r.status
                ));
            }
        }
    }
    eprintln!("fuzzed {cases} hostile query strings across the GET routes");
    assert!(cases > 500, "only {cases} cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
