//! `threads`, `thread_messages`, `runs`, `run_steps`, `run_events`: the SQL
//! of durable runs, shared by the API (which starts runs) and the agent-step
//! component (which advances them).

use serde::Deserialize;
use serde_json::Value;
use spin_sdk::pg4::ParameterValue::{self, Boolean, DbNull, Int32, Int64};
use synatra_runs::projection::Projection;
use synatra_runs::{Ending, RunStatus, ThreadStatus};

use crate::{
    jsonb, opt_text, opt_uuid, text, uuid, Db, DbError, DbResult, FromRow, Row, Timestamp,
};

pub use synatra_names::channels::{CANCEL as CANCEL_CHANNEL, RUNS as RUNS_CHANNEL};

/// Fields of a new thread.
pub struct NewThread<'a> {
    pub org_id: &'a str,
    pub agent_id: &'a str,
    pub channel_id: Option<&'a str>,
    pub environment_id: Option<&'a str>,
    pub kind: &'a str,
    pub subject: Option<&'a str>,
    pub created_by: Option<&'a str>,
}

/// Creates a thread; returns its id.
pub fn create_thread(db: &Db, t: &NewThread) -> DbResult<String> {
    db
        .query_one(
            "INSERT INTO threads (org_id, agent_id, channel_id, environment_id, kind, subject, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &t.params(),
        )?
        .str("id")
}

impl NewThread<'_> {
    /// The thread's fields as statement parameters, in column order.
    fn params(&self) -> Vec<ParameterValue> {
        vec![
            uuid(self.org_id),
            uuid(self.agent_id),
            opt_uuid(self.channel_id),
            opt_uuid(self.environment_id),
            text(self.kind),
            opt_text(self.subject),
            opt_uuid(self.created_by),
        ]
    }
}

/// Appends a message to a thread with the `message` event announcing it
/// (SQL `add_message`, one statement); returns its id.
pub fn add_message(
    db: &Db,
    thread_id: &str,
    run_id: Option<&str>,
    kind: &str,
    content: &Value,
) -> DbResult<i64> {
    db.query_one(
        "SELECT add_message($1, $2, $3, $4) AS id",
        &[
            uuid(thread_id),
            opt_uuid(run_id),
            text(kind),
            jsonb(content),
        ],
    )?
    .i64("id")
}

/// Appends an event to the thread's stream (streams poll the log).
pub fn add_event(
    db: &Db,
    thread_id: &str,
    run_id: Option<&str>,
    kind: &str,
    data: &Value,
) -> DbResult<()> {
    db.execute(
        "INSERT INTO run_events (thread_id, run_id, kind, data) VALUES ($1, $2, $3, $4)",
        &[uuid(thread_id), opt_uuid(run_id), text(kind), jsonb(data)],
    )?;
    Ok(())
}

/// Fields of a new run.
pub struct NewRun<'a> {
    pub org_id: &'a str,
    pub thread_id: &'a str,
    pub agent_id: &'a str,
    pub release_id: Option<&'a str>,
    pub config: &'a Value,
    pub input_upto: i64,
    /// The run this one answers a delegated tool call for.
    pub parent_run_id: Option<&'a str>,
    /// Who started it: a person, or an API key (a delegated run inherits
    /// its parent's).
    pub started_by: Option<&'a str>,
    pub started_by_key: Option<&'a str>,
}

/// Creates a ready run, sets the thread active, announces the run and
/// wakes a dispatcher (SQL `create_run`, one statement).
pub fn create_run(db: &Db, r: &NewRun) -> DbResult<String> {
    db.query_one(
        "SELECT create_run($1, $2, $3, $4, $5, $6, $7, $8, $9)::text AS id",
        &[
            uuid(r.org_id),
            uuid(r.thread_id),
            uuid(r.agent_id),
            opt_uuid(r.release_id),
            jsonb(r.config),
            Int64(r.input_upto),
            opt_uuid(r.parent_run_id),
            opt_uuid(r.started_by),
            opt_uuid(r.started_by_key),
        ],
    )?
    .str("id")
}

