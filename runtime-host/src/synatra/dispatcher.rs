//! The run dispatcher: claims ready runs with `FOR UPDATE SKIP LOCKED` and a
//! lease, hands each to the agent-step component in-process, and is woken by
//! `LISTEN/NOTIFY` (with a periodic sweep that also picks up expired leases
//! of crashed hosts and due timers). A notified run is claimed by its id;
//! the scan in turn order (`claim_next_run`) decides whenever that fails or
//! no notified run is left. Any number of hosts may share one database: a
//! run is leased to one worker at a time, and the step table's primary key
//! plus the lease fence make a second recording impossible.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use sqlx::postgres::{PgConnection, PgListener};
use sqlx::{ConnectOptions, PgPool};
use tokio::sync::{watch, Notify};

use crate::app::{App, DispatchError};
use crate::database::broke_connection;

use synatra_names::channels::{CANCEL as CANCEL_CHANNEL, RUNS as RUNS_CHANNEL};
use synatra_names::limits::{renew_interval, MAX_CRASHES};
use synatra_names::services::{AGENT_STEP, AGENT_STEP_ADVANCE};
use synatra_names::{headers, variables};

/// Runs being advanced on this host: the switch that interrupts each, and
/// how many of each org's runs are among them (the org limit of a claim by
/// id is counted here, not by reading leases).
#[derive(Default)]
struct Advancing {
    switches: HashMap<String, watch::Sender<bool>>,
    per_org: HashMap<uuid::Uuid, i32>,
}

type InFlight = Arc<Mutex<Advancing>>;

/// A run this host leased.
struct Claimed {
    run_id: String,
    org: uuid::Uuid,
    lease: String,
    /// The run as SQL `load_run` read it in the claiming statement; the
    /// agent step starts from it.
    run: serde_json::Value,
}

/// Ids of runs notified ready and not yet tried here, oldest first, with
/// when each was notified.
type NotifiedRuns = Arc<Mutex<VecDeque<(uuid::Uuid, Instant)>>>;

/// What became of a notified run this host tried to claim.
enum Notified {
    /// Leased; its org, and the run loaded.
    Claimed(uuid::Uuid, serde_json::Value),
    /// Claimable, but its org has `org_limit` runs in flight here.
    OrgFull,
    /// Taken already, or not claimable.
    Gone,
}

/// When a worker of this host last scanned for a run, and whether that scan
/// claimed one (more may be waiting; the first scan of a host counts as one
/// that did, so runs left from before a restart are found at once).
struct LastScan {
    at: Instant,
    found: bool,
}

/// Notified ids kept at most; beyond them the scan finds the runs.
const MAX_NOTIFIED: usize = 4096;

/// Dispatcher settings.
#[derive(Debug, Clone, Copy)]
pub struct DispatcherConfig {
    /// Concurrent advances on this host.
    pub workers: usize,
    /// How long a claim holds a run without progress.
    pub lease_secs: i32,
    /// Runs of one org this host advances at once; beyond them the org's
    /// runs wait for other orgs' turn (or another host).
    pub org_limit: i32,
    /// Sweep interval when no notification arrives.
    pub poll: Duration,
}

