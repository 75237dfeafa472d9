//! `approvals` and their `approval_audit` trail: opened by the agent step
//! for a tool call its policy holds, decided through the API, expired by the
//! run's durable timer, cancelled by a trigger when the run ends.

use serde_json::{json, Value};
use spin_sdk::pg4::ParameterValue::{Boolean, Int64};

use crate::runs::{add_event, add_message, set_thread_status, RUNS_CHANNEL};
use crate::{jsonb, opt_text, opt_uuid, text, uuid, Db, DbResult, FromRow, Row, Timestamp};

/// What the agent step knows when it opens an approval.
pub struct NewApproval<'a> {
    pub org_id: &'a str,
    pub thread_id: &'a str,
    pub run_id: &'a str,
    pub call_id: &'a str,
    pub tool_name: &'a str,
    pub tool_version: &'a str,
    pub policy: &'a str,
    pub self_approval: bool,
    pub review: bool,
    pub params: &'a Value,
    pub params_schema: &'a Value,
    pub rationale: Option<&'a str>,
    pub timeout_secs: i64,
}

/// Opens an approval, audits it and shows it on the thread; returns its id.
pub fn open(db: &Db, a: &NewApproval) -> DbResult<String> {
    let r = db.query_one(
        &format!(
            "INSERT INTO approvals (org_id, thread_id, run_id, call_id, tool_name, tool_version, policy,
                                    self_approval, review, params, params_schema, rationale, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                     now() + $13::bigint * interval '1 second')
             RETURNING {COLUMNS}"
        ),
        &[
            uuid(a.org_id),
            uuid(a.thread_id),
            uuid(a.run_id),
            text(a.call_id),
            text(a.tool_name),
            text(a.tool_version),
            text(a.policy),
            Boolean(a.self_approval),
            Boolean(a.review),
            jsonb(a.params),
            jsonb(a.params_schema),
            opt_text(a.rationale),
            Int64(a.timeout_secs),
        ],
    )?;
    let approval = Approval::from_row(&r)?;
    let id = approval.id.clone();
    audit(db, &id, "requested", None, None, None, None)?;
    let content = snapshot(&approval);
    add_message(db, a.thread_id, Some(a.run_id), "approval", &content)?;
    Ok(id)
}

const COLUMNS: &str = "id, org_id, thread_id, run_id, call_id, tool_name, tool_version, policy,
    self_approval, review, params, params_schema, rationale, status, final_params, comment,
    decided_by, decided_at AT TIME ZONE 'UTC' AS decided_at, created_at AT TIME ZONE 'UTC' AS created_at, expires_at AT TIME ZONE 'UTC' AS expires_at, (expires_at <= now()) AS expired";

/// The thread's channel and author and the run's starter, for permission checks.
const REQUESTERS: &str = "t.channel_id::text AS channel_id, t.created_by::text AS thread_author,
    r.started_by::text AS run_author, r.started_by_key::text AS run_author_key,
    (SELECT k.created_by::text FROM api_keys k WHERE k.id = r.started_by_key) AS run_author_key_creator";

/// An approval of a tool call.
pub struct Approval {
    pub id: String,
    pub thread_id: String,
    pub run_id: String,
    pub call_id: String,
    pub tool_name: String,
    pub tool_version: String,
    pub policy: String,
    pub self_approval: bool,
    pub review: bool,
    pub params: Value,
    pub params_schema: Value,
    pub rationale: Option<String>,
    /// `pending`, `approved`, `rejected`, `timed_out` or `cancelled`.
    pub status: String,
    /// The reviewer's edited arguments (JSON null when not edited).
    pub final_params: Value,
    pub comment: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// Past its expiry (still `pending` until its timer fires).
    pub expired: bool,
}

impl FromRow for Approval {
    fn from_row(r: &Row) -> DbResult<Self> {
        Ok(Self {
            id: r.get("id")?,
            thread_id: r.get("thread_id")?,
            run_id: r.get("run_id")?,
            call_id: r.get("call_id")?,
            tool_name: r.get("tool_name")?,
            tool_version: r.get("tool_version")?,
            policy: r.get("policy")?,
            self_approval: r.get("self_approval")?,
            review: r.get("review")?,
            params: r.get("params")?,
            params_schema: r.get("params_schema")?,
            rationale: r.get("rationale")?,
            status: r.get("status")?,
            final_params: r.get("final_params")?,
            comment: r.get("comment")?,
            decided_by: r.get("decided_by")?,
            decided_at: r.get("decided_at")?,
            created_at: r.get("created_at")?,
            expires_at: r.get("expires_at")?,
            expired: r.get("expired")?,
        })
    }
}

