//! Sign-in and sign-up limits (`login_failures`, `signup_attempts`).
//!
//! A sign-in is counted as a failure before its password is checked (and
//! forgotten when it succeeds), so parallel attempts cannot slip under a
//! limit: each sees the attempts counted before its own. Failures are
//! judged per (email, client address): after [`FREE_FAILURES`] for a pair,
//! each further check waits [`FIRST_BACKOFF_SECS`], doubling per failure up
//! to the window's length, so a stranger's wrong passwords never lock the
//! account's owner out from their own address. A client address may fail
//! [`MAX_PER_CLIENT`] times per window across all emails. Refused attempts
//! check no password and are not counted.

use spin_sdk::pg4::ParameterValue::Int64;

use crate::db::{text, Db};
use crate::error::ApiResult;

/// How long failures are remembered, in seconds.
pub const WINDOW_SECS: i64 = 15 * 60;
/// Failures of one (email, client) pair before backoff starts.
pub const FREE_FAILURES: i64 = 5;
/// Wait after the first failure beyond the free ones; doubles per failure.
pub const FIRST_BACKOFF_SECS: i64 = 15;
/// Failures allowed per client address within the window.
pub const MAX_PER_CLIENT: i64 = 20;
/// Sign-ups per client address per hour unless `signup_limit_per_hour` says otherwise.
pub const SIGNUPS_PER_HOUR: i64 = 20;

/// A counted sign-in attempt, or how long to wait.
pub enum Attempt {
    /// Check the password; the attempt stays a failure unless
    /// [`signed_in`] follows.
    Check,
    /// Refused: retry after this many seconds.
    Wait(i64),
}

/// Counts a sign-in attempt of `email` from `client`.
pub fn attempt(db: &Db, email: &str, client: &str) -> ApiResult<Attempt> {
    db.execute(
        "DELETE FROM login_failures WHERE failed_at < now() - $1::bigint * interval '1 second'",
        &[Int64(WINDOW_SECS)],
    )?;
    let id = db
        .query_one(
            "INSERT INTO login_failures (email, client) VALUES ($1, $2) RETURNING id",
            &[text(email), text(client)],
        )?
        .i64("id")?;
    // Earlier attempts of the pair and of the client; the wait is the
    // pair's backoff after its latest failure.
    let r = db.query_one(
        "SELECT count(*) FILTER (WHERE lower(email) = lower($1)) AS pair,
                count(*) AS by_client,
                ceil(extract(epoch FROM
                    max(failed_at) FILTER (WHERE lower(email) = lower($1))
                    + least($4::bigint * power(2, greatest(count(*) FILTER (WHERE lower(email) = lower($1)) - $5::bigint, 0)), $6::bigint)
                      * interval '1 second'
                    - now()))::bigint AS backoff_left
         FROM login_failures WHERE client = $2 AND id < $3::bigint",
        &[
            text(email),
            text(client),
            Int64(id),
            Int64(FIRST_BACKOFF_SECS),
            Int64(FREE_FAILURES),
            Int64(WINDOW_SECS),
        ],
    )?;
    let (pair, by_client) = (r.i64("pair")?, r.i64("by_client")?);
    let backoff_left: Option<i64> = r.get("backoff_left")?;
    let wait = if by_client >= MAX_PER_CLIENT {
        Some(WINDOW_SECS)
    } else if pair >= FREE_FAILURES {
        backoff_left.filter(|s| *s > 0)
    } else {
        None
    };
    match wait {
        None => Ok(Attempt::Check),
        Some(secs) => {
            db.execute(
                "DELETE FROM login_failures WHERE id = $1::bigint",
                &[Int64(id)],
            )?;
            Ok(Attempt::Wait(secs))
        }
    }
}

/// Forgets the failures of `email` from `client` after it signed in there.
pub fn signed_in(db: &Db, email: &str, client: &str) -> ApiResult<()> {
    db.execute(
        "DELETE FROM login_failures WHERE lower(email) = lower($1) AND client = $2",
        &[text(email), text(client)],
    )?;
    Ok(())
}

/// Counts a sign-up from `client`; `Some(seconds to wait)` when the client
/// already signed up `limit` times within the hour (that attempt is not
/// counted).
pub fn signup(db: &Db, client: &str, limit: i64) -> ApiResult<Option<i64>> {
    db.execute(
        "DELETE FROM signup_attempts WHERE created_at < now() - interval '1 hour'",
        &[],
    )?;
    let id = db
        .query_one(
            "INSERT INTO signup_attempts (client) VALUES ($1) RETURNING id",
            &[text(client)],
        )?
        .i64("id")?;
    let r = db.query_one(
        "SELECT count(*) AS earlier,
                ceil(extract(epoch FROM min(created_at) + interval '1 hour' - now()))::bigint AS left_secs
         FROM signup_attempts WHERE client = $1 AND id < $2::bigint",
        &[text(client), Int64(id)],
    )?;
    if r.i64("earlier")? < limit {
        return Ok(None);
    }
    db.execute(
        "DELETE FROM signup_attempts WHERE id = $1::bigint",
        &[Int64(id)],
    )?;
    let left: Option<i64> = r.get("left_secs")?;
    Ok(Some(left.unwrap_or(3600).max(1)))
}
