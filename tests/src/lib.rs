//! Test harness: one real PostgreSQL per test binary (a fresh database per
//! test), the real `synatra` host as a child process on free ports, and a
//! small HTTP client.

pub mod contract;
pub mod fake_llm;
pub mod runs;
pub mod schema;
pub mod spin;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use embedded_postgres::{free_port, EmbeddedPostgres, Options};
use serde_json::Value;

/// The server's connection URL template, shared by every test of a binary.
struct SharedPostgres {
    admin_url_base: String,
    socket_dir: Option<PathBuf>,
}

static POSTGRES: OnceLock<SharedPostgres> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A directory for one test, under the system temp dir (reachable by the
/// `postgres` user when tests run as root).
pub fn temp_dir(label: &str) -> PathBuf {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(remove_dirs_of_finished_runs);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("synatra-test-{}-{label}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
    dir
}

/// `APP_ORIGINS` as `make up` has it by default (the origin the README's
/// commands send).
pub const DEFAULT_ORIGINS: &str = "http://localhost:3000,http://127.0.0.1:3000";

/// What a script printed, and whether it succeeded.
pub struct ScriptRun {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` with its output captured until it ends; kills it and panics
/// if it takes longer than `within`.
pub fn run_script(mut cmd: Command, within: Duration) -> ScriptRun {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let deadline = Instant::now() + within;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{cmd:?} did not finish in {within:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("output");
    ScriptRun {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Removes the temp dirs (a test database is ~250 MB) of test processes
/// that have exited: a process's own are never dropped, it is killed.
fn remove_dirs_of_finished_runs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("synatra-test-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

fn shared_postgres() -> &'static SharedPostgres {
    POSTGRES.get_or_init(|| {
        // Start the server from a thread that lives as long as the process:
        // it is killed when its parent thread exits (PR_SET_PDEATHSIG).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let dir = temp_dir("pg").join("data");
            let pg = EmbeddedPostgres::start(&dir, Options { ephemeral: true });
            match pg {
                Ok(pg) => {
                    let socket = pg.socket_dir().map(Path::to_path_buf);
                    tx.send(Ok((pg.url_for(""), socket))).unwrap();
                    loop {
                        std::thread::park();
                    }
                }
                Err(e) => tx.send(Err(format!("{e:#}"))).unwrap(),
            }
        });
        let (url, socket_dir) = rx.recv().unwrap().expect("start test PostgreSQL");
        SharedPostgres {
            admin_url_base: url,
            socket_dir,
        }
    })
}

/// The Unix-socket directory of the shared test server (`DATABASE_SOCKET`
/// of the hosts on it), when it has one.
pub fn database_socket() -> Option<PathBuf> {
    shared_postgres().socket_dir.clone()
}

/// A new, empty database on the shared test server; returns its URL.
pub fn fresh_database() -> String {
    let pg = shared_postgres();
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let name = format!("t{}_{n}", std::process::id());
    let admin = format!("{}synatra", pg.admin_url_base);
    psql(&admin, &format!("CREATE DATABASE {name}"));
    format!("{}{name}", pg.admin_url_base)
}

/// Runs one SQL statement with `psql`, panicking on failure.
pub fn psql(url: &str, sql: &str) -> String {
    try_psql(url, sql).unwrap_or_else(|e| panic!("psql {sql}: {e}"))
}

/// Runs one SQL statement with `psql`: its output, or its error text.
pub fn try_psql(url: &str, sql: &str) -> Result<String, String> {
    let bin = embedded_postgres::find_bin_dir().expect("postgres binaries");
    let psql = if bin.join("psql").exists() {
        bin.join("psql")
    } else {
        PathBuf::from("psql")
    };
    let out = Command::new(psql)
        .args([url, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
        .output()
        .expect("run psql");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

/// `target/<profile>` of the build that produced this binary (a test in
/// `target/<profile>/deps`, or a binary such as the bench beside `synatra`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("exe dir");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("target/<profile>").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// Path of a built Wasm component (`make components` builds them).
pub fn wasm(name: &str) -> PathBuf {
    let profile = profile_dir();
    let target = profile.parent().expect("target dir");
    let path = target
        .join("wasm32-wasip2")
        .join("release")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} missing: run `make components` (or `make test`)",
        path.display()
    );
    path
}

/// The repository root.
///
/// Read from `CARGO_MANIFEST_DIR` at run time (cargo sets it for tests and
/// `cargo run`; the tests and bench packages both sit one level down), since
/// a build cache shared by two checkouts may hold a binary compiled in the
/// other one.
pub fn repo_root() -> PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    dir.parent().unwrap().to_path_buf()
}

/// The application's own `spin.toml`, with component sources pointing at the
/// build output of this test run.
pub fn app_manifest(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo_root().join("spin.toml")).expect("read spin.toml");
    let wasm_dir = wasm("synatra_api").parent().unwrap().display().to_string();
    let text = text.replace("target/wasm32-wasip2/release", &wasm_dir);
    let path = dir.join("spin.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A host under test: `synatra up` or the released Spin's `spin up`.
pub trait Server {
    /// `http://127.0.0.1:<port>`
    fn base(&self) -> &str;
    /// Its log so far.
    fn log(&self) -> String;
    /// A client for it (keeps cookies).
    fn client(&self) -> Client {
        Client::new(self.base())
    }
}

impl<T: Server + ?Sized> Server for Box<T> {
    fn base(&self) -> &str {
        (**self).base()
    }

    fn log(&self) -> String {
        (**self).log()
    }
}

impl Server for Host {
    fn base(&self) -> &str {
        &self.base
    }

    fn log(&self) -> String {
        Host::log(self)
    }

    fn client(&self) -> Client {
        Host::client(self)
    }
}

/// A running `synatra up`.
pub struct Host {
    child: Child,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    /// `http://127.0.0.1:<admin port>`
    pub admin: String,
    pub data_dir: PathBuf,
    /// The database this host uses.
    pub database_url: String,
    log: PathBuf,
}

/// How to start a host.
pub struct HostConfig {
    pub manifest: PathBuf,
    pub database_url: String,
    pub env: Vec<(String, String)>,
    pub data_dir: PathBuf,
    /// Extra arguments of `synatra up`.
    pub args: Vec<String>,
}

impl HostConfig {
    /// A host for `manifest` on a fresh database.
    pub fn new(manifest: PathBuf) -> Self {
        Self {
            database_url: fresh_database(),
            ..Self::new_without_database(manifest)
        }
    }

    /// A host for `manifest` on its own embedded PostgreSQL under the data
    /// directory (no `DATABASE_URL`), as `make up` runs it.
    pub fn embedded(manifest: PathBuf) -> Self {
        Self {
            database_url: String::new(),
            ..Self::new_without_database(manifest)
        }
    }

    fn new_without_database(manifest: PathBuf) -> Self {
        let data_dir = manifest.parent().unwrap().join("data");
        Self {
            manifest,
            database_url: String::new(),
            env: Vec::new(),
            data_dir,
            args: Vec::new(),
        }
    }

    /// Adds an environment variable for the host process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
}

/// The `synatra` binary of this build.
pub fn synatra_bin() -> PathBuf {
    let bin = profile_dir().join("synatra");
    assert!(bin.exists(), "{} missing: run `make test`", bin.display());
    bin
}

impl Host {
    /// Starts the host and waits until it serves; panics with its log if it
    /// fails. A port picked free can be taken by a parallel test before the
    /// host binds it: then it starts again on other ports.
    pub fn start(config: &HostConfig) -> Self {
        let mut attempts = 0;
        loop {
            match Self::try_start(config) {
                Ok(host) => return host,
                Err(log) if log.contains("Address already in use") && attempts < 3 => {
                    attempts += 1;
                }
                Err(log) => panic!("host failed to start:\n{log}"),
            }
        }
    }

    /// Starts the host; on failure returns its log.
    pub fn try_start(config: &HostConfig) -> Result<Self, String> {
        let port = free_port().unwrap();
        let admin_port = free_port().unwrap();
        let log = config.manifest.with_extension(format!("{port}.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(synatra_bin());
        cmd.arg("up")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--admin-listen", &format!("127.0.0.1:{admin_port}")])
            .arg("--manifest")
            .arg(&config.manifest)
            .arg("--data-dir")
            .arg(&config.data_dir)
            .args(&config.args)
            // Compiled components are keyed by content: one cache for all tests.
            .env(
                "SYNATRA_CACHE_DIR",
                std::env::temp_dir().join("synatra-test-component-cache"),
            )
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(config.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file);
        cmd.env_remove("DATABASE_SOCKET");
        if config.database_url.is_empty() {
            cmd.env_remove("DATABASE_URL");
        } else {
            cmd.env("DATABASE_URL", &config.database_url);
            // Only a database of the shared server is behind its socket.
            let shared = shared_postgres();
            if let Some(dir) = &shared.socket_dir {
                if config.database_url.starts_with(&shared.admin_url_base) {
                    cmd.env("DATABASE_SOCKET", dir);
                }
            }
        }
        // SAFETY: prctl in the forked child before exec; kills the host if the
        // test process dies.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| e.to_string())?;
        let mut host = Host {
            child,
            base: format!("http://127.0.0.1:{port}"),
            admin: format!("http://127.0.0.1:{admin_port}"),
            data_dir: config.data_dir.clone(),
            database_url: config.database_url.clone(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(_)) = host.child.try_wait() {
                return Err(host.log());
            }
            if ureq::get(&format!("{}/.well-known/spin/health", host.base))
                .timeout(Duration::from_secs(1))
                .call()
                .is_ok()
            {
                return Ok(host);
            }
            if Instant::now() > deadline {
                return Err(format!("timed out\n{}", host.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The host's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The host's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: the host dies mid-whatever, as in a crash.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a graceful exit; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        self.child.wait().unwrap()
    }

    /// A client for this host (keeps cookies); a transport failure reports
    /// whether the host is still running and the end of its log.
    pub fn client(&self) -> Client {
        let mut client = Client::new(&self.base);
        client.host = Some(Arc::new(HostTrace {
            pid: self.child.id(),
            log: self.log.clone(),
        }));
        client
    }
}

/// The fields of `/proc/<pid>/stat` after the parenthesised command name
/// (state, parent, …); empty when the process is gone.
pub(crate) fn proc_stat(pid: u32) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// What a client knows of the host it talks to, for failure messages.
struct HostTrace {
    pid: u32,
    log: PathBuf,
}

impl HostTrace {
    /// Whether the host runs, and the last lines of its log.
    fn describe(&self) -> String {
        // The first field is the state: `Z` is a zombie, `X` dead.
        let stat = proc_stat(self.pid);
        let running = !matches!(stat.first().map(String::as_str), None | Some("Z" | "X"));
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!(
            "host pid {} running: {running}; its log ends:\n{tail}",
            self.pid
        )
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response: status, headers we care about, and the body as JSON (or a string).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// A header value by (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The stable error code, if this is an error reply.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// A blocking HTTP client with a cookie jar and optional bearer token.
#[derive(Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
    bearer: Option<String>,
    origin: Option<String>,
    host: Option<Arc<HostTrace>>,
}

impl Client {
    /// A client for `base` (`http://host:port`).
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_string(),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(60))
                .build(),
            bearer: None,
            origin: None,
            host: None,
        }
    }

    /// The same client, authenticating with `token` instead of cookies.
    pub fn with_bearer(&self, token: &str) -> Self {
        Self {
            base: self.base.clone(),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(60))
                .build(),
            bearer: Some(token.to_string()),
            origin: None,
            host: self.host.clone(),
        }
    }

    /// Panics on a transport failure, saying what the host was doing.
    fn transport_failure(&self, what: &str, error: &ureq::Error) -> ! {
        let trace = self.host.as_ref().map(|h| h.describe()).unwrap_or_default();
        panic!("{what}: {error}\n{trace}")
    }

    /// Points the client (and its cookies) at another base URL.
    pub fn set_base(&mut self, base: &str) {
        self.base = base.to_string();
    }

    /// Sends `Origin: origin` with every request.
    pub fn with_origin(mut self, origin: &str) -> Self {
        self.origin = Some(origin.to_string());
        self
    }

    /// Reads the Server-Sent Events at `path` as they arrive, until
    /// `stop(event, data)` says so or the stream ends; returns the status
    /// and the id of the last event read.
    pub fn read_events(
        &self,
        path: &str,
        mut stop: impl FnMut(&str, &Value) -> bool,
    ) -> (u16, Option<i64>) {
        use std::io::BufRead;
        let mut req = self.agent.get(&format!("{}{}", self.base, path));
        if let Some(t) = &self.bearer {
            req = req.set("authorization", &format!("Bearer {t}"));
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(status, _)) => return (status, None),
            Err(e) => self.transport_failure(&format!("GET {path}"), &e),
        };
        let status = resp.status();
        let (mut last, mut id, mut event, mut data) = (None, None, String::new(), String::new());
        for line in std::io::BufReader::new(resp.into_reader()).lines() {
            let Ok(line) = line else { break };
            if let Some(v) = line.strip_prefix("id: ") {
                id = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("event: ") {
                event = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push_str(v);
            } else if line.is_empty() && !event.is_empty() {
                last = id.or(last);
                let value = serde_json::from_str(&data).unwrap_or(Value::Null);
                if stop(&event, &value) {
                    break;
                }
                (event, data) = (String::new(), String::new());
            }
        }
        (status, last)
    }

    /// Sends a request with an optional JSON body.
    pub fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        self.send_raw(
            method,
            path,
            body.map(|b| ("application/json", b.to_string().into_bytes())),
        )
    }

    /// Sends a request with an arbitrary body and content type.
    pub fn send_raw(&self, method: &str, path: &str, body: Option<(&str, Vec<u8>)>) -> Reply {
        let mut req = self
            .agent
            .request(method, &format!("{}{}", self.base, path));
        if let Some(t) = &self.bearer {
            req = req.set("authorization", &format!("Bearer {t}"));
        }
        if let Some(o) = &self.origin {
            req = req.set("origin", o);
        }
        let result = match body {
            Some((ct, bytes)) => req.set("content-type", ct).send_bytes(&bytes),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => self.transport_failure(&format!("{method} {path}"), &e),
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .flat_map(|n| {
                resp.all(&n)
                    .into_iter()
                    .map(|v| (n.to_ascii_lowercase(), v.to_string()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let text = resp.into_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        let reply = Reply {
            status,
            body,
            headers,
        };
        contract::check_answer(&self.base, method, path, &reply);
        reply
    }

    pub fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None)
    }

    pub fn post(&self, path: &str, body: Value) -> Reply {
        self.send("POST", path, Some(&body))
    }

    pub fn patch(&self, path: &str, body: Value) -> Reply {
        self.send("PATCH", path, Some(&body))
    }

    pub fn delete(&self, path: &str) -> Reply {
        self.send("DELETE", path, None)
    }
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    path
}

/// The `ENCRYPTION_KEY` of test hosts.
pub const TEST_ENCRYPTION_KEY: &str =
    "7f3a1c9e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a";

/// The `TICK_SECRET` of test hosts.
pub const TEST_TICK_SECRET: &str = "test-tick-secret";

/// The origin the API tests' browser-like clients send (`APP_ORIGINS`).
pub const TEST_ORIGIN: &str = "http://app.test";

/// Starts the real application (`spin.toml`) on a fresh database.
pub fn start_app() -> Host {
    Host::start(&app_config())
}

/// The configuration [`start_app`] uses, for restarts on the same database.
pub fn app_config() -> HostConfig {
    let dir = temp_dir("app");
    HostConfig::new(app_manifest(&dir))
        .env("APP_ORIGINS", TEST_ORIGIN)
        .env("SERVICE_SECRET", "test-service-secret")
        .env("TICK_SECRET", TEST_TICK_SECRET)
        .env("ENCRYPTION_KEY", TEST_ENCRYPTION_KEY)
        .env("SYNATRA_RUN_LEASE_SECS", "3")
        // Tests sign many users up from one address; the limit has its own test.
        .env("SIGNUP_LIMIT_PER_HOUR", "100000")
}

/// A signed-up user: a cookie client plus identity.
pub struct User {
    pub client: Client,
    pub id: String,
    pub email: String,
}

/// Signs up a new user with a unique email; panics unless it succeeds.
pub fn sign_up(host: &impl Server, label: &str) -> User {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let email = format!("{label}.{n}@example.com");
    let client = host.client().with_origin(TEST_ORIGIN);
    let reply = client.post(
        "/api/v1/auth/signup",
        serde_json::json!({ "email": email, "password": "correct horse battery", "name": label }),
    );
    assert_eq!(reply.status, 201, "signup: {:?}", reply.body);
    User {
        client,
        id: reply.body["user"]["id"].as_str().unwrap().to_string(),
        email,
    }
}

/// Creates an org owned by `owner`; returns its slug.
pub fn create_org(owner: &User, label: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let slug = format!("{label}-{n}");
    let reply = owner.client.post(
        "/api/v1/orgs",
        serde_json::json!({ "name": label, "slug": slug }),
    );
    assert_eq!(reply.status, 201, "create org: {:?}", reply.body);
    slug
}

/// Invites `user` to `org` with `role` (as `admin`) and accepts.
pub fn add_member(admin: &User, org: &str, user: &User, role: &str) {
    let inv = admin.client.post(
        &format!("/api/v1/orgs/{org}/invitations"),
        serde_json::json!({ "email": user.email, "role": role }),
    );
    assert_eq!(inv.status, 201, "invite: {:?}", inv.body);
    let token = inv.body["token"].as_str().unwrap();
    let accepted = user.client.post(
        &format!("/api/v1/invitations/{token}/accept"),
        serde_json::json!({}),
    );
    assert_eq!(accepted.status, 200, "accept: {:?}", accepted.body);
}

/// Live component instances on a host (from its admin metrics).
pub fn live_instances(admin: &str) -> i64 {
    metric(admin, "synatra_component_instances")
}

/// The host's Prometheus metrics (its admin port), as text.
pub fn metrics(admin: &str) -> String {
    ureq::get(&format!("{admin}/metrics"))
        .call()
        .expect("metrics")
        .into_string()
        .expect("metrics text")
}

/// The value of the sample `series` (name and labels, as exposed) on the
/// host's admin port; 0 when absent.
pub fn metric(admin: &str, series: &str) -> i64 {
    metrics(admin)
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}
