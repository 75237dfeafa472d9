//! `make bench`: measures, in one run and on this machine,
//! 1. HTTP requests/s and p50/p99 latency of a hello component served by the
//!    `synatra` host, against a native hyper hello server (the baseline),
//!    both driven by the same keep-alive load generator;
//! 2. per-request instantiate + handle time in-process, with the pooling
//!    allocator against on-demand allocation.
//!
//! 3. durable runs (see `runs.rs`);
//! 4. JavaScript and WIT tool calls (see `tools.rs`);
//! 5. our host against the released Spin 4.0.2 (see `spin.rs`);
//! 6. 200 users signing in, starting threads, following events and
//!    approving for 60 s (see `load.rs`).
//!
//! Figures are printed with their ratios; nothing here asserts a threshold.

mod load;
mod runs;
mod spin;
mod tools;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use embedded_postgres::{free_port, EmbeddedPostgres, Options};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::TokioIo;
use synatra_host::app::{App, LoadOptions};
use synatra_host::manifest::Manifest;

/// Concurrent keep-alive connections of the load generator.
const CONNECTIONS: usize = 8;
/// Warm-up and measurement windows of each HTTP run.
const WARMUP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(5);
/// Iterations of the in-process instantiation benchmark.
const INSTANTIATIONS: usize = 3000;

fn main() -> Result<()> {
    // `SYNATRA_BENCH=runs` (or `load`) `make bench` measures that alone;
    // `steps`, the durable steps/s of `runs` alone.
    let only = std::env::var("SYNATRA_BENCH").unwrap_or_default();
    let all = only.is_empty();
    if all {
        http_and_spin()?;
    }
    if all || only == "runs" {
        durable_runs()?;
    }
    if only == "steps" {
        println!();
        let (rounds, bare_commits_per_s) = runs::measure_rounds()?;
        print_rounds(&rounds, bare_commits_per_s);
    }
    if all {
        tool_calls()?;
    }
    if all || only == "load" {
        load::report(&load::measure()?)?;
    }
    Ok(())
}