/// The approval as its thread's `approval` message stores it (taken when
/// it opens); the API shows approvals in this shape too.
pub fn snapshot(a: &Approval) -> Value {
    let time = |t: &Timestamp| Value::from(t.as_str());
    json!({
        "id": a.id,
        "thread_id": a.thread_id,
        "run_id": a.run_id,
        "call_id": a.call_id,
        "tool": { "name": a.tool_name, "version": a.tool_version },
        "policy": a.policy,
        "self_approval": a.self_approval,
        "review": a.review,
        "params": a.params,
        "params_schema": a.params_schema,
        "rationale": a.rationale,
        "status": a.status,
        "final_params": a.final_params,
        "comment": a.comment,
        "decided_by": a.decided_by,
        "decided_at": a.decided_at.as_ref().map_or(Value::Null, time),
        "created_at": time(&a.created_at),
        "expires_at": time(&a.expires_at),
    })
}

/// An approval with what permission checks need: its thread's channel and
/// author and its run's starter.
pub struct ApprovalAccess {
    pub approval: Approval,
    pub channel_id: Option<String>,
    pub thread_author: Option<String>,
    pub run_author: Option<String>,
    pub run_author_key: Option<String>,
    /// Who created that key (a key counts as its creator).
    pub run_author_key_creator: Option<String>,
}

impl FromRow for ApprovalAccess {
    fn from_row(r: &Row) -> DbResult<Self> {
        Ok(Self {
            approval: Approval::from_row(r)?,
            channel_id: r.get("channel_id")?,
            thread_author: r.get("thread_author")?,
            run_author: r.get("run_author")?,
            run_author_key: r.get("run_author_key")?,
            run_author_key_creator: r.get("run_author_key_creator")?,
        })
    }
}

/// An approval by id (within `org_id` when given), with its thread's channel
/// and author and its run's starter (for permission checks). With `lock`,
/// locks its run's row and then the approval: runs before approvals, the
/// order in which the agent step and a run's ending take them.
pub fn get(
    db: &Db,
    org_id: Option<&str>,
    id: &str,
    lock: bool,
) -> DbResult<Option<ApprovalAccess>> {
    if lock {
        db.execute(
            "SELECT 1 FROM runs WHERE id = (SELECT run_id FROM approvals WHERE id = $1) FOR UPDATE",
            &[uuid(id)],
        )?;
    }
    db.query_opt_as(
        &format!(
            "SELECT a.*, {REQUESTERS}
             FROM (SELECT {COLUMNS} FROM approvals
                   WHERE id = $1 AND ($2::uuid IS NULL OR org_id = $2){}) a
             JOIN threads t ON t.id = a.thread_id JOIN runs r ON r.id = a.run_id",
            if lock { " FOR UPDATE" } else { "" }
        ),
        &[uuid(id), opt_uuid(org_id)],
    )
}

/// Approvals of an org, newest first, after approval `after` (a keyset
/// cursor), joined like [`get`].
pub fn list(
    db: &Db,
    org_id: &str,
    status: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> DbResult<Vec<ApprovalAccess>> {
    db.query_as(
        &format!(
            "SELECT a.*, {REQUESTERS}
             FROM (SELECT {COLUMNS} FROM approvals
                   WHERE org_id = $1 AND ($2::text IS NULL OR status = $2)
                     AND ($3::uuid IS NULL
                          OR (created_at, id) < (SELECT created_at, id FROM approvals WHERE id = $3))
                   ORDER BY created_at DESC, id DESC LIMIT $4) a
             JOIN threads t ON t.id = a.thread_id JOIN runs r ON r.id = a.run_id
             ORDER BY a.created_at DESC, a.id DESC"
        ),
        &[uuid(org_id), opt_text(status), opt_uuid(after), Int64(limit)],
    )
}

/// One entry of an approval's audit trail.
pub struct AuditEntry {
    /// `requested`, `approved`, `rejected`, `timed_out` or `cancelled`.
    pub action: String,
    pub actor_user: Option<String>,
    pub actor_key: Option<String>,
    pub comment: Option<String>,
    /// The arguments decided on, when they were edited.
    pub params: Value,
    pub at: Timestamp,
}

impl FromRow for AuditEntry {
    fn from_row(r: &Row) -> DbResult<Self> {
        Ok(Self {
            action: r.get("action")?,
            actor_user: r.get("actor_user")?,
            actor_key: r.get("actor_key")?,
            comment: r.get("comment")?,
            params: r.get("params")?,
            at: r.get("created_at")?,
        })
    }
}

/// The audit trail of an approval, oldest first.
pub fn audit_trail(db: &Db, id: &str) -> DbResult<Vec<AuditEntry>> {
    db.query_as(
        "SELECT action, actor_user::text AS actor_user, actor_key::text AS actor_key, comment,
                params, created_at AT TIME ZONE 'UTC' AS created_at
         FROM approval_audit WHERE approval_id = $1 ORDER BY id",
        &[uuid(id)],
    )
}

fn audit(
    db: &Db,
    id: &str,
    action: &str,
    user: Option<&str>,
    key: Option<&str>,
    comment: Option<&str>,
    params: Option<&Value>,
) -> DbResult<()> {
    db.execute(
        "INSERT INTO approval_audit (approval_id, action, actor_user, actor_key, comment, params)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            uuid(id),
            text(action),
            opt_uuid(user),
            opt_uuid(key),
            opt_text(comment),
            params
                .map(jsonb)
                .unwrap_or(spin_sdk::pg4::ParameterValue::DbNull),
        ],
    )?;
    Ok(())
}

