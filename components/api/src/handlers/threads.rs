//! Threads: start one with a message (which starts a run), continue it,
//! cancel it, read it. Members see threads of channels they belong to;
//! admins and owners see all.

use serde_json::json;
use synatra_agents::AgentConfig;
use synatra_authz::Role;
use synatra_db::runs::{self, FirstRun, NewRun, NewThread, ThreadFilter};
use synatra_runs::ThreadStatus;

use crate::auth::Principal;
use crate::ctx::OrgCtx;
use crate::error::{ApiError, ApiResult};
use crate::http::{message_page, page, query_param, Page, Reply};
use crate::store::agents::{self, RunnableAgent};
use crate::store::orgs;
use crate::views;
use crate::visibility::Visibility;

/// The `:thread` of the path, if the caller may see it; else 404.
pub fn thread_id(ctx: &OrgCtx) -> ApiResult<String> {
    let id = ctx.uuid_param("thread", "thread")?;
    let (channel, _) = runs::thread_access(ctx.db, &ctx.org.id, id)?
        .ok_or_else(|| ApiError::not_found("thread"))?;
    if !Visibility::of(ctx)?.sees(channel.as_deref()) {
        return Err(ApiError::not_found("thread"));
    }
    Ok(id.to_string())
}

/// The configuration a new run executes: the current release, or the
/// working copy for playground threads (builders only).
fn run_config(
    ctx: &OrgCtx,
    agent: RunnableAgent,
    playground: bool,
) -> ApiResult<(Option<String>, serde_json::Value)> {
    if agent.archived {
        return Err(super::agents::archived());
    }
    if playground {
        if ctx.org.role < Role::Builder {
            return Err(ApiError::forbidden(
                "playground threads need the builder role",
            ));
        }
        let raw = agents::working_copy_config(ctx.db, &agent.id)?;
        let mut config = AgentConfig::parse(&raw, true).map_err(|errors| {
            let pairs: Vec<(String, String)> =
                errors.into_iter().map(|e| (e.field, e.message)).collect();
            ApiError::fields(&pairs)
        })?;
        // The run keeps the tool versions of now, even if a tool is edited mid-run.
        super::agents::resolve_tools(ctx.db, &ctx.org.id, &mut config, true)?;
        let value = serde_json::to_value(config).map_err(|e| ApiError::internal(e.to_string()))?;
        return Ok((None, value));
    }
    let (release, config) = agent.release.ok_or_else(|| {
        ApiError::conflict(
            "agent_not_released",
            "publish a release of this agent first (or use a playground thread)",
        )
    })?;
    Ok((Some(release), config))
}

/// `POST /orgs/{org}/threads {agent, message, channel?, environment?, subject?, kind?}`.
pub fn create(ctx: &OrgCtx) -> ApiResult<Reply> {
    let mut input = ctx.input()?;
    let agent = input.string("agent", 1, 100);
    let message = input.string("message", 1, 100_000);
    let channel = input.optional_string("channel", 1, 100);
    let environment = input.optional_string("environment", 1, 100);
    let subject = input.optional_string("subject", 0, 200);
    let kind = input
        .optional_string("kind", 1, 20)
        .unwrap_or_else(|| "normal".into());
    input.check(
        kind == "normal" || kind == "playground",
        "kind",
        "`kind` must be normal or playground",
    );
    input.finish()?;
    let org = &ctx.org;
    let target = agents::thread_target(
        ctx.db,
        &org.id,
        &agent,
        channel.as_deref(),
        environment.as_deref(),
    )?
    .ok_or_else(|| ApiError::not_found("agent"))?;
    let channel_id = target
        .channel_id
        .ok_or_else(|| ApiError::not_found("channel"))?;
    if !Visibility::of(ctx)?.sees(Some(&channel_id)) {
        return Err(ApiError::not_found("channel"));
    }
    let environment_id = target
        .environment_id
        .ok_or_else(|| ApiError::not_found("environment"))?;
    let agent_id = target.agent.id.clone();
    let (release_id, config) = run_config(ctx, target.agent, kind == "playground")?;
    let created_by = ctx.principal()?.user_id().ok().map(str::to_string);
    let (started_by, started_by_key) = starter(ctx)?;
    let (thread, run_id) = runs::start_thread(
        ctx.db,
        &NewThread {
            org_id: &org.id,
            agent_id: &agent_id,
            channel_id: Some(&channel_id),
            environment_id: Some(&environment_id),
            kind: &kind,
            subject: subject.as_deref(),
            created_by: created_by.as_deref(),
        },
        &json!({ "text": message }),
        &FirstRun {
            release_id: release_id.as_deref(),
            config: &config,
            started_by,
            started_by_key,
        },
    )?;
    Ok(Reply::created(
        json!({ "thread": views::thread(&thread), "run_id": run_id }),
    ))
}

