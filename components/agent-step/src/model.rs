//! A model turn: the call streams through the gateway, text is published as
//! token events as it arrives, the lease is renewed while it streams, and a
//! failure becomes a durable retry or the run's end (`synatra_runs::retry`).

use std::time::Instant;

use serde_json::json;
use synatra_agents::ModelConfig;
use synatra_db::runs;
use synatra_db::{Db, DbError};
use synatra_llm::Message;
use synatra_runs::{after_model_error, conversation, Ending, Outcome, Retry, Step};

use crate::engine::{Next, Toolbox};
use crate::provider;
use crate::recorder::Recorder;
use synatra_names::limits::renew_interval;

/// Streamed text is written as an event at least every this many bytes.
const TOKEN_FLUSH_BYTES: usize = 48;
/// First retry delay when the `llm_retry_base_ms` variable is unset.
const DEFAULT_RETRY_BASE_MS: i64 = 500;

/// Calls the model for turn `iteration`.
pub async fn call(
    rec: &mut Recorder<'_>,
    toolbox: &Toolbox,
    model: &ModelConfig,
    history: &[Message],
    iteration: u32,
) -> Result<Next, DbError> {
    let messages = conversation(&toolbox.config.system_prompt, history, rec.steps());
    let caller = provider::Caller {
        org_id: &rec.run.org_id,
        environment_id: rec.run.environment_id.as_deref(),
        credential: rec.run.credential.as_ref(),
    };
    // The lease is renewed before the call and as the model streams, so no
    // other claimer (a tick, the inline advancer, another host) takes the
    // run over and repeats the call while this instance is alive and making
    // progress.
    rec.hold(rec.lease_secs)?;
    let (db, run, lease, secs) = (rec.db, &rec.run, rec.lease, rec.lease_secs);
    let renew_every = renew_interval(secs);
    let mut held = Instant::now();
    let mut buffer = String::new();
    let result = provider::complete(&caller, model, &messages, &toolbox.specs, |text| {
        if held.elapsed() >= renew_every {
            match runs::hold_lease(db, &run.id, lease, secs) {
                Ok(true) => {}
                Ok(false) => eprintln!("run {}: lease lost during a model call", run.id),
                Err(e) => eprintln!("run {}: could not renew the lease: {e}", run.id),
            }
            held = Instant::now();
        }
        buffer.push_str(text);
        if buffer.len() >= TOKEN_FLUSH_BYTES {
            flush_tokens(db, run, &mut buffer);
        }
        // Between chunks the model may pause for long.
        db.release();
    })
    .await;
    let error = match result {
        Ok(completion) => {
            // The last streamed text goes with the step that records it.
            if !buffer.is_empty() {
                rec.event_with_next_step("token", json!({ "text": buffer }));
            }
            return Ok(Next::Record(
                Step::Llm { completion },
                json!({ "iteration": iteration }),
            ));
        }
        Err(e) => {
            flush_tokens(db, run, &mut buffer);
            e
        }
    };
    let jitter = {
        let mut byte = [0u8; 1];
        getrandom::fill(&mut byte).map_or(0, |()| byte[0])
    };
    Ok(
        match after_model_error(&error, rec.run.retries, retry_base_ms(), jitter) {
            Retry::After { delay_ms } => {
                eprintln!(
                    "run {}: model call failed ({error}); retrying in {delay_ms} ms",
                    rec.run.id
                );
                let data = json!({ "error": error.to_string(), "delay_ms": delay_ms });
                rec.event("retry", &data)?;
                rec.hand_back(Some(delay_ms), true)?;
                Next::Stop(Outcome::Retrying)
            }
            Retry::GiveUp { error } => Next::End(Ending::Failed(error)),
        },
    )
}

/// The first retry's delay (`llm_retry_base_ms`; tests shorten it).
fn retry_base_ms() -> i64 {
    synatra_internal::setting("llm_retry_base_ms").unwrap_or(DEFAULT_RETRY_BASE_MS)
}

/// Streamed text as an ephemeral event; the recorded message is the record.
fn flush_tokens(db: &Db, run: &runs::RunState, buffer: &mut String) {
    if buffer.is_empty() {
        return;
    }
    let data = json!({ "text": buffer });
    if let Err(e) = runs::add_event(db, &run.thread_id, Some(&run.id), "token", &data) {
        eprintln!("run {}: could not write token event: {e}", run.id);
    }
    buffer.clear();
}
