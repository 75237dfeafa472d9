//! WIT tools: users' components implementing the `synatra:tool` world
//! (`wit/tool/world.wit`). The host serves them to the app's components at
//! `http://wasm-tools.spin.internal/run` (in-process, behind the service
//! secret and `allowed_outbound_hosts`). Each call loads the component by
//! its org and SHA-256 from the database, compiles it once (disk and memory
//! cache), checks its imports again, and runs `call` in a fresh instance on
//! a separate engine with fuel, an epoch deadline and a memory limit. WASI
//! is inert: no preopened directories, no environment or arguments, no
//! network; stdout and stderr become the call's logs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use sqlx::PgPool;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::WasiBody;

use crate::engine::{start_epoch_ticker, ComponentCache, EPOCH_TICK};
use crate::instance::{MemoryLimitExceeded, TimeLimitExceeded};

wasmtime::component::bindgen!({
    path: "../wit/tool",
    world: "tool",
    exports: { default: async },
});

use synatra::tool::log::Level;

use synatra_names::headers;
/// The service's name: `http://wasm-tools.spin.internal`.
pub use synatra_names::services::WIT_TOOLS as SERVICE;
use synatra_tools::sandbox::{push_log, truncated, ToolAnswer, MAX_RESULT};
/// Memory of one tool instance.
const MEMORY_LIMIT: usize = 128 << 20;
/// Most time a call may take, whatever the tool asks.
const MAX_TIMEOUT_MS: u64 = 60_000;
/// Fuel per millisecond of the time limit (roughly instructions).
const FUEL_PER_MS: u64 = 5_000_000;
/// Compiled components kept in memory.
const MEMORY_CACHE: usize = 64;
/// Tool calls running at once on this host; more wait their turn.
const MAX_CONCURRENT: usize = 16;
/// Console output kept per stream (more ends the call, as a full pipe).
const MAX_OUTPUT: usize = 256 << 10;

/// Bounds a tool instance's memory in total (all its memories and tables
/// together) and how many instances, memories and tables it may create.
struct ToolLimiter {
    used: usize,
}

impl ResourceLimiter for ToolLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.used + desired.saturating_sub(current);
        if total > MEMORY_LIMIT {
            return Err(MemoryLimitExceeded {
                limit: MEMORY_LIMIT,
                desired: total,
            }
            .into());
        }
        self.used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Table slots count as pointer-sized memory.
        let bytes = desired.saturating_sub(current).saturating_mul(8);
        self.memory_growing(0, bytes, None)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}

/// What one tool instance may touch.
struct ToolState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: ToolLimiter,
    logs: Vec<String>,
    idempotency_key: Option<String>,
}

impl WasiView for ToolState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl synatra::tool::log::Host for ToolState {
    fn log(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        push_log(&mut self.logs, &format!("{level}: {message}"));
    }
}

impl synatra::tool::gateway::Host for ToolState {
    fn request(
        &mut self,
        resource: String,
        _operation: String,
        _params: String,
    ) -> Result<String, String> {
        // Resources arrive with the resources issue; until then none exists.
        Err(format!("no such resource: {resource}"))
    }
}

impl synatra::tool::context::Host for ToolState {
    fn idempotency_key(&mut self) -> Option<String> {
        self.idempotency_key.clone()
    }
}

impl synatra::tool::types::Host for ToolState {}

/// The engine, linker and caches for WIT tools.
pub struct WitTools {
    engine: Engine,
    linker: Linker<ToolState>,
    disk: ComponentCache,
    /// Linked components by `(org id, sha256)`: a hit needs no database read.
    linked: Mutex<HashMap<(String, String), ToolPre<ToolState>>>,
    running: tokio::sync::Semaphore,
}