/// Creates a thread with its first user message and the ready run that
/// answers it (SQL `start_thread`, one statement); returns the new thread
/// and the run's id. The run's `thread_id` and `input_upto` are the new
/// thread's and message's; it has no parent. The thread is built from what
/// was written: it starts active, and its times are the statement's
/// transaction time (`now()`, which the insert's defaults used too).
pub fn start_thread(
    db: &Db,
    t: &NewThread,
    message: &Value,
    run: &FirstRun,
) -> DbResult<(Thread, String)> {
    let r = db.query_one(
        "SELECT new_thread::text AS thread_id, new_run::text AS run_id,
                now() AT TIME ZONE 'UTC' AS created_at
         FROM start_thread($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            t.params(),
            vec![
                jsonb(message),
                opt_uuid(run.release_id),
                jsonb(run.config),
                opt_uuid(run.started_by),
                opt_uuid(run.started_by_key),
            ],
        ]
        .concat(),
    )?;
    let created_at: Timestamp = r.get("created_at")?;
    let thread = Thread {
        id: r.str("thread_id")?,
        agent_id: t.agent_id.to_string(),
        channel_id: t.channel_id.map(str::to_string),
        environment_id: t.environment_id.map(str::to_string),
        kind: t.kind.to_string(),
        subject: t.subject.map(str::to_string),
        status: ThreadStatus::Active,
        created_at: created_at.clone(),
        updated_at: created_at,
    };
    Ok((thread, r.str("run_id")?))
}

/// The run a new thread starts with (see [`start_thread`]).
pub struct FirstRun<'a> {
    pub release_id: Option<&'a str>,
    pub config: &'a Value,
    pub started_by: Option<&'a str>,
    pub started_by_key: Option<&'a str>,
}

/// Sets a thread's status.
pub fn set_thread_status(db: &Db, thread_id: &str, status: ThreadStatus) -> DbResult<()> {
    db.execute(
        "UPDATE threads SET status = $2, updated_at = now() WHERE id = $1",
        &[uuid(thread_id), text(status.as_str())],
    )?;
    Ok(())
}

/// Records a failed advance of a run held by `lease`: backs off, and fails
/// the run after `max_crashes` (the same rule as the host's dispatcher).
pub fn record_crash(
    db: &Db,
    run_id: &str,
    lease: &str,
    error: &str,
    max_crashes: i32,
) -> DbResult<()> {
    db.execute(
        "SELECT record_run_crash($1, $2, $3, $4)",
        &[uuid(run_id), text(lease), text(error), Int32(max_crashes)],
    )?;
    Ok(())
}

/// Locks a thread's row until the transaction ends.
pub fn lock_thread(db: &Db, thread_id: &str) -> DbResult<()> {
    db.execute(
        "SELECT 1 FROM threads WHERE id = $1 FOR UPDATE",
        &[uuid(thread_id)],
    )?;
    Ok(())
}

/// Whether the thread has a run that has not finished.
pub fn has_unfinished_run(db: &Db, thread_id: &str) -> DbResult<bool> {
    Ok(db
        .query_opt(
            "SELECT 1 AS one FROM runs WHERE thread_id = $1 AND status IN ('ready', 'waiting') LIMIT 1",
            &[uuid(thread_id)],
        )?
        .is_some())
}

/// Asks unfinished runs of a thread (and of the sub-agents working for
/// them) to stop. Runs nobody is executing stop at once; a leased run is
/// interrupted by the host executing it. Returns how many runs were asked.
pub fn request_cancel(db: &Db, thread_id: &str) -> DbResult<u64> {
    // Sub-agent runs working for this thread's runs are cancelled with them.
    let children = db.query(
        "SELECT DISTINCT c.thread_id FROM runs c JOIN runs p ON p.id = c.parent_run_id
         WHERE p.thread_id = $1 AND p.status IN ('ready', 'waiting') AND c.status IN ('ready', 'waiting')",
        &[uuid(thread_id)],
    )?;
    let mut asked = 0;
    for child in &children {
        asked += request_cancel(db, &child.str("thread_id")?)?;
    }
    asked += db.execute(
        "UPDATE runs SET cancel_requested = true, updated_at = now()
         WHERE thread_id = $1 AND status IN ('ready', 'waiting')",
        &[uuid(thread_id)],
    )?;
    // A run some host is executing is interrupted mid-step by that host.
    db.execute(
        "SELECT pg_notify($2, id::text) FROM runs
         WHERE thread_id = $1 AND status IN ('ready', 'waiting') AND lease_expires_at >= now()",
        &[uuid(thread_id), text(CANCEL_CHANNEL)],
    )?;
    let stopped = db.query(
        "UPDATE runs SET status = 'cancelled', finished_at = now(), updated_at = now()
         WHERE thread_id = $1 AND status IN ('ready', 'waiting')
           AND (lease_expires_at IS NULL OR lease_expires_at < now())
         RETURNING id",
        &[uuid(thread_id)],
    )?;
    if !stopped.is_empty() && !has_unfinished_run(db, thread_id)? {
        set_thread_status(db, thread_id, ThreadStatus::Cancelled)?;
    }
    for r in &stopped {
        add_event(
            db,
            thread_id,
            Some(&r.str("id")?),
            "run",
            &serde_json::json!({ "run_id": r.str("id")?, "status": "cancelled" }),
        )?;
    }
    Ok(asked)
}