/// Runs the dispatcher until `shutdown` flips; in-flight advances finish.
pub async fn run(
    app: Arc<App>,
    db: PgPool,
    config: DispatcherConfig,
    shutdown: watch::Receiver<bool>,
) {
    if config.workers == 0 || !app.components.contains_key(AGENT_STEP) {
        tracing::info!("run dispatcher disabled");
        return;
    }
    let Some(secret) = app
        .variables
        .get(variables::SERVICE_SECRET)
        .map(str::to_string)
    else {
        tracing::error!("run dispatcher disabled: the service_secret variable has no value");
        return;
    };
    let owner = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4());
    let wake = Arc::new(Notify::new());
    let in_flight: InFlight = Arc::default();
    let notified: NotifiedRuns = Arc::default();
    let last_scan = Arc::new(Mutex::new(LastScan {
        at: Instant::now(),
        found: true,
    }));
    let claiming = Arc::new(tokio::sync::Mutex::new(None));
    tokio::spawn(listen(
        db.clone(),
        wake.clone(),
        notified.clone(),
        in_flight.clone(),
        shutdown.clone(),
    ));
    tracing::info!(
        workers = config.workers,
        lease_secs = config.lease_secs,
        org_limit = config.org_limit,
        "run dispatcher started"
    );
    let workers: Vec<_> = (0..config.workers)
        .map(|i| {
            let worker = Worker {
                app: app.clone(),
                db: db.clone(),
                in_flight: in_flight.clone(),
                notified: notified.clone(),
                last_scan: last_scan.clone(),
                claiming: claiming.clone(),
                host: format!("{owner}-"),
                owner: format!("{owner}-{i}"),
                secret: secret.clone(),
                config,
            };
            tokio::spawn(worker.run(wake.clone(), shutdown.clone()))
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
}

/// Turns `NOTIFY synatra_runs` into notified ids and wake-ups, and
/// `NOTIFY synatra_cancel` into interruptions of runs in flight here;
/// reconnects on failure.
async fn listen(
    db: PgPool,
    wake: Arc<Notify>,
    notified: NotifiedRuns,
    in_flight: InFlight,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let mut listener = match PgListener::connect_with(&db).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN for runs; relying on the sweep");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen_all([RUNS_CHANNEL, CANCEL_CHANNEL]).await {
            tracing::warn!(error = %e, "LISTEN failed");
            tokio::time::sleep(Duration::from_secs(5)).await;
            continue;
        }
        loop {
            tokio::select! {
                n = listener.recv() => match n {
                    Ok(n) if n.channel() == CANCEL_CHANNEL => {
                        if let Some(switch) = in_flight.lock().expect("in-flight map").switches.get(n.payload()) {
                            tracing::info!(run = n.payload(), "interrupting the running step");
                            let _ = switch.send(true);
                        }
                    }
                    // One idle worker per notification (a permit is kept
                    // if all are busy: the first to finish looks anyway).
                    Ok(n) => {
                        if let Ok(id) = n.payload().parse::<uuid::Uuid>() {
                            let mut ids = notified.lock().expect("notified runs");
                            if ids.len() < MAX_NOTIFIED {
                                ids.push_back((id, Instant::now()));
                            }
                        }
                        wake.notify_one();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "notification stream broke; reconnecting");
                        break;
                    }
                },
                _ = shutdown.changed() => return,
            }
        }
    }
}

struct Worker {
    app: Arc<App>,
    db: PgPool,
    in_flight: InFlight,
    notified: NotifiedRuns,
    last_scan: Arc<Mutex<LastScan>>,
    /// Held by the worker claiming, with the connection claims use: one of
    /// their own (claims take turns anyway), so a claim costs one round trip,
    /// not also the pool's check of the connection it takes back.
    claiming: Arc<tokio::sync::Mutex<Option<PgConnection>>>,
    /// This host's lease prefix (`{host}-{worker}:`).
    host: String,
    owner: String,
    secret: String,
    config: DispatcherConfig,
}

impl Worker {
    async fn run(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            // One claim at a time on this host: each counts the runs in
            // flight here (its org limit) with those of the claims before it.
            let claimed = {
                let mut conn = self.claiming.lock().await;
                self.claim(&mut conn)
                    .await
                    .map(|c| c.map(|c| (self.started(&c), c)))
            };
            match claimed {
                // A worker that advanced a run looks for the next at once,
                // so queued runs never wait for a notification; each
                // notification wakes one idle worker.
                Ok(Some((cancel, claimed))) => {
                    self.advance(&claimed, cancel).await;
                    self.ended(&claimed);
                }
                Ok(None) => {
                    tokio::select! {
                        _ = wake.notified() => {}
                        _ = tokio::time::sleep(self.config.poll) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming a run failed");
                    tokio::time::sleep(self.config.poll).await;
                }
            }
        }
    }

    /// Leases the oldest notified run that can be claimed (SQL `claim_run`:
    /// by its primary key) while its org has fewer than `org_limit` runs in
    /// flight here. It scans for a run that is ready (unleased or
    /// lease-expired) or whose durable timer is due, taking turns between
    /// orgs (SQL `claim_next_run`), first when notified runs have waited a
    /// sweep interval, else when the notified runs' orgs are full here, or
    /// none is left and the last scan found a run or was a sweep ago.
    async fn claim(&self, slot: &mut Option<PgConnection>) -> sqlx::Result<Option<Claimed>> {
        let mut conn = match slot.take() {
            Some(conn) => conn,
            None => self.db.connect_options().connect().await?,
        };
        let claimed = self.claim_on(&mut conn).await;
        // A connection that failed on the wire is replaced at the next claim.
        if !claimed.as_ref().is_err_and(broke_connection) {
            *slot = Some(conn);
        }
        claimed
    }

