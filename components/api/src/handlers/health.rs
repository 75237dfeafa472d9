//! `GET /health`.

use serde_json::json;

use crate::db::Db;
use crate::http::Reply;

/// `{"status":"ok","database":"ok"}`, or 503 when the database is unreachable.
pub fn get() -> Reply {
    let db_ok = Db::open().and_then(|db| db.query("SELECT 1", &[])).is_ok();
    if db_ok {
        Reply::ok(json!({ "status": "ok", "database": "ok" }))
    } else {
        let mut reply = Reply::ok(json!({ "status": "degraded", "database": "unavailable" }));
        reply.status = 503;
        reply
    }
}
