//! `GET /orgs/{org}/threads/{thread}/events`: Server-Sent Events from the
//! thread's event log: run status changes, new messages, and the model's
//! text as it streams. Resumable with `Last-Event-ID` (or `?after=`); the
//! stream ends with an `end` event when the thread's runs have settled
//! (unless `?follow=true`, which keeps it open across runs, so a client may
//! subscribe before it posts), and in any case after [`STREAM_FOR`], when
//! `EventSource` clients simply reconnect.

use std::time::{Duration, Instant};

use futures::SinkExt;
use spin_sdk::http::{Fields, OutgoingResponse, ResponseOutparam};
use synatra_db::org_slots::Kind;
use synatra_db::runs;
use synatra_db::Db;

use crate::ctx::OrgCtx;
use crate::error::{ApiError, ApiResult};
use crate::handlers::threads::thread_id;
use crate::http::{header, query_param};
use crate::org_limits::{self, Slot};

/// How long one response streams (below the component's time limit).
const STREAM_FOR: Duration = Duration::from_secs(20);
/// Poll interval of the event log after an event; each empty poll doubles
/// it up to [`IDLE_POLL`], so idle streams (a thread waiting for a person)
/// cost the database little while a streaming model stays fluid.
const POLL: Duration = Duration::from_millis(50);
const IDLE_POLL: Duration = Duration::from_millis(800);
/// Comment sent to keep idle connections open.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// An authorised subscription to a thread's events.
pub struct Subscription {
    thread_id: String,
    after: i64,
    /// Stay open when the thread settles (until [`STREAM_FOR`]).
    follow: bool,
    /// One of the org's `max_event_streams_per_org`, held while streaming.
    slot: Slot,
}

/// Checks access and where to resume.
pub fn subscribe(ctx: &OrgCtx) -> ApiResult<Subscription> {
    let thread_id = thread_id(ctx)?;
    let resume = header(ctx.req, "last-event-id")
        .map(str::to_string)
        .or_else(|| query_param(ctx.req, "after"));
    let after = match resume {
        None => 0,
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                ApiError::fields(&[("Last-Event-ID".into(), "must be an event id".into())])
            })?,
    };
    let follow = match query_param(ctx.req, "follow").as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => {
            return Err(ApiError::fields(&[(
                "follow".into(),
                "must be true or false".into(),
            )]))
        }
    };
    let slot = org_limits::take(ctx, Kind::EventStream, STREAM_FOR.as_secs() as u32 + 30)?;
    Ok(Subscription {
        thread_id,
        after,
        follow,
        slot,
    })
}

/// Streams events until the thread settles or the stream's time is up,
/// then gives the org's stream slot back.
pub async fn stream(sub: Subscription, out: ResponseOutparam) {
    send_events(&sub.thread_id, sub.after, sub.follow, out).await;
    match Db::open() {
        Ok(db) => org_limits::release(&db, sub.slot),
        Err(e) => eprintln!("event stream: the slot waits for its expiry: {e}"),
    }
}

async fn send_events(thread_id: &str, after: i64, follow: bool, out: ResponseOutparam) {
    let headers = Fields::from_list(&[
        ("content-type".to_string(), b"text/event-stream".to_vec()),
        ("cache-control".to_string(), b"no-store".to_vec()),
        ("x-accel-buffering".to_string(), b"no".to_vec()),
    ])
    .expect("valid headers");
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(200);
    let mut body = response.take_body();
    out.set(response);
    if body.send(b"retry: 1000\n\n".to_vec()).await.is_err() {
        return;
    }
    let started = Instant::now();
    let mut last_sent = Instant::now();
    let mut after = after;
    let mut poll = POLL;
    while started.elapsed() < STREAM_FOR {
        // A pooled connection per poll, returned while the stream waits, so
        // open streams never hold the pool the rest of the app needs.
        let Ok(db) = Db::open() else {
            let _ = body
                .send(b"event: error\ndata: {\"code\":\"database_unavailable\"}\n\n".to_vec())
                .await;
            return;
        };
        let read = |db: &Db| runs::events_after(db, thread_id, after, 500);
        let mut events = match read(&db) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("event stream: {e}");
                return;
            }
        };
        if events.is_empty() && !follow && runs::thread_settled(&db, thread_id).unwrap_or(true) {
            // The run's last events may have committed between the two
            // reads: once settled is seen, a read now has them all.
            events = read(&db).unwrap_or_default();
            if events.is_empty() {
                let _ = body.send(b"event: end\ndata: {}\n\n".to_vec()).await;
                return;
            }
        }
        if events.is_empty() {
            if last_sent.elapsed() > HEARTBEAT {
                if body.send(b": ping\n\n".to_vec()).await.is_err() {
                    return;
                }
                last_sent = Instant::now();
            }
            drop(db);
            std::thread::sleep(poll);
            poll = (poll * 2).min(IDLE_POLL);
            continue;
        }
        let mut chunk = String::new();
        for (id, kind, data) in events {
            chunk.push_str(&format!("id: {id}\nevent: {kind}\ndata: {data}\n\n"));
            after = id;
        }
        if body.send(chunk.into_bytes()).await.is_err() {
            return;
        }
        last_sent = Instant::now();
        poll = POLL;
    }
}
