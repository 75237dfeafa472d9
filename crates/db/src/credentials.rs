//! `llm_credentials`: per org, environment and provider. Only the gateway
//! writes sealed keys and opens them (a claim loads a run's row still
//! sealed, for the gateway); the API lists masked views.

use serde::Deserialize;
use spin_sdk::pg4::ParameterValue::{Binary, Boolean, DbNull};

use crate::{jsonb, opt_text, opt_uuid, text, uuid, Db, DbResult, FromRow, Row, Timestamp};

/// A change to one credential; `None` keeps a field, `Some(None)` clears it.
pub struct CredentialUpdate<'a> {
    pub org_id: &'a str,
    pub environment_id: &'a str,
    pub provider: &'a str,
    pub sealed_key: Option<Option<(Vec<u8>, String)>>,
    pub base_url: Option<Option<&'a str>>,
    /// Replaces the agent-level URLs allowed in this environment.
    pub allowed_base_urls: Option<&'a [String]>,
    pub updated_by: Option<&'a str>,
}

/// What the API shows of a credential: never the key, only its hint.
pub struct CredentialView {
    pub provider: String,
    /// The key's last characters, as `…abcd`.
    pub api_key_hint: Option<String>,
    pub has_api_key: bool,
    pub base_url: Option<String>,
    pub allowed_base_urls: serde_json::Value,
    pub updated_at: Timestamp,
}

