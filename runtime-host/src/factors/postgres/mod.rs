//! `spin:postgres/postgres@4.0.0`: pooled Postgres connections for components.
//!
//! One pool per address ([`pool`]); a `connection` resource holds one pooled
//! connection for its lifetime, so `BEGIN … COMMIT` across calls is one
//! transaction. A connection dropped inside an open transaction is rolled
//! back before it returns to the pool. Addresses must be allowed by the
//! component's `allowed_outbound_hosts` (`postgres://host:port`). One naming
//! the host's own database server connects through that server's Unix
//! socket when the host has one ([`LocalSocket`]); an address cannot name a
//! socket itself.
//!
//! Types follow Spin 4.0.2 exactly (its tokio-postgres conversions), so an
//! application tested here runs under `spin up` too: a parameter must match
//! the type the server infers for it ([`accepts`]), and a row may not carry a
//! `timestamptz` column (Spin decodes timestamps as `timestamp` only; select
//! `col AT TIME ZONE 'UTC'`). `json`, `name` and `"char"` columns come back
//! as `unsupported` bytes, as under Spin. A `query` matching no rows, which
//! Spin 4.0.2 never answers, is refused.

// The WIT `error` type is large, and it is what the interface returns.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use sqlx::postgres::{
    PgArguments, PgConnectOptions, PgDatabaseError, PgRow, PgStatement, PgTypeInfo,
};
use sqlx::{Arguments, Column, Executor, Postgres, Row, Statement, TypeInfo};
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

use super::{ConfigureContext, Factor, HasFactors, PrepareContext};
use crate::allowed_hosts::AllowedHosts;
use crate::metrics::Metrics;
use bindings::spin::postgres::postgres::{
    add_to_linker, Column as WitColumn, DbDataType, DbError, DbValue, Error, Host, HostConnection,
    Interval, ParameterValue, QueryError, RowSet,
};

mod pool;

use pool::{ConnPool, Pooled};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "synatra:host/postgres-host",
        imports: { default: async | trappable },
        with: { "spin:postgres/postgres.connection": super::PgConnection },
    });
}

/// The Postgres factor.
pub struct PostgresFactor;

/// One instance's Postgres access: the shared pools, what the component may
/// reach, and the connections it holds.
pub struct PostgresInstance {
    pools: Arc<PgPools>,
    metrics: Arc<Metrics>,
    component: String,
    allowed_hosts: Arc<AllowedHosts>,
    table: ResourceTable,
}

impl Factor for PostgresFactor {
    type AppState = (Arc<PgPools>, Arc<Metrics>);
    type InstanceState = PostgresInstance;

    fn configure(ctx: &ConfigureContext) -> anyhow::Result<Self::AppState> {
        let own = ctx.db.connect_options();
        let socket = own.get_socket().map(|dir| LocalSocket {
            host: own.get_host().to_string(),
            port: own.get_port(),
            dir: dir.clone(),
        });
        let pools = Arc::new(PgPools::new(ctx.pg_max_connections, socket));
        Ok((pools, ctx.metrics.clone()))
    }

    fn prepare((pools, metrics): &Self::AppState, ctx: &PrepareContext) -> PostgresInstance {
        PostgresInstance {
            pools: pools.clone(),
            metrics: metrics.clone(),
            component: ctx.component.to_string(),
            allowed_hosts: ctx.allowed_hosts.clone(),
            table: ResourceTable::new(),
        }
    }

    fn link<T: HasFactors>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut PostgresInstance,
    ) -> anyhow::Result<()> {
        Ok(add_to_linker::<T, HasSelf<PostgresInstance>>(linker, get)?)
    }
}

/// Pools shared by all instances of the application, one per address.
pub struct PgPools {
    pools: Mutex<HashMap<String, Kept>>,
    max_connections: u32,
    socket: Option<LocalSocket>,
}

