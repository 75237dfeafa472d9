//! Connections to one address, handed back without a round trip.
//!
//! sqlx's pool pings every connection it takes back (a round trip per
//! released connection, as many as the statements components run). This
//! pool instead knows whether the last use of a connection finished: one
//! whose statement completed goes back as it is; one dropped in the middle
//! of a statement, or after an I/O error, is closed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::database::{broke_connection, ACQUIRE_TIMEOUT, PING_WHEN_IDLE};

/// A connection idle this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// A connection this old is closed instead of handed out again.
const MAX_LIFETIME: Duration = Duration::from_secs(1800);

/// At most `max` connections to one address; idle ones are reused last in,
/// first out.
#[derive(Clone)]
pub struct ConnPool {
    shared: Arc<Shared>,
}

struct Shared {
    options: PgConnectOptions,
    slots: Arc<Semaphore>,
    idle: Mutex<Vec<Idle>>,
}

struct Idle {
    conn: PgConnection,
    born: Instant,
    since: Instant,
}

/// A connection taken from the pool. Call [`Pooled::conn`] to use it and
/// [`Pooled::settled`] once the statement is over; it returns to the pool on
/// drop only if it settled after its last use.
pub struct Pooled {
    conn: Option<PgConnection>,
    born: Instant,
    settled: bool,
    shared: Arc<Shared>,
    _slot: OwnedSemaphorePermit,
}

impl ConnPool {
    /// A pool that connects with `options` when it has no idle connection.
    pub fn new(options: PgConnectOptions, max: u32) -> Self {
        Self {
            shared: Arc::new(Shared {
                options,
                slots: Arc::new(Semaphore::new(max as usize)),
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    /// An idle connection (pinged if it idled long) or a new one; waits for
    /// a free slot, and fails if none frees or no connection opens in 10 s.
    pub async fn acquire(&self) -> Result<Pooled, sqlx::Error> {
        let deadline = tokio::time::Instant::now() + ACQUIRE_TIMEOUT;
        let slot = tokio::time::timeout_at(deadline, self.shared.slots.clone().acquire_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        while let Some(mut idle) = self.shared.take_idle() {
            if idle.since.elapsed() >= PING_WHEN_IDLE && idle.conn.ping().await.is_err() {
                continue;
            }
            return Ok(self.pooled(idle.conn, idle.born, slot));
        }
        let conn = tokio::time::timeout_at(deadline, self.shared.options.connect())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        Ok(self.pooled(conn, Instant::now(), slot))
    }

    fn pooled(&self, conn: PgConnection, born: Instant, slot: OwnedSemaphorePermit) -> Pooled {
        Pooled {
            conn: Some(conn),
            born,
            settled: true,
            shared: self.shared.clone(),
            _slot: slot,
        }
    }
}

impl Shared {
    /// The most recently used idle connection that is not too old; closes
    /// the ones that are.
    fn take_idle(&self) -> Option<Idle> {
        let mut idle = self.idle.lock().expect("pool poisoned");
        while let Some(i) = idle.pop() {
            if i.born.elapsed() < MAX_LIFETIME {
                return Some(i);
            }
            close(i.conn);
        }
        None
    }

    /// Keeps `conn` for reuse and closes the connections idle too long.
    fn give_back(&self, conn: PgConnection, born: Instant) {
        let mut idle = self.idle.lock().expect("pool poisoned");
        let stale = idle
            .iter()
            .take_while(|i| i.since.elapsed() >= IDLE_TIMEOUT)
            .count();
        for i in idle.drain(..stale) {
            close(i.conn);
        }
        idle.push(Idle {
            conn,
            born,
            since: Instant::now(),
        });
    }
}

impl Pooled {
    /// The connection, for one statement; it counts as in use until
    /// [`Pooled::settled`].
    pub fn conn(&mut self) -> &mut PgConnection {
        self.settled = false;
        self.conn.as_mut().expect("connection present until drop")
    }

    /// Marks the last statement over. A connection whose statement failed
    /// on the wire stays unsettled, so it is closed rather than reused.
    pub fn settled<T>(&mut self, result: &Result<T, sqlx::Error>) {
        self.settled = !result.as_ref().is_err_and(broke_connection);
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if self.settled {
                self.shared.give_back(conn, self.born);
            } else {
                close(conn);
            }
        }
    }
}

/// Closes `conn` politely in the background when a runtime is there to do
/// it; dropping it closes the socket otherwise.
fn close(conn: PgConnection) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = conn.close().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_postgres::{EmbeddedPostgres, Options};
    use sqlx::Executor;
    use std::str::FromStr;

    /// A server of its own, stopped and removed when the test ends.
    struct Server {
        pg: Option<EmbeddedPostgres>,
        dir: std::path::PathBuf,
    }

    impl Server {
        fn start(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("synatra-pool-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let pg = EmbeddedPostgres::start(&dir.join("data"), Options { ephemeral: true })
                .expect("start PostgreSQL");
            Self { pg: Some(pg), dir }
        }

        fn pool(&self, max: u32) -> ConnPool {
            let url = self.pg.as_ref().expect("running").url();
            ConnPool::new(PgConnectOptions::from_str(&url).expect("url"), max)
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            drop(self.pg.take());
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    async fn backend(conn: &mut Pooled) -> i32 {
        let pid = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(conn.conn())
            .await;
        conn.settled(&pid);
        pid.expect("backend pid")
    }

    #[tokio::test]
    async fn a_connection_back_from_a_finished_statement_is_reused_and_one_dropped_mid_statement_is_not(
    ) {
        let server = Server::start("reuse");
        let pool = server.pool(4);

        let mut first = pool.acquire().await.expect("acquire");
        let pid = backend(&mut first).await;
        drop(first);
        let mut again = pool.acquire().await.expect("acquire");
        assert_eq!(
            backend(&mut again).await,
            pid,
            "a settled connection is reused"
        );

        // Abandon a statement in flight: its result would reach the next
        // user of the connection if it were handed out again.
        let slow = tokio::time::timeout(
            Duration::from_millis(200),
            again.conn().execute("SELECT pg_sleep(3)"),
        )
        .await;
        assert!(slow.is_err(), "the statement was still running");
        drop(again);
        let mut next = pool.acquire().await.expect("acquire");
        assert_ne!(
            backend(&mut next).await,
            pid,
            "an unsettled connection is closed"
        );
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(next.conn())
            .await
            .expect("a clean connection");
        assert_eq!(one, 1);
    }

    #[tokio::test]
    async fn an_acquire_waits_for_a_free_slot() {
        let server = Server::start("slots");
        let pool = server.pool(1);
        let mut held = pool.acquire().await.expect("acquire");
        let pid = backend(&mut held).await;
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move {
                let mut conn = pool.acquire().await.expect("acquire");
                backend(&mut conn).await
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !waiting.is_finished(),
            "no second connection while one is held"
        );
        drop(held);
        assert_eq!(
            waiting.await.expect("task"),
            pid,
            "it got the freed connection"
        );
    }
}
