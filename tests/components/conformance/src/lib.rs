//! A component for host conformance tests. The last path segment selects
//! the behaviour, so one Wasm file can back many manifest entries.

use spin_sdk::http::{IntoResponse, Method, Request, Response};
use spin_sdk::http_component;
use spin_sdk::{key_value, pg4, variables};

fn json(status: u16, value: serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(value.to_string())
        .build()
}

fn query(req: &Request, key: &str) -> Option<String> {
    req.query().split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.replace("%2F", "/").replace("%3A", ":"))
    })
}

#[http_component]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let action = req
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    Ok(match action.as_str() {
        "trap" => panic!("deliberate trap"),
        "loop" =>
        {
            #[allow(clippy::empty_loop)]
            loop {}
        }
        "alloc" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                if hoard.len() == usize::MAX {
                    break json(200, serde_json::json!({ "len": hoard.len() }));
                }
            }
        }
        "fetch" => fetch(&req).await,
        "var" => {
            let name = query(&req, "name").unwrap_or_default();
            match variables::get(&name) {
                Ok(v) => json(200, serde_json::json!({ "value": v })),
                Err(e) => json(404, serde_json::json!({ "error": e.to_string() })),
            }
        }
        "pg" => pg_round_trip()?,
        "pg_socket" => {
            // The allowed host, but through a Unix socket: must be refused.
            let url = variables::get("database_url")?;
            let sep = if url.contains('?') { '&' } else { '?' };
            match pg4::Connection::open(&format!("{url}{sep}host=/var/run/postgresql")) {
                Ok(_) => json(200, serde_json::json!({ "connected": true })),
                Err(e) => json(403, serde_json::json!({ "error": format!("{e:?}") })),
            }
        }
        "kv" => kv_round_trip(&req)?,
        _ => echo(&req),
    })
}

fn echo(req: &Request) -> Response {
    let headers: serde_json::Map<String, serde_json::Value> = req
        .headers()
        .filter(|(k, _)| k.starts_with("spin-") || *k == "x-request-id")
        .map(|(k, v)| (k.to_string(), v.as_str().unwrap_or_default().into()))
        .collect();
    json(
        200,
        serde_json::json!({
            "component": variables::get("component_name").ok(),
            "method": req.method().to_string(),
            "path": req.path(),
            "headers": headers,
            "body_len": req.body().len(),
        }),
    )
}

async fn fetch(req: &Request) -> Response {
    let url = query(req, "url").unwrap_or_default();
    let outbound = Request::builder().method(Method::Get).uri(url).build();
    match spin_sdk::http::send::<_, Response>(outbound).await {
        Ok(resp) => json(
            200,
            serde_json::json!({
                "status": resp.status(),
                "body": String::from_utf8_lossy(resp.body()),
            }),
        ),
        Err(e) => json(502, serde_json::json!({ "error": e.to_string() })),
    }
}

fn pg_round_trip() -> anyhow::Result<Response> {
    let url = variables::get("database_url")?;
    let conn = pg4::Connection::open(&url)?;
    conn.execute(
        "CREATE TABLE IF NOT EXISTS conformance (id SERIAL PRIMARY KEY, note TEXT NOT NULL, n BIGINT, at TIMESTAMPTZ NOT NULL DEFAULT now())",
        &[],
    )?;
    conn.execute("BEGIN", &[])?;
    conn.execute(
        "INSERT INTO conformance (note, n) VALUES ($1, $2)",
        &[
            pg4::ParameterValue::Str("hello".into()),
            pg4::ParameterValue::DbNull,
        ],
    )?;
    conn.execute("COMMIT", &[])?;
    let rows = conn.query(
        "SELECT note, n, at FROM conformance WHERE note = $1 ORDER BY id DESC LIMIT 1",
        &[pg4::ParameterValue::Str("hello".into())],
    )?;
    let row = rows.rows.first().ok_or_else(|| anyhow::anyhow!("no row"))?;
    let note = match &row[0] {
        pg4::DbValue::Str(s) => s.clone(),
        other => anyhow::bail!("unexpected {other:?}"),
    };
    Ok(json(
        200,
        serde_json::json!({
            "note": note,
            "n_is_null": matches!(row[1], pg4::DbValue::DbNull),
            "at_is_datetime": matches!(row[2], pg4::DbValue::Datetime(_)),
            "columns": rows.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
        }),
    ))
}

fn kv_round_trip(req: &Request) -> anyhow::Result<Response> {
    let store_name = query(req, "store").unwrap_or_else(|| "default".into());
    let store = match key_value::Store::open(&store_name) {
        Ok(s) => s,
        Err(e) => return Ok(json(403, serde_json::json!({ "error": e.to_string() }))),
    };
    store.set("greeting", b"hi")?;
    let value = store.get("greeting")?.unwrap_or_default();
    Ok(json(
        200,
        serde_json::json!({
            "value": String::from_utf8_lossy(&value),
            "keys": store.get_keys()?,
        }),
    ))
}
