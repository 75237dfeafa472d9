//! Our host against the released Spin 4.0.2 in the same run, on the same
//! components, driven by the same load generator at 16 keep-alive
//! connections: the hello component, and `GET /api/v1/health` of the whole
//! application (one database round trip per request).

use anyhow::{Context, Result};
use embedded_postgres::{free_port, EmbeddedPostgres};
use std::net::SocketAddr;
use std::path::Path;
use synatra_tests::spin::{spin_bin, SpinUp};
use synatra_tests::{app_manifest, Server, TEST_ENCRYPTION_KEY};

use crate::{load_with, start_host_with, step, HttpResult};

/// Connections of the comparison (as `wrk -c16`).
const CONNECTIONS: usize = 16;

/// One workload on both hosts.
pub struct Pair {
    pub what: &'static str,
    pub synatra: HttpResult,
    pub spin: HttpResult,
}

/// Measures the hello component (already served by our host on
/// `hello_port`) and the application's health route on both hosts; `None`
/// when this machine has no Spin.
pub fn compare(
    rt: &tokio::runtime::Runtime,
    hello_manifest: &Path,
    hello_port: u16,
    pg: &EmbeddedPostgres,
    work: &Path,
) -> Result<Option<Vec<Pair>>> {
    let Some(bin) = spin_bin() else {
        step("no Spin 4.x CLI found (SPIN_BIN, PATH, ../shared/tools/spin): skipping the Spin comparison");
        return Ok(None);
    };
    step("Spin: hello component under spin up");
    let spin_hello = SpinUp::start(&bin, hello_manifest, &[], &[]);
    let ours = rt.block_on(load_with(addr(hello_port), CONNECTIONS, "/hello"))?;
    let theirs = rt.block_on(load_with(port_of(&spin_hello)?, CONNECTIONS, "/hello"))?;
    drop(spin_hello);
    let mut pairs = vec![Pair {
        what: "hello component",
        synatra: ours,
        spin: theirs,
    }];

    step("Spin: the application's GET /api/v1/health on both hosts");
    let app_dir = work.join("app");
    std::fs::create_dir_all(&app_dir)?;
    let manifest = app_manifest(&app_dir);
    let url = pg.url();
    let port = free_port()?;
    let secrets = [
        ("SERVICE_SECRET", "bench-service-secret"),
        ("ENCRYPTION_KEY", TEST_ENCRYPTION_KEY),
    ];
    let mut host = start_host_with(&manifest, &url, port, &work.join("app-data"), &secrets)?;
    let vars: Vec<(String, String)> = [
        ("DATABASE_URL", url.clone()),
        ("DATABASE_HOST", format!("127.0.0.1:{}", pg.port())),
        ("SERVICE_SECRET", "bench-service-secret".to_string()),
        ("ENCRYPTION_KEY", TEST_ENCRYPTION_KEY.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("SPIN_VARIABLE_{k}"), v))
    .collect();
    let spin_app = SpinUp::start(&bin, &manifest, &vars, &[]);
    let ours = rt.block_on(load_with(addr(port), CONNECTIONS, "/api/v1/health"));
    let theirs = rt.block_on(load_with(
        port_of(&spin_app)?,
        CONNECTIONS,
        "/api/v1/health",
    ));
    let _ = host.kill();
    let _ = host.wait();
    pairs.push(Pair {
        what: "GET /api/v1/health",
        synatra: ours?,
        spin: theirs?,
    });
    Ok(Some(pairs))
}

/// Prints the comparison with its ratios.
pub fn print(pairs: &[Pair]) {
    println!();
    println!(
        "== synatra host vs released Spin 4.0.2, {CONNECTIONS} keep-alive connections, same run =="
    );
    println!(
        "{:<22} {:<8} {:>12} {:>10} {:>10}",
        "workload", "host", "requests/s", "p50 µs", "p99 µs"
    );
    for p in pairs {
        for (host, r) in [("synatra", &p.synatra), ("spin", &p.spin)] {
            println!(
                "{:<22} {:<8} {:>12.0} {:>10.0} {:>10.0}",
                p.what, host, r.rps, r.p50_us, r.p99_us
            );
        }
        println!(
            "{:<22} ratio synatra/spin: throughput {:.2}x, p50 {:.2}x, p99 {:.2}x",
            p.what,
            p.synatra.rps / p.spin.rps,
            p.synatra.p50_us / p.spin.p50_us,
            p.synatra.p99_us / p.spin.p99_us
        );
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn port_of(spin: &SpinUp) -> Result<SocketAddr> {
    let port = spin
        .base()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .context("spin's port")?;
    Ok(addr(port))
}
