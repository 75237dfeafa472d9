//! Requests between the app's own parts, served without a socket: a
//! component calling `http://self/...` goes through the router, one calling
//! `http://<id>.spin.internal` reaches that component (or host service).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::WasiBody;

use crate::app::{App, DispatchError};
use crate::factors::outbound_http::{InProcess, Local};
use crate::server::{
    dispatch_error_response, json_error, with_internal_headers, with_spin_headers,
};

impl InProcess for App {
    fn send(
        self: Arc<Self>,
        to: Local,
        request: http::Request<WasiBody>,
        depth: u32,
    ) -> Pin<Box<dyn Future<Output = http::Response<WasiBody>> + Send>> {
        Box::pin(async move {
            match to {
                Local::SelfApp => {
                    let path = request.uri().path().to_string();
                    let Some(route) = self.router.route(&path) else {
                        let error = json_error(
                            http::StatusCode::NOT_FOUND,
                            "route_not_found",
                            &format!("no route for {path}"),
                        );
                        return error.map(|b| b.map_err(|never| match never {}).boxed_unsync());
                    };
                    let request = with_spin_headers(request, &route, "127.0.0.1:0", "self");
                    answer(self.dispatch(&route.component, request, depth).await)
                }
                Local::Component(id) => match self.services.get(&id).cloned() {
                    Some(service) => service.serve(self, request).await,
                    None => {
                        let request = with_internal_headers(request, &id);
                        answer(self.dispatch(&id, request, depth).await)
                    }
                },
            }
        })
    }
}

/// The callee's response, or the JSON error its failure maps to.
fn answer(result: Result<http::Response<WasiBody>, DispatchError>) -> http::Response<WasiBody> {
    result.unwrap_or_else(|e| {
        dispatch_error_response(&e).map(|b| b.map_err(|never| match never {}).boxed_unsync())
    })
}