/// A run as the agent step sees it.
#[derive(Deserialize)]
pub struct RunState {
    pub id: String,
    pub org_id: String,
    pub thread_id: String,
    /// The thread's environment (whose provider credentials the run uses).
    pub environment_id: Option<String>,
    /// The thread's channel.
    pub channel_id: Option<String>,
    pub config: Value,
    pub input_upto: i64,
    pub status: String,
    pub cancel_requested: bool,
    #[serde(rename = "leased")]
    pub leased_by_caller: bool,
    pub active_ms: i64,
    pub retries: i32,
    /// The credential of the run's model provider in its environment, as
    /// the gateway sealed it (`credentials::Travelling`), passed on unopened.
    #[serde(default)]
    pub credential: Option<Value>,
}

/// A run loaded to be advanced: its state, its recorded step outputs in
/// order, and the thread messages it answers (`(kind, content)` up to its
/// input), as SQL `load_run` returns it (a claim may hand it over).
#[derive(Deserialize)]
pub struct LoadedRun {
    #[serde(flatten)]
    pub run: RunState,
    pub steps: Vec<Value>,
    pub history: Vec<(String, Value)>,
}

impl LoadedRun {
    /// Reads what SQL `load_run` returned.
    pub fn from_json(loaded: Value) -> DbResult<Self> {
        serde_json::from_value(loaded).map_err(|e| DbError::Other(format!("unreadable run: {e}")))
    }
}

/// Loads a run to advance, telling whether `lease` currently holds it (SQL
/// `load_run`).
pub fn load_run(db: &Db, run_id: &str, lease: &str) -> DbResult<Option<LoadedRun>> {
    let row = db.query_opt(
        "SELECT load_run($1, $2) AS run",
        &[uuid(run_id), text(lease)],
    )?;
    match row.map(|r| r.json("run")).transpose()? {
        None | Some(Value::Null) => Ok(None),
        Some(loaded) => LoadedRun::from_json(loaded).map(Some),
    }
}

/// The lease fence: extends the lease if `lease` still holds the run.
/// `Err(DbError::LeaseLost)` when it does not: another worker owns
/// the run now and this one must stop without recording anything.
pub fn fence(db: &Db, run_id: &str, lease: &str, lease_secs: i32, spent_ms: i64) -> DbResult<()> {
    let n = db.execute(
        "UPDATE runs SET lease_expires_at = now() + $3::int * interval '1 second',
                active_ms = active_ms + $4, updated_at = now()
         WHERE id = $1 AND lease_owner = $2 AND lease_expires_at > now() AND status = 'ready'",
        &[
            uuid(run_id),
            text(lease),
            Int32(lease_secs),
            Int64(spent_ms),
        ],
    )?;
    if n == 1 {
        Ok(())
    } else {
        Err(DbError::LeaseLost)
    }
}

/// Extends `lease`'s hold on a run to at least `secs` from now, before a
/// call that may take that long; false when the lease is gone. Unlike
/// [`fence`] it records nothing (SQL `hold_lease`).
pub fn hold_lease(db: &Db, run_id: &str, lease: &str, secs: i32) -> DbResult<bool> {
    db.query_one(
        "SELECT hold_lease($1, $2, $3) AS held",
        &[uuid(run_id), text(lease), Int32(secs)],
    )?
    .bool("held")
}

