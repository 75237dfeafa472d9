//! Approvals: user tools whose policy holds a call until a person decides.
//! The policy × role × self matrix, edit-then-approve with re-validation,
//! rejection, several held calls in one turn, the timeout on a durable timer,
//! and kill -9 while waiting and right after an approval.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use synatra_tests::fake_llm::{tool_results, Answer, FakeLlm};
use synatra_tests::runs::{
    agent_with_tools, config_for_fakes, create_tool, kinds, messages_of, publish, start_on, thread,
    wait_for, App,
};
use synatra_tests::{add_member, psql, sign_up, User};

/// A reviewed refund tool with a capped amount.
fn refund_tool(policy: &str, self_approval: bool, review: bool) -> Value {
    json!({
        "name": "refund",
        "description": "Refunds an order",
        "params": { "type": "object", "required": ["order_id", "amount"], "properties": {
            "order_id": { "type": "string" }, "amount": { "type": "number", "maximum": 500 } } },
        "code": "console.log('refunding', params.order_id); return { refunded: params.order_id, amount: params.amount };",
        "approval": { "policy": policy, "self_approval": self_approval, "review": review }
    })
}

fn refund_call(order: &str, amount: f64) -> (String, Value) {
    (
        "refund".to_string(),
        json!({ "order_id": order, "amount": amount, "rationale": format!("customer asked about {order}") }),
    )
}

