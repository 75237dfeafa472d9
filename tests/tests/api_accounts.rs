//! Sign-up, sign-in, sessions, request hygiene (errors, limits, origins) and
//! durability across host restarts.

use serde_json::json;
use synatra_tests::fake_llm::{Answer, FakeLlm};
use synatra_tests::runs::answer_in_new_org;
use synatra_tests::{
    app_config, create_org, live_instances, sign_up, start_app, Host, TEST_ORIGIN,
};

#[test]
fn health_reports_database_ok() {
    let host = start_app();
    let reply = host.client().get("/api/v1/health");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({ "status": "ok", "database": "ok" }));
}

#[test]
fn signup_sets_http_only_session_cookie_and_me_returns_the_user() {
    let host = start_app();
    let c = host.client().with_origin(TEST_ORIGIN);
    let reply = c.post(
        "/api/v1/auth/signup",
        json!({ "email": "Ada@Example.com", "password": "correct horse battery", "name": "Ada" }),
    );
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let cookie = reply.header("set-cookie").unwrap();
    assert!(cookie.starts_with("synatra_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain http must not set Secure: {cookie}"
    );
    assert!(reply.body["user"].get("password_hash").is_none());

    let me = c.get("/api/v1/me");
    assert_eq!(me.status, 200);
    assert_eq!(me.body["user"]["email"], "Ada@Example.com");
    assert_eq!(me.body["orgs"], json!([]));
}

/// A sign-up's reply as seen from `client` (sent as `X-Forwarded-For`,
/// believed only from a trusted proxy) over a proxy saying `proto`.
fn signup_via_proxy(host: &Host, email: &str, client: &str, proto: &str) -> ureq::Response {
    let r = ureq::post(&format!("{}/api/v1/auth/signup", host.base))
        .set("x-forwarded-for", client)
        .set("x-forwarded-proto", proto)
        .send_json(json!({ "email": email, "password": "correct horse battery", "name": "S" }));
    match r {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("sign-up failed: {e}"),
    }
}

/// `(status, Retry-After)` of a sign-in from `client` (as above).
fn login_from(host: &Host, client: &str, email: &str, password: &str) -> (u16, Option<u64>) {
    let r = ureq::post(&format!("{}/api/v1/auth/login", host.base))
        .set("x-forwarded-for", client)
        .send_json(json!({ "email": email, "password": password }));
    let r = match r {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("sign-in failed: {e}"),
    };
    let retry = r.header("retry-after").map(|v| v.parse().unwrap());
    (r.status(), retry)
}

fn behind_trusted_proxy() -> Host {
    Host::start(&app_config().env("TRUSTED_PROXIES", "10.9.9.9, 127.0.0.1"))
}

#[test]
fn secure_cookie_only_when_https_is_known_or_always() {
    let secure = |host: &Host, email: &str| {
        let r = signup_via_proxy(host, email, "203.0.113.1", "https");
        assert_eq!(r.status(), 201);
        r.header("set-cookie").unwrap().contains("; Secure")
    };
    // Anyone can send X-Forwarded-Proto: believed only from a trusted proxy.
    assert!(!secure(&start_app(), "a@example.com"));
    assert!(secure(&behind_trusted_proxy(), "b@example.com"));
    let always = Host::start(&app_config().env("SECURE_COOKIES", "always"));
    let plain = always.client().post(
        "/api/v1/auth/signup",
        json!({ "email": "c@example.com", "password": "correct horse battery", "name": "C" }),
    );
    assert!(plain.header("set-cookie").unwrap().contains("; Secure"));
}

#[test]
fn signup_validation_names_every_bad_field() {
    let host = start_app();
    let c = host.client();
    let reply = c.post(
        "/api/v1/auth/signup",
        json!({ "email": "not-an-email", "password": "short", "extra": 1 }),
    );
    assert_eq!(reply.status, 400);
    assert_eq!(reply.code(), "validation_failed");
    let fields: Vec<&str> = reply.body["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    for f in ["email", "password", "name", "extra"] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
}

#[test]
fn duplicate_email_is_a_conflict_regardless_of_case() {
    let host = start_app();
    let body =
        json!({ "email": "dup@example.com", "password": "correct horse battery", "name": "A" });
    assert_eq!(host.client().post("/api/v1/auth/signup", body).status, 201);
    let again = host.client().post(
        "/api/v1/auth/signup",
        json!({ "email": "DUP@example.com", "password": "correct horse battery", "name": "B" }),
    );
    assert_eq!(again.status, 409);
    assert_eq!(again.code(), "email_taken");
}

#[test]
fn login_logout_cycle() {
    let host = start_app();
    let user = sign_up(&host, "cycle");
    let c = host.client().with_origin(TEST_ORIGIN);
    let wrong = c.post(
        "/api/v1/auth/login",
        json!({ "email": user.email, "password": "wrong password!" }),
    );
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.code(), "invalid_credentials");
    // Shorter than sign-up allows is still just a wrong password.
    let short = c.post(
        "/api/v1/auth/login",
        json!({ "email": user.email, "password": "short" }),
    );
    assert_eq!((short.status, short.code()), (401, "invalid_credentials"));
    let unknown = c.post(
        "/api/v1/auth/login",
        json!({ "email": "nobody@example.com", "password": "whatever123" }),
    );
    assert_eq!(unknown.status, 401);
    assert_eq!(unknown.code(), "invalid_credentials");

    let ok = c.post(
        "/api/v1/auth/login",
        json!({ "email": user.email, "password": "correct horse battery" }),
    );
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(c.get("/api/v1/me").status, 200);
    let out = c.post("/api/v1/auth/logout", json!({}));
    assert_eq!(out.status, 204);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(c.get("/api/v1/me").status, 401);
    // The other session (from sign-up) is still valid.
    assert_eq!(user.client.get("/api/v1/me").status, 200);
}

/// Failures count per (email, client address): a stranger's wrong
/// passwords make the stranger wait, never the account's owner elsewhere.
#[test]
fn a_strangers_failures_never_lock_the_owner_out() {
    let host = behind_trusted_proxy();
    let user = sign_up(&host, "limited");
    let other = sign_up(&host, "other");
    let (stranger, owner) = ("203.0.113.7", "198.51.100.9");
    for _ in 0..5 {
        let r = login_from(&host, stranger, &user.email, "wrong");
        assert_eq!(r.0, 401, "a wrong password of any length is 401");
    }
    // The stranger now waits (backoff), even with the right password...
    let (status, retry) = login_from(&host, stranger, &user.email, "correct horse battery");
    assert_eq!(status, 429);
    assert!(retry.is_some_and(|s| (1..=15).contains(&s)), "{retry:?}");
    // ...while the owner signs in from their own address, and the stranger's
    // address may still sign in to another account.
    assert_eq!(
        login_from(&host, owner, &user.email, "correct horse battery").0,
        200
    );
    assert_eq!(
        login_from(&host, stranger, &other.email, "correct horse battery").0,
        200
    );

    // Without a trusted proxy, X-Forwarded-For is the caller's to invent:
    // every attempt counts for the connection's own address.
    let host = start_app();
    let user = sign_up(&host, "direct");
    for i in 0..5 {
        let r = login_from(&host, &format!("192.0.2.{i}"), &user.email, "wrong");
        assert_eq!(r.0, 401);
    }
    let r = login_from(&host, owner, &user.email, "correct horse battery");
    assert_eq!(r.0, 429);
}

#[test]
fn sign_ups_are_limited_per_client_address() {
    let host = Host::start(
        &app_config()
            .env("TRUSTED_PROXIES", "127.0.0.1")
            .env("SIGNUP_LIMIT_PER_HOUR", "3"),
    );
    for i in 0..3 {
        let r = signup_via_proxy(&host, &format!("s{i}@example.com"), "203.0.113.5", "http");
        assert_eq!(r.status(), 201);
    }
    let r = signup_via_proxy(&host, "s3@example.com", "203.0.113.5", "http");
    assert_eq!(r.status(), 429);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((3000..=3600).contains(&retry), "{retry}");
    // A refused sign-up is not counted against anyone else.
    let r = signup_via_proxy(&host, "s3@example.com", "203.0.113.6", "http");
    assert_eq!(r.status(), 201);
}

/// 20 failed sign-ins per client address per 15 minutes, across emails:
/// four wrong passwords for each of five accounts stay under the per-email
/// limit, and then the address itself is refused, even with a right password.
#[test]
fn failed_logins_are_rate_limited_per_client_address() {
    let host = start_app();
    let users: Vec<_> = (0..6)
        .map(|i| sign_up(&host, &format!("spray{i}")))
        .collect();
    let c = host.client();
    for user in &users[..5] {
        for _ in 0..4 {
            let r = c.post(
                "/api/v1/auth/login",
                json!({ "email": user.email, "password": "wrong password!" }),
            );
            assert_eq!(r.status, 401, "{:?}", r.body);
        }
    }
    let blocked = c.post(
        "/api/v1/auth/login",
        json!({ "email": users[5].email, "password": "correct horse battery" }),
    );
    assert_eq!((blocked.status, blocked.code()), (429, "rate_limited"));
}

#[test]
fn parallel_failed_logins_cannot_slip_under_the_limit() {
    let host = start_app();
    let user = sign_up(&host, "stormed");
    let attempts: Vec<_> = (0..12)
        .map(|_| {
            let c = host.client();
            let email = user.email.clone();
            std::thread::spawn(move || {
                c.post(
                    "/api/v1/auth/login",
                    json!({ "email": email, "password": "wrong password!" }),
                )
                .status
            })
        })
        .collect();
    let statuses: Vec<u16> = attempts.into_iter().map(|t| t.join().unwrap()).collect();
    let tried = statuses.iter().filter(|s| **s == 401).count();
    assert!(tried <= 5, "at most 5 passwords checked: {statuses:?}");
    assert_eq!(tried + statuses.iter().filter(|s| **s == 429).count(), 12);
}

#[test]
fn cookie_writes_need_an_allowed_origin_but_bearer_writes_do_not() {
    let host = start_app();
    let user = sign_up(&host, "origin");
    let body = json!({ "name": "Acme", "slug": "acme-origin" });
    let no_origin = synatra_tests::Client::new(&host.base);
    // Reuse the cookie by logging in on an origin-less client.
    let login = no_origin.send_raw(
        "POST",
        "/api/v1/auth/login",
        Some((
            "application/json",
            json!({ "email": user.email, "password": "correct horse battery" })
                .to_string()
                .into_bytes(),
        )),
    );
    assert_eq!(login.status, 200);
    let denied = no_origin.post("/api/v1/orgs", body.clone());
    assert_eq!(denied.status, 403);
    assert_eq!(denied.code(), "origin_not_allowed");
    // Each refusal says what was wrong: no Origin at all, or which one.
    let said = |r: &synatra_tests::Reply| {
        r.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(
        said(&denied).contains("must send an Origin header"),
        "{:?}",
        denied.body
    );
    let evil = no_origin
        .clone()
        .with_origin("http://evil.test")
        .post("/api/v1/orgs", body.clone());
    assert_eq!(evil.code(), "origin_not_allowed");
    assert!(said(&evil).contains("http://evil.test"), "{:?}", evil.body);
    // Reads need no origin.
    assert_eq!(no_origin.get("/api/v1/orgs").status, 200);
    assert_eq!(user.client.post("/api/v1/orgs", body).status, 201);

    let key = user.client.post(
        "/api/v1/orgs/acme-origin/api-keys",
        json!({ "name": "ci", "role": "admin" }),
    );
    let bearer = host
        .client()
        .with_bearer(key.body["token"].as_str().unwrap());
    let agent = bearer.post(
        "/api/v1/orgs/acme-origin/agents",
        json!({ "slug": "bearer-made", "name": "B" }),
    );
    assert_eq!(agent.status, 201, "{:?}", agent.body);
}

#[test]
fn request_hygiene_errors_have_stable_codes() {
    let host = start_app();
    let user = sign_up(&host, "hygiene");
    let c = &user.client;
    let r = c.send_raw(
        "POST",
        "/api/v1/orgs",
        Some(("text/plain", b"name=x".to_vec())),
    );
    assert_eq!((r.status, r.code()), (415, "unsupported_media_type"));
    let big = vec![b' '; (1 << 20) + 1];
    let r = c.send_raw("POST", "/api/v1/orgs", Some(("application/json", big)));
    assert_eq!((r.status, r.code()), (413, "payload_too_large"));
    let r = c.send_raw(
        "POST",
        "/api/v1/orgs",
        Some(("application/json", b"{not json".to_vec())),
    );
    assert_eq!((r.status, r.code()), (400, "invalid_json"));
    let r = c.send_raw(
        "POST",
        "/api/v1/orgs",
        Some(("application/json", b"[1,2]".to_vec())),
    );
    assert_eq!((r.status, r.code()), (400, "invalid_json"));
    let r = c.get("/api/v1/nothing-here");
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = c.send("PUT", "/api/v1/orgs", None);
    assert_eq!((r.status, r.code()), (405, "method_not_allowed"));
    let r = host.client().with_bearer("syn_bogus").get("/api/v1/me");
    assert_eq!((r.status, r.code()), (401, "unauthenticated"));
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[test]
fn restarting_the_host_loses_nothing() {
    let config = app_config();
    let mut host = Host::start(&config);
    let user = sign_up(&host, "durable");
    let org = create_org(&user, "durable");
    let key = user.client.post(
        &format!("/api/v1/orgs/{org}/api-keys"),
        json!({ "name": "k", "role": "member" }),
    );
    let token = key.body["token"].as_str().unwrap().to_string();
    assert!(host.stop().success());

    let host = Host::start(&config);
    // The same cookie jar, against the new process.
    let mut client = user.client.clone();
    client.set_base(&host.base);
    let me = client.get("/api/v1/me");
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["orgs"][0]["slug"], org);
    let via_key = host
        .client()
        .with_bearer(&token)
        .get(&format!("/api/v1/orgs/{org}"));
    assert_eq!(via_key.status, 200);
    let login = host.client().post(
        "/api/v1/auth/login",
        json!({ "email": user.email, "password": "correct horse battery" }),
    );
    assert_eq!(login.status, 200);
}

#[test]
fn health_answers_503_when_the_database_is_down_and_host_keeps_serving() {
    let dir = synatra_tests::temp_dir("pgdown");
    let mut pg = embedded_postgres::EmbeddedPostgres::start(
        &dir.join("data"),
        embedded_postgres::Options { ephemeral: true },
    )
    .unwrap();
    let mut config = app_config();
    config.database_url = pg.url();
    let host = Host::start(&config);
    assert_eq!(host.client().get("/api/v1/health").status, 200);
    pg.stop();
    let reply = host.client().get("/api/v1/health");
    assert_eq!(reply.status, 503, "{:?}", reply.body);
    assert_eq!(
        reply.body,
        json!({ "status": "degraded", "database": "unavailable" })
    );
    // Other endpoints fail cleanly with a stable code, and the host keeps serving.
    let signup = host.client().post(
        "/api/v1/auth/signup",
        json!({ "email": "down@example.com", "password": "correct horse battery", "name": "D" }),
    );
    assert_eq!(
        (signup.status, signup.code()),
        (503, "database_unavailable"),
        "{:?}",
        signup.body
    );
    assert_eq!(host.client().get("/.well-known/spin/health").status, 200);
}

/// Admission before instantiation: 1,000 connections trickling request
/// bodies hold no instance (the host reads bodies), so health and a
/// newcomer's whole first thread still answer; a body declared larger than
/// the component allows is refused unread.
#[test]
fn slow_and_huge_bodies_are_refused_before_any_instance_starts() {
    use std::io::{Read, Write};
    let fake = FakeLlm::start(vec![Answer::Text("still here".into())]);
    let app = synatra_tests::runs::start();
    let addr = app.host.base.trim_start_matches("http://").to_string();
    let slow: Vec<std::net::TcpStream> = (0..1000)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            write!(
                s,
                "POST /api/v1/auth/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{"
            )
            .unwrap();
            s
        })
        .collect();
    assert!(
        live_instances(&app.host.admin) < 10,
        "slow bodies started instances"
    );
    assert_eq!(app.host.client().get("/api/v1/health").status, 200);
    answer_in_new_org(&app.host, &fake);

    let mut huge = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        huge,
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 300000000\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    huge.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    drop(slow);
}
