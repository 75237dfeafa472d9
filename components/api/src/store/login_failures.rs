//! `login_failures`: failed sign-ins, counted per email and per client
//! address within a window for rate limiting.

use crate::db::{text, Db};
use crate::error::ApiResult;

/// Length of the rate-limit window, in minutes.
pub const WINDOW_MINUTES: i64 = 15;
/// Failures allowed per email within the window.
pub const MAX_PER_EMAIL: i64 = 5;
/// Failures allowed per client address within the window.
pub const MAX_PER_CLIENT: i64 = 20;

/// Counts a sign-in attempt before the password is checked (it stays
/// counted as a failure unless [`clear`] follows a success), so parallel
/// attempts cannot all slip under the limit; returns whether this one is
/// over the limit for its email or client. Prunes rows older than the window.
pub fn attempt(db: &Db, email: &str, client: &str) -> ApiResult<bool> {
    db.execute(
        &format!("DELETE FROM login_failures WHERE failed_at < now() - interval '{WINDOW_MINUTES} minutes'"),
        &[],
    )?;
    db.execute(
        "INSERT INTO login_failures (email, client) VALUES ($1, $2)",
        &[text(email), text(client)],
    )?;
    let r = db.query_one(
        &format!(
            "SELECT
               count(*) FILTER (WHERE lower(email) = lower($1)) AS by_email,
               count(*) FILTER (WHERE client = $2) AS by_client
             FROM login_failures
             WHERE failed_at > now() - interval '{WINDOW_MINUTES} minutes'
               AND (lower(email) = lower($1) OR client = $2)"
        ),
        &[text(email), text(client)],
    )?;
    Ok(r.i64("by_email")? > MAX_PER_EMAIL || r.i64("by_client")? > MAX_PER_CLIENT)
}

/// Forgets an email's failures after a successful sign-in.
pub fn clear(db: &Db, email: &str) -> ApiResult<()> {
    db.execute(
        "DELETE FROM login_failures WHERE lower(email) = lower($1)",
        &[text(email)],
    )?;
    Ok(())
}
