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
        "pg_types" => json(200, pg_types(query(&req, "only").as_deref())?),
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
        "pg_no_rows" => {
            // Under Spin 4.0.2 this call never returns (spinframework/spin#3671).
            let conn = pg4::Connection::open(&variables::get("database_url")?)?;
            match conn.query("SELECT 1 AS v WHERE false", &[]) {
                Ok(set) => json(200, serde_json::json!({ "rows": set.rows.len() })),
                Err(e) => json(500, serde_json::json!({ "error": format!("{e:?}") })),
            }
        }
        "pg_no_rows_wrapped" => json(200, wrapped_queries()?),
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
        "SELECT note, n, at AT TIME ZONE 'UTC' AS at FROM conformance WHERE note = $1 ORDER BY id DESC LIMIT 1",
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

/// One statement per case, with the outcome as `ok: [values…]` or
/// `err: <variant>`; the conformance suite expects the same list from every
/// host, so each line is a rule of Spin 4.0.2's Postgres interface.
fn pg_types(only: Option<&str>) -> anyhow::Result<serde_json::Value> {
    use pg4::ParameterValue as P;
    let url = variables::get("database_url")?;
    let conn = pg4::Connection::open(&url)?;
    let cases: Vec<(&str, &str, Vec<P>)> = vec![
        ("text", "SELECT $1::text AS v", vec![P::Str("héllo".into())]),
        (
            "uuid",
            "SELECT $1::uuid AS v",
            vec![P::Uuid("6f1c0d52-5a8e-4f57-9a3e-3f2f0b1c2d3e".into())],
        ),
        (
            "uuid from a string",
            "SELECT $1::uuid AS v",
            vec![P::Str("6f1c0d52-5a8e-4f57-9a3e-3f2f0b1c2d3e".into())],
        ),
        (
            "uuid compared as text",
            "SELECT ($1::uuid)::text = $2 AS v",
            vec![
                P::Uuid("6f1c0d52-5a8e-4f57-9a3e-3f2f0b1c2d3e".into()),
                P::Str("6f1c0d52-5a8e-4f57-9a3e-3f2f0b1c2d3e".into()),
            ],
        ),
        ("bigint", "SELECT $1::bigint AS v", vec![P::Int64(-7)]),
        (
            "int from a bigint",
            "SELECT $1::int AS v",
            vec![P::Int64(7)],
        ),
        ("int", "SELECT $1::int + 1 AS v", vec![P::Int32(41)]),
        ("smallint", "SELECT $1::int2 AS v", vec![P::Int16(3)]),
        (
            "count is bigint",
            "SELECT count(*) AS v FROM (VALUES (1), (2)) t(x)",
            vec![],
        ),
        ("bool", "SELECT $1::bool AS v", vec![P::Boolean(true)]),
        (
            "float8",
            "SELECT $1::float8 * 2 AS v",
            vec![P::Floating64(1.25)],
        ),
        (
            "numeric",
            "SELECT $1::numeric AS v",
            vec![P::Decimal("12.50".into())],
        ),
        (
            "bytea",
            "SELECT $1::bytea AS v",
            vec![P::Binary(vec![0, 1, 255])],
        ),
        (
            "jsonb",
            "SELECT $1::jsonb AS v",
            vec![P::Jsonb(br#"{"a":[1,null]}"#.to_vec())],
        ),
        ("json column", "SELECT '{\"a\":1}'::json AS v", vec![]),
        (
            "jsonb built",
            "SELECT jsonb_build_object('k', 1) AS v",
            vec![],
        ),
        (
            "timestamptz as UTC timestamp",
            "SELECT timestamptz '2024-02-29 23:59:58.5+00' AT TIME ZONE 'UTC' AS v",
            vec![],
        ),
        (
            "timestamp parameter",
            "SELECT $1::timestamp AS v",
            vec![P::Datetime((2024, 1, 2, 3, 4, 5, 6000))],
        ),
        (
            "datetime to timestamptz",
            "SELECT ($1::timestamptz) AT TIME ZONE 'UTC' AS v",
            vec![P::Datetime((2024, 1, 2, 3, 4, 5, 0))],
        ),
        (
            "epoch to timestamptz",
            "SELECT ($1::timestamptz) AT TIME ZONE 'UTC' AS v",
            vec![P::Timestamp(86_400)],
        ),
        (
            "epoch seconds",
            "SELECT extract(epoch FROM timestamptz '1970-01-02 00:00:00+00')::bigint AS v",
            vec![],
        ),
        ("date", "SELECT $1::date AS v", vec![P::Date((2024, 2, 29))]),
        (
            "interval",
            "SELECT make_interval(days => 2, secs => 1.5) AS v",
            vec![],
        ),
        (
            "text array",
            "SELECT $1::text[] AS v",
            vec![P::ArrayStr(vec![Some("a".into()), None])],
        ),
        (
            "bigint array",
            "SELECT $1::int8[] AS v",
            vec![P::ArrayInt64(vec![Some(1), None])],
        ),
        (
            "any with text array",
            "SELECT 'b' = ANY($1::text[]) AS v",
            vec![P::ArrayStr(vec![Some("b".into())])],
        ),
        (
            "null parameter",
            "SELECT $1::uuid IS NULL AS v",
            vec![P::DbNull],
        ),
        ("null column", "SELECT NULL::text AS v", vec![]),
        (
            "name column",
            "SELECT current_user = current_user AS v, 'x'::name AS n",
            vec![],
        ),
        ("char column", "SELECT 'x'::\"char\" AS v", vec![]),
        ("unknown table", "SELECT * FROM no_such_table", vec![]),
        ("syntax error", "SELEKT 1", vec![]),
        ("two statements", "SELECT 1; SELECT 2", vec![]),
        ("too few parameters", "SELECT $1::text AS v", vec![]),
        // Last: after a row fails to decode, Spin 4.0.2 leaves the connection
        // unusable (the next statement on it never answers).
        ("timestamptz column", "SELECT now() AS v", vec![]),
        (
            "timestamptz null column",
            "SELECT NULL::timestamptz AS v",
            vec![],
        ),
    ];
    let mut report = serde_json::Map::new();
    if only.is_none() {
        // A transaction spans calls on one connection; a failed statement aborts it.
        conn.execute(
            "CREATE TABLE IF NOT EXISTS conformance_tx (id int PRIMARY KEY)",
            &[],
        )?;
        conn.execute("BEGIN", &[])?;
        conn.execute("INSERT INTO conformance_tx VALUES (1)", &[])?;
        let duplicate = conn.execute("INSERT INTO conformance_tx VALUES (1)", &[]);
        let aborted = conn.query("SELECT 1 AS v", &[]);
        conn.execute("ROLLBACK", &[])?;
        let after = conn.query("SELECT count(*) AS v FROM conformance_tx", &[])?;
        report.insert(
            "transaction".into(),
            serde_json::json!({
                "duplicate": duplicate.map_err(|e| error_kind(&e)).map(|n| n.to_string()).unwrap_or_else(|e| e),
                "after failure": aborted.map(|_| "ok".to_string()).unwrap_or_else(|e| error_kind(&e)),
                "rows after rollback": format!("{:?}", after.rows),
            }),
        );
    }
    for (name, sql, params) in cases {
        if only.is_some_and(|o| o != name.replace(' ', "_")) {
            continue;
        }
        let outcome = match conn.query(sql, &params) {
            Ok(set) => serde_json::json!({
                "columns": set.columns.iter().map(|c| format!("{}: {:?}", c.name, c.data_type)).collect::<Vec<_>>(),
                "rows": set.rows.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>(),
            }),
            Err(e) => serde_json::json!({ "error": error_kind(&e) }),
        };
        report.insert(name.to_string(), outcome);
    }
    Ok(serde_json::Value::Object(report))
}

/// The same statements through `synatra-db`, which always gets a row back.
fn wrapped_queries() -> anyhow::Result<serde_json::Value> {
    let db = synatra_db::Db::open().map_err(|e| anyhow::anyhow!("{e}"))?;
    let run = |sql: &str| -> anyhow::Result<Vec<i64>> {
        db.query(sql, &[])
            .and_then(|rows| rows.iter().map(|r| r.i64("v")).collect())
            .map_err(|e| anyhow::anyhow!("{e}"))
    };
    db.execute("CREATE TABLE IF NOT EXISTS conformance_ids (v bigint)", &[])
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(serde_json::json!({
        "empty": run("SELECT 1::bigint AS v WHERE false")?,
        "ordered": run("SELECT x::bigint AS v FROM generate_series(1, 5) AS x ORDER BY x DESC")?,
        "returning": run("INSERT INTO conformance_ids VALUES (7), (8) RETURNING v")?,
        "update nothing": run("UPDATE conformance_ids SET v = 0 WHERE v < 0 RETURNING v")?,
    }))
}

/// The error's variant, and the SQLSTATE where the server sent one.
fn error_kind(e: &pg4::PgError) -> String {
    match e {
        pg4::PgError::QueryFailed(pg4::QueryError::DbError(db)) => {
            format!("QueryFailed(DbError {})", db.code)
        }
        pg4::PgError::QueryFailed(pg4::QueryError::Text(_)) => "QueryFailed(Text)".into(),
        pg4::PgError::ConnectionFailed(_) => "ConnectionFailed".into(),
        pg4::PgError::BadParameter(_) => "BadParameter".into(),
        pg4::PgError::ValueConversionFailed(_) => "ValueConversionFailed".into(),
        pg4::PgError::Other(_) => "Other".into(),
    }
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
