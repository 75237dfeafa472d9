//! `GET /openapi.json` (the OpenAPI 3.1 document, generated from the route
//! table) and `GET /docs` (the same as a readable page).

use crate::http::Reply;

/// `GET /openapi.json`.
pub fn openapi() -> Reply {
    Reply::ok(synatra_openapi::document())
}

/// `GET /docs`.
pub fn page() -> Reply {
    Reply::html(synatra_openapi::html(&synatra_openapi::document()))
}
