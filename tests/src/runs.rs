//! Helpers for tests of agents, threads and runs.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::fake_llm::FakeLlm;
use crate::{app_config, create_org, sign_up, Client, Host, HostConfig, Server, User};

/// A running app (on our host unless said otherwise) with a signed-up owner
/// and an org.
pub struct App<S: Server = Host> {
    pub host: S,
    pub owner: User,
    pub org: String,
}

impl<S: Server> App<S> {
    /// The app on an already started server, with a new owner and org.
    pub fn on(host: S) -> Self {
        let owner = sign_up(&host, "runner");
        let org = create_org(&owner, "runs");
        App { host, owner, org }
    }
}

impl App {
    /// kill -9 the host, start a new one on the same database, and point
    /// the owner's client at it; returns the killed host's log.
    pub fn crash_and_restart(&mut self, config: &HostConfig) -> String {
        self.host.kill9();
        let log = self.host.log();
        self.host = Host::start(config);
        self.owner.client.set_base(&self.host.base);
        log
    }
}

/// The app, allowed to reach local fakes, with fast retries.
pub fn config_for_fakes() -> HostConfig {
    app_config()
        .env("LOCAL_LLM_HOST", "127.0.0.1:*")
        .env("LLM_RETRY_BASE_MS", "50")
}