/// A step to record, with what the thread shows of it.
pub struct StepRecord<'a> {
    pub run_id: &'a str,
    pub lease: &'a str,
    pub lease_secs: i32,
    /// Active time since the last fence, added to the run's.
    pub spent_ms: i64,
    pub seq: i32,
    pub kind: &'a str,
    pub idempotency_key: &'a str,
    pub input: &'a Value,
    pub output: &'a Value,
    pub projection: &'a Projection,
    /// The run ends with this status once the step is recorded (as
    /// `cancelled` if someone asked it to stop), in the same statement.
    pub end: Option<RunStatus>,
}

/// What recording a step found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Recorded,
    /// Recorded, and someone asked the run to stop.
    CancelRequested,
    /// Recorded, and the run ended with this status (see [`StepRecord::end`]).
    Ended(RunStatus),
}

/// Records a step in one statement (SQL `record_step`: fence, step,
/// events, messages, usage, notification, and the run's end when asked).
/// [`DbError::LeaseLost`] when the lease is gone; a duplicate
/// `(run_id, seq)` is a unique violation.
pub fn record_step(db: &Db, s: &StepRecord) -> DbResult<Recorded> {
    let p = s.projection;
    let answer = db
        .query_one(
            "SELECT record_step($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) AS answer",
            &[
                uuid(s.run_id),
                text(s.lease),
                Int32(s.lease_secs),
                Int64(s.spent_ms),
                Int32(s.seq),
                text(s.kind),
                text(s.idempotency_key),
                jsonb(s.input),
                jsonb(s.output),
                jsonb(&Value::from(p.messages.clone())),
                jsonb(&Value::from(p.events.clone())),
                Int64(p.tokens_in),
                Int64(p.tokens_out),
                opt_text(s.end.map(RunStatus::as_str)),
            ],
        )?
        .str("answer")?;
    if let Some(status) = answer.strip_prefix("ended ").and_then(RunStatus::parse) {
        return Ok(Recorded::Ended(status));
    }
    match answer.as_str() {
        "recorded" => Ok(Recorded::Recorded),
        "cancel_requested" => Ok(Recorded::CancelRequested),
        _ => Err(DbError::LeaseLost),
    }
}

/// Ends the run `lease` holds (SQL `end_run`: status, error message, thread
/// status, event). [`DbError::LeaseLost`] when the lease is gone.
pub fn end_run(db: &Db, run_id: &str, lease: &str, ending: &Ending, spent_ms: i64) -> DbResult<()> {
    let ended = db
        .query_one(
            "SELECT end_run($1, $2, $3, $4, $5) AS ended",
            &[
                uuid(run_id),
                text(lease),
                text(ending.run_status().as_str()),
                opt_text(ending.error()),
                Int64(spent_ms),
            ],
        )?
        .bool("ended")?;
    if ended {
        Ok(())
    } else {
        Err(DbError::LeaseLost)
    }
}

/// Releases the lease so the run is picked up again, optionally not before
/// `delay_ms` (a durable timer), counting a retry when `retry`.
pub fn hand_back(
    db: &Db,
    run_id: &str,
    lease: &str,
    delay_ms: Option<i64>,
    retry: bool,
) -> DbResult<()> {
    db.execute(
        "UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL,
                wake_at = CASE WHEN $3::bigint IS NULL THEN NULL ELSE now() + $3::bigint * interval '1 millisecond' END,
                retries = retries + CASE WHEN $4 THEN 1 ELSE 0 END, updated_at = now()
         WHERE id = $1 AND lease_owner = $2",
        &[uuid(run_id), text(lease), delay_ms.map(Int64).unwrap_or(DbNull), Boolean(retry)],
    )?;
    db.execute(
        "SELECT pg_notify($1, $2)",
        &[text(RUNS_CHANNEL), text(run_id)],
    )?;
    Ok(())
}