    async fn claim_on(&self, conn: &mut PgConnection) -> sqlx::Result<Option<Claimed>> {
        let lease = format!("{}:{}", self.owner, uuid::Uuid::new_v4());
        let sweep = self.sweep_due();
        if sweep {
            if let Some(claimed) = self.scan(conn, &lease).await? {
                return Ok(Some(claimed));
            }
        }
        let mut org_full = false;
        loop {
            // The lock is released before the claim's await.
            let next = self.notified.lock().expect("notified runs").pop_front();
            let Some((run, at)) = next else {
                break;
            };
            match self.claim_notified(conn, run, &lease).await? {
                Notified::Claimed(org, loaded) => {
                    self.app.metrics.run_claimed("id");
                    return Ok(Some(Claimed {
                        run_id: run.to_string(),
                        org,
                        lease,
                        run: loaded,
                    }));
                }
                // It waits for a run of its org to end here; meanwhile
                // the scan takes turns between the other orgs.
                Notified::OrgFull => {
                    let mut ids = self.notified.lock().expect("notified runs");
                    ids.push_front((run, at));
                    org_full = true;
                    break;
                }
                Notified::Gone => {}
            }
        }
        // With no notified run left, ready runs no notification named
        // (due timers, expired leases) wait for the sweep: an empty scan
        // counts every org's leases, and a worker that found none after
        // each run it advanced cost the database more than the run's claim.
        if sweep || !(org_full || self.scan_due()) {
            return Ok(None);
        }
        self.scan(conn, &lease).await
    }

    /// Leases the ready run next in turn between orgs (SQL `claim_next_run`).
    async fn scan(&self, conn: &mut PgConnection, lease: &str) -> sqlx::Result<Option<Claimed>> {
        let (run, loaded): (Option<uuid::Uuid>, Option<serde_json::Value>) = sqlx::query_as(
            "SELECT c.id, CASE WHEN c.id IS NOT NULL THEN load_run(c.id, $1) END
             FROM (SELECT claim_next_run($1, $2, NULL, $3, $4) AS id) c",
        )
        .bind(lease)
        .bind(self.config.lease_secs)
        .bind(self.config.org_limit)
        .bind(&self.host)
        .fetch_one(&mut *conn)
        .await?;
        *self.last_scan.lock().expect("last scan") = LastScan {
            at: Instant::now(),
            found: run.is_some(),
        };
        let Some(run) = run else {
            self.app.metrics.empty_scan();
            return Ok(None);
        };
        // Not expected (the claim and the load share a transaction); the
        // lease then expires and the run is claimed again.
        let loaded = loaded.ok_or_else(|| {
            sqlx::Error::Decode(format!("run {run} was claimed but could not be loaded").into())
        })?;
        self.app.metrics.run_claimed("scan");
        let org = loaded["org_id"]
            .as_str()
            .and_then(|org| org.parse().ok())
            .ok_or_else(|| sqlx::Error::Decode("load_run returned no org".into()))?;
        Ok(Some(Claimed {
            run_id: run.to_string(),
            org,
            lease: lease.to_string(),
            run: loaded,
        }))
    }

    /// Tries to lease notified run `run` (SQL `claim_run`).
    async fn claim_notified(
        &self,
        conn: &mut PgConnection,
        run: uuid::Uuid,
        lease: &str,
    ) -> sqlx::Result<Notified> {
        let full: Vec<uuid::Uuid> = {
            let in_flight = self.in_flight.lock().expect("in-flight map");
            in_flight
                .per_org
                .iter()
                .filter(|(_, n)| **n >= self.config.org_limit)
                .map(|(org, _)| *org)
                .collect()
        };
        let row: Option<(uuid::Uuid, bool, Option<serde_json::Value>)> = sqlx::query_as(
            "SELECT c.org_id, c.claimed, CASE WHEN c.claimed THEN load_run($1, $2) END
             FROM claim_run($1, $2, $3, $4) c",
        )
        .bind(run)
        .bind(lease)
        .bind(self.config.lease_secs)
        .bind(&full)
        .fetch_optional(conn)
        .await?;
        Ok(match row {
            Some((org, true, Some(loaded))) => Notified::Claimed(org, loaded),
            Some((_, false, _)) => Notified::OrgFull,
            _ => Notified::Gone,
        })
    }

    /// Whether this claim scans first: the oldest notified run has waited
    /// a sweep interval, and so has this host's last scan. Then due timers,
    /// expired leases and runs no notification named still get their turn
    /// while notified runs keep every worker busy.
    fn sweep_due(&self) -> bool {
        let waited = |at: &Instant| at.elapsed() >= self.config.poll;
        let backlog = self
            .notified
            .lock()
            .expect("notified runs")
            .front()
            .is_some_and(|(_, at)| waited(at));
        backlog && waited(&self.last_scan.lock().expect("last scan").at)
    }

    /// Whether a worker with no notified run left scans: the last scan of
    /// this host found a run, or was a sweep interval ago.
    fn scan_due(&self) -> bool {
        let last = self.last_scan.lock().expect("last scan");
        last.found || last.at.elapsed() >= self.config.poll
    }

