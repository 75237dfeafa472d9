//! The HTTP trigger: accepts connections, routes requests with Spin's rules,
//! adds Spin's request headers and turns component failures into JSON errors.
//! Also the admin listener (`/metrics`, `/health`, `/healthz`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::Instrument;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::admission;
use crate::app::{App, DispatchError};
use crate::router::RouteMatch;

/// Headers the host sets; clients cannot supply them.
const SPIN_HEADER_PREFIX: &str = "spin-";

/// Builds a JSON error response in the API's error format.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("static response parts are valid")
}

/// The response for a component that failed without answering.
pub fn dispatch_error_response(error: &DispatchError) -> Response<Full<Bytes>> {
    match error {
        DispatchError::Timeout(_) => json_error(
            StatusCode::GATEWAY_TIMEOUT,
            "component_timeout",
            "the component did not finish within its time limit",
        ),
        DispatchError::Memory(_) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "component_memory_limit",
            "the component exceeded its memory limit",
        ),
        DispatchError::Trap { .. } => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "component_failed",
            "the component failed while handling the request",
        ),
        DispatchError::Cancelled(_) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "component_cancelled",
            "the request was cancelled",
        ),
        DispatchError::NoSuchComponent(_) => json_error(
            StatusCode::NOT_FOUND,
            "route_not_found",
            "no component serves this route",
        ),
    }
}

fn set(headers: &mut http::HeaderMap, name: &str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).expect("valid header name"),
            v,
        );
    }
}

fn strip_spin_headers(headers: &mut http::HeaderMap) {
    let spin: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with(SPIN_HEADER_PREFIX))
        .cloned()
        .collect();
    for k in spin {
        headers.remove(k);
    }
}

/// Adds Spin's routing headers (`spin-full-url`, `spin-path-info`, …) to a
/// request routed by `route`, replacing any the client sent.
pub fn with_spin_headers<B>(
    mut request: Request<B>,
    route: &RouteMatch,
    client_addr: &str,
    host: &str,
) -> Request<B> {
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or(host)
        .to_string();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let headers = request.headers_mut();
    strip_spin_headers(headers);
    set(
        headers,
        "spin-full-url",
        &format!("http://{host}{path_and_query}"),
    );
    set(headers, "spin-path-info", &route.path_info);
    set(headers, "spin-matched-route", &route.matched_route);
    set(headers, "spin-raw-component-route", &route.matched_route);
    set(headers, "spin-component-route", &route.component_route);
    set(headers, "spin-base-path", "/");
    set(headers, "spin-client-addr", client_addr);
    for (i, (name, value)) in route.params.iter().enumerate() {
        set(
            headers,
            &format!("spin-path-match-{}", name.to_ascii_lowercase()),
            value,
        );
        set(headers, &format!("spin-path-match-n{i}"), value);
    }
    with_host(request, &host)
}

/// Headers for a request to `http://<component>.spin.internal`: the whole
/// path is the path info.
pub fn with_internal_headers<B>(request: Request<B>, component: &str) -> Request<B> {
    let route = RouteMatch {
        component: component.to_string(),
        matched_route: "/...".into(),
        component_route: String::new(),
        path_info: request.uri().path().to_string(),
        params: Vec::new(),
    };
    let host = format!("{component}.spin.internal");
    with_spin_headers(request, &route, "127.0.0.1:0", &host)
}

/// Gives the request an absolute URI, as wasi:http expects.
fn with_host<B>(mut request: Request<B>, host: &str) -> Request<B> {
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    if let Ok(uri) = format!("http://{host}{path}").parse() {
        *request.uri_mut() = uri;
    }
    request
}

fn full(response: Response<Full<Bytes>>) -> Response<HyperOutgoingBody> {
    response.map(|b| b.map_err(Into::into).boxed_unsync())
}

