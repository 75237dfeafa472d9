//! Per-request instance state: what one component instance may touch.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::app::{App, ComponentRuntime};
use crate::factors::outbound_http::OutboundHttp;

/// The `T` of every `Store<T>`: WASI contexts, the resource table, the
/// component's granted capabilities and its limits.
pub struct InstanceState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) hooks: OutboundHttp,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) component: Arc<ComponentRuntime>,
    pub(crate) app: Arc<App>,
    pub(crate) deadline: Instant,
}

impl InstanceState {
    /// Builds the state for one instance of `component`, serving a request at
    /// internal call depth `depth` within `timeout`.
    pub fn new(
        app: Arc<App>,
        component: Arc<ComponentRuntime>,
        depth: u32,
        timeout: std::time::Duration,
    ) -> Self {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stdout().inherit_stderr();
        for (k, v) in &component.environment {
            wasi.env(k, v);
        }
        for (host, guest) in &component.dirs {
            // Directories were checked at start-up; a failure here is a bug.
            wasi.preopened_dir(host, guest, wasmtime_wasi::FsPerms::ReadOnly)
                .expect("preopen checked at start-up");
        }
        let limits = component.limits;
        Self {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OutboundHttp::new(app.clone(), component.clone(), depth),
            limiter: MemoryLimiter::new((limits.memory_limit_mb as usize) << 20),
            deadline: Instant::now() + timeout,
            component,
            app,
        }
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// An instance tried to grow its memory past the component's limit.
#[derive(Debug, thiserror::Error)]
#[error("component memory limit of {limit} bytes exceeded (wanted {desired} bytes)")]
pub struct MemoryLimitExceeded {
    pub limit: usize,
    pub desired: usize,
}

/// Lets the instance in `store` yield to other tasks at every epoch tick
/// and traps it with [`TimeLimitExceeded`] once `deadline` has passed.
pub fn yield_until<T>(store: &mut wasmtime::Store<T>, deadline: Instant) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Err(TimeLimitExceeded.into())
        } else {
            Ok(wasmtime::UpdateDeadline::Yield(1))
        }
    });
}

/// An instance ran past its time budget.
#[derive(Debug, thiserror::Error)]
#[error("component exceeded its time limit")]
pub struct TimeLimitExceeded;

/// The caller cancelled the request (e.g. a run's cancellation).
#[derive(Debug, thiserror::Error)]
#[error("the request was cancelled")]
pub struct Cancelled;

/// Caps each instance's linear memory; growing past the cap traps with
/// [`MemoryLimitExceeded`].
pub struct MemoryLimiter {
    limit: usize,
}

impl MemoryLimiter {
    /// A limiter allowing `limit` bytes of linear memory.
    pub fn new(limit: usize) -> Self {
        Self { limit }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            return Err(MemoryLimitExceeded {
                limit: self.limit,
                desired,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}
