//! The application database: an external server from `DATABASE_URL`, or an
//! embedded one under the data directory; migrated at start.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result};
use embedded_postgres::{EmbeddedPostgres, Options};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

/// Where the database lives; the embedded server stops when this drops.
pub enum Database {
    /// A server at `url`, also listening on a Unix socket in `socket` when
    /// the operator says so.
    External {
        url: String,
        socket: Option<PathBuf>,
    },
    Embedded(EmbeddedPostgres),
}

impl Database {
    /// Uses `url` (and its server's Unix-socket directory `socket`) when
    /// given, else starts the embedded server in `data_dir`.
    pub fn open(url: Option<String>, socket: Option<PathBuf>, data_dir: &Path) -> Result<Self> {
        match url {
            Some(url) => Ok(Self::External { url, socket }),
            None => {
                tracing::info!(dir = %data_dir.join("postgres").display(), "starting embedded PostgreSQL");
                let pg = EmbeddedPostgres::start(&data_dir.join("postgres"), Options::default())?;
                tracing::info!(port = pg.port(), "embedded PostgreSQL ready");
                Ok(Self::Embedded(pg))
            }
        }
    }

    /// The connection URL (TCP: the address components are given).
    pub fn url(&self) -> String {
        match self {
            Self::External { url, .. } => url.clone(),
            Self::Embedded(pg) => pg.url(),
        }
    }

    /// How the host connects: the URL, through the server's Unix socket
    /// when it has one (a local server answers with less work per message
    /// than over TCP).
    pub fn connect_options(&self) -> Result<PgConnectOptions> {
        let options = PgConnectOptions::from_str(&self.url()).context("invalid DATABASE_URL")?;
        let socket = match self {
            Self::External { socket, .. } => socket.as_deref(),
            Self::Embedded(pg) => pg.socket_dir(),
        };
        Ok(match socket {
            Some(dir) => options.socket(dir),
            None => options,
        })
    }

    /// Whether this is the embedded development database.
    pub fn is_embedded(&self) -> bool {
        matches!(self, Self::Embedded(_))
    }
}

/// Connects a pool and applies pending migrations from `migrations/`.
pub async fn connect_and_migrate(options: PgConnectOptions) -> Result<PgPool> {
    let pool = pool_options(10)
        .connect_with(options)
        .await
        .context("cannot connect to the database (check DATABASE_URL and DATABASE_SOCKET)")?;
    sqlx::migrate!("../migrations")
        .run(&pool)
        .await
        .context("database migration failed")?;
    Ok(pool)
}

/// A connection idle at least this long is pinged before it is handed out;
/// one used more recently is handed out as it is (a ping per acquire cost
/// a round trip on every statement batch of every instance).
pub const PING_WHEN_IDLE: Duration = Duration::from_secs(5);

/// How long taking a pooled connection may wait, for a free slot or for the
/// database to answer.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `error` came from the connection itself (its socket, its protocol
/// state), so the connection must not be used again; a database error
/// leaves it usable.
pub fn broke_connection(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_)
    )
}

/// Options of the sqlx pools the host keeps for its own work (components'
/// connections have the pool of `factors::postgres`): at most
/// `max_connections`; under load an acquire waits its turn rather than
/// failing, and only a database that stays unreachable for
/// [`ACQUIRE_TIMEOUT`] fails it.
pub fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_WHEN_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// `host:port` of a Postgres URL, for `allowed_outbound_hosts` templates.
pub fn host_port(url: &str) -> Result<String> {
    let options = PgConnectOptions::from_str(url).context("invalid DATABASE_URL")?;
    Ok(format!("{}:{}", options.get_host(), options.get_port()))
}

#[cfg(test)]
mod tests {
    /// The API applies migrations itself under Spin; what it records must be
    /// what sqlx expects here, or `synatra up` would refuse that database.
    #[test]
    fn the_application_records_migrations_as_sqlx_does() {
        let ours = synatra_migrations::all();
        let sqlx = sqlx::migrate!("../migrations");
        assert_eq!(ours.len(), sqlx.migrations.len());
        for (mine, theirs) in ours.iter().zip(sqlx.migrations.iter()) {
            assert_eq!(mine.version, theirs.version);
            assert_eq!(mine.description, theirs.description);
            assert_eq!(
                mine.checksum(),
                theirs.checksum.to_vec(),
                "{}",
                mine.version
            );
            assert!(!theirs.no_tx, "{} must run in a transaction", mine.version);
        }
    }
}
