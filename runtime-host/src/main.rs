//! `synatra`: run a Synatra (Spin) application on the Synatra host.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use synatra_host::app::{App, HostService, LoadOptions};
use synatra_host::database::{self, Database};
use synatra_host::factors::variables::{development_secrets, VariablesProvider};
use synatra_host::manifest::Manifest;
use synatra_host::synatra::dispatcher::{self, DispatcherConfig};
use synatra_host::synatra::wit_tools::{self, WitTools};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "synatra",
    version,
    about = "Synatra's Spin-compatible WebAssembly host"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the application: database, migrations, HTTP trigger.
    Up(UpArgs),
    /// Apply database migrations and exit.
    Migrate(DbArgs),
}

#[derive(clap::Args)]
struct DbArgs {
    /// Application database; without it an embedded PostgreSQL is started
    /// under the data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// A Unix-socket directory where the server of `DATABASE_URL` also
    /// listens (same machine): the host's own connections and its
    /// components' connections to that server go through it, while
    /// components still name the server by its URL.
    #[arg(long, env = "DATABASE_SOCKET")]
    database_socket: Option<PathBuf>,
    /// Directory for the embedded database, compiled components and
    /// generated development secrets.
    #[arg(long, env = "SYNATRA_DATA_DIR", default_value = ".synatra")]
    data_dir: PathBuf,
}

#[derive(clap::Args)]
struct UpArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Address of the HTTP trigger.
    #[arg(long, env = "SYNATRA_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Address of the admin listener (`/metrics`, `/health`).
    #[arg(long, env = "SYNATRA_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    admin_listen: SocketAddr,
    /// The application manifest.
    #[arg(
        long,
        short = 'f',
        env = "SYNATRA_MANIFEST",
        default_value = "spin.toml"
    )]
    manifest: PathBuf,
    /// Where compiled components are cached (default: `<data-dir>/cache`).
    #[arg(long, env = "SYNATRA_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// A runtime config TOML with a `[variables]` table.
    #[arg(long, env = "SYNATRA_RUNTIME_CONFIG")]
    runtime_config_file: Option<PathBuf>,
    /// Connections per Postgres pool opened by components.
    #[arg(long, env = "SYNATRA_PG_MAX_CONNECTIONS", default_value_t = 20)]
    pg_max_connections: u32,
    /// Allocate instances on demand instead of from wasmtime's pooling allocator.
    #[arg(long)]
    no_pooling_allocator: bool,
    /// Concurrent run advances on this host (0 disables the run dispatcher).
    #[arg(long, env = "SYNATRA_DISPATCHER_WORKERS", default_value_t = 4)]
    dispatcher_workers: usize,
    /// Seconds a claimed run stays leased without progress (after a crash,
    /// another host takes it over once this passes).
    #[arg(long, env = "SYNATRA_RUN_LEASE_SECS", default_value_t = 30)]
    run_lease_secs: i32,
    /// Client connections open at once; more wait in the listen backlog.
    #[arg(long, env = "SYNATRA_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
    /// Runs of one org this host advances at once (default: the workers
    /// less one, so another org always finds a worker).
    #[arg(long, env = "SYNATRA_MAX_RUNS_PER_ORG")]
    max_runs_per_org: Option<i32>,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,wasmtime=warn,cranelift=warn".into()),
        )
        // Colour only on a terminal (and never with NO_COLOR): log files and
        // collectors get plain text.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stdout())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => up(args),
        Command::Migrate(args) => migrate(args),
    };
    if let Err(e) = &result {
        tracing::error!("{e:#}");
    }
    result
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn migrate(args: DbArgs) -> Result<()> {
    std::fs::create_dir_all(&args.data_dir)?;
    let db = Database::open(args.database_url, args.database_socket, &args.data_dir)?;
    runtime()?.block_on(database::connect_and_migrate(db.connect_options()?))?;
    tracing::info!("migrations applied");
    Ok(())
}