    /// Counts a claimed run in flight here; returns what interrupts it.
    fn started(&self, claimed: &Claimed) -> watch::Receiver<bool> {
        let (switch, cancel) = watch::channel(false);
        let mut in_flight = self.in_flight.lock().expect("in-flight map");
        in_flight.switches.insert(claimed.run_id.clone(), switch);
        *in_flight.per_org.entry(claimed.org).or_default() += 1;
        cancel
    }

    /// Forgets a run no longer in flight here.
    fn ended(&self, claimed: &Claimed) {
        let mut in_flight = self.in_flight.lock().expect("in-flight map");
        in_flight.switches.remove(&claimed.run_id);
        if let Some(n) = in_flight.per_org.get_mut(&claimed.org) {
            *n -= 1;
            if *n <= 0 {
                in_flight.per_org.remove(&claimed.org);
            }
        }
    }

    /// Extends the lease of a run this host is executing.
    /// Keeps the lease at one lease length from now while this host is
    /// alive. Unlike the agent step's `hold_lease` (at least that long, for
    /// one long call) it also shortens a long hold: a live host renews it,
    /// so a crash is recovered within one lease, not one tool timeout.
    async fn renew(&self, run_id: &str, lease: &str) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE runs SET lease_expires_at = now() + $3 * interval '1 second'
             WHERE id = $1::uuid AND lease_owner = $2",
        )
        .bind(run_id)
        .bind(lease)
        .bind(self.config.lease_secs)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// Calls the agent step for one claimed run.
    async fn advance(&self, claimed: &Claimed, cancel: watch::Receiver<bool>) {
        let (run_id, lease) = (claimed.run_id.as_str(), claimed.lease.as_str());
        let body = serde_json::json!({
            "run_id": run_id,
            "lease": lease,
            "lease_secs": self.config.lease_secs,
            "run": claimed.run,
        });
        let request = http::Request::post(AGENT_STEP_ADVANCE)
            .header("content-type", "application/json")
            .header(headers::SERVICE_SECRET, &self.secret)
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("valid request");
        // The lease is renewed while the step works (a model or tool call may
        // outlast it); if this host dies, renewal stops and the lease expires.
        let dispatched = {
            let step = self
                .app
                .dispatch_cancellable(AGENT_STEP, request, 0, Some(cancel));
            tokio::pin!(step);
            let every = renew_interval(self.config.lease_secs);
            loop {
                tokio::select! {
                    result = &mut step => break result,
                    () = tokio::time::sleep(every) => {
                        if let Err(e) = self.renew(run_id, lease).await {
                            tracing::warn!(run = run_id, error = %e, "could not renew the lease");
                        }
                    }
                }
            }
        };
        if let Err(DispatchError::Cancelled(_)) = dispatched {
            self.app.metrics.run_advance("interrupted");
            if let Err(e) = self.finish_cancelled(run_id, lease).await {
                tracing::warn!(run = run_id, error = %e, "could not record the cancellation");
            }
            return;
        }
        let result = match dispatched {
            Ok(response) => {
                let status = response.status();
                let body = response.into_body().collect().await.map(|b| b.to_bytes());
                match body {
                    Ok(bytes) if status.is_success() => Ok(bytes),
                    Ok(bytes) => Err(format!(
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&bytes)
                    )),
                    Err(e) => Err(format!("response body failed: {e}")),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(bytes) => {
                let outcome = serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| v["outcome"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "unknown".into());
                tracing::info!(run = run_id, outcome = %outcome, "run advanced");
                self.app.metrics.run_advance(&outcome);
            }
            Err(error) => {
                tracing::error!(run = run_id, error = %error, "agent step failed");
                self.app.metrics.run_advance("crashed");
                if let Err(e) = self.record_crash(run_id, lease, &error).await {
                    tracing::warn!(run = run_id, error = %e, "could not record the failed advance");
                }
            }
        }
    }

    /// Records a run whose step was interrupted by cancellation (SQL
    /// `end_run`, as the agent step ends runs).
    async fn finish_cancelled(&self, run_id: &str, lease: &str) -> sqlx::Result<()> {
        sqlx::query("SELECT end_run($1::uuid, $2, 'cancelled', NULL, 0)")
            .bind(run_id)
            .bind(lease)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// Releases the lease after a failed advance, with backoff; fails the
    /// run after [`MAX_CRASHES`].
    async fn record_crash(&self, run_id: &str, lease: &str, error: &str) -> sqlx::Result<()> {
        sqlx::query("SELECT record_run_crash($1::uuid, $2, $3, $4)")
            .bind(run_id)
            .bind(lease)
            .bind(error)
            .bind(MAX_CRASHES)
            .execute(&self.db)
            .await?;
        Ok(())
    }
}