/// Sections 1, 2 and 5.
fn http_and_spin() -> Result<()> {
    let work = std::env::temp_dir().join(format!("synatra-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    set_mode(&work)?;
    step("starting PostgreSQL for the host");
    let pg = EmbeddedPostgres::start(&work.join("pg"), Options { ephemeral: true })?;
    let manifest = write_manifest(&work)?;

    step("starting the synatra host");
    let port = free_port()?;
    let mut host = start_host(&manifest, &pg.url(), port, &work)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        step("HTTP: native hyper hello server (baseline)");
        let native_addr = start_native_server().await?;
        let native = load(native_addr).await?;
        step("HTTP: hello component through the synatra host");
        let hosted = load(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        step(&format!(
            "HTTP: {:.0} req/s through the host vs {:.0} native",
            hosted.rps, native.rps
        ));

        step("in-process: instantiate + handle, pooling allocator");
        let pooled = instantiate_and_handle(&manifest, &pg.url(), &work, true).await?;
        step("in-process: instantiate + handle, on-demand allocator");
        let on_demand = instantiate_and_handle(&manifest, &pg.url(), &work, false).await?;
        Ok::<_, anyhow::Error>((native, hosted, pooled, on_demand))
    });
    let spin = spin::compare(&rt, &manifest, port, &pg, &work);
    let _ = host.kill();
    let _ = host.wait();
    let (native, hosted, pooled, on_demand) = result?;
    let spin = spin?;

    println!();
    println!(
        "== HTTP hello, {CONNECTIONS} keep-alive connections, {} s each ==",
        MEASURE.as_secs()
    );
    println!(
        "{:<28} {:>12} {:>10} {:>10}",
        "server", "requests/s", "p50 µs", "p99 µs"
    );
    for (name, r) in [
        ("native hyper (baseline)", &native),
        ("synatra host + component", &hosted),
    ] {
        println!(
            "{:<28} {:>12.0} {:>10.0} {:>10.0}",
            name, r.rps, r.p50_us, r.p99_us
        );
    }
    println!(
        "ratio host/native: throughput {:.3}x, p50 {:.2}x, p99 {:.2}x",
        hosted.rps / native.rps,
        hosted.p50_us / native.p50_us,
        hosted.p99_us / native.p99_us
    );
    println!();
    println!("== in-process instantiate + handle, {INSTANTIATIONS} requests ==");
    println!(
        "{:<28} {:>10} {:>10} {:>10}",
        "allocator", "mean µs", "p50 µs", "p99 µs"
    );
    for (name, r) in [("on-demand (baseline)", &on_demand), ("pooling", &pooled)] {
        println!(
            "{:<28} {:>10.1} {:>10.1} {:>10.1}",
            name, r.mean_us, r.p50_us, r.p99_us
        );
    }
    println!(
        "ratio pooling/on-demand: mean {:.2}x, p50 {:.2}x",
        pooled.mean_us / on_demand.mean_us,
        pooled.p50_us / on_demand.p50_us
    );
    if let Some(pairs) = &spin {
        spin::print(pairs);
    }
    drop(pg);
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Section 3.
fn durable_runs() -> Result<()> {
    let r = runs::measure()?;
    println!();
    println!("== durable runs (PostgreSQL with fsync off, as in tests) ==");
    println!(
        "record one step (SQL record_step: fence + step + message, one statement): {:.0} µs; bare INSERT+COMMIT: {:.0} µs; ratio {:.2}x",
        r.record_us,
        r.bare_insert_us,
        r.record_us / r.bare_insert_us
    );
    println!(
        "  against one autocommitted INSERT statement: {:.0} µs; ratio {:.2}x",
        r.single_insert_us,
        r.record_us / r.single_insert_us
    );
    print_rounds(&r.rounds, r.bare_commits_per_s);
    println!(
        "host RSS idle: {} KiB; with 10,000 runs waiting: {} KiB; ratio {:.3}x",
        r.rss_idle_kib,
        r.rss_waiting_kib,
        r.rss_waiting_kib as f64 / r.rss_idle_kib as f64
    );
    println!(
        "reply → run resumed (message POST until the provider sees the request): p50 {:.1} ms, p99 {:.1} ms",
        r.resume_p50_ms, r.resume_p99_ms
    );
    println!(
        "approval → run resumed (approve POST until the provider sees the tool's result): p50 {:.1} ms, p99 {:.1} ms",
        r.approval_p50_ms, r.approval_p99_ms
    );
    Ok(())
}

/// Steps/s, the breakdown at one run, the runs' timelines and what a step
/// at 64 runs costs in bare commits.
fn print_rounds(r: &runs::Rounds, bare_commits_per_s: f64) {
    println!("where a step's time goes at 1 concurrent run (an instance's time includes the calls it waits on):");
    for s in &r.breakdown {
        println!(
            "  {:<12} {:>5.2} instances/step, {:>6.2} ms busy/step; of it instantiation {:>5.2} ms, {:>5.2} SQL statements {:>5.2} ms",
            s.component,
            s.instances_per_step,
            s.busy_ms_per_step,
            s.instantiate_ms_per_step,
            s.statements_per_step,
            s.statement_ms_per_step
        );
    }
    for (concurrency, timeline) in &r.timeline_ms {
        let stretches: Vec<String> = timeline
            .iter()
            .map(|(label, ms)| format!("{label} {ms:.2} ms"))
            .collect();
        println!(
            "a run's timeline at {concurrency} concurrent runs (means): {}",
            stretches.join(", ")
        );
    }
    let base = r.steps_per_s[0].1;
    for (c, s) in &r.steps_per_s {
        println!(
            "durable steps/s with {c:>2} concurrent runs: {s:>7.0} ({:.2}x of 1)",
            s / base
        );
    }
    for (c, [host, database, bench, host_waits, database_waits]) in &r.usage_per_step {
        println!(
            "CPU per step with {c:>2} concurrent runs: {:.2} ms (host {host:.2}, database {database:.2}, bench and fake provider {bench:.2}); waits (voluntary context switches) host {host_waits:.1}, database {database_waits:.1}",
            host + database + bench
        );
    }
    let (first, last) = r.sustained;
    println!(
        "durable steps/s with 64 concurrent runs kept up for {} s: {first:.0} in the first {} s, {last:.0} in the last {} s ({:.2}x)",
        runs::SUSTAINED.as_secs(),
        runs::SUSTAINED.as_secs() / 5,
        runs::SUSTAINED.as_secs() / 5,
        last / first
    );
    let [transactions, buffers, tuples] = r.database_work;
    println!(
        "database work per step over those {} s: {transactions:.1} transactions, {buffers:.0} buffer accesses, {tuples:.0} tuples read",
        runs::SUSTAINED.as_secs()
    );
    let (by_id, by_scan, empty) = r.claims;
    println!(
        "runs the dispatcher claimed: {by_id:.0} by their notified id, {by_scan:.0} by a scan; {empty:.0} scans found none"
    );
    let at_64 = r.steps_per_s.last().map_or(0.0, |(_, s)| *s);
    println!(
        "the database alone on the same cores: {:.0} bare INSERT+COMMIT/s over 64 connections; a step at 64 runs costs {:.1} of them",
        bare_commits_per_s,
        bare_commits_per_s / at_64
    );
}

/// Section 4.
fn tool_calls() -> Result<()> {
    let t = tools::measure()?;
    for (label, run) in [("JavaScript", &t.javascript), ("WIT component", &t.wit)] {
        println!();
        println!("== {label} tool (hello) ==");
        println!(
            "POST /tools/{{tool}}/test round trip: p50 {:.0} µs, p99 {:.0} µs; sandbox call (API-measured): p50 {:.0} µs, p99 {:.0} µs",
            run.call_p50_us, run.call_p99_us, run.sandbox_p50_us, run.sandbox_p99_us
        );
        println!(
            "native Rust function: {:.2} µs; ratio sandbox call/native {:.0}x",
            t.native_us,
            run.sandbox_p50_us / t.native_us
        );
        println!(
            "concurrent tool calls/s at concurrency 8: {:.0}",
            run.calls_per_s_8
        );
    }
    Ok(())
}

pub(crate) fn step(what: &str) {
    eprintln!("==> {what}");
}

fn set_mode(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// `target/release` of this build (the bench binary lives there).
pub(crate) fn profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe.parent().context("exe dir")?.to_path_buf())
}

fn write_manifest(work: &Path) -> Result<PathBuf> {
    let wasm = profile_dir()?
        .parent()
        .context("target dir")?
        .join("wasm32-wasip2/release/hello_component.wasm");
    if !wasm.exists() {
        bail!(
            "{} missing: run `make bench` (it builds the components)",
            wasm.display()
        );
    }
    let path = work.join("spin.toml");
    std::fs::write(
        &path,
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"bench\"\n\
             [[trigger.http]]\nroute = \"/...\"\ncomponent = \"hello\"\n\
             [component.hello]\nsource = \"{}\"\n",
            wasm.display()
        ),
    )?;
    Ok(path)
}

