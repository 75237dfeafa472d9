//! The loaded application: compiled components, their granted capabilities,
//! the router, and request dispatch to a fresh instance.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use hyper::body::Body;
use sqlx::PgPool;
use wasmtime::component::Linker;
use wasmtime::{Engine, Store};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView as _;

use crate::admission::Slots;
use crate::allowed_hosts::AllowedHosts;
use crate::engine::{self, ComponentCache, EngineSettings};
use crate::factors::outbound_http::InProcess;
use crate::factors::variables::AppVariables;
use crate::factors::{AppStates, ConfigureContext, PrepareContext};
use crate::instance::{
    Cancelled, InstanceState, MemoryLimitExceeded, TimeLimitExceeded, WasiGrants,
};
use crate::manifest::{ComponentLimits, Manifest, RouteDecl};
use crate::metrics::Metrics;
use crate::router::Router;

/// Header with which a component calling another in-process (service
/// chaining) shortens the callee's time budget, in milliseconds.
pub use synatra_names::headers::DEADLINE_MS as DEADLINE_HEADER;

/// One component: its pre-linked instance, what every factor may share of
/// its grants, and its limits. Factor-specific grants live in the factors.
pub struct ComponentRuntime {
    pub id: String,
    pub pre: ProxyPre<InstanceState>,
    pub allowed_hosts: Arc<AllowedHosts>,
    pub wasi: WasiGrants,
    pub limits: ComponentLimits,
    /// Concurrency slots for requests from the network.
    pub slots: Slots,
}

/// The running application shared by all requests.
pub struct App {
    pub engine: Engine,
    pub router: Router,
    pub components: HashMap<String, Arc<ComponentRuntime>>,
    /// Every capability's application state.
    pub factors: AppStates,
    /// The application database (key-value store, host tables).
    pub db: PgPool,
    pub metrics: Arc<Metrics>,
    /// Resolved application variables (the host reads `service_secret`).
    pub variables: AppVariables,
    /// Services of the host reached like components, by name.
    pub services: HashMap<String, Arc<dyn HostService>>,
}

/// A service of the host that the app's components reach like a component,
/// at `http://<name>.spin.internal` (never from outside). Synatra's runner
/// of users' WIT tools is one; the generic host knows none by name.
pub trait HostService: Send + Sync {
    /// Answers one request from a component of `app`.
    fn serve(
        self: Arc<Self>,
        app: Arc<App>,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = http::Response<wasmtime_wasi_http::WasiBody>> + Send>,
    >;
}

/// Inputs to [`App::load`] besides the manifest.
pub struct LoadOptions {
    pub cache_dir: PathBuf,
    pub runtime_variables: Vec<crate::factors::variables::VariablesProvider>,
    pub host_variables: std::collections::BTreeMap<String, String>,
    pub db: PgPool,
    pub pg_max_connections: u32,
    /// Use wasmtime's pooling allocator (faster instantiation).
    pub pooling: bool,
    /// Host services by name (see [`HostService`]).
    pub services: Vec<(String, Arc<dyn HostService>)>,
}

/// Why a request to a component produced no response of its own.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("component `{0}` exceeded its time limit")]
    Timeout(String),
    #[error("component `{0}` exceeded its memory limit")]
    Memory(String),
    #[error("component `{component}` failed: {message}")]
    Trap { component: String, message: String },
    #[error("no component named `{0}`")]
    NoSuchComponent(String),
    #[error("the request to component `{0}` was cancelled")]
    Cancelled(String),
}

impl DispatchError {
    /// Short label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Memory(_) => "memory",
            Self::Trap { .. } => "trap",
            Self::NoSuchComponent(_) => "not_found",
            Self::Cancelled(_) => "cancelled",
        }
    }
}