/// As an admin `c` of `org`, allows agents of its every environment to call
/// `provider` at `url` (no key goes there unless stored for that URL).
pub fn allow_model_url(c: &Client, org: &str, provider: &str, url: &str) {
    let envs = c.get(&format!("/api/v1/orgs/{org}/environments"));
    for env in envs.body["environments"].as_array().expect("environments") {
        let env = env["slug"].as_str().expect("environment slug");
        let path = format!("/api/v1/orgs/{org}/environments/{env}/llm-providers/{provider}");
        let current = c.get(&format!(
            "/api/v1/orgs/{org}/environments/{env}/llm-providers"
        ));
        let mut allowed: Vec<Value> = current.body["providers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["provider"] == provider)
            .flat_map(|p| {
                p["allowed_base_urls"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        if !allowed.contains(&json!(url)) {
            allowed.push(json!(url));
            let r = c.send("PUT", &path, Some(&json!({ "allowed_base_urls": allowed })));
            assert_eq!(r.status, 200, "{:?}", r.body);
        }
    }
}

/// Starts the app for fakes, with an owner and an org.
pub fn start() -> App {
    start_on(&config_for_fakes())
}

/// Starts the app with `config`, with an owner and an org.
pub fn start_on(config: &HostConfig) -> App {
    App::on(Host::start(config))
}

/// An agent config using `fake`, with the `add_numbers` tool.
pub fn agent_config(fake: &FakeLlm, model: &str, limits: Value) -> Value {
    json!({
        "model": { "provider": "openai", "model": model, "base_url": fake.base_url(), "temperature": 0 },
        "system_prompt": "You add numbers.",
        "tools": ["add_numbers"],
        "limits": limits,
    })
}

/// An agent on the fake provider offering `tools`.
pub fn agent_with_tools(fake: &FakeLlm, tools: &[&str]) -> Value {
    json!({ "model": { "provider": "openai", "model": "m", "base_url": fake.base_url() }, "tools": tools })
}

/// Creates the org's tool `def` (a JSON tool definition).
pub fn create_tool<S: Server>(app: &App<S>, def: &Value) {
    let r = app
        .owner
        .client
        .post(&format!("/api/v1/orgs/{}/tools", app.org), def.clone());
    assert_eq!(r.status, 201, "{:?}", r.body);
}

/// As an org admin, stores `key` for `provider` at `url` in the production
/// environment (where threads run unless they name another).
pub fn store_key<S: Server>(app: &App<S>, provider: &str, key: &str, url: &str) {
    let r = app.owner.client.send(
        "PUT",
        &format!(
            "/api/v1/orgs/{}/environments/production/llm-providers/{provider}",
            app.org
        ),
        Some(&json!({ "api_key": key, "base_url": url })),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// Creates agent `slug` with `config` as working copy and publishes it;
/// a `model.base_url` in it is first allowed in the org's environments.
pub fn publish<S: Server>(app: &App<S>, slug: &str, config: &Value) {
    if let (Some(provider), Some(url)) = (
        config["model"]["provider"].as_str(),
        config["model"]["base_url"].as_str(),
    ) {
        allow_model_url(&app.owner.client, &app.org, provider, url);
    }
    publish_as_is(app, slug, config);
}

/// Creates agent `slug` with `config` as working copy and publishes it,
/// allowing nothing.
pub fn publish_as_is<S: Server>(app: &App<S>, slug: &str, config: &Value) {
    let c = &app.owner.client;
    let base = format!("/api/v1/orgs/{}/agents", app.org);
    if c.get(&format!("{base}/{slug}")).status == 404 {
        assert_eq!(
            c.post(&base, json!({ "slug": slug, "name": slug })).status,
            201
        );
    }
    let wc = c.send(
        "PUT",
        &format!("{base}/{slug}/working-copy"),
        Some(&json!({ "config": config })),
    );
    assert_eq!(wc.status, 200, "{:?}", wc.body);
    let r = c.post(
        &format!("{base}/{slug}/releases"),
        json!({ "bump": "patch" }),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
}

/// Starts a thread (`normal` or `playground`); returns its id.
/// Publishes `helper` (an adder on `fake`) and `boss`, which may delegate
/// to it (`delegate_to_<helper>`).
pub fn publish_boss_and_helper<S: Server>(app: &App<S>, fake: &FakeLlm, helper: &str) {
    publish(app, helper, &agent_config(fake, "helper-model", json!({})));
    let boss = json!({
        "model": { "provider": "openai", "model": "boss-model", "base_url": fake.base_url() },
        "subagents": [helper],
    });
    publish(app, "boss", &boss);
}

/// The id of the newest thread of `agent` (a sub-agent's own thread).
pub fn newest_thread_of<S: Server>(app: &App<S>, agent: &str) -> String {
    let threads = app
        .owner
        .client
        .get(&format!("/api/v1/orgs/{}/threads?agent={agent}", app.org));
    threads.body["threads"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no thread of {agent}: {:?}", threads.body))
        .to_string()
}

/// Asks to cancel thread `id` (202 Accepted).
pub fn cancel<S: Server>(app: &App<S>, id: &str) {
    let r = app.owner.client.post(
        &format!("/api/v1/orgs/{}/threads/{id}/cancel", app.org),
        json!({}),
    );
    assert_eq!(r.status, 202, "{:?}", r.body);
}

/// Cancels thread `id` and waits until it settles, which must be as
/// cancelled; returns the thread.
pub fn cancel_and_settle<S: Server>(app: &App<S>, id: &str, within: Duration) -> Value {
    cancel(app, id);
    let t = wait_for(app, id, &["cancelled", "completed", "failed"], within);
    assert_eq!(t["status"], "cancelled", "{t:#}");
    t
}

pub fn start_thread<S: Server>(app: &App<S>, agent: &str, message: &str, kind: &str) -> String {
    let r = app.owner.client.post(
        &format!("/api/v1/orgs/{}/threads", app.org),
        json!({ "agent": agent, "message": message, "kind": kind }),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["thread"]["id"].as_str().unwrap().to_string()
}

/// A thread with its messages and runs.
pub fn thread<S: Server>(app: &App<S>, id: &str) -> Value {
    app.owner
        .client
        .get(&format!("/api/v1/orgs/{}/threads/{id}", app.org))
        .body
}

/// Polls until the thread reaches one of `statuses`.
pub fn wait_for<S: Server>(app: &App<S>, id: &str, statuses: &[&str], timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let t = thread(app, id);
        if statuses.contains(&t["status"].as_str().unwrap_or("")) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "thread stuck in {}: {t:#}\n{}",
            t["status"],
            app.host.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A thread's messages of one `kind`, in order.
pub fn messages_of<'a>(t: &'a Value, kind: &str) -> Vec<&'a Value> {
    t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == kind)
        .collect()
}

/// The kinds of a thread's messages, in order.
pub fn kinds(t: &Value) -> Vec<String> {
    t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap().to_string())
        .collect()
}

/// Parses an SSE body into `(id, event, data)`.
pub fn sse_events(text: &str) -> Vec<(Option<i64>, String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut id = None;
            let mut event = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = v.parse().ok();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    event = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(v).ok();
                }
            }
            Some((id, event?, data.unwrap_or(Value::Null)))
        })
        .collect()
}

/// A newcomer's whole path on `host` in an org of their own: sign up,
/// create an org, publish an agent answering on `fake`, start a thread and
/// wait (up to 30 s) until it completes; returns the thread. Shows the app
/// still serves others while one org loads it.
pub fn answer_in_new_org<S: Server>(host: &S, fake: &FakeLlm) -> Value {
    let user = sign_up(host, "bystander");
    let org = create_org(&user, "bystander");
    let c = &user.client;
    let agents = format!("/api/v1/orgs/{org}/agents");
    let r = c.post(&agents, json!({ "slug": "fast", "name": "fast" }));
    assert_eq!(r.status, 201, "{:?}", r.body);
    let config = json!({ "config": agent_config(fake, "m", json!({})) });
    allow_model_url(c, &org, "openai", &fake.base_url());
    let r = c.send("PUT", &format!("{agents}/fast/working-copy"), Some(&config));
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = c.post(
        &format!("{agents}/fast/releases"),
        json!({ "bump": "patch" }),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = c.post(
        &format!("/api/v1/orgs/{org}/threads"),
        json!({ "agent": "fast", "message": "hi" }),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["thread"]["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = c.get(&format!("/api/v1/orgs/{org}/threads/{id}"));
        assert_eq!(t.status, 200, "{:?}", t.body);
        if t.body["status"] == "completed" {
            return t.body;
        }
        assert!(
            Instant::now() < deadline,
            "the newcomer's run did not complete: {:#}",
            t.body
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