/// Who starts a run: the signed-in person, or the API key.
fn starter<'c>(ctx: &'c OrgCtx) -> ApiResult<(Option<&'c str>, Option<&'c str>)> {
    Ok(match ctx.principal()? {
        Principal::Session { user_id, .. } => (Some(user_id.as_str()), None),
        Principal::ApiKey { key_id, .. } => (None, Some(key_id.as_str())),
    })
}

fn start_run(
    ctx: &OrgCtx,
    db: &synatra_db::Db,
    thread_id: &str,
    agent_id: &str,
    release_id: Option<&str>,
    config: &serde_json::Value,
    message: &str,
) -> ApiResult<String> {
    let message_id = runs::add_message(db, thread_id, None, "user", &json!({ "text": message }))?;
    let (user, key) = starter(ctx)?;
    Ok(runs::create_run(
        db,
        &NewRun {
            org_id: &ctx.org.id,
            thread_id,
            agent_id,
            release_id,
            config,
            input_upto: message_id,
            parent_run_id: None,
            started_by: user,
            started_by_key: key,
        },
    )?)
}

/// `POST /orgs/{org}/threads/{thread}/messages {message}`: continues a
/// finished thread with its history, on the release the thread started with.
pub fn post_message(ctx: &OrgCtx) -> ApiResult<Reply> {
    let id = thread_id(ctx)?;
    let mut input = ctx.input()?;
    let message = input.string("message", 1, 100_000);
    input.finish()?;
    // A message while the run waits for a person skips the request; the
    // run continues with the message as the answer.
    let by = ctx.principal()?.user_id().ok().map(str::to_string);
    let skipped = ctx.db.transaction(|db| -> ApiResult<bool> {
        let Some((request_id, _)) = runs::pending_request(db, &id, None)? else {
            return Ok(false);
        };
        runs::add_message(db, &id, None, "user", &json!({ "text": message }))?;
        runs::answer_request(
            db,
            &request_id,
            "skipped",
            &json!({ "message": message }),
            by.as_deref(),
        )?;
        Ok(true)
    })?;
    if skipped {
        let mut reply = Reply::ok(json!({ "skipped_request": true }));
        reply.status = 202;
        return Ok(reply);
    }
    let org = &ctx.org;
    let thread =
        runs::thread(ctx.db, &org.id, &id)?.ok_or_else(|| ApiError::not_found("thread"))?;
    let agent_id = thread.agent_id;
    let playground = thread.kind == "playground";
    let (release_id, config) = if playground {
        run_config(ctx, agents::runnable(ctx.db, &agent_id)?, true)?
    } else {
        super::agents::refuse_archived(ctx.db, &agent_id)?;
        runs::latest_run_config(ctx.db, &id)?
            .ok_or_else(|| ApiError::internal("thread has no run"))?
    };
    let run_id = ctx.db.transaction(|db| -> ApiResult<_> {
        // Two messages at once: the second waits here, then sees the first's run.
        runs::lock_thread(db, &id)?;
        if runs::has_unfinished_run(db, &id)? {
            return Err(ApiError::conflict(
                "run_in_progress",
                "the thread's run has not finished; wait or cancel it",
            ));
        }
        start_run(
            ctx,
            db,
            &id,
            &agent_id,
            release_id.as_deref(),
            &config,
            &message,
        )
    })?;
    Ok(Reply::created(json!({ "run_id": run_id })))
}

/// `POST /orgs/{org}/threads/{thread}/cancel`.
pub fn cancel(ctx: &OrgCtx) -> ApiResult<Reply> {
    let id = thread_id(ctx)?;
    let asked = ctx.db.transaction(|db| runs::request_cancel(db, &id))?;
    let mut reply = Reply::ok(json!({ "cancelled_runs": asked }));
    reply.status = 202;
    Ok(reply)
}