impl WitTools {
    /// The runner, caching compiled tools under `cache_dir`.
    pub fn new(cache_dir: &std::path::Path) -> Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.consume_fuel(true);
        let engine = Engine::new(&config)?;
        start_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        Tool::add_to_linker::<_, HasSelf<ToolState>>(&mut linker, |s| s)?;
        Ok(Self {
            engine,
            linker,
            disk: ComponentCache::new(cache_dir)?,
            linked: Mutex::new(HashMap::new()),
            running: tokio::sync::Semaphore::new(MAX_CONCURRENT),
        })
    }

    /// The linked component `sha256` of `org`, if this host has it.
    fn cached(&self, org: &str, sha256: &str) -> Option<ToolPre<ToolState>> {
        let key = (org.to_string(), sha256.to_string());
        self.linked.lock().expect("cache lock").get(&key).cloned()
    }

    /// Compiles (or loads from disk), checks the imports of, and links
    /// component `wasm`, keeping it for later calls.
    fn link(&self, org: &str, sha256: &str, wasm: &[u8]) -> Result<ToolPre<ToolState>, String> {
        let component = self
            .disk
            .load_bytes(&self.engine, wasm, &format!("tool {sha256}"))
            .map_err(|e| format!("the component does not compile: {e:#}"))?;
        for (name, item) in component.component_type().imports(&self.engine) {
            if matches!(item.ty, ComponentItem::Type(_) | ComponentItem::Resource(_)) {
                continue; // types grant nothing
            }
            if let Some(e) = synatra_tools::component::import_error(name) {
                return Err(e);
            }
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(ToolPre::new)
            .map_err(|e| format!("the component cannot be linked: {e:#}"))?;
        let mut cache = self.linked.lock().expect("cache lock");
        if cache.len() >= MEMORY_CACHE {
            cache.clear();
        }
        cache.insert((org.to_string(), sha256.to_string()), pre.clone());
        Ok(pre)
    }

    /// Runs `call(params)` once in a fresh instance; the answer is `{ok,
    /// result | error, logs}`. Wasm yields to other tasks every epoch tick
    /// and traps at the deadline; a host call that blocks (a WASI poll, a
    /// sleep) is dropped at the deadline too.
    async fn run(
        &self,
        pre: &ToolPre<ToolState>,
        params: &str,
        idempotency_key: Option<String>,
        timeout_ms: u64,
    ) -> ToolAnswer {
        let stdout = MemoryOutputPipe::new(MAX_OUTPUT);
        let stderr = MemoryOutputPipe::new(MAX_OUTPUT);
        let mut wasi = WasiCtx::builder();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let state = ToolState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: ToolLimiter { used: 0 },
            logs: Vec::new(),
            idempotency_key,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        let budget = std::time::Duration::from_millis(timeout_ms);
        let deadline = std::time::Instant::now() + budget;
        crate::instance::yield_until(&mut store, deadline);
        if let Err(e) = store.set_fuel(timeout_ms.saturating_mul(FUEL_PER_MS)) {
            return ToolAnswer::failure(&e.to_string(), Vec::new());
        }
        let call = async {
            let tool = pre.instantiate_async(&mut store).await?;
            tool.call_call(&mut store, params).await
        };
        let outcome = match tokio::time::timeout(budget + EPOCH_TICK * 10, call).await {
            Ok(outcome) => outcome,
            Err(_) => Err(TimeLimitExceeded.into()),
        };
        let mut logs = std::mem::take(&mut store.data_mut().logs);
        for pipe in [&stdout, &stderr] {
            for line in String::from_utf8_lossy(&pipe.contents()).lines() {
                push_log(&mut logs, line);
            }
        }
        let result = match outcome {
            Ok(Ok(text)) if text.len() > MAX_RESULT => Err(format!(
                "the tool's result is larger than {} KiB",
                MAX_RESULT >> 10
            )),
            Ok(Ok(text)) => serde_json::from_str::<Value>(&text).map_err(|_| {
                format!(
                    "the tool returned text that is not JSON: {}",
                    text.chars().take(80).collect::<String>()
                )
            }),
            Ok(Err(e)) => Err(format!("{}: {}", truncated(&e.code, 100), e.message)),
            Err(e) => Err(describe(&e, timeout_ms)),
        };
        match result {
            Ok(v) => ToolAnswer::success(v, logs),
            Err(error) => ToolAnswer::failure(&error, logs),
        }
    }

    /// Serves `POST /run {org_id, sha256, params, timeout_ms}` for the app's
    /// components (the caller proved the service secret).
    async fn serve_run(
        self: &Arc<Self>,
        db: &PgPool,
        secret: Option<&str>,
        request: http::Request<WasiBody>,
    ) -> http::Response<WasiBody> {
        let header = |headers: &http::HeaderMap, name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let given = header(request.headers(), headers::SERVICE_SECRET);
        let idempotency_key = header(request.headers(), headers::IDEMPOTENCY_KEY);
        let authorized = match (secret, given) {
            (Some(expected), Some(given)) if !expected.is_empty() => {
                synatra_secrets::secrets_match(expected.as_bytes(), given.as_bytes())
            }
            _ => false,
        };
        if !authorized {
            return reply(
                401,
                json!({ "error": { "code": "unauthenticated", "message": "internal route" } }),
            );
        }
        let Ok(body) = request.into_body().collect().await.map(|b| b.to_bytes()) else {
            return reply(
                400,
                json!({ "error": { "code": "bad_request", "message": "unreadable body" } }),
            );
        };
        let call: Value = serde_json::from_slice(&body).unwrap_or_default();
        let (Some(org), Some(sha)) = (call["org_id"].as_str(), call["sha256"].as_str()) else {
            return reply(
                400,
                json!({ "error": { "code": "bad_request", "message": "expected {org_id, sha256, params, timeout_ms}" } }),
            );
        };
        let timeout_ms = call["timeout_ms"]
            .as_u64()
            .unwrap_or(30_000)
            .min(MAX_TIMEOUT_MS);
        // Waiting calls hold no component bytes.
        let Ok(_permit) = self.running.acquire().await else {
            return reply(
                503,
                json!({ "error": { "code": "shutting_down", "message": "the host is stopping" } }),
            );
        };
        let cached = self.cached(org, sha);
        let wasm = match cached {
            Some(_) => None,
            None => match load(db, org, sha).await {
                Ok(Some(w)) => Some(w),
                Ok(None) => {
                    let answer = ToolAnswer::failure("the tool's component is missing", Vec::new());
                    return reply(200, json!(answer));
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot load a tool component");
                    return reply(
                        503,
                        json!({ "error": { "code": "database_unavailable", "message": "cannot load the tool" } }),
                    );
                }
            },
        };
        let params = call["params"].to_string();
        let started = std::time::Instant::now();
        let pre = match (cached, wasm) {
            (Some(pre), _) => Ok(pre),
            (None, wasm) => {
                // Compiling is CPU work: off the async workers.
                let (tools, org, sha) = (self.clone(), org.to_string(), sha.to_string());
                tokio::task::spawn_blocking(move || {
                    tools.link(&org, &sha, &wasm.unwrap_or_default())
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
            }
        };
        let answer = match pre {
            Ok(pre) => self.run(&pre, &params, idempotency_key, timeout_ms).await,
            Err(e) => ToolAnswer::failure(&e, Vec::new()),
        };
        tracing::info!(ms = started.elapsed().as_millis() as u64, "wit tool call");
        reply(200, json!(answer))
    }
}

impl crate::app::HostService for WitTools {
    fn serve(
        self: Arc<Self>,
        app: Arc<crate::app::App>,
        request: http::Request<WasiBody>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = http::Response<WasiBody>> + Send>> {
        Box::pin(async move {
            let secret = app.variables.get(synatra_names::variables::SERVICE_SECRET);
            self.serve_run(&app.db, secret, request).await
        })
    }
}

/// A message for the model about a trap.
fn describe(error: &wasmtime::Error, timeout_ms: u64) -> String {
    if error.downcast_ref::<TimeLimitExceeded>().is_some() {
        return format!("the tool exceeded its time limit ({timeout_ms} ms)");
    }
    if error.downcast_ref::<MemoryLimitExceeded>().is_some() {
        return format!(
            "the tool exceeded its memory limit ({} MiB)",
            MEMORY_LIMIT >> 20
        );
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => format!("the tool exceeded its time limit ({timeout_ms} ms)"),
        // Fuel bounds computation as the deadline bounds wall time.
        Some(Trap::OutOfFuel) => {
            format!("the tool exceeded its time limit ({timeout_ms} ms, counted as CPU fuel)")
        }
        Some(trap) => format!("the tool crashed: {trap}"),
        None => format!("the tool failed: {error}"),
    }
}

async fn load(db: &PgPool, org: &str, sha256: &str) -> Result<Option<Vec<u8>>> {
    let row: Option<(Vec<u8>,)> =
        sqlx::query_as("SELECT wasm FROM tool_components WHERE org_id = $1::uuid AND sha256 = $2")
            .bind(org)
            .bind(sha256)
            .fetch_optional(db)
            .await
            .context("tool_components")?;
    Ok(row.map(|(w,)| w))
}

fn reply(status: u16, body: Value) -> http::Response<WasiBody> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(
            Full::new(Bytes::from(body.to_string()))
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .expect("static response parts are valid")
}
