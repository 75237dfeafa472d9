//! Per-request instance state: what one component instance may touch.

use std::path::PathBuf;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::factors::{HasFactors, InstanceStates};

/// What a component's WASI context is given: environment variables and
/// read-only directories.
#[derive(Debug, Default)]
pub struct WasiGrants {
    pub environment: Vec<(String, String)>,
    pub dirs: Vec<(PathBuf, String)>,
}

/// The `T` of every `Store<T>`: the WASI contexts and their resource table,
/// every factor's state, and the instance's limits.
pub struct InstanceState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    factors: InstanceStates,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) deadline: Instant,
}

impl InstanceState {
    /// Builds the state of one instance with `grants`, the factors' state,
    /// `memory_limit` bytes of linear memory and `timeout` to answer.
    pub fn new(
        grants: &WasiGrants,
        factors: InstanceStates,
        memory_limit: usize,
        timeout: std::time::Duration,
    ) -> Self {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stdout().inherit_stderr();
        for (k, v) in &grants.environment {
            wasi.env(k, v);
        }
        for (host, guest) in &grants.dirs {
            // Directories were checked at start-up; a failure here is a bug.
            wasi.preopened_dir(host, guest, wasmtime_wasi::FsPerms::ReadOnly)
                .expect("preopen checked at start-up");
        }
        Self {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            factors,
            limiter: MemoryLimiter::new(memory_limit),
            deadline: Instant::now() + timeout,
        }
    }
}

impl HasFactors for InstanceState {
    fn factors(&mut self) -> &mut InstanceStates {
        &mut self.factors
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
            hooks: &mut self.factors.outbound_http,
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