/// `GET /orgs/{org}/threads/{thread}?limit=&after=`: the thread, a page of
/// its messages (oldest first; `next_cursor` continues) and its runs.
pub fn get(ctx: &OrgCtx) -> ApiResult<Reply> {
    let id = thread_id(ctx)?;
    let thread =
        runs::thread(ctx.db, &ctx.org.id, &id)?.ok_or_else(|| ApiError::not_found("thread"))?;
    let (limit, after) = message_page(ctx.req)?;
    let messages = runs::messages(ctx.db, &id, after, limit as i64)?;
    let next = (messages.len() == limit)
        .then(|| messages.last().map(|m| m.id))
        .flatten();
    let mut json = views::thread(&thread);
    json["messages"] = messages.iter().map(views::message).collect();
    json["next_cursor"] = next.into();
    json["runs"] = runs::runs(ctx.db, &id)?.iter().map(views::run).collect();
    Ok(Reply::ok(json))
}

/// `GET /orgs/{org}/threads?status=&agent=&channel=&limit=&after=`.
pub fn list(ctx: &OrgCtx) -> ApiResult<Reply> {
    let org = &ctx.org;
    let bad =
        |field: &str, message: &str| ApiError::fields(&[(field.to_string(), message.to_string())]);
    let status = match query_param(ctx.req, "status") {
        None => None,
        Some(s) => {
            Some(ThreadStatus::parse(&s).ok_or_else(|| bad("status", "unknown thread status"))?)
        }
    };
    let Page { limit, after } = page(ctx.req, "a thread")?;
    let agent_id = match query_param(ctx.req, "agent") {
        None => None,
        Some(a) => Some(
            agents::resolve(ctx.db, &org.id, &a, false)?
                .ok_or_else(|| ApiError::not_found("agent"))?,
        ),
    };
    let channel_id = match query_param(ctx.req, "channel") {
        None => None,
        Some(c) => Some(
            orgs::channel_id(ctx.db, &org.id, Some(&c))?
                .ok_or_else(|| ApiError::not_found("channel"))?,
        ),
    };
    let visibility = Visibility::of(ctx)?;
    let channels = visibility.channels().map(|c| c.join(","));
    let threads = runs::list_threads(
        ctx.db,
        &org.id,
        &ThreadFilter {
            status,
            agent_id: agent_id.as_deref(),
            channel_id: channel_id.as_deref(),
            in_channels: channels.as_deref(),
            after: after.as_deref(),
            limit: limit as i64,
        },
    )?;
    let next = (threads.len() == limit)
        .then(|| threads.last().map(|t| t.id.clone()))
        .flatten();
    let threads: Vec<_> = threads.iter().map(views::thread).collect();
    Ok(Reply::ok(
        json!({ "threads": threads, "next_cursor": next }),
    ))
}

/// `POST /orgs/{org}/threads/{thread}/human-requests/{request}/respond
/// {status: responded|cancelled|skipped, data?}`: `data` is validated
/// against the request's fields; the waiting run resumes with the answer.
pub fn respond(ctx: &OrgCtx) -> ApiResult<Reply> {
    let id = thread_id(ctx)?;
    let request_id = ctx.uuid_param("request", "human request")?.to_string();
    let mut input = ctx.input()?;
    let status = input.string("status", 1, 20);
    input.check(
        ["responded", "cancelled", "skipped"].contains(&status.as_str()),
        "status",
        "`status` must be responded, cancelled or skipped",
    );
    let has_data = input.has("data");
    let data = if has_data {
        input.object("data")
    } else {
        serde_json::Value::Null
    };
    input.check(
        status != "responded" || has_data,
        "data",
        "`data` is required to respond",
    );
    input.finish()?;
    let by = ctx.principal()?.user_id().ok().map(str::to_string);
    ctx.db.transaction(|db| -> ApiResult<()> {
        let (request_id, request) = match runs::pending_request(db, &id, Some(&request_id))? {
            Some(r) => r,
            None if runs::has_request(db, &id, &request_id)? => {
                return Err(ApiError::conflict(
                    "request_not_pending",
                    "this request was already answered",
                ))
            }
            None => return Err(ApiError::not_found("human request")),
        };
        if status == "responded" {
            synatra_runs::widgets::check_response(&request, &data)
                .map_err(|errors| ApiError::fields(&errors))?;
        }
        runs::answer_request(db, &request_id, &status, &data, by.as_deref())?;
        Ok(())
    })?;
    Ok(Reply::ok(
        json!({ "request_id": request_id, "status": status }),
    ))
}
