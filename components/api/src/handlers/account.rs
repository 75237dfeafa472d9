//! Sign-up, sign-in, sign-out and the caller's own profile.

use serde_json::json;

use crate::auth::{self, Principal};
use crate::client::Client;
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::Reply;
use crate::input::is_email;
use crate::store::sign_in_limits::{self, Attempt};
use crate::store::{orgs, sessions, users};

/// Verifying against this keeps unknown emails as slow as wrong passwords.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c3luYXRyYWR1bW15c2FsdA$0Yq0S5Ya1zLx7mN3tq2Tq0mU3k1tQ0z6p9hX0Q8oJ7A";

/// The email, password and (when signing up) name of the body. Sign-up
/// requires 8 characters of password; sign-in accepts any length, so a
/// wrong short password is a wrong password (401), not a bad request.
fn credentials(ctx: &Ctx, signing_up: bool) -> ApiResult<(String, String, String)> {
    let mut input = ctx.input()?;
    let email = input.string("email", 3, 254);
    let password = input.string("password", if signing_up { 8 } else { 1 }, 256);
    let name = if signing_up {
        input.string("name", 1, 100)
    } else {
        String::new()
    };
    input.check(
        email.is_empty() || is_email(&email),
        "email",
        "`email` must be an email address",
    );
    input.finish()?;
    Ok((email, password, name))
}

fn new_session(ctx: &Ctx, user_id: &str) -> ApiResult<String> {
    let token = auth::new_token()?;
    sessions::create(ctx.db, user_id, &auth::hash_token(&token))?;
    let secure = Client::of(ctx.req).secure_cookies();
    Ok(auth::session_cookie(&token, secure))
}

/// 429 `rate_limited`, retry after `secs`.
fn rate_limited(message: &str, secs: i64) -> ApiError {
    ApiError::retry_later("rate_limited", message, secs)
}

/// `POST /auth/signup {email, password, name}`: creates the user and signs
/// in; limited per client address (`signup_limit_per_hour`).
pub fn signup(ctx: &Ctx) -> ApiResult<Reply> {
    let (email, password, name) = credentials(ctx, true)?;
    let limit = synatra_internal::setting("signup_limit_per_hour")
        .unwrap_or(sign_in_limits::SIGNUPS_PER_HOUR);
    if let Some(secs) = sign_in_limits::signup(ctx.db, &Client::of(ctx.req).address, limit)? {
        return Err(rate_limited(
            &format!("at most {limit} sign-ups per hour from one address; try again later"),
            secs,
        ));
    }
    let hash = auth::hash_password(&password)?;
    let (user, cookie) = ctx
        .db
        .transaction(|db| -> ApiResult<_> {
            let user = users::insert(db, &email, &name, &hash)?;
            let cookie = new_session(ctx, &user.str("id")?)?;
            Ok((users::to_json(&user)?, cookie))
        })
        .map_err(|e| e.on_conflict("email_taken", "an account with this email already exists"))?;
    Ok(Reply::created(json!({ "user": user })).with_cookie(cookie))
}

/// `POST /auth/login {email, password}`: failures limited per (email,
/// client address) with backoff, and per client address.
pub fn login(ctx: &Ctx) -> ApiResult<Reply> {
    let (email, password, _) = credentials(ctx, false)?;
    let client = Client::of(ctx.req).address;
    if let Attempt::Wait(secs) = sign_in_limits::attempt(ctx.db, &email, &client)? {
        return Err(rate_limited(
            "too many failed sign-ins from this address; try again later",
            secs,
        ));
    }
    let found = users::find_for_login(ctx.db, &email)?;
    let hash = found
        .as_ref()
        .map(|(_, h)| h.as_str())
        .unwrap_or(DUMMY_HASH);
    let valid = auth::verify_password(&password, hash);
    let Some((user, _)) = found.filter(|_| valid) else {
        return Err(ApiError::new(
            401,
            "invalid_credentials",
            "email or password is wrong",
        ));
    };
    let cookie = ctx.db.transaction(|db| {
        sign_in_limits::signed_in(db, &email, &client)?;
        new_session(ctx, &user.str("id")?)
    })?;
    Ok(Reply::ok(json!({ "user": users::to_json(&user)? })).with_cookie(cookie))
}

/// `POST /auth/logout`: ends the session and clears the cookie.
pub fn logout(ctx: &Ctx) -> ApiResult<Reply> {
    match ctx.principal()? {
        Principal::Session { session_id, .. } => {
            sessions::delete(ctx.db, session_id)?;
            let secure = Client::of(ctx.req).secure_cookies();
            Ok(Reply::no_content().with_cookie(auth::clear_session_cookie(secure)))
        }
        Principal::ApiKey { .. } => Err(ApiError::new(
            403,
            "api_key_not_allowed",
            "API keys have no session; revoke the key instead",
        )),
    }
}

/// `GET /me`: the signed-in user and their orgs, or the API key in use.
pub fn me(ctx: &Ctx) -> ApiResult<Reply> {
    match ctx.principal()? {
        Principal::Session { user_id, .. } => {
            let user = users::get(ctx.db, user_id)?.ok_or_else(ApiError::unauthenticated)?;
            Ok(Reply::ok(json!({
                "user": users::to_json(&user)?,
                "orgs": orgs::list_for_user(ctx.db, user_id)?,
            })))
        }
        Principal::ApiKey {
            key_id,
            org_id,
            role,
            name,
            ..
        } => Ok(Reply::ok(json!({
            "api_key": { "id": key_id, "name": name, "role": role.as_str(), "org_id": org_id },
        }))),
    }
}