/// A thread as the API lists and shows it.
pub struct Thread {
    pub id: String,
    pub agent_id: String,
    pub channel_id: Option<String>,
    pub environment_id: Option<String>,
    pub kind: String,
    pub subject: Option<String>,
    pub status: ThreadStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl FromRow for Thread {
    fn from_row(r: &Row) -> DbResult<Self> {
        Ok(Self {
            id: r.get("id")?,
            agent_id: r.get("agent_id")?,
            channel_id: r.get("channel_id")?,
            environment_id: r.get("environment_id")?,
            kind: r.get("kind")?,
            subject: r.get("subject")?,
            status: r.get("status")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

/// Columns [`Thread`] reads.
const THREAD_COLUMNS: &str =
    "id, agent_id, channel_id, environment_id, kind, subject, status, created_at AT TIME ZONE 'UTC' AS created_at, updated_at AT TIME ZONE 'UTC' AS updated_at";

/// A thread of an org by id.
pub fn thread(db: &Db, org_id: &str, thread_id: &str) -> DbResult<Option<Thread>> {
    db.query_opt_as(
        &format!("SELECT {THREAD_COLUMNS} FROM threads WHERE org_id = $1 AND id = $2"),
        &[uuid(org_id), uuid(thread_id)],
    )
}

/// One entry of a thread's conversation.
pub struct ThreadMessage {
    pub id: i64,
    pub run_id: Option<String>,
    pub kind: String,
    pub content: Value,
    pub created_at: Timestamp,
}

impl FromRow for ThreadMessage {
    fn from_row(r: &Row) -> DbResult<Self> {
        Ok(Self {
            id: r.get("id")?,
            run_id: r.get("run_id")?,
            kind: r.get("kind")?,
            content: r.get("content")?,
            created_at: r.get("created_at")?,
        })
    }
}

/// A thread's messages after message `after`, oldest first, at most `limit`.
pub fn messages(db: &Db, thread_id: &str, after: i64, limit: i64) -> DbResult<Vec<ThreadMessage>> {
    // An approval message shows the approval as it is now (its decision
    // came later than the message).
    db.query_as(
        "SELECT m.id, m.run_id, m.kind,
                CASE WHEN a.id IS NULL THEN m.content
                     ELSE m.content || jsonb_build_object(
                         'status', a.status, 'final_params', a.final_params, 'comment', a.comment,
                         'decided_by', a.decided_by,
                         'decided_at', to_char(a.decided_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))
                END AS content,
                m.created_at AT TIME ZONE 'UTC' AS created_at
         FROM thread_messages m
         LEFT JOIN approvals a
                ON a.id = CASE WHEN m.kind = 'approval' THEN (m.content->>'id')::uuid END
         WHERE m.thread_id = $1 AND m.id > $2::bigint ORDER BY m.id LIMIT $3::bigint",
        &[uuid(thread_id), Int64(after), Int64(limit)],
    )
}

/// The release a run executes: its id and semver.
pub struct ReleaseRef {
    pub id: String,
    pub version: String,
}

/// A run as its thread shows it.
pub struct RunSummary {
    pub id: String,
    pub status: RunStatus,
    pub error: Option<String>,
    pub parent_run_id: Option<String>,
    /// None for a playground run of the working copy.
    pub release: Option<ReleaseRef>,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub active_ms: i64,
    /// Recorded steps.
    pub steps: i64,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

impl FromRow for RunSummary {
    fn from_row(r: &Row) -> DbResult<Self> {
        let release = match r.get::<Option<String>>("release_id")? {
            Some(id) => Some(ReleaseRef {
                id,
                version: r.get("release_version")?,
            }),
            None => None,
        };
        Ok(Self {
            id: r.get("id")?,
            status: r.get("status")?,
            error: r.get("error")?,
            parent_run_id: r.get("parent_run_id")?,
            release,
            tokens_in: r.get("tokens_in")?,
            tokens_out: r.get("tokens_out")?,
            active_ms: r.get("active_ms")?,
            steps: r.get("steps")?,
            created_at: r.get("created_at")?,
            finished_at: r.get("finished_at")?,
        })
    }
}

/// A thread's runs in order.
pub fn runs(db: &Db, thread_id: &str) -> DbResult<Vec<RunSummary>> {
    db.query_as(
        "SELECT r.id, r.status, r.error, r.tokens_in, r.tokens_out, r.active_ms, r.created_at AT TIME ZONE 'UTC' AS created_at, r.finished_at AT TIME ZONE 'UTC' AS finished_at,
                r.parent_run_id,
                r.release_id, ar.version AS release_version,
                (SELECT count(*) FROM run_steps s WHERE s.run_id = r.id) AS steps
         FROM runs r LEFT JOIN agent_releases ar ON ar.id = r.release_id
         WHERE r.thread_id = $1 ORDER BY r.created_at",
        &[uuid(thread_id)],
    )
}

/// Filters of a thread listing.
pub struct ThreadFilter<'a> {
    pub status: Option<ThreadStatus>,
    pub agent_id: Option<&'a str>,
    pub channel_id: Option<&'a str>,
    /// Only threads in these channels, comma-separated ids (None: all).
    pub in_channels: Option<&'a str>,
    /// Keyset cursor: the last thread id of the previous page.
    pub after: Option<&'a str>,
    pub limit: i64,
}

/// A page of an org's threads, newest first.
pub fn list_threads(db: &Db, org_id: &str, f: &ThreadFilter) -> DbResult<Vec<Thread>> {
    db.query_as(
            &format!(
                "SELECT {THREAD_COLUMNS} FROM threads t
                 WHERE t.org_id = $1
                   AND ($2::text IS NULL OR t.status = $2)
                   AND ($3::uuid IS NULL OR t.agent_id = $3)
                   AND ($4::uuid IS NULL OR t.channel_id = $4)
                   AND ($5::text IS NULL OR t.channel_id = ANY (string_to_array($5, ',')::uuid[]))
                   AND ($6::uuid IS NULL OR (t.created_at, t.id) < (SELECT created_at, id FROM threads WHERE id = $6))
                 ORDER BY t.created_at DESC, t.id DESC
                 LIMIT $7"
            ),
            &[
                uuid(org_id),
                opt_text(f.status.map(ThreadStatus::as_str)),
                opt_uuid(f.agent_id),
                opt_uuid(f.channel_id),
                opt_text(f.in_channels),
                opt_uuid(f.after),
                Int64(f.limit),
            ],
        )
}

/// The latest run's pinned release and config, to continue a thread with.
pub fn latest_run_config(db: &Db, thread_id: &str) -> DbResult<Option<(Option<String>, Value)>> {
    db.query_opt(
        "SELECT release_id, config FROM runs WHERE thread_id = $1 ORDER BY created_at DESC LIMIT 1",
        &[uuid(thread_id)],
    )?
    .map(|r| -> DbResult<_> { Ok((r.opt_str("release_id")?, r.json("config")?)) })
    .transpose()
}

/// A thread's channel and kind, for access checks.
pub fn thread_access(
    db: &Db,
    org_id: &str,
    thread_id: &str,
) -> DbResult<Option<(Option<String>, String)>> {
    db.query_opt(
        "SELECT channel_id, kind FROM threads WHERE org_id = $1 AND id = $2",
        &[uuid(org_id), uuid(thread_id)],
    )?
    .map(|r| -> DbResult<_> { Ok((r.opt_str("channel_id")?, r.str("kind")?)) })
    .transpose()
}

/// Events of a thread after event `after`, oldest first: `(id, kind, data)`
/// (SQL view `thread_events`: its events and messages).
pub fn events_after(
    db: &Db,
    thread_id: &str,
    after: i64,
    limit: i64,
) -> DbResult<Vec<(i64, String, Value)>> {
    db
        .query(
            "SELECT id, kind, data FROM thread_events WHERE thread_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            &[uuid(thread_id), Int64(after), Int64(limit)],
        )?
        .iter()
        .map(|r| -> DbResult<_> { Ok((r.i64("id")?, r.str("kind")?, r.json("data")?)) })
        .collect::<DbResult<Vec<_>>>()
}

/// Whether the thread's runs have all finished (nothing more will stream).
pub fn thread_settled(db: &Db, thread_id: &str) -> DbResult<bool> {
    Ok(!has_unfinished_run(db, thread_id)?)
}

/// Puts the run to sleep on a durable timer for `delay_ms`, releasing the
/// lease; any host's dispatcher wakes it when due.
pub fn sleep_until(db: &Db, run_id: &str, lease: &str, delay_ms: i64) -> DbResult<()> {
    db.execute(
        // A cancellation asked for meanwhile keeps the run ready, so it ends now.
        "UPDATE runs SET status = CASE WHEN cancel_requested THEN 'ready' ELSE 'waiting' END,
                wake_at = CASE WHEN cancel_requested THEN NULL
                               ELSE now() + $3::bigint * interval '1 millisecond' END,
                lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
         WHERE id = $1 AND lease_owner = $2",
        &[uuid(run_id), text(lease), Int64(delay_ms)],
    )?;
    Ok(())
}

/// Sets a parked run's durable timer `delay_ms` from now.
pub fn set_wake(db: &Db, run_id: &str, delay_ms: i64) -> DbResult<()> {
    db.execute(
        "UPDATE runs SET wake_at = now() + $2::bigint * interval '1 millisecond' WHERE id = $1",
        &[uuid(run_id), Int64(delay_ms)],
    )?;
    Ok(())
}

/// The agents of run `run_id` and of the runs that delegated to it, from
/// this run up to the thread's own run.
pub fn delegation_chain(db: &Db, run_id: &str) -> DbResult<Vec<String>> {
    db.query(
        "WITH RECURSIVE chain AS (
             SELECT id, parent_run_id, agent_id, 0 AS depth FROM runs WHERE id = $1
             UNION ALL
             SELECT r.id, r.parent_run_id, r.agent_id, c.depth + 1
             FROM runs r JOIN chain c ON r.id = c.parent_run_id WHERE c.depth < 64)
         SELECT agent_id::text AS agent_id FROM chain ORDER BY depth",
        &[uuid(run_id)],
    )?
    .iter()
    .map(|r| r.str("agent_id"))
    .collect()
}

/// How a child run ended: `(status, error, final answer)`.
pub fn child_outcome(
    db: &Db,
    child_run_id: &str,
) -> DbResult<Option<(String, Option<String>, String)>> {
    db
        .query_opt(
            "SELECT r.status, r.error,
                    coalesce((SELECT m.content->>'text' FROM thread_messages m
                              WHERE m.run_id = r.id AND m.kind = 'assistant' ORDER BY m.id DESC LIMIT 1), '') AS answer
             FROM runs r WHERE r.id = $1",
            &[uuid(child_run_id)],
        )?
        .map(|r| -> DbResult<_> { Ok((r.str("status")?, r.opt_str("error")?, r.str("answer")?)) })
        .transpose()
}

/// A sub-agent an agent may delegate to: by slug or id in the org, with
/// its current release.
pub struct SubAgent {
    pub agent_id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub release_id: String,
    pub config: Value,
}

/// Resolves a sub-agent; None if it does not exist, is archived or has no release.
pub fn subagent(db: &Db, org_id: &str, key: &str) -> DbResult<Option<SubAgent>> {
    db.query_opt_as(
            "SELECT a.id, a.slug, a.name, coalesce(a.description, '') AS description, r.id AS release_id, r.config
             FROM agents a JOIN agent_releases r ON r.id = a.current_release_id
             WHERE a.org_id = $1 AND (a.slug = $2 OR a.id::text = $2) AND a.archived_at IS NULL",
            &[uuid(org_id), text(key)],
        )
}

impl FromRow for SubAgent {
    fn from_row(r: &Row) -> DbResult<Self> {
        Ok(Self {
            agent_id: r.get("id")?,
            slug: r.get("slug")?,
            name: r.get("name")?,
            description: r.get("description")?,
            release_id: r.get("release_id")?,
            config: r.get("config")?,
        })
    }
}

/// Leases the next due run (of `org_id`, or of any org) to `lease` for
/// `lease_secs`: the `claim_next_run` rule the host's dispatcher uses too.
pub fn claim_next(
    db: &Db,
    org_id: Option<&str>,
    lease: &str,
    lease_secs: i32,
) -> DbResult<Option<String>> {
    db.query_one(
        "SELECT claim_next_run($1, $2, $3)::text AS id",
        &[text(lease), Int32(lease_secs), opt_uuid(org_id)],
    )?
    .opt_str("id")
}

/// Opens a human request for a run's `human_request` call; returns its id.
pub fn create_human_request(
    db: &Db,
    run: &RunState,
    call_id: &str,
    request: &Value,
) -> DbResult<String> {
    db.query_one(
        "INSERT INTO human_requests (org_id, thread_id, run_id, call_id, request)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        &[
            uuid(&run.org_id),
            uuid(&run.thread_id),
            uuid(&run.id),
            text(call_id),
            jsonb(request),
        ],
    )?
    .str("id")
}

/// A human request's status and response.
pub fn human_request(db: &Db, id: &str) -> DbResult<Option<(String, Value)>> {
    db.query_opt(
        "SELECT status, response FROM human_requests WHERE id = $1",
        &[uuid(id)],
    )?
    .map(|r| -> DbResult<_> { Ok((r.str("status")?, r.json("response")?)) })
    .transpose()
}

/// Whether human request `id` is still unanswered, locking it against an
/// answer landing in the same moment.
pub fn request_still_pending(db: &Db, id: &str) -> DbResult<bool> {
    Ok(db
        .query_opt(
            "SELECT 1 AS one FROM human_requests WHERE id = $1 AND status = 'pending' FOR SHARE",
            &[uuid(id)],
        )?
        .is_some())
}

/// Whether child run `id` has not finished, locking it against its finish
/// landing in the same moment.
pub fn child_still_running(db: &Db, id: &str) -> DbResult<bool> {
    Ok(db
        .query_opt(
            "SELECT 1 AS one FROM runs WHERE id = $1 AND status IN ('ready', 'waiting') FOR SHARE",
            &[uuid(id)],
        )?
        .is_some())
}

/// A pending request of a thread: `(request id, request spec)`.
pub fn pending_request(
    db: &Db,
    thread_id: &str,
    request_id: Option<&str>,
) -> DbResult<Option<(String, Value)>> {
    db.query_opt(
        "SELECT id, request FROM human_requests
             WHERE thread_id = $1 AND status = 'pending' AND ($2::uuid IS NULL OR id = $2)
             ORDER BY created_at LIMIT 1 FOR UPDATE",
        &[uuid(thread_id), opt_uuid(request_id)],
    )?
    .map(|r| -> DbResult<_> { Ok((r.str("id")?, r.json("request")?)) })
    .transpose()
}

/// Whether the thread has human request `request_id`, in any status.
pub fn has_request(db: &Db, thread_id: &str, request_id: &str) -> DbResult<bool> {
    Ok(db
        .query_opt(
            "SELECT 1 AS found FROM human_requests WHERE thread_id = $1 AND id = $2",
            &[uuid(thread_id), uuid(request_id)],
        )?
        .is_some())
}

/// Records a person's answer (`responded`, `cancelled`, `skipped`) and
/// makes the waiting run ready. Call inside a transaction after
/// [`pending_request`] locked the row.
pub fn answer_request(
    db: &Db,
    request_id: &str,
    status: &str,
    response: &Value,
    by: Option<&str>,
) -> DbResult<()> {
    let r = db.query_one(
        "UPDATE human_requests SET status = $2, response = $3, responded_by = $4, responded_at = now()
         WHERE id = $1 RETURNING thread_id, run_id",
        &[uuid(request_id), text(status), jsonb(response), opt_uuid(by)],
    )?;
    let (thread_id, run_id) = (r.str("thread_id")?, r.str("run_id")?);
    let resumed = db.execute(
        "UPDATE runs SET status = 'ready', updated_at = now() WHERE id = $1 AND status = 'waiting'",
        &[uuid(&run_id)],
    )?;
    if resumed == 1 {
        set_thread_status(db, &thread_id, ThreadStatus::Active)?;
    }
    add_event(
        db,
        &thread_id,
        Some(&run_id),
        "human_request",
        &serde_json::json!({ "request_id": request_id, "status": status }),
    )?;
    db.execute(
        "SELECT pg_notify($1, $2)",
        &[text(RUNS_CHANNEL), text(&run_id)],
    )?;
    Ok(())
}

/// Parks a run until something outside it (a sub-agent's run, a person)
/// makes it ready again: releases the lease and sets the thread's status
/// (`waiting_subagent`, `waiting_user`).
pub fn park(
    db: &Db,
    run_id: &str,
    lease: &str,
    thread_id: &str,
    thread_status: ThreadStatus,
) -> DbResult<()> {
    db.execute(
        // A cancellation asked for meanwhile keeps the run ready, so it ends now.
        "UPDATE runs SET status = CASE WHEN cancel_requested THEN 'ready' ELSE 'waiting' END,
                wake_at = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
         WHERE id = $1 AND lease_owner = $2",
        &[uuid(run_id), text(lease)],
    )?;
    set_thread_status(db, thread_id, thread_status)
}