/// Serves one external request.
async fn handle(
    app: Arc<App>,
    request: Request<Incoming>,
    client: SocketAddr,
) -> Result<Response<HyperOutgoingBody>, Infallible> {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!("request", id = %request_id, method = %request.method(), path = %request.uri().path());
    async move {
        let path = request.uri().path().to_string();
        let (component, mut response) = if path == "/.well-known/spin/health" {
            (
                "-".to_string(),
                full(Response::new(Full::new(Bytes::from_static(b"OK")))),
            )
        } else {
            match app.router.route(&path) {
                None => (
                    "-".to_string(),
                    full(json_error(
                        StatusCode::NOT_FOUND,
                        "route_not_found",
                        "no route matches this path",
                    )),
                ),
                Some(route) => {
                    let response =
                        admit_and_dispatch(&app, request, &route, client, &request_id).await;
                    (route.component, response)
                }
            }
        };
        set(response.headers_mut(), "x-request-id", &request_id);
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        app.metrics
            .request(&component, status, elapsed.as_secs_f64());
        tracing::info!(component = %component, status, ms = elapsed.as_secs_f64() * 1e3, "served");
        Ok(response)
    }
    .instrument(span)
    .await
}

/// Reads the body and takes a slot of the component (see [`admission`]),
/// then dispatches; a refusal answers without starting an instance.
async fn admit_and_dispatch(
    app: &Arc<App>,
    request: Request<Incoming>,
    route: &RouteMatch,
    client: SocketAddr,
    request_id: &str,
) -> Response<HyperOutgoingBody> {
    let Some(runtime) = app.components.get(&route.component).cloned() else {
        let e = DispatchError::NoSuchComponent(route.component.clone());
        return full(dispatch_error_response(&e));
    };
    let refused = |r: admission::Refusal| {
        app.metrics.error(&route.component, r.code);
        let mut response = json_error(r.status, r.code, &r.message);
        // A refused body is not read to its end: the connection cannot be reused.
        set(response.headers_mut(), "connection", "close");
        full(response)
    };
    let request = match admission::read_body(request, &runtime.limits).await {
        Ok(r) => r,
        Err(r) => return refused(r),
    };
    let permit = match runtime.slots.take(&route.component).await {
        Ok(p) => p,
        Err(r) => return refused(r),
    };
    let mut request = with_spin_headers(request, route, &client.to_string(), "localhost");
    set(request.headers_mut(), "x-request-id", request_id);
    let response = match app.dispatch(&route.component, request, 0).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, kind = e.kind(), "component failed");
            app.metrics.error(&route.component, e.kind());
            return full(dispatch_error_response(&e));
        }
    };
    // The slot is held until the response body has been sent.
    response.map(|body| {
        body.map_frame(move |frame| {
            let _ = &permit;
            frame
        })
        .boxed_unsync()
    })
}

/// Accepts connections until `shutdown` flips, then lets in-flight
/// requests finish. At most `max_connections` are open at once; more wait
/// in the listen backlog.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    max_connections: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let open = Arc::new(tokio::sync::Semaphore::new(max_connections));
    loop {
        let (stream, client, permit) = tokio::select! {
            accepted = async {
                let permit = open.clone().acquire_owned().await;
                (listener.accept().await, permit)
            } => match accepted {
                (Ok((stream, client)), Ok(permit)) => (stream, client, permit),
                (Err(e), _) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
                (_, Err(_)) => break,
            },
            _ = shutdown.changed() => break,
        };
        // A response's head and its streamed body go out as separate writes;
        // with Nagle's algorithm the second waits for the client's delayed
        // ACK, which showed up as a multi-millisecond p99.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let app = app.clone();
        let service = service_fn(move |req| handle(app.clone(), req, client));
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(std::time::Duration::from_secs(10))
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::info!(error = %e, "connection closed with error");
            }
            drop(permit);
        });
    }
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => tracing::warn!("shutdown timed out; dropping connections"),
    }
}

/// Serves `/metrics` and `/health` (also `/healthz`) on the admin listener.
pub async fn serve_admin(
    app: Arc<App>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => continue },
            _ = shutdown.changed() => break,
        };
        let app = app.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let app = app.clone();
            async move {
                let response = match req.uri().path() {
                    // OpenMetrics text: a counter's family is `x`, its sample `x_total`.
                    "/metrics" => Response::builder()
                        .header(
                            CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )
                        .body(Full::new(Bytes::from(app.metrics.encode())))
                        .expect("valid response"),
                    "/health" | "/healthz" => Response::new(Full::new(Bytes::from_static(b"ok"))),
                    _ => json_error(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        "the admin port serves /metrics and /health",
                    ),
                };
                Ok::<_, Infallible>(response)
            }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