impl App {
    /// Compiles and links every component of `manifest`.
    pub fn load(manifest: &Manifest, options: LoadOptions) -> Result<Arc<Self>> {
        if !manifest.trigger.cron.is_empty() {
            bail!(
                "[[trigger.cron]] is not supported by this host yet; remove it from the manifest"
            );
        }
        let variables = AppVariables::resolve(
            manifest,
            &options.runtime_variables,
            &options.host_variables,
        )?;
        let max_memory = manifest
            .component
            .values()
            .map(|c| c.limits().map(|l| (l.memory_limit_mb as usize) << 20))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .max()
            .unwrap_or(128 << 20);
        let engine = engine::build_engine(EngineSettings {
            max_memory_bytes: max_memory,
            max_instances: 1000,
            pooling: options.pooling,
        })?;
        engine::start_epoch_ticker(&engine);
        let cache = ComponentCache::new(&options.cache_dir)?;
        let mut linker = Linker::<InstanceState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        crate::factors::link(&mut linker)?;
        let metrics = Arc::new(Metrics::default());
        let factors = AppStates::configure(&ConfigureContext {
            manifest,
            metrics: &metrics,
            variables: &variables,
            db: &options.db,
            pg_max_connections: options.pg_max_connections,
        })?;

        let mut components = HashMap::new();
        for (id, decl) in &manifest.component {
            let ctx = || format!("component `{id}`");
            let component = cache
                .load(&engine, &manifest.source_path(decl))
                .with_context(ctx)?;
            let pre = linker
                .instantiate_pre(&component)
                .and_then(ProxyPre::new)
                .map_err(anyhow::Error::from)
                .with_context(ctx)?;
            let hosts = decl
                .allowed_outbound_hosts
                .iter()
                .map(|h| variables.expand(h))
                .collect::<Result<Vec<_>>>()
                .with_context(ctx)?;
            let dirs = decl
                .files
                .iter()
                .map(|f| file_mount(manifest, f))
                .collect::<Result<Vec<_>>>()
                .with_context(ctx)?;
            let limits = decl.limits()?;
            let runtime = ComponentRuntime {
                id: id.clone(),
                pre,
                allowed_hosts: Arc::new(AllowedHosts::parse(&hosts).with_context(ctx)?),
                wasi: WasiGrants {
                    environment: decl
                        .environment
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    dirs,
                },
                limits,
                slots: Slots::new(&limits),
            };
            components.insert(id.clone(), Arc::new(runtime));
        }
        let router = Router::new(&manifest.trigger.http)?;
        for t in &manifest.trigger.http {
            if let RouteDecl::Path(r) = &t.route {
                tracing::info!(route = %r, component = %t.component, "route");
            }
        }
        Ok(Arc::new(Self {
            engine,
            router,
            components,
            factors,
            db: options.db,
            metrics,
            variables,
            services: options.services.into_iter().collect(),
        }))
    }