/// Starts a thread as `user`; returns its id.
fn start_as(app: &App, user: &User, agent: &str) -> String {
    let r = user.client.post(
        &format!("/api/v1/orgs/{}/threads", app.org),
        json!({ "agent": agent, "message": "refund please" }),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["thread"]["id"].as_str().unwrap().to_string()
}

/// The approval ids of a waiting thread, in call order.
fn approval_ids(app: &App, id: &str) -> Vec<String> {
    let t = wait_for(app, id, &["waiting_approval"], Duration::from_secs(30));
    messages_of(&t, "approval")
        .into_iter()
        .map(|m| m["content"]["id"].as_str().unwrap().to_string())
        .collect()
}

fn decide(app: &App, user: &User, approval: &str, verb: &str, body: Value) -> synatra_tests::Reply {
    user.client.post(
        &format!("/api/v1/orgs/{}/approvals/{approval}/{verb}", app.org),
        body,
    )
}

fn approval(app: &App, id: &str) -> Value {
    let r = app
        .owner
        .client
        .get(&format!("/api/v1/orgs/{}/approvals/{id}", app.org));
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

fn audit_actions(a: &Value) -> Vec<String> {
    a["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_edited_approval_is_revalidated_then_the_tool_runs_with_the_edit() {
    let fake = FakeLlm::start(vec![
        Answer::ToolCalls(vec![refund_call("o1", 20.0)]),
        Answer::Text("Refunded.".into()),
    ]);
    let app = start_on(&config_for_fakes());
    create_tool(&app, &refund_tool("any-member", true, true));
    publish(&app, "support", &agent_with_tools(&fake, &["refund"]));
    // The release froze the tool's version.
    let releases = app
        .owner
        .client
        .get(&format!("/api/v1/orgs/{}/agents/support/releases", app.org));
    let pinned = releases.body["releases"][0]["config"]["tools"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(pinned.starts_with("refund@"), "{pinned}");

    let id = start_as(&app, &app.owner, "support");
    let ids = approval_ids(&app, &id);
    assert_eq!(ids.len(), 1);
    // The model saw `rationale` as a required argument; the reviewer sees it apart.
    let offered = &fake.received()[0].body["tools"][0]["function"]["parameters"];
    assert!(offered["required"]
        .as_array()
        .unwrap()
        .contains(&json!("rationale")));
    let inbox = app.owner.client.get(&format!(
        "/api/v1/orgs/{}/approvals?status=pending",
        app.org
    ));
    assert_eq!(inbox.status, 200);
    let item = &inbox.body["approvals"][0];
    assert_eq!(item["id"], ids[0].as_str());
    assert_eq!(item["rationale"], "customer asked about o1");
    assert_eq!(item["params"], json!({ "order_id": "o1", "amount": 20.0 }));
    assert_eq!(item["tool"]["version"], pinned.split('@').nth(1).unwrap());

    let bad = decide(
        &app,
        &app.owner,
        &ids[0],
        "approve",
        json!({ "params": { "order_id": "o1", "amount": 900 } }),
    );
    assert_eq!((bad.status, bad.code()), (400, "validation_failed"));
    assert_eq!(
        bad.body["error"]["details"]["fields"][0]["field"],
        "params.amount"
    );
    assert_eq!(thread(&app, &id)["status"], "waiting_approval");

    let ok = decide(
        &app,
        &app.owner,
        &ids[0],
        "approve",
        json!({ "params": { "order_id": "o1", "amount": 15 }, "comment": "half now" }),
    );
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    let again = decide(&app, &app.owner, &ids[0], "approve", json!({}));
    assert_eq!((again.status, again.code()), (409, "approval_not_pending"));

    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(
        kinds(&t),
        ["user", "tool_call", "approval", "tool_result", "assistant"]
    );
    let result = &t["messages"][3]["content"];
    assert_eq!(result["result"], json!({ "refunded": "o1", "amount": 15 }));
    assert_eq!(fake.calls(), 2);
    assert_eq!(tool_results(&fake.received()[1].body), 1);

    let a = approval(&app, &ids[0]);
    assert_eq!(a["status"], "approved");
    assert_eq!(a["comment"], "half now");
    assert_eq!(a["decided_by"], app.owner.id.as_str());
    assert_eq!(audit_actions(&a), ["requested", "approved"]);
    assert_eq!(a["audit"][1]["params"]["amount"], 15);
    // The thread's approval message shows the decision made after it.
    let shown = &t["messages"][2]["content"];
    assert_eq!(shown["status"], "approved", "{shown:#}");
    assert_eq!(shown["decided_by"], app.owner.id.as_str());
    assert_eq!(shown["decided_at"], a["decided_at"]);
    assert_eq!(shown["comment"], "half now");
    // The console output is kept with the step.
    let logs = psql(
        &app.host.database_url,
        &format!("SELECT input->'logs' FROM run_steps s JOIN runs r ON r.id = s.run_id WHERE r.thread_id = '{id}' AND s.kind = 'tool'"),
    );
    assert!(logs.contains("refunding o1"), "{logs}");
}

#[test]
fn a_rejection_ends_the_thread_and_cancels_the_other_calls_of_the_turn() {
    let fake = FakeLlm::start(vec![Answer::ToolCalls(vec![
        refund_call("o1", 10.0),
        refund_call("o2", 20.0),
        refund_call("o3", 30.0),
    ])]);
    let app = start_on(&config_for_fakes());
    create_tool(&app, &refund_tool("owner-only", true, false));
    publish(&app, "support", &agent_with_tools(&fake, &["refund"]));
    let id = start_as(&app, &app.owner, "support");
    // The original kept only the first held call; each gets its own approval here.
    let ids = approval_ids(&app, &id);
    assert_eq!(ids.len(), 3);
    let edit = decide(
        &app,
        &app.owner,
        &ids[0],
        "approve",
        json!({ "params": { "order_id": "o1", "amount": 1 } }),
    );
    assert_eq!((edit.status, edit.code()), (409, "params_not_editable"));
    assert_eq!(
        decide(&app, &app.owner, &ids[0], "approve", json!({})).status,
        200
    );
    // The first call runs; the run then waits for the second.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !kinds(&thread(&app, &id)).contains(&"tool_result".to_string())
        || thread(&app, &id)["status"] != "waiting_approval"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the approved call never ran"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Rejecting the third call ends the run at once, while the second is pending.
    let r = decide(
        &app,
        &app.owner,
        &ids[2],
        "reject",
        json!({ "comment": "not this one" }),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let t = wait_for(
        &app,
        &id,
        &["rejected", "completed", "failed"],
        Duration::from_secs(30),
    );
    assert_eq!(t["status"], "rejected", "{t:#}");
    assert!(t["runs"][0]["error"]
        .as_str()
        .unwrap()
        .contains("not this one"));
    // The first call ran; the second was never decided and is cancelled.
    let results = messages_of(&t, "tool_result");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["content"]["result"]["refunded"], "o1");
    let second = approval(&app, &ids[1]);
    assert_eq!(second["status"], "cancelled");
    assert_eq!(audit_actions(&second), ["requested", "cancelled"]);
    assert_eq!(
        audit_actions(&approval(&app, &ids[2])),
        ["requested", "rejected"]
    );
    assert_eq!(
        fake.calls(),
        1,
        "a rejected run asks the model nothing more"
    );
}

/// Who may decide, for every policy × self-approval × approver × author.
#[test]
fn every_policy_role_and_self_combination() {
    let fake = FakeLlm::start_with(|body| {
        if tool_results(body) > 0 {
            return Answer::Text("done".into());
        }
        // One held call per approver, so each can try their own.
        let tool = body["tools"][0]["function"]["name"]
            .as_str()
            .unwrap_or_default();
        Answer::ToolCalls(
            (0..6)
                .map(|i| (tool.to_string(), refund_call(&format!("o{i}"), 1.0).1))
                .collect(),
        )
    });
    let app = start_on(&config_for_fakes());
    let people = [
        "owner",
        "admin",
        "builder",
        "member",
        "channel_owner",
        "stranger",
    ];
    let mut users: Vec<User> = Vec::new();
    for label in &people[1..] {
        let u = sign_up(&app.host, label);
        let role = match *label {
            "admin" => "admin",
            "builder" => "builder",
            _ => "member",
        };
        add_member(&app.owner, &app.org, &u, role);
        users.push(u);
    }
    let general = format!("/api/v1/orgs/{}/channels/general/members", app.org);
    let made_owner = app.owner.client.send(
        "PUT",
        &format!("{general}/{}", users[3].id),
        Some(&json!({ "role": "owner" })),
    );
    assert_eq!(made_owner.status, 200, "{:?}", made_owner.body);
    let removed = app
        .owner
        .client
        .send("DELETE", &format!("{general}/{}", users[4].id), None);
    assert_eq!(removed.status, 204, "{:?}", removed.body);
    let user = |i: usize| if i == 0 { &app.owner } else { &users[i - 1] };

    let mut threads = Vec::new();
    for policy in ["owner-only", "any-member"] {
        for self_approval in [true, false] {
            let mut def = refund_tool(policy, self_approval, false);
            let tool = format!("refund_{}_{self_approval}", policy.replace('-', "_"));
            def["name"] = json!(tool);
            create_tool(&app, &def);
            let slug = tool.replace('_', "-");
            publish(&app, &slug, &agent_with_tools(&fake, &[&tool]));
            // Every channel member authors one thread (the stranger cannot).
            for author in 0..5 {
                let id = start_as(&app, user(author), &slug);
                threads.push((policy, self_approval, author, id));
            }
        }
    }
    let expected = |policy: &str, self_approval: bool, approver: usize, author: usize| -> u16 {
        if people[approver] == "stranger" {
            return 404; // cannot see the thread's channel
        }
        if !self_approval && approver == author {
            return 403;
        }
        let org_wide = matches!(people[approver], "owner" | "admin");
        let allowed = match policy {
            "owner-only" => org_wide || people[approver] == "channel_owner",
            _ => true,
        };
        if allowed {
            200
        } else {
            403
        }
    };
    // Each person's inbox holds exactly the calls they may decide.
    let mut all = Vec::new();
    for (policy, self_approval, author, id) in &threads {
        let ids = approval_ids(&app, id);
        assert_eq!(ids.len(), 6, "one approval per held call");
        all.push((*policy, *self_approval, *author, id.clone(), ids));
    }
    for (approver, person) in people.iter().enumerate() {
        let want: BTreeSet<String> = all
            .iter()
            .filter(|(p, s, author, _, _)| expected(p, *s, approver, *author) == 200)
            .flat_map(|(_, _, _, _, ids)| ids.clone())
            .collect();
        // Page by page (7 at a time), each approval once.
        let (mut paged, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let after = cursor.map(|c| format!("&after={c}")).unwrap_or_default();
            let page = user(approver).client.get(&format!(
                "/api/v1/orgs/{}/approvals?status=pending&limit=7{after}",
                app.org
            ));
            assert_eq!(page.status, 200, "{:?}", page.body);
            let items = page.body["approvals"].as_array().unwrap();
            assert!(items.len() <= 7);
            paged.extend(items.iter().map(|a| a["id"].as_str().unwrap().to_string()));
            match page.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        let unique: BTreeSet<String> = paged.iter().cloned().collect();
        assert_eq!(unique.len(), paged.len(), "no approval twice for {person}");
        assert_eq!(unique, want, "inbox of {person}");
    }
    let mut failures = Vec::new();
    let mut report = Vec::new();
    for (policy, self_approval, author, id, ids) in &all {
        for (approver, approval) in ids.iter().enumerate() {
            let r = decide(&app, user(approver), approval, "approve", json!({}));
            let want = expected(policy, *self_approval, approver, *author);
            report.push(format!(
                "{policy:10} self={self_approval:5} author={:13} approver={:13} {}",
                people[*author], people[approver], r.status
            ));
            if r.status != want {
                failures.push(format!(
                    "{policy} self_approval={self_approval} author={} approver={}: got {} ({:?}), want {want}",
                    people[*author], people[approver], r.status, r.body
                ));
            }
            if r.status == 403 {
                assert_eq!(r.code(), "not_an_approver");
            }
        }
        // Whatever was refused is still pending: end the thread.
        let c = app.owner.client.post(
            &format!("/api/v1/orgs/{}/threads/{id}/cancel", app.org),
            json!({}),
        );
        assert!(c.status < 300, "{:?}", c.body);
    }
    eprintln!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Shortens a pending approval (and the run's timer) so it expires now.
fn expire_now(app: &App, thread: &str) {
    psql(
        &app.host.database_url,
        &format!(
            "WITH a AS (UPDATE approvals SET expires_at = now() WHERE thread_id = '{thread}' AND status = 'pending' RETURNING run_id)
             UPDATE runs SET wake_at = now() WHERE id IN (SELECT run_id FROM a)"
        ),
    );
}

#[test]
fn an_undecided_approval_times_out_on_its_timer_even_across_a_crash() {
    let fake = FakeLlm::start(vec![Answer::ToolCalls(vec![refund_call("o1", 10.0)])]);
    let config = config_for_fakes();
    let mut app = start_on(&config);
    let mut def = refund_tool("any-member", true, false);
    def["approval"]["timeout_secs"] = json!(60);
    create_tool(&app, &def);
    publish(&app, "support", &agent_with_tools(&fake, &["refund"]));
    let id = start_as(&app, &app.owner, "support");
    let ids = approval_ids(&app, &id);
    let wake = psql(
        &app.host.database_url,
        &format!(
            "SELECT round(extract(epoch FROM wake_at - now())) FROM runs WHERE thread_id = '{id}'"
        ),
    );
    let secs: f64 = wake.trim().parse().unwrap();
    assert!(
        (30.0..=60.0).contains(&secs),
        "timer set to the approval's timeout: {secs}"
    );
    app.crash_and_restart(&config);
    expire_now(&app, &id);
    let t = wait_for(&app, &id, &["failed", "completed"], Duration::from_secs(30));
    assert!(
        t["runs"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("timeout:"),
        "{t:#}"
    );
    let a = approval(&app, &ids[0]);
    assert_eq!(a["status"], "timed_out");
    assert_eq!(audit_actions(&a), ["requested", "timed_out"]);
    let late = decide(&app, &app.owner, &ids[0], "approve", json!({}));
    assert_eq!((late.status, late.code()), (409, "approval_not_pending"));
    assert_eq!(fake.calls(), 1);
}

/// The agent step's log lines of executions of tool `name` (one per
/// execution, naming its idempotency key).
fn executions<'a>(log: &'a str, name: &str) -> Vec<&'a str> {
    let prefix = format!("tool {name}@");
    log.lines()
        .filter(|l| l.contains(&prefix) && l.contains(" executing (idempotency key "))
        .collect()
}

/// Durable execution is at least once: a kill between running a call and
/// recording its result runs it again on restart, with the same idempotency
/// key (so the tool can tell). It is recorded once, and no host runs it twice.
#[test]
fn kill_9_right_after_an_approval_records_the_call_once_and_reruns_it_only_with_its_key() {
    let fake = FakeLlm::start(vec![
        Answer::ToolCalls(vec![refund_call("o1", 10.0)]),
        Answer::Text("Refunded.".into()),
    ]);
    let config = config_for_fakes();
    let mut app = start_on(&config);
    create_tool(&app, &refund_tool("any-member", true, false));
    publish(&app, "support", &agent_with_tools(&fake, &["refund"]));
    let id = start_as(&app, &app.owner, "support");
    let ids = approval_ids(&app, &id);
    // A crash while waiting loses nothing.
    let waiting = app.crash_and_restart(&config);
    assert_eq!(thread(&app, &id)["status"], "waiting_approval");
    assert_eq!(
        decide(&app, &app.owner, &ids[0], "approve", json!({})).status,
        200
    );
    let approved = app.crash_and_restart(&config);
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed", "{t:#}");
    assert_eq!(
        kinds(&t),
        ["user", "tool_call", "approval", "tool_result", "assistant"]
    );
    let steps = psql(
        &app.host.database_url,
        &format!("SELECT string_agg(kind, ',' ORDER BY seq) FROM run_steps s JOIN runs r ON r.id = s.run_id WHERE r.thread_id = '{id}'"),
    );
    assert_eq!(steps.trim(), "llm,approval,tool,llm");
    assert_eq!(fake.calls(), 2);
    // Executions, counted where they happen (each host's log).
    let restarted = app.host.log();
    assert!(
        executions(&waiting, "refund").is_empty(),
        "ran before approval"
    );
    let (before, after) = (
        executions(&approved, "refund"),
        executions(&restarted, "refund"),
    );
    assert!(
        before.len() <= 1 && after.len() <= 1,
        "{before:?} {after:?}"
    );
    let all: Vec<&str> = before.iter().chain(&after).copied().collect();
    assert!(!all.is_empty(), "the approved call never ran");
    let key = |l: &str| l.split("idempotency key ").nth(1).map(str::to_string);
    assert!(all.iter().all(|l| key(l) == key(all[0])), "{all:?}");
}

#[test]
fn self_approval_covers_whoever_continued_the_thread_and_api_keys_as_their_creators() {
    let fake = FakeLlm::start(vec![
        Answer::Text("Hello.".into()),
        Answer::ToolCalls(vec![refund_call("o1", 5.0)]),
        Answer::Text("Done.".into()),
        Answer::ToolCalls(vec![refund_call("o2", 5.0)]),
        Answer::Text("Done.".into()),
    ]);
    let app = start_on(&config_for_fakes());
    create_tool(&app, &refund_tool("any-member", false, false));
    publish(&app, "support", &agent_with_tools(&fake, &["refund"]));
    let member = sign_up(&app.host, "continuer");
    add_member(&app.owner, &app.org, &member, "member");
    let admin = sign_up(&app.host, "approver");
    add_member(&app.owner, &app.org, &admin, "admin");

    // The owner starts the thread; the member continues it and the run holds a call.
    let id = start_as(&app, &app.owner, "support");
    wait_for(&app, &id, &["completed"], Duration::from_secs(30));
    let more = member.client.post(
        &format!("/api/v1/orgs/{}/threads/{id}/messages", app.org),
        json!({ "message": "refund o1" }),
    );
    assert_eq!(more.status, 201, "{:?}", more.body);
    let ids = approval_ids(&app, &id);
    for who in [&member, &app.owner] {
        let r = decide(&app, who, &ids[0], "approve", json!({}));
        assert_eq!(
            (r.status, r.code()),
            (403, "not_an_approver"),
            "{}",
            who.email
        );
    }
    assert_eq!(
        decide(&app, &admin, &ids[0], "approve", json!({})).status,
        200
    );
    wait_for(&app, &id, &["completed"], Duration::from_secs(30));

    // A run started with an API key cannot be approved with that key, nor
    // by its creator, nor with another key of theirs: a key counts as the
    // person who created it.
    let key = |by: &synatra_tests::User, name: &str| {
        let k = by.client.post(
            &format!("/api/v1/orgs/{}/api-keys", app.org),
            json!({ "name": name, "role": "member" }),
        );
        assert_eq!(k.status, 201, "{:?}", k.body);
        synatra_tests::Client::new(&app.host.base).with_bearer(k.body["token"].as_str().unwrap())
    };
    let (starter, admins_other, owners) = (
        key(&admin, "starter"),
        key(&admin, "other"),
        key(&app.owner, "owners"),
    );
    let r = starter.post(
        &format!("/api/v1/orgs/{}/threads/{id}/messages", app.org),
        json!({ "message": "refund o2" }),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let t = wait_for(&app, &id, &["waiting_approval"], Duration::from_secs(30));
    let pending = messages_of(&t, "approval")
        .last()
        .map(|m| m["content"]["id"].as_str().unwrap().to_string())
        .unwrap();
    let path = format!("/api/v1/orgs/{}/approvals/{pending}/approve", app.org);
    // The thread's author's own key is refused as the author is.
    for client in [&starter, &admins_other, &admin.client, &owners] {
        let r = client.post(&path, json!({}));
        assert_eq!(
            (r.status, r.code()),
            (403, "not_an_approver"),
            "{:?}",
            r.body
        );
    }
    let r = member.client.post(&path, json!({}));
    assert_eq!(r.status, 200, "{:?}", r.body);
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed", "{t:#}");
}

/// Event streams poll with a pooled connection each time and give it back
/// while they wait: 30 open streams on a waiting thread leave the app (and
/// its 20-connection pool) free to answer.
#[test]
fn open_event_streams_do_not_starve_the_app() {
    use std::io::{Read, Write};
    let fake = FakeLlm::start(vec![
        Answer::ToolCalls(vec![refund_call("o1", 1.0)]),
        Answer::Text("Refunded.".into()),
    ]);
    let app = start_on(&config_for_fakes());
    create_tool(&app, &refund_tool("any-member", true, false));
    publish(&app, "support", &agent_with_tools(&fake, &["refund"]));
    let id = start_as(&app, &app.owner, "support");
    let ids = approval_ids(&app, &id);
    let key = app.owner.client.post(
        &format!("/api/v1/orgs/{}/api-keys", app.org),
        json!({ "name": "sse", "role": "member" }),
    );
    let token = key.body["token"].as_str().unwrap().to_string();
    let addr = app.host.base.trim_start_matches("http://").to_string();
    let streams: Vec<std::net::TcpStream> = (0..30)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            write!(
                s,
                "GET /api/v1/orgs/{}/threads/{id}/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n",
                app.org
            )
            .unwrap();
            let mut head = [0u8; 64];
            let n = s.read(&mut head).unwrap();
            assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
            s
        })
        .collect();
    // An exhausted pool would answer 503 database_unavailable here.
    assert_eq!(thread(&app, &id)["status"], "waiting_approval");
    let r = decide(&app, &app.owner, &ids[0], "approve", json!({}));
    assert_eq!(r.status, 200, "{:?}", r.body);
    let t = wait_for(&app, &id, &["completed", "failed"], Duration::from_secs(30));
    assert_eq!(t["status"], "completed", "{t:#}");
    drop(streams);
}