impl FromRow for CredentialView {
    fn from_row(r: &Row) -> DbResult<Self> {
        Ok(Self {
            provider: r.get("provider")?,
            api_key_hint: r.get("api_key_hint")?,
            has_api_key: r.get("has_api_key")?,
            base_url: r.get("base_url")?,
            allowed_base_urls: r.json("allowed_base_urls")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

/// The columns of [`CredentialView`]: the sealed key itself is not read.
const VIEW: &str = "provider, api_key_hint, (api_key_sealed IS NOT NULL) AS has_api_key, base_url, allowed_base_urls, updated_at AT TIME ZONE 'UTC' AS updated_at";

/// Creates or updates a credential.
pub fn upsert(db: &Db, u: &CredentialUpdate) -> DbResult<()> {
    let (set_key, sealed, hint) = match &u.sealed_key {
        None => (false, DbNull, DbNull),
        Some(None) => (true, DbNull, DbNull),
        Some(Some((bytes, hint))) => (true, Binary(bytes.clone()), text(hint)),
    };
    let (set_url, url) = match u.base_url {
        None => (false, DbNull),
        Some(v) => (true, opt_text(v)),
    };
    let (set_allowed, allowed) = match u.allowed_base_urls {
        None => (false, jsonb(&serde_json::json!([]))),
        Some(urls) => (true, jsonb(&serde_json::json!(urls))),
    };
    db.execute(
        "INSERT INTO llm_credentials (org_id, environment_id, provider, api_key_sealed, api_key_hint, base_url, updated_by, allowed_base_urls)
             VALUES ($1, $2, $3, $5, $6, $8, $9, $11)
             ON CONFLICT (org_id, environment_id, provider) DO UPDATE SET
               api_key_sealed = CASE WHEN $4 THEN EXCLUDED.api_key_sealed ELSE llm_credentials.api_key_sealed END,
               api_key_hint = CASE WHEN $4 THEN EXCLUDED.api_key_hint ELSE llm_credentials.api_key_hint END,
               base_url = CASE WHEN $7 THEN EXCLUDED.base_url ELSE llm_credentials.base_url END,
               allowed_base_urls = CASE WHEN $10 THEN EXCLUDED.allowed_base_urls ELSE llm_credentials.allowed_base_urls END,
               updated_by = EXCLUDED.updated_by, updated_at = now(), url_seal = NULL",
        &[
            uuid(u.org_id),
            uuid(u.environment_id),
            text(u.provider),
            Boolean(set_key),
            sealed,
            hint,
            Boolean(set_url),
            url,
            opt_uuid(u.updated_by),
            Boolean(set_allowed),
            allowed,
        ],
    )?;
    Ok(())
}

/// A stored credential: the sealed key and the base URL, each optional,
/// and the agent-level URLs allowed.
pub struct Stored {
    pub sealed_key: Option<Vec<u8>>,
    pub base_url: Option<String>,
    pub allowed_base_urls: Vec<String>,
    /// The gateway's seal over the row's key and URLs (see [`urls_context`]);
    /// None until the gateway seals the row, and again after each write.
    pub url_seal: Option<Vec<u8>>,
}

/// A credential as SQL `load_run` hands it to the agent step, which passes
/// it to the gateway unopened: bytes in hex.
#[derive(Deserialize)]
pub struct Travelling {
    pub provider: String,
    api_key_sealed: Option<String>,
    base_url: Option<String>,
    allowed_base_urls: Vec<String>,
    url_seal: String,
}

impl Travelling {
    /// The row it was loaded from; None when its hex does not decode.
    pub fn stored(&self) -> Option<Stored> {
        let sealed_key = match &self.api_key_sealed {
            Some(hex) => Some(unhex(hex)?),
            None => None,
        };
        Some(Stored {
            sealed_key,
            base_url: self.base_url.clone(),
            allowed_base_urls: self.allowed_base_urls.clone(),
            url_seal: Some(unhex(&self.url_seal)?),
        })
    }
}

fn unhex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What a credential's `url_seal` is bound to: the row's identity, its
/// sealed key (or its having none) and every URL the gateway decides on.
/// A seal made for other URLs, another key or another row does not open.
pub fn urls_context(org_id: &str, environment_id: &str, provider: &str, stored: &Stored) -> String {
    serde_json::json!([
        "llm-urls",
        context(org_id, environment_id, provider),
        stored.sealed_key,
        stored.base_url,
        stored.allowed_base_urls,
    ])
    .to_string()
}

/// Stores `seal` as the row's `url_seal` if the row still holds what was
/// sealed (a write meanwhile cleared the seal and changed the row) and no
/// concurrent call has sealed it already.
pub fn set_url_seal(
    db: &Db,
    org_id: &str,
    environment_id: &str,
    provider: &str,
    stored: &Stored,
    seal: &[u8],
) -> DbResult<()> {
    db.execute(
        "UPDATE llm_credentials SET url_seal = $4
          WHERE org_id = $1 AND environment_id = $2 AND provider = $3
            AND api_key_sealed IS NOT DISTINCT FROM $5 AND base_url IS NOT DISTINCT FROM $6
            AND allowed_base_urls = $7 AND url_seal IS NULL",
        &[
            uuid(org_id),
            uuid(environment_id),
            text(provider),
            Binary(seal.to_vec()),
            stored.sealed_key.clone().map_or(DbNull, Binary),
            opt_text(stored.base_url.as_deref()),
            jsonb(&serde_json::json!(stored.allowed_base_urls)),
        ],
    )?;
    Ok(())
}

/// One credential, if configured.
pub fn get(
    db: &Db,
    org_id: &str,
    environment_id: &str,
    provider: &str,
) -> DbResult<Option<Stored>> {
    db.query_opt(
        "SELECT api_key_sealed, base_url, allowed_base_urls, url_seal FROM llm_credentials
             WHERE org_id = $1 AND environment_id = $2 AND provider = $3",
        &[uuid(org_id), uuid(environment_id), text(provider)],
    )?
    .map(|r| -> DbResult<Stored> {
        Ok(Stored {
            sealed_key: r.bytes("api_key_sealed")?,
            base_url: r.opt_str("base_url")?,
            allowed_base_urls: serde_json::from_value(r.json("allowed_base_urls")?)
                .unwrap_or_default(),
            url_seal: r.bytes("url_seal")?,
        })
    })
    .transpose()
}

/// Masked views of an environment's credentials (of one `provider` when given).
pub fn views(
    db: &Db,
    org_id: &str,
    environment_id: &str,
    provider: Option<&str>,
) -> DbResult<Vec<CredentialView>> {
    db.query_as(
        &format!(
            "SELECT {VIEW} FROM llm_credentials
             WHERE org_id = $1 AND environment_id = $2 AND ($3::text IS NULL OR provider = $3)
             ORDER BY provider"
        ),
        &[uuid(org_id), uuid(environment_id), opt_text(provider)],
    )
}

/// Removes a credential; false if there was none.
pub fn delete(db: &Db, org_id: &str, environment_id: &str, provider: &str) -> DbResult<bool> {
    Ok(db.execute(
        "DELETE FROM llm_credentials WHERE org_id = $1 AND environment_id = $2 AND provider = $3",
        &[uuid(org_id), uuid(environment_id), text(provider)],
    )? == 1)
}

/// The sealing context of a credential: binds the ciphertext to its row.
pub fn context(org_id: &str, environment_id: &str, provider: &str) -> String {
    format!("llm:{org_id}:{environment_id}:{provider}")
}