fn start_host(manifest: &Path, db: &str, port: u16, work: &Path) -> Result<Child> {
    start_host_with(manifest, db, port, &work.join("data"), &[])
}

/// Starts `synatra up` on `manifest` with `env`, waiting until it listens.
pub(crate) fn start_host_with(
    manifest: &Path,
    db: &str,
    port: u16,
    data_dir: &Path,
    env: &[(&str, &str)],
) -> Result<Child> {
    let bin = profile_dir()?.join("synatra");
    let mut child = Command::new(&bin)
        .arg("up")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin-listen", &format!("127.0.0.1:{}", free_port()?)])
        .arg("--manifest")
        .arg(manifest)
        .arg("--data-dir")
        .arg(data_dir)
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {} (run `make bench`)", bin.display()))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if child.try_wait()?.is_some() || Instant::now() > deadline {
            bail!("the host did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child)
}

async fn start_native_server() -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, Infallible>(
                        http::Response::builder()
                            .header("content-type", "text/plain")
                            .body(Full::new(Bytes::from_static(b"hello")))
                            .expect("static response"),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

pub(crate) struct HttpResult {
    pub(crate) rps: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
}

/// Runs [`CONNECTIONS`] keep-alive clients for the warm-up, then measures.
async fn load(addr: SocketAddr) -> Result<HttpResult> {
    load_with(addr, CONNECTIONS, "/hello").await
}

/// Runs `connections` keep-alive clients on `path` for the warm-up, then
/// measures.
pub(crate) async fn load_with(
    addr: SocketAddr,
    connections: usize,
    path: &'static str,
) -> Result<HttpResult> {
    let start = Instant::now();
    let measure_from = start + WARMUP;
    let end = measure_from + MEASURE;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut latencies = Vec::new();
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let req = http::Request::get(path)
                    .header("host", "bench")
                    .body(Empty::<Bytes>::new())?;
                let resp = sender.send_request(req).await?;
                let status = resp.status();
                resp.into_body().collect().await?;
                if !status.is_success() {
                    bail!("status {status}");
                }
                if sent >= measure_from {
                    latencies.push(sent.elapsed());
                }
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    all.sort();
    Ok(HttpResult {
        rps: all.len() as f64 / MEASURE.as_secs_f64(),
        p50_us: percentile(&all, 0.50),
        p99_us: percentile(&all, 0.99),
    })
}

struct InstResult {
    mean_us: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Dispatches requests straight to `App::dispatch`: a fresh instance each,
/// response body collected.
async fn instantiate_and_handle(
    manifest: &Path,
    db: &str,
    work: &Path,
    pooling: bool,
) -> Result<InstResult> {
    let manifest = Manifest::load(manifest)?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(db)
        .await?;
    let app: Arc<App> = App::load(
        &manifest,
        LoadOptions {
            cache_dir: work.join("data/cache"),
            runtime_variables: Default::default(),
            host_variables: Default::default(),
            db: pool,
            pg_max_connections: 2,
            pooling,
            services: Vec::new(),
        },
    )?;
    let mut times = Vec::with_capacity(INSTANTIATIONS);
    for i in 0..INSTANTIATIONS + 200 {
        let req = http::Request::get("http://bench/hello").body(Empty::<Bytes>::new())?;
        let started = Instant::now();
        let resp = app.dispatch("hello", req, 0).await?;
        resp.into_body()
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if i >= 200 {
            times.push(started.elapsed());
        }
    }
    let mean = times.iter().sum::<Duration>().as_secs_f64() * 1e6 / times.len() as f64;
    times.sort();
    Ok(InstResult {
        mean_us: mean,
        p50_us: percentile(&times, 0.50),
        p99_us: percentile(&times, 0.99),
    })
}

pub(crate) fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}
