//! `approvals` and their `approval_audit` trail: opened by the agent step
//! for a tool call its policy holds, decided through the API, expired by the
//! run's durable timer, cancelled by a trigger when the run ends.

use serde_json::{json, Value};
use spin_sdk::pg4::ParameterValue::{Boolean, Int64};

use crate::runs::{add_event, add_message, set_thread_status, RUNS_CHANNEL};
use crate::{jsonb, opt_text, opt_uuid, text, uuid, Db, DbResult, Row};

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
    let id = r.str("id");
    audit(db, &id, "requested", None, None, None, None)?;
    let content = to_json(&r);
    let message = add_message(db, a.thread_id, Some(a.run_id), "approval", &content)?;
    add_event(
        db,
        a.thread_id,
        Some(a.run_id),
        "message",
        &json!({ "id": message, "kind": "approval", "content": content }),
    )?;
    Ok(id)
}

const COLUMNS: &str = "id, org_id, thread_id, run_id, call_id, tool_name, tool_version, policy,
    self_approval, review, params, params_schema, rationale, status, final_params, comment,
    decided_by, decided_at AT TIME ZONE 'UTC' AS decided_at, created_at AT TIME ZONE 'UTC' AS created_at, expires_at AT TIME ZONE 'UTC' AS expires_at, (expires_at <= now()) AS expired";

/// The thread's channel and author and the run's starter, for permission checks.
const REQUESTERS: &str = "t.channel_id::text AS channel_id, t.created_by::text AS thread_author,
    r.started_by::text AS run_author, r.started_by_key::text AS run_author_key";

/// An approval as the API shows it.
pub fn to_json(r: &Row) -> Value {
    json!({
        "id": r.str("id"),
        "thread_id": r.str("thread_id"),
        "run_id": r.str("run_id"),
        "call_id": r.str("call_id"),
        "tool": { "name": r.str("tool_name"), "version": r.str("tool_version") },
        "policy": r.str("policy"),
        "self_approval": r.bool("self_approval"),
        "review": r.bool("review"),
        "params": r.json("params"),
        "params_schema": r.json("params_schema"),
        "rationale": r.opt_str("rationale"),
        "status": r.str("status"),
        "final_params": r.json("final_params"),
        "comment": r.opt_str("comment"),
        "decided_by": r.opt_str("decided_by"),
        "decided_at": r.time("decided_at"),
        "created_at": r.time("created_at"),
        "expires_at": r.time("expires_at"),
    })
}

/// An approval by id (within `org_id` when given), with its thread's channel
/// and author and its run's starter (for permission checks). With `lock`,
/// locks its run's row and then the approval: runs before approvals, the
/// order in which the agent step and a run's ending take them.
pub fn get(db: &Db, org_id: Option<&str>, id: &str, lock: bool) -> DbResult<Option<Row>> {
    if lock {
        db.execute(
            "SELECT 1 FROM runs WHERE id = (SELECT run_id FROM approvals WHERE id = $1) FOR UPDATE",
            &[uuid(id)],
        )?;
    }
    db.query_opt(
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
) -> DbResult<Vec<Row>> {
    db.query(
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

/// The audit trail of an approval, oldest first.
pub fn audit_trail(db: &Db, id: &str) -> DbResult<Vec<Value>> {
    Ok(db
        .query(
            "SELECT action, actor_user::text AS actor_user, actor_key::text AS actor_key, comment,
                    params, created_at AT TIME ZONE 'UTC' AS created_at
             FROM approval_audit WHERE approval_id = $1 ORDER BY id",
            &[uuid(id)],
        )?
        .iter()
        .map(|r| {
            json!({
                "action": r.str("action"),
                "actor_user": r.opt_str("actor_user"),
                "actor_key": r.opt_str("actor_key"),
                "comment": r.opt_str("comment"),
                "params": r.json("params"),
                "at": r.time("created_at"),
            })
        })
        .collect())
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
    let (thread_id, run_id) = (r.str("thread_id"), r.str("run_id"));
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
        audit(db, &r.str("id"), "timed_out", None, None, None, None)?;
    }
    Ok(db
        .query_opt(
            "SELECT status, tool_name, comment FROM approvals
             WHERE run_id = $1 AND status IN ('rejected', 'timed_out')
             ORDER BY decided_at, created_at LIMIT 1",
            &[uuid(run_id)],
        )?
        .map(|r| match r.str("status").as_str() {
            "rejected" => Ended::Rejected {
                tool: r.str("tool_name"),
                comment: r.opt_str("comment"),
            },
            _ => Ended::TimedOut {
                tool: r.str("tool_name"),
            },
        }))
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
    Ok(db
        .query_opt(
            "SELECT greatest(0, (extract(epoch FROM min(expires_at) - now()) * 1000)::bigint) AS ms
             FROM approvals WHERE run_id = $1 AND status = 'pending' HAVING count(*) > 0",
            &[uuid(run_id)],
        )?
        .map(|r| r.i64("ms")))
}