/// The parts of Spin's runtime config file this host reads; any other table
/// is refused by name.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RuntimeConfig {
    #[serde(default, alias = "config_provider")]
    variables_provider: Vec<VariablesProvider>,
}

fn up(args: UpArgs) -> Result<()> {
    let manifest = Manifest::load(&args.manifest)?;
    let runtime_config: RuntimeConfig = match &args.runtime_config_file {
        Some(p) => toml::from_str(
            &std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        )
        .with_context(|| format!("invalid runtime config {}", p.display()))?,
        None => RuntimeConfig::default(),
    };
    std::fs::create_dir_all(&args.db.data_dir)
        .with_context(|| format!("cannot create {}", args.db.data_dir.display()))?;
    // The embedded server is a child of this (main) thread, so it dies with us.
    let db = Database::open(
        args.db.database_url,
        args.db.database_socket,
        &args.db.data_dir,
    )?;
    let url = db.url();
    let connect = db.connect_options()?;

    let mut host_variables = BTreeMap::new();
    // A manifest variable `foo_bar` may also be set as FOO_BAR.
    for name in manifest.variables.keys() {
        if let Ok(v) = std::env::var(name.to_ascii_uppercase()) {
            host_variables.insert(name.clone(), v);
        }
    }
    if args.dispatcher_workers > 0 {
        // Tell the app its runs are advanced here (unless overridden).
        host_variables
            .entry("run_dispatcher".into())
            .or_insert_with(|| "synatra".into());
    }
    host_variables.insert("database_url".into(), url.clone());
    host_variables.insert("database_host".into(), database::host_port(&url)?);
    if db.is_embedded() {
        let secrets = development_secrets(
            &manifest,
            &args.db.data_dir.join("development-secrets.toml"),
            &host_variables,
        )?;
        host_variables.extend(secrets);
    }

    runtime()?.block_on(async move {
        let pool = database::connect_and_migrate(connect).await?;
        let cache_dir = args
            .cache_dir
            .clone()
            .unwrap_or_else(|| args.db.data_dir.join("cache"));
        // Synatra's services on the generic host: users' WIT tools.
        let wit_tools: Arc<dyn HostService> = Arc::new(WitTools::new(&cache_dir.join("tools"))?);
        let app = App::load(
            &manifest,
            LoadOptions {
                cache_dir,
                runtime_variables: runtime_config.variables_provider,
                host_variables,
                db: pool,
                pg_max_connections: args.pg_max_connections,
                pooling: !args.no_pooling_allocator,
                services: vec![(wit_tools::SERVICE.to_string(), wit_tools)],
            },
        )?;
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let admin = TcpListener::bind(args.admin_listen)
            .await
            .with_context(|| format!("cannot listen on {} (admin)", args.admin_listen))?;
        tracing::info!(
            "serving http://{} (metrics on http://{}/metrics)",
            listener.local_addr()?,
            admin.local_addr()?
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let admin_task = tokio::spawn(synatra_host::server::serve_admin(
            app.clone(),
            admin,
            stopped.clone(),
        ));
        let dispatcher = tokio::spawn(dispatcher::run(
            app.clone(),
            app.db.clone(),
            DispatcherConfig {
                workers: args.dispatcher_workers,
                lease_secs: args.run_lease_secs,
                org_limit: args.max_runs_per_org.unwrap_or_else(|| {
                    i32::try_from(args.dispatcher_workers.saturating_sub(1).max(1))
                        .unwrap_or(i32::MAX)
                }),
                poll: std::time::Duration::from_secs(1),
            },
            stopped.clone(),
        ));
        let server = tokio::spawn(synatra_host::server::serve(
            app.clone(),
            listener,
            args.max_connections,
            stopped,
        ));
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
        let _ = server.await;
        let _ = dispatcher.await;
        let _ = admin_task.await;
        app.db.close().await;
        Ok::<_, anyhow::Error>(())
    })?;
    drop(db);
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
