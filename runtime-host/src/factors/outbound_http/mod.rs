//! Outgoing `wasi:http` requests: `allowed_outbound_hosts` is enforced here,
//! and requests to `http://self` (or `self.alt`) and
//! `http://<component>.spin.internal` are served in-process, without a socket.
//! Requests to the network go over the application's kept-alive connections
//! ([`pool`]).

mod pool;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use wasmtime::component::Linker;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::{ConfigureContext, Factor, HasFactors, PrepareContext};
use crate::allowed_hosts::AllowedHosts;
use pool::{ConnectionPool, Timeouts};

/// Nested in-process calls allowed before a request is treated as a loop.
const MAX_CALL_DEPTH: u32 = 8;

/// Where an in-process request goes.
pub enum Local {
    /// Routed by path through the application's router (`http://self`).
    SelfApp,
    /// A component or host service by id, private routes included.
    Component(String),
}

/// Serves requests that never leave the process; the application
/// implements it, so this factor needs to know nothing of routing.
pub trait InProcess: Send + Sync {
    /// Answers `request` sent to `to` by an instance at call depth `depth - 1`.
    fn send(
        self: Arc<Self>,
        to: Local,
        request: http::Request<WasiBody>,
        depth: u32,
    ) -> Pin<Box<dyn Future<Output = http::Response<WasiBody>> + Send>>;
}

/// The outbound HTTP factor. wasi:http itself is linked with WASI (it
/// shares the instance's resource table); this factor owns its hooks.
pub struct OutboundHttpFactor;

/// The `WasiHttpHooks` of one instance: what it may reach and how long it
/// may wait.
pub struct OutboundHooks {
    component: String,
    allowed_hosts: Arc<AllowedHosts>,
    timeout: Duration,
    depth: u32,
    in_process: Arc<dyn InProcess>,
    pool: Arc<ConnectionPool>,
}

impl Factor for OutboundHttpFactor {
    type AppState = Arc<ConnectionPool>;
    type InstanceState = OutboundHooks;

    fn configure(ctx: &ConfigureContext) -> Result<Arc<ConnectionPool>> {
        Ok(Arc::new(ConnectionPool::new(ctx.metrics.clone())))
    }

    fn prepare(pool: &Arc<ConnectionPool>, ctx: &PrepareContext) -> OutboundHooks {
        OutboundHooks {
            pool: pool.clone(),
            component: ctx.component.to_string(),
            allowed_hosts: ctx.allowed_hosts.clone(),
            timeout: Duration::from_millis(ctx.limits.outbound_timeout_ms),
            depth: ctx.depth,
            in_process: ctx.in_process.clone(),
        }
    }

    fn link<T: HasFactors>(
        linker: &mut Linker<T>,
        _: fn(&mut T) -> &mut OutboundHooks,
    ) -> Result<()> {
        Ok(wasmtime_wasi_http::p2::add_only_http_to_linker_async(
            linker,
        )?)
    }
}

/// Where an outgoing request goes.
enum Destination {
    Local(Local),
    /// The network.
    External,
}

fn destination(host: &str) -> Destination {
    match host {
        "" | "self" | "self.alt" => Destination::Local(Local::SelfApp),
        h => match h.strip_suffix(".spin.internal") {
            Some(c) => Destination::Local(Local::Component(c.to_string())),
            None => Destination::External,
        },
    }
}

/// Completes when the response body has been sent.
type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
/// What `send_request` resolves to.
type SendResult = Result<(http::Response<WasiBody>, IoFuture), Error>;
type ResponseFuture = Box<dyn Future<Output = SendResult> + Send>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> ResponseFuture {
        let uri = request.uri().clone();
        let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
        let host = uri.host().unwrap_or("").to_ascii_lowercase();
        let destination = destination(&host);
        let check_host = match destination {
            Destination::Local(Local::SelfApp) => "self",
            _ => host.as_str(),
        };
        if !self
            .allowed_hosts
            .allows(&scheme, check_host, uri.port_u16())
        {
            // Scheme, host and port only: a path or query may carry secrets.
            let target = format!(
                "{scheme}://{host}{}",
                uri.port().map(|p| format!(":{p}")).unwrap_or_default()
            );
            tracing::warn!(
                component = %self.component,
                target = %target,
                "outbound request denied: add the host to allowed_outbound_hosts"
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let depth = self.depth + 1;
        // The guest's timeouts where it set them (spin-sdk does not), else
        // the component's.
        let options = options.unwrap_or_default();
        let timeouts = Timeouts {
            connect: options
                .connect_timeout
                .unwrap_or(self.timeout.min(Duration::from_secs(10))),
            first_byte: options.first_byte_timeout.unwrap_or(self.timeout),
            between_bytes: options.between_bytes_timeout.unwrap_or(self.timeout),
        };
        match destination {
            Destination::External => {
                let pool = self.pool.clone();
                Box::new(async move {
                    let response = pool.send(request, timeouts).await?;
                    Ok((response, Box::new(async { Ok(()) }) as IoFuture))
                })
            }
            Destination::Local(_) if depth > MAX_CALL_DEPTH => {
                Box::new(async { Err(Error::LoopDetected) })
            }
            Destination::Local(to) => {
                let in_process = self.in_process.clone();
                Box::new(async move {
                    let response = in_process.send(to, request, depth).await;
                    Ok((response, Box::new(async { Ok(()) }) as IoFuture))
                })
            }
        }
    }
}
