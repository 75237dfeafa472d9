//! Authentication: session cookies, API keys, password hashing, the Origin
//! check for cookie-authenticated writes.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};
use spin_sdk::http::Request;
use spin_sdk::variables;
use synatra_authz::Role;

use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use crate::http::{cookie, header};
use crate::store;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "synatra_session";
/// Session lifetime.
pub const SESSION_DAYS: i64 = 30;
/// Prefix of API key tokens, so they are recognisable in secret scanners.
pub const API_KEY_PREFIX: &str = "syn_";

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A signed-in user (cookie).
    Session { user_id: String, session_id: String },
    /// An org-scoped API key (bearer token).
    ApiKey {
        key_id: String,
        org_id: String,
        role: Role,
        name: String,
        /// Who created the key (gone once they are deleted).
        created_by: Option<String>,
    },
}

impl Principal {
    /// The user behind a session; API keys act for their org, not a user.
    pub fn user_id(&self) -> ApiResult<&str> {
        match self {
            Principal::Session { user_id, .. } => Ok(user_id),
            Principal::ApiKey { .. } => Err(ApiError::new(
                403,
                "api_key_not_allowed",
                "this operation needs a signed-in user, not an API key",
            )),
        }
    }
}

/// Resolves the caller from `Authorization: Bearer` or the session cookie,
/// with, for a session, the org named by `org_key` if its user is a member
/// (read in the same statement; an API key's org is checked by the caller).
/// A bearer token that is present but invalid is an error, never a fallback.
pub fn authenticate(
    db: &Db,
    req: &Request,
    org_key: &str,
) -> ApiResult<(Option<Principal>, Option<store::orgs::OrgAccess>)> {
    if let Some(auth) = header(req, "authorization") {
        let token = auth
            .strip_prefix("Bearer ")
            .ok_or_else(ApiError::unauthenticated)?
            .trim();
        let key = store::api_keys::find_active(db, &hash_token(token))?
            .ok_or_else(ApiError::unauthenticated)?;
        return Ok((Some(key), None));
    }
    match cookie(req, SESSION_COOKIE) {
        Some(token) => Ok(
            match store::sessions::find_active(db, &hash_token(&token), org_key)? {
                Some((principal, org)) => (Some(principal), org),
                None => (None, None),
            },
        ),
        None => Ok((None, None)),
    }
}

/// Cookie-authenticated writes must come from an allowed origin (`APP_ORIGINS`).
pub fn check_origin(req: &Request, cookie_auth: bool) -> ApiResult<()> {
    let method = req.method().to_string();
    if matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS") {
        return Ok(());
    }
    let origin = header(req, "origin");
    if origin.is_none() && !cookie_auth {
        return Ok(());
    }
    let allowed = variables::get("app_origins").unwrap_or_default();
    match origin {
        Some(o) if allowed.split(',').any(|a| a.trim() == o) => Ok(()),
        Some(o) => Err(ApiError::new(
            403,
            "origin_not_allowed",
            format!(
                "the origin {o} may not send writes with a session cookie; add it to APP_ORIGINS"
            ),
        )),
        None => Err(ApiError::new(
            403,
            "origin_not_allowed",
            "a write with a session cookie must send an Origin header naming an allowed origin \
             (APP_ORIGINS); scripts can use an API key instead",
        )),
    }
}

/// Hex SHA-256 of a token; only hashes are stored.
pub fn hash_token(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A new random token of 32 bytes, hex-encoded.
pub fn new_token() -> ApiResult<String> {
    Ok(hex(&random_bytes::<32>()?))
}

fn random_bytes<const N: usize>() -> ApiResult<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    Ok(buf)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An argon2id PHC string for `password`.
pub fn hash_password(password: &str) -> ApiResult<String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Whether `password` matches the stored hash.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The `Set-Cookie` value for a new session.
pub fn session_cookie(token: &str, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        SESSION_DAYS * 86_400,
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that clears the session cookie.
pub fn clear_session_cookie(secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}