/// Who decided.
pub struct Decider<'a> {
    pub user_id: Option<&'a str>,
    pub api_key_id: Option<&'a str>,
}

/// Records a decision on a pending, unexpired approval (`approved` with the
/// final arguments, or `rejected`), audits it and makes the run ready.
/// Returns false when the approval was no longer pending.
pub fn decide(
    db: &Db,
    id: &str,
    status: &str,
    final_params: Option<&Value>,
    comment: Option<&str>,
    by: &Decider,
) -> DbResult<bool> {
    let Some(r) = db.query_opt(
        "UPDATE approvals SET status = $2, final_params = $3, comment = $4, decided_by = $5,
                decided_at = now()
         WHERE id = $1 AND status = 'pending' AND expires_at > now()
         RETURNING thread_id::text AS thread_id, run_id::text AS run_id",
        &[
            uuid(id),
            text(status),
            final_params
                .map(jsonb)
                .unwrap_or(spin_sdk::pg4::ParameterValue::DbNull),
            opt_text(comment),
            opt_uuid(by.user_id),
        ],
    )?
    else {
        return Ok(false);
    };
    let action = if status == "approved" {
        "approved"
    } else {
        "rejected"
    };
    audit(
        db,
        id,
        action,
        by.user_id,
        by.api_key_id,
        comment,
        final_params,
    )?;
    let (thread_id, run_id) = (r.str("thread_id")?, r.str("run_id")?);
    if db.execute(
        "UPDATE runs SET status = 'ready', wake_at = NULL, updated_at = now()
         WHERE id = $1 AND status = 'waiting'",
        &[uuid(&run_id)],
    )? == 1
    {
        set_thread_status(db, &thread_id, synatra_runs::ThreadStatus::Active)?;
    }
    add_event(
        db,
        &thread_id,
        Some(&run_id),
        "approval",
        &json!({ "approval_id": id, "status": status, "comment": comment }),
    )?;
    db.execute(
        "SELECT pg_notify($1, $2)",
        &[text(RUNS_CHANNEL), text(&run_id)],
    )?;
    Ok(true)
}

/// Why a run waiting for approvals must end.
pub enum Ended {
    Rejected {
        tool: String,
        comment: Option<String>,
    },
    TimedOut {
        tool: String,
    },
}

/// Times out the run's pending approvals whose time is up (audited), then
/// reports whether any of its approvals was rejected or timed out: either
/// ends the run, whichever call it is waiting for.
pub fn settle(db: &Db, run_id: &str) -> DbResult<Option<Ended>> {
    let expired = db.query(
        "UPDATE approvals SET status = 'timed_out', decided_at = now()
         WHERE run_id = $1 AND status = 'pending' AND expires_at <= now()
         RETURNING id::text AS id",
        &[uuid(run_id)],
    )?;
    for r in &expired {
        audit(db, &r.str("id")?, "timed_out", None, None, None, None)?;
    }
    db.query_opt(
        "SELECT status, tool_name, comment FROM approvals
             WHERE run_id = $1 AND status IN ('rejected', 'timed_out')
             ORDER BY decided_at, created_at LIMIT 1",
        &[uuid(run_id)],
    )?
    .map(|r| -> DbResult<Ended> {
        let tool = r.str("tool_name")?;
        Ok(match r.str("status")?.as_str() {
            "rejected" => Ended::Rejected {
                tool,
                comment: r.opt_str("comment")?,
            },
            _ => Ended::TimedOut { tool },
        })
    })
    .transpose()
}

/// Whether approval `id` still awaits a decision, locking it against a
/// decision landing in the same moment.
pub fn still_pending(db: &Db, id: &str) -> DbResult<bool> {
    Ok(db
        .query_opt(
            "SELECT 1 AS one FROM approvals WHERE id = $1 AND status = 'pending' AND expires_at > now()
             FOR SHARE",
            &[uuid(id)],
        )?
        .is_some())
}

/// Milliseconds until the earliest pending approval of a run expires.
pub fn next_expiry_ms(db: &Db, run_id: &str) -> DbResult<Option<i64>> {
    db.query_opt(
        "SELECT greatest(0, (extract(epoch FROM min(expires_at) - now()) * 1000)::bigint) AS ms
             FROM approvals WHERE run_id = $1 AND status = 'pending' HAVING count(*) > 0",
        &[uuid(run_id)],
    )?
    .map(|r| r.i64("ms"))
    .transpose()
}