    /// Runs `request` on a fresh instance of `component`. `depth` counts
    /// nested in-process calls (service chaining) to stop loops.
    pub async fn dispatch<B>(
        self: &Arc<Self>,
        component: &str,
        request: http::Request<B>,
        depth: u32,
    ) -> Result<http::Response<HyperOutgoingBody>, DispatchError>
    where
        B: Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        self.dispatch_cancellable(component, request, depth, None)
            .await
    }

    /// Like [`App::dispatch`]; when `cancel` turns true the instance is
    /// dropped at once, whether it is computing or awaiting a host call.
    pub async fn dispatch_cancellable<B>(
        self: &Arc<Self>,
        component: &str,
        request: http::Request<B>,
        depth: u32,
        cancel: Option<tokio::sync::watch::Receiver<bool>>,
    ) -> Result<http::Response<HyperOutgoingBody>, DispatchError>
    where
        B: Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let runtime = self
            .components
            .get(component)
            .cloned()
            .ok_or_else(|| DispatchError::NoSuchComponent(component.to_string()))?;
        // An internal caller may tighten (never extend) the callee's budget.
        let requested = request
            .headers()
            .get(DEADLINE_HEADER)
            .filter(|_| depth > 0)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let timeout_ms = requested.map_or(runtime.limits.timeout_ms, |r| {
            r.min(runtime.limits.timeout_ms)
        });
        let timeout = std::time::Duration::from_millis(timeout_ms);
        let in_process: Arc<dyn InProcess> = self.clone();
        let factors = self.factors.prepare(&PrepareContext {
            component: &runtime.id,
            allowed_hosts: &runtime.allowed_hosts,
            limits: &runtime.limits,
            depth,
            in_process: &in_process,
        });
        let memory_limit = (runtime.limits.memory_limit_mb as usize) << 20;
        let state = InstanceState::new(&runtime.wasi, factors, memory_limit, timeout);
        let deadline = state.deadline;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        crate::instance::yield_until(&mut store, deadline);

        let (sender, receiver) = tokio::sync::oneshot::channel();
        let guard = self.metrics.instance();
        let app = self.clone();
        let task = tokio::spawn(async move {
            let _guard = guard;
            let started = std::time::Instant::now();
            let work = async {
                let proxy = runtime.pre.instantiate_async(&mut store).await?;
                app.metrics
                    .instantiated(&runtime.id, started.elapsed().as_secs_f64());
                let req = store
                    .data_mut()
                    .http()
                    .new_incoming_request(Scheme::Http, request)?;
                let out = store.data_mut().http().new_response_outparam(sender)?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await
            };
            // Host calls (database, network) are bounded by the same budget.
            let bounded = async {
                match tokio::time::timeout(timeout + std::time::Duration::from_secs(1), work).await
                {
                    Ok(result) => result,
                    Err(_) => Err(TimeLimitExceeded.into()),
                }
            };
            let cancelled = async {
                if let Some(mut c) = cancel {
                    if c.wait_for(|v| *v).await.is_ok() {
                        return;
                    }
                }
                std::future::pending::<()>().await
            };
            let result = tokio::select! {
                result = bounded => result,
                () = cancelled => Err(Cancelled.into()),
            };
            app.metrics
                .busy(&runtime.id, started.elapsed().as_secs_f64());
            result
        });

        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(DispatchError::Trap {
                component: component.to_string(),
                message: format!("component returned error code {code:?}"),
            }),
            Err(_) => {
                let error = match task.await {
                    Ok(Ok(())) => {
                        return Err(DispatchError::Trap {
                            component: component.to_string(),
                            message: "component did not send a response".into(),
                        })
                    }
                    Ok(Err(e)) => e,
                    Err(join) => wasmtime::Error::msg(join.to_string()),
                };
                Err(classify(component, error))
            }
        }
    }
}

fn classify(component: &str, error: wasmtime::Error) -> DispatchError {
    if error.downcast_ref::<TimeLimitExceeded>().is_some() {
        return DispatchError::Timeout(component.to_string());
    }
    if error.downcast_ref::<MemoryLimitExceeded>().is_some() {
        return DispatchError::Memory(component.to_string());
    }
    if error.downcast_ref::<Cancelled>().is_some() {
        return DispatchError::Cancelled(component.to_string());
    }
    DispatchError::Trap {
        component: component.to_string(),
        message: format!("{error:#}"),
    }
}

/// A `files` entry: `{ source = "dir", destination = "/path" }` mounts a
/// directory read-only; a plain string mounts that directory at the same path.
fn file_mount(manifest: &Manifest, entry: &toml::Value) -> Result<(PathBuf, String)> {
    let (source, dest) = match entry {
        toml::Value::String(s) => (s.clone(), format!("/{}", s.trim_start_matches('/'))),
        toml::Value::Table(t) => {
            let get = |k: &str| {
                t.get(k)
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
                    .with_context(|| format!("files entry needs a string `{k}`"))
            };
            (get("source")?, get("destination")?)
        }
        _ => bail!("files entries must be strings or tables"),
    };
    let path = manifest.base_dir.join(&source);
    if !path.is_dir() {
        bail!("files source `{source}` must be a directory (glob patterns are not supported)");
    }
    Ok((path, dest))
}
