//! The API's JSON for rows read from `synatra_db`: the one place where a
//! thread, message, run or approval gets its wire shape.

use serde_json::{json, Value};
use synatra_db::approvals::AuditEntry;
use synatra_db::credentials::CredentialView;
use synatra_db::runs::{RunSummary, Thread, ThreadMessage};
use synatra_db::tools::Tool;
use synatra_db::Timestamp;

fn time(t: &Timestamp) -> Value {
    t.as_str().into()
}

fn opt_time(t: &Option<Timestamp>) -> Value {
    t.as_ref().map_or(Value::Null, time)
}

/// A thread, without its messages and runs.
pub fn thread(t: &Thread) -> Value {
    json!({
        "id": t.id, "agent_id": t.agent_id, "channel_id": t.channel_id,
        "environment_id": t.environment_id, "kind": t.kind, "subject": t.subject,
        "status": t.status.as_str(), "created_at": time(&t.created_at),
        "updated_at": time(&t.updated_at),
    })
}

/// One message of a thread.
pub fn message(m: &ThreadMessage) -> Value {
    json!({
        "id": m.id, "run_id": m.run_id, "kind": m.kind, "content": m.content,
        "created_at": time(&m.created_at),
    })
}

/// One run of a thread.
pub fn run(r: &RunSummary) -> Value {
    json!({
        "id": r.id, "status": r.status.as_str(), "error": r.error,
        "parent_run_id": r.parent_run_id,
        "release": r.release.as_ref().map(|rel| json!({ "id": rel.id, "version": rel.version })),
        "tokens_in": r.tokens_in, "tokens_out": r.tokens_out,
        "active_ms": r.active_ms, "steps": r.steps,
        "created_at": time(&r.created_at), "finished_at": opt_time(&r.finished_at),
    })
}

/// One entry of an approval's audit trail.
pub fn audit_entry(e: &AuditEntry) -> Value {
    json!({
        "action": e.action,
        "actor_user": e.actor_user,
        "actor_key": e.actor_key,
        "comment": e.comment,
        "params": e.params,
        "at": time(&e.at),
    })
}

/// A tool: its definition with its id, version, kind and times; its code
/// only for those who may change it (`with_code`: builders and above).
pub fn tool(t: &Tool, with_code: bool) -> Value {
    let mut v = t.definition.clone();
    if !with_code {
        v.as_object_mut().map(|o| o.remove("code"));
    }
    v["id"] = t.id.as_str().into();
    v["version"] = t.version.as_str().into();
    v["kind"] = json!(if v.get("component_sha256").is_some() {
        "wit"
    } else {
        "javascript"
    });
    v["created_at"] = time(&t.created_at);
    v["updated_at"] = time(&t.updated_at);
    v
}

/// A provider credential, masked: the key's hint, never the key.
pub fn credential(c: &CredentialView) -> Value {
    json!({
        "provider": c.provider,
        "api_key": c.api_key_hint,
        "has_api_key": c.has_api_key,
        "base_url": c.base_url,
        "allowed_base_urls": c.allowed_base_urls,
        "updated_at": time(&c.updated_at),
    })
}