/// The host's own database server, reached through its Unix socket: a
/// component's address naming that server (its host and port, which the
/// component's allowed hosts are checked against) connects there. Only the
/// host's configuration chooses a socket; a component's cannot.
pub struct LocalSocket {
    pub host: String,
    pub port: u16,
    pub dir: std::path::PathBuf,
}

/// A pool with the host and port its address names.
#[derive(Clone)]
struct Kept {
    host: String,
    port: u16,
    pool: ConnPool,
}

impl PgPools {
    /// Creates an empty pool registry; pools are created on first use.
    pub fn new(max_connections: u32, socket: Option<LocalSocket>) -> Self {
        Self {
            pools: Mutex::new(HashMap::new()),
            max_connections,
            socket,
        }
    }

    /// The pool for `address` if `check` allows its host and port (else
    /// `check`'s reason). An address is parsed on its first use only
    /// (parsing reads the environment and the user database for
    /// defaults); a refused one is never kept.
    fn pool(
        &self,
        address: &str,
        check: impl Fn(&str, u16) -> Result<(), String>,
    ) -> Result<ConnPool, String> {
        let kept = self
            .pools
            .lock()
            .expect("pool registry poisoned")
            .get(address)
            .cloned();
        if let Some(k) = kept {
            check(&k.host, k.port)?;
            return Ok(k.pool);
        }
        let options =
            PgConnectOptions::from_str(address).map_err(|e| format!("invalid address: {e}"))?;
        if let Some(why) = refused_address(address, &options) {
            return Err(why);
        }
        let (host, port) = (options.get_host().to_string(), options.get_port());
        check(&host, port)?;
        let options = match &self.socket {
            Some(s) if s.host == host && s.port == port => options.socket(&s.dir),
            _ => options,
        };
        let mut pools = self.pools.lock().expect("pool registry poisoned");
        let kept = pools.entry(address.to_string()).or_insert_with(|| Kept {
            host,
            port,
            pool: ConnPool::new(options, self.max_connections),
        });
        Ok(kept.pool.clone())
    }
}

/// The host side of a `connection` resource.
pub struct PgConnection {
    conn: Option<Pooled>,
    maybe_in_transaction: bool,
}

impl Drop for PgConnection {
    fn drop(&mut self) {
        if !self.maybe_in_transaction {
            return;
        }
        if let Some(mut conn) = self.conn.take() {
            // Never hand a connection with an open transaction to the next user.
            // A failed ROLLBACK leaves it unsettled: it is closed, not reused.
            tokio::spawn(async move {
                let rolled_back = conn.conn().execute("ROLLBACK").await;
                if rolled_back.is_ok() {
                    conn.settled(&rolled_back);
                }
            });
        }
    }
}

impl PgConnection {
    fn conn(&mut self, statement: &str) -> &mut Pooled {
        let upper = statement.trim_start().to_ascii_uppercase();
        if upper.starts_with("BEGIN") || upper.starts_with("START") {
            self.maybe_in_transaction = true;
        } else if upper.starts_with("COMMIT")
            || upper.starts_with("END")
            || (upper.starts_with("ROLLBACK") && !upper.contains(" TO "))
        {
            // Ended, or (if the statement fails) aborted: a ROLLBACK on
            // drop would only warn that no transaction is in progress.
            self.maybe_in_transaction = false;
        }
        self.pooled()
    }

    fn pooled(&mut self) -> &mut Pooled {
        self.conn.as_mut().expect("connection present until drop")
    }

    /// Prepares `statement` and binds `params` to it, refusing parameters
    /// of another type than the server inferred (as Spin does).
    async fn prepare<'q>(
        &mut self,
        statement: &'q str,
        params: Vec<ParameterValue>,
    ) -> Result<(PgStatement<'q>, PgArguments), Error> {
        let kinds: Vec<ParamKind> = params.iter().map(ParamKind::of).collect();
        let args = bind_all(params)?;
        let conn = self.conn(statement);
        let prepared = conn.conn().prepare(statement).await;
        conn.settled(&prepared);
        let prepared = prepared.map_err(query_error)?;
        check_parameters(&prepared, &kinds)?;
        Ok((prepared, args))
    }
}

