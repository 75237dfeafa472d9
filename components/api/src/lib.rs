//! Synatra's REST API component (`/api/v1/...`).

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;
use spin_sdk::{pg4, variables};

fn json(status: u16, value: serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(value.to_string())
        .build()
}

#[http_component]
fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let path = req.path().trim_end_matches('/');
    Ok(match path {
        "/api/v1/health" => health(),
        _ => json(
            404,
            serde_json::json!({ "error": { "code": "not_found", "message": "no such endpoint" } }),
        ),
    })
}

fn health() -> Response {
    let ok = variables::get("database_url")
        .map_err(anyhow::Error::from)
        .and_then(|url| Ok(pg4::Connection::open(&url)?))
        .and_then(|conn| Ok(conn.query("SELECT 1", &[])?))
        .is_ok();
    if ok {
        json(200, serde_json::json!({ "status": "ok", "database": "ok" }))
    } else {
        json(
            503,
            serde_json::json!({ "status": "degraded", "database": "unavailable" }),
        )
    }
}
