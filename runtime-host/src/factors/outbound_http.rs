//! Outgoing `wasi:http` requests: `allowed_outbound_hosts` is enforced here,
//! and requests to `http://self` (or `self.alt`) and
//! `http://<component>.spin.internal` are served in-process, without a socket.

use std::future::Future;
use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::app::{App, ComponentRuntime, DispatchError};

/// Nested in-process calls allowed before a request is treated as a loop.
const MAX_CALL_DEPTH: u32 = 8;

/// The `WasiHttpHooks` of one instance.
pub struct OutboundHttp {
    app: Arc<App>,
    component: Arc<ComponentRuntime>,
    depth: u32,
}

/// Where an outgoing request goes.
enum Destination {
    /// Route by path through the application's router.
    SelfApp,
    /// A component by id, private routes included.
    Component(String),
    /// The network.
    External,
}

impl OutboundHttp {
    /// Hooks for an instance of `component` at call depth `depth`.
    pub fn new(app: Arc<App>, component: Arc<ComponentRuntime>, depth: u32) -> Self {
        Self {
            app,
            component,
            depth,
        }
    }

    fn destination(&self, host: &str) -> Destination {
        match host {
            "" | "self" | "self.alt" => Destination::SelfApp,
            h => match h.strip_suffix(".spin.internal") {
                Some(c) => Destination::Component(c.to_string()),
                None => Destination::External,
            },
        }
    }
}

/// Completes when the response body has been sent.
type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
/// What `send_request` resolves to.
type SendResult = Result<(http::Response<WasiBody>, IoFuture), Error>;
type ResponseFuture = Box<dyn Future<Output = SendResult> + Send>;

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> ResponseFuture {
        let uri = request.uri().clone();
        let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
        let host = uri.host().unwrap_or("").to_ascii_lowercase();
        let destination = self.destination(&host);
        let check_host = match destination {
            Destination::SelfApp => "self",
            _ => host.as_str(),
        };
        if !self
            .component
            .allowed_hosts
            .allows(&scheme, check_host, uri.port_u16())
        {
            // Scheme, host and port only: a path or query may carry secrets.
            let target = format!(
                "{scheme}://{host}{}",
                uri.port().map(|p| format!(":{p}")).unwrap_or_default()
            );
            tracing::warn!(
                component = %self.component.id,
                target = %target,
                "outbound request denied: add the host to allowed_outbound_hosts"
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let app = self.app.clone();
        let depth = self.depth + 1;
        // The guest's timeouts if it set any (spin-sdk does not), else the component's.
        let limit = std::time::Duration::from_millis(self.component.limits.outbound_timeout_ms);
        let options = options.or(Some(RequestOptions {
            connect_timeout: Some(limit.min(std::time::Duration::from_secs(10))),
            first_byte_timeout: Some(limit),
            between_bytes_timeout: Some(limit),
        }));
        match destination {
            Destination::External => Box::new(async move {
                let (response, io) =
                    wasmtime_wasi_http::default_send_request(request, options).await?;
                Ok((
                    response.map(BodyExt::boxed_unsync),
                    Box::new(io) as Box<dyn Future<Output = _> + Send>,
                ))
            }),
            Destination::SelfApp | Destination::Component(_) if depth > MAX_CALL_DEPTH => {
                Box::new(async { Err(Error::LoopDetected) })
            }
            Destination::SelfApp => Box::new(async move {
                let path = request.uri().path().to_string();
                let Some(route) = app.router.route(&path) else {
                    return Ok(internal_response(not_found(&path)));
                };
                let request =
                    crate::server::with_spin_headers(request, &route, "127.0.0.1:0", "self");
                internal(app.dispatch(&route.component, request, depth).await)
            }),
            Destination::Component(id) if app.services.contains_key(&id) => Box::new(async move {
                let service = app.services[&id].clone();
                Ok(internal_response(service.serve(app, request).await))
            }),
            Destination::Component(id) => Box::new(async move {
                let request = crate::server::with_internal_headers(request, &id);
                internal(app.dispatch(&id, request, depth).await)
            }),
        }
    }
}

fn not_found(path: &str) -> http::Response<WasiBody> {
    crate::server::json_error(
        http::StatusCode::NOT_FOUND,
        "route_not_found",
        &format!("no route for {path}"),
    )
    .map(|b| b.map_err(|never| match never {}).boxed_unsync())
}

fn internal_response(response: http::Response<WasiBody>) -> (http::Response<WasiBody>, IoFuture) {
    (response, Box::new(async { Ok(()) }))
}

fn internal(result: Result<http::Response<WasiBody>, DispatchError>) -> SendResult {
    match result {
        Ok(response) => Ok(internal_response(response)),
        Err(e) => {
            let response = crate::server::dispatch_error_response(&e);
            Ok(internal_response(
                response.map(|b| b.map_err(|never| match never {}).boxed_unsync()),
            ))
        }
    }
}