impl Host for PostgresInstance {}

impl HostConnection for PostgresInstance {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<PgConnection>, Error>> {
        let component = &self.component;
        let allowed_hosts = &self.allowed_hosts;
        let pool = match self.pools.pool(&address, |host, port| {
            if allowed_hosts.allows("postgres", host, Some(port)) {
                Ok(())
            } else {
                Err(format!(
                    "postgres://{host}:{port} is not in allowed_outbound_hosts of component `{component}`"
                ))
            }
        }) {
            Ok(pool) => pool,
            Err(why) => return Ok(Err(Error::ConnectionFailed(why))),
        };
        let conn = match pool.acquire().await {
            Ok(c) => c,
            Err(e) => return Ok(Err(Error::ConnectionFailed(e.to_string()))),
        };
        let resource = self.table.push(PgConnection {
            conn: Some(conn),
            maybe_in_transaction: false,
        })?;
        Ok(Ok(resource))
    }

    async fn query(
        &mut self,
        this: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<RowSet, Error>> {
        let started = std::time::Instant::now();
        let result = self.run_query(this, statement, params).await;
        self.metrics
            .statement(&self.component, started.elapsed().as_secs_f64());
        result
    }

    async fn execute(
        &mut self,
        this: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        let started = std::time::Instant::now();
        let result = self.run_execute(this, statement, params).await;
        self.metrics
            .statement(&self.component, started.elapsed().as_secs_f64());
        result
    }

    async fn drop(&mut self, this: Resource<PgConnection>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl PostgresInstance {
    async fn run_query(
        &mut self,
        this: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<RowSet, Error>> {
        let conn = self.table.get_mut(&this)?;
        let (prepared, args) = match conn.prepare(&statement, params).await {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let conn = conn.pooled();
        let columns: Vec<WitColumn> = prepared
            .columns()
            .iter()
            .map(|c| WitColumn {
                name: c.name().to_string(),
                data_type: data_type(c.type_info()),
            })
            .collect();
        let rows = prepared.query_with(args).fetch_all(conn.conn()).await;
        conn.settled(&rows);
        let rows = match rows {
            Ok(r) if r.is_empty() => return Ok(Err(no_rows_error())),
            Ok(r) => r,
            Err(e) => return Ok(Err(query_error(e))),
        };
        let rows = rows
            .iter()
            .map(|row| (0..columns.len()).map(|i| decode(row, i)).collect())
            .collect::<Result<Vec<_>, _>>();
        Ok(rows.map(|rows| RowSet { columns, rows }))
    }

    async fn run_execute(
        &mut self,
        this: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        let conn = self.table.get_mut(&this)?;
        let (prepared, args) = match conn.prepare(&statement, params).await {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let conn = conn.pooled();
        let result = prepared.query_with(args).execute(conn.conn()).await;
        conn.settled(&result);
        Ok(result.map(|r| r.rows_affected()).map_err(query_error))
    }
}

/// Spin 4.0.2's `query` never returns when a statement matches no rows
/// (spinframework/spin#3671): a component that relies on an empty result
/// would hang there, so it fails here at once instead.
fn no_rows_error() -> Error {
    Error::QueryFailed(QueryError::Text(
        "the query matched no rows: under Spin 4.0.2 such a query never returns \
         (spinframework/spin#3671); make the statement always yield a row \
         (synatra-db's Db::query does)"
            .into(),
    ))
}

fn query_error(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(db) => match db.try_downcast_ref::<PgDatabaseError>() {
            Some(pg) => {
                let mut extras = Vec::new();
                for (k, v) in [
                    ("constraint", pg.constraint()),
                    ("table", pg.table()),
                    ("column", pg.column()),
                ] {
                    if let Some(v) = v {
                        extras.push((k.to_string(), v.to_string()));
                    }
                }
                Error::QueryFailed(QueryError::DbError(DbError {
                    as_text: e.to_string(),
                    severity: format!("{:?}", pg.severity()).to_uppercase(),
                    code: pg.code().to_string(),
                    message: pg.message().to_string(),
                    detail: pg.detail().map(str::to_string),
                    extras,
                }))
            }
            None => Error::QueryFailed(QueryError::Text(e.to_string())),
        },
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            Error::ConnectionFailed(e.to_string())
        }
        _ => Error::QueryFailed(QueryError::Text(e.to_string())),
    }
}

/// A NULL whose type Postgres infers from the statement.
struct UntypedNull;

impl sqlx::Type<Postgres> for UntypedNull {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(sqlx::postgres::types::Oid(0))
    }
}

impl sqlx::Encode<'_, Postgres> for UntypedNull {
    fn encode_by_ref(
        &self,
        _buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        Ok(sqlx::encode::IsNull::Yes)
    }
}

fn bind_all(params: Vec<ParameterValue>) -> Result<PgArguments, Error> {
    let mut args = PgArguments::default();
    for (i, p) in params.into_iter().enumerate() {
        bind(&mut args, p)
            .map_err(|e| Error::BadParameter(format!("parameter ${}: {e}", i + 1)))?;
    }
    Ok(args)
}

fn bind(args: &mut PgArguments, p: ParameterValue) -> Result<(), sqlx::error::BoxDynError> {
    use ParameterValue as P;
    match p {
        P::Boolean(v) => args.add(v),
        P::Int8(v) => args.add(v),
        P::Int16(v) => args.add(v),
        P::Int32(v) => args.add(v),
        P::Int64(v) => args.add(v),
        P::Floating32(v) => args.add(v),
        P::Floating64(v) => args.add(v),
        P::Str(v) => args.add(v),
        P::Binary(v) => args.add(v),
        P::Date((y, m, d)) => {
            args.add(NaiveDate::from_ymd_opt(y, m.into(), d.into()).ok_or("invalid date")?)
        }
        P::Time((h, m, s, ns)) => args.add(
            NaiveTime::from_hms_nano_opt(h.into(), m.into(), s.into(), ns).ok_or("invalid time")?,
        ),
        P::Datetime((y, mo, d, h, mi, s, ns)) => {
            let date = NaiveDate::from_ymd_opt(y, mo.into(), d.into()).ok_or("invalid date")?;
            let time = NaiveTime::from_hms_nano_opt(h.into(), mi.into(), s.into(), ns)
                .ok_or("invalid time")?;
            args.add(NaiveDateTime::new(date, time))
        }
        P::Timestamp(secs) => {
            args.add(DateTime::<Utc>::from_timestamp(secs, 0).ok_or("timestamp out of range")?)
        }
        P::Uuid(v) => args.add(sqlx::types::Uuid::parse_str(&v)?),
        P::Jsonb(bytes) => {
            let value: serde_json::Value = serde_json::from_slice(&bytes)?;
            args.add(sqlx::types::Json(value))
        }
        P::Decimal(v) => args.add(sqlx::types::Decimal::from_str_exact(&v)?),
        P::ArrayInt32(v) => args.add(v),
        P::ArrayInt64(v) => args.add(v),
        P::ArrayStr(v) => args.add(v),
        P::ArrayDecimal(v) => {
            let parsed = v
                .iter()
                .map(|d| {
                    d.as_deref()
                        .map(sqlx::types::Decimal::from_str_exact)
                        .transpose()
                })
                .collect::<Result<Vec<_>, _>>()?;
            args.add(parsed)
        }
        P::Interval(i) => args.add(sqlx::postgres::types::PgInterval {
            months: i.months,
            days: i.days,
            microseconds: i.micros,
        }),
        P::DbNull => args.add(UntypedNull),
        P::RangeInt32(_) | P::RangeInt64(_) | P::RangeDecimal(_) => {
            Err("range parameters are not supported by this host".into())
        }
    }
}

fn data_type(t: &PgTypeInfo) -> DbDataType {
    match t.name() {
        "BOOL" => DbDataType::Boolean,
        "INT2" => DbDataType::Int16,
        "INT4" => DbDataType::Int32,
        "INT8" => DbDataType::Int64,
        "FLOAT4" => DbDataType::Floating32,
        "FLOAT8" => DbDataType::Floating64,
        "TEXT" | "VARCHAR" | "BPCHAR" => DbDataType::Str,
        "BYTEA" => DbDataType::Binary,
        "DATE" => DbDataType::Date,
        "TIME" => DbDataType::Time,
        "TIMESTAMP" | "TIMESTAMPTZ" => DbDataType::Datetime,
        "UUID" => DbDataType::Uuid,
        "JSONB" => DbDataType::Jsonb,
        "NUMERIC" => DbDataType::Decimal,
        "INT4[]" => DbDataType::ArrayInt32,
        "INT8[]" => DbDataType::ArrayInt64,
        "NUMERIC[]" => DbDataType::ArrayDecimal,
        "TEXT[]" | "VARCHAR[]" | "BPCHAR[]" => DbDataType::ArrayStr,
        "INTERVAL" => DbDataType::Interval,
        other => DbDataType::Other(other.trim_matches('"').to_ascii_lowercase()),
    }
}

/// The WIT parameter variant of a value, kept to check it once the server
/// has said which type each parameter has.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ParamKind {
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    Floating32,
    Floating64,
    Str,
    Binary,
    Date,
    Time,
    Datetime,
    Timestamp,
    Uuid,
    Jsonb,
    Decimal,
    ArrayInt32,
    ArrayInt64,
    ArrayStr,
    ArrayDecimal,
    Interval,
    Range,
    Null,
}

impl ParamKind {
    fn of(p: &ParameterValue) -> Self {
        use ParameterValue as P;
        match p {
            P::Boolean(_) => Self::Boolean,
            P::Int8(_) => Self::Int8,
            P::Int16(_) => Self::Int16,
            P::Int32(_) => Self::Int32,
            P::Int64(_) => Self::Int64,
            P::Floating32(_) => Self::Floating32,
            P::Floating64(_) => Self::Floating64,
            P::Str(_) => Self::Str,
            P::Binary(_) => Self::Binary,
            P::Date(_) => Self::Date,
            P::Time(_) => Self::Time,
            P::Datetime(_) => Self::Datetime,
            P::Timestamp(_) => Self::Timestamp,
            P::Uuid(_) => Self::Uuid,
            P::Jsonb(_) => Self::Jsonb,
            P::Decimal(_) => Self::Decimal,
            P::ArrayInt32(_) => Self::ArrayInt32,
            P::ArrayInt64(_) => Self::ArrayInt64,
            P::ArrayStr(_) => Self::ArrayStr,
            P::ArrayDecimal(_) => Self::ArrayDecimal,
            P::Interval(_) => Self::Interval,
            P::RangeInt32(_) | P::RangeInt64(_) | P::RangeDecimal(_) => Self::Range,
            P::DbNull => Self::Null,
        }
    }
}

/// Whether Spin 4.0.2 (tokio-postgres' `ToSql::accepts`) sends a parameter
/// of this kind to a parameter the server typed `pg_type` (sqlx's name).
fn accepts(kind: ParamKind, pg_type: &str) -> bool {
    use ParamKind as K;
    let text = |t: &str| matches!(t, "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "UNKNOWN");
    match kind {
        K::Null | K::Range => true,
        K::Boolean => pg_type == "BOOL",
        K::Int8 => pg_type == "\"CHAR\"",
        K::Int16 => pg_type == "INT2",
        K::Int32 => pg_type == "INT4",
        K::Int64 => pg_type == "INT8",
        K::Floating32 => pg_type == "FLOAT4",
        K::Floating64 => pg_type == "FLOAT8",
        K::Str => text(pg_type) || matches!(pg_type, "citext" | "ltree" | "lquery" | "ltxtquery"),
        K::Binary => pg_type == "BYTEA",
        K::Date => pg_type == "DATE",
        K::Time => pg_type == "TIME",
        K::Datetime => pg_type == "TIMESTAMP",
        K::Timestamp => pg_type == "TIMESTAMPTZ",
        K::Uuid => pg_type == "UUID",
        K::Jsonb => matches!(pg_type, "JSON" | "JSONB"),
        K::Decimal => pg_type == "NUMERIC",
        K::ArrayInt32 => pg_type == "INT4[]",
        K::ArrayInt64 => pg_type == "INT8[]",
        K::ArrayDecimal => pg_type == "NUMERIC[]",
        K::ArrayStr => pg_type.strip_suffix("[]").is_some_and(text),
        K::Interval => pg_type == "INTERVAL",
    }
}

/// Refuses, as Spin does, a parameter whose kind does not match the type the
/// server inferred for it.
fn check_parameters(
    statement: &sqlx::postgres::PgStatement<'_>,
    kinds: &[ParamKind],
) -> Result<(), Error> {
    let Some(sqlx::Either::Left(types)) = statement.parameters() else {
        return Ok(());
    };
    if types.len() != kinds.len() {
        return Err(Error::QueryFailed(QueryError::Text(format!(
            "the statement takes {} parameters but {} were given",
            types.len(),
            kinds.len()
        ))));
    }
    for (i, (kind, ty)) in kinds.iter().zip(types).enumerate() {
        if !accepts(*kind, ty.name()) {
            return Err(Error::QueryFailed(QueryError::Text(format!(
                "error serializing parameter {i}: cannot convert a `{kind:?}` parameter to the \
                 Postgres type `{}` (Spin 4.0.2 refuses it too: pass the matching variant or cast)",
                ty.name().to_ascii_lowercase()
            ))));
        }
    }
    Ok(())
}

fn decode(row: &PgRow, i: usize) -> Result<DbValue, Error> {
    let name = row.columns()[i].type_info().name().to_string();
    let conv = |e: sqlx::Error| Error::ValueConversionFailed(format!("column {i} ({name}): {e}"));
    macro_rules! get {
        ($t:ty) => {
            row.try_get::<Option<$t>, _>(i).map_err(conv)?
        };
    }
    let value = match name.as_str() {
        "BOOL" => get!(bool).map(DbValue::Boolean),
        "INT2" => get!(i16).map(DbValue::Int16),
        "INT4" => get!(i32).map(DbValue::Int32),
        "INT8" => get!(i64).map(DbValue::Int64),
        "FLOAT4" => get!(f32).map(DbValue::Floating32),
        "FLOAT8" => get!(f64).map(DbValue::Floating64),
        "TEXT" | "VARCHAR" | "BPCHAR" => get!(String).map(DbValue::Str),
        "BYTEA" => get!(Vec<u8>).map(DbValue::Binary),
        "DATE" => get!(NaiveDate).map(|d| DbValue::Date(ymd(d))),
        "TIME" => get!(NaiveTime).map(|t| DbValue::Time(hmsn(t))),
        "TIMESTAMP" => get!(NaiveDateTime).map(datetime),
        "TIMESTAMPTZ" => {
            return Err(Error::QueryFailed(QueryError::Text(format!(
                "error deserializing column {i}: cannot convert between the Rust type \
                 `NaiveDateTime` and the Postgres type `timestamptz` (Spin 4.0.2 cannot \
                 return timestamptz: select `col AT TIME ZONE 'UTC'`)"
            ))))
        }
        "UUID" => get!(sqlx::types::Uuid).map(|u| DbValue::Uuid(u.to_string())),
        "JSONB" => get!(serde_json::Value).map(|v| DbValue::Jsonb(v.to_string().into_bytes())),
        "NUMERIC" => get!(sqlx::types::Decimal).map(|d| DbValue::Decimal(d.to_string())),
        "INT4[]" => get!(Vec<Option<i32>>).map(DbValue::ArrayInt32),
        "INT8[]" => get!(Vec<Option<i64>>).map(DbValue::ArrayInt64),
        "TEXT[]" | "VARCHAR[]" | "BPCHAR[]" => get!(Vec<Option<String>>).map(DbValue::ArrayStr),
        "NUMERIC[]" => get!(Vec<Option<sqlx::types::Decimal>>).map(|v| {
            DbValue::ArrayDecimal(v.into_iter().map(|d| d.map(|d| d.to_string())).collect())
        }),
        "INTERVAL" => get!(sqlx::postgres::types::PgInterval).map(|i| {
            DbValue::Interval(Interval {
                micros: i.microseconds,
                days: i.days,
                months: i.months,
            })
        }),
        _ => {
            let raw = row.try_get_raw(i).map_err(conv)?;
            if sqlx::ValueRef::is_null(&raw) {
                None
            } else {
                Some(DbValue::Unsupported(
                    raw.as_bytes()
                        .map_err(|e| conv(sqlx::Error::Decode(e)))?
                        .to_vec(),
                ))
            }
        }
    };
    Ok(value.unwrap_or(DbValue::DbNull))
}

fn ymd(d: NaiveDate) -> (i32, u8, u8) {
    (d.year(), d.month() as u8, d.day() as u8)
}

fn hmsn(t: NaiveTime) -> (u8, u8, u8, u32) {
    (
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
        t.nanosecond(),
    )
}

fn datetime(d: NaiveDateTime) -> DbValue {
    let (y, mo, da) = ymd(d.date());
    let (h, mi, s, ns) = hmsn(d.time());
    DbValue::Datetime((y, mo, da, h, mi, s, ns))
}

/// Why an address is refused whatever the allowed hosts: a Unix socket
/// (`?host=/run/postgresql`, a host path) would bypass the host check, and
/// TLS file parameters would read the host's files.
fn refused_address(address: &str, options: &PgConnectOptions) -> Option<String> {
    if options.get_socket().is_some() || options.get_host().starts_with('/') {
        return Some("Unix-socket database addresses are not allowed".into());
    }
    let query = address.split_once('?').map(|(_, q)| q).unwrap_or_default();
    query
        .split('&')
        .filter_map(|pair| pair.split('=').next())
        .map(str::to_ascii_lowercase)
        .find(|key| {
            matches!(
                key.as_str(),
                "host" | "hostaddr" | "sslcert" | "sslkey" | "sslrootcert" | "sslpassword"
            )
        })
        .map(|key| format!("the database address parameter `{key}` is not allowed"))
}

#[cfg(test)]
mod tests {
    use super::{accepts, ParamKind as K};

    #[test]
    fn parameters_are_accepted_as_spin_accepts_them() {
        assert!(accepts(K::Str, "TEXT"));
        assert!(accepts(K::Str, "VARCHAR"));
        assert!(
            !accepts(K::Str, "UUID"),
            "a string is not a uuid under Spin"
        );
        assert!(!accepts(K::Str, "TIMESTAMPTZ"));
        assert!(accepts(K::Uuid, "UUID"));
        assert!(accepts(K::Jsonb, "JSON") && accepts(K::Jsonb, "JSONB"));
        assert!(accepts(K::Datetime, "TIMESTAMP"));
        assert!(!accepts(K::Datetime, "TIMESTAMPTZ"));
        assert!(accepts(K::Timestamp, "TIMESTAMPTZ"));
        assert!(!accepts(K::Int32, "INT8"), "no widening");
        assert!(accepts(K::Null, "UUID"));
        assert!(accepts(K::ArrayStr, "TEXT[]"));
        assert!(!accepts(K::ArrayStr, "UUID[]"));
    }
}
