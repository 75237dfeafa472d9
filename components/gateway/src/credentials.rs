//! Sealing provider credentials into `llm_credentials`, and opening them.

use serde::Deserialize;
use serde_json::Value;
use spin_sdk::variables;
use synatra_db::credentials::{self, CredentialUpdate};
use synatra_db::Db;
use synatra_secrets::{hint, SecretKey};

use crate::error;

/// `PUT /llm-credentials`; the API has authorised and validated the caller.
#[derive(Deserialize)]
struct Put {
    org_id: String,
    environment_id: String,
    provider: String,
    /// Absent: keep; null: clear; a string: replace.
    #[serde(default, deserialize_with = "present")]
    api_key: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    base_url: Option<Option<String>>,
    updated_by: Option<String>,
}

/// Distinguishes an absent field (None) from an explicit null (Some(None)).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// The encryption key, from the `encryption_key` variable.
pub fn key() -> Result<SecretKey, String> {
    let hex = variables::get("encryption_key")
        .map_err(|e| format!("encryption_key is not configured: {e}"))?;
    SecretKey::from_hex(&hex).map_err(|e| e.to_string())
}

/// Seals and stores a credential; returns (status, `{stored}` or error).
pub fn put(body: &[u8]) -> (u16, Value) {
    let put: Put = match serde_json::from_slice(body) {
        Ok(p) => p,
        Err(e) => return (400, error("invalid_json", e)),
    };
    let key = match key() {
        Ok(k) => k,
        Err(e) => return (500, error("encryption_unavailable", e)),
    };
    let context = credentials::context(&put.org_id, &put.environment_id, &put.provider);
    let sealed_key = match &put.api_key {
        None => None,
        Some(None) => Some(None),
        Some(Some(plain)) => match key.seal(plain.as_bytes(), &context) {
            Ok(sealed) => Some(Some((sealed, hint(plain)))),
            Err(e) => return (500, error("encryption_unavailable", e)),
        },
    };
    let update = CredentialUpdate {
        org_id: &put.org_id,
        environment_id: &put.environment_id,
        provider: &put.provider,
        sealed_key,
        base_url: put.base_url.as_ref().map(|v| v.as_deref()),
        updated_by: put.updated_by.as_deref(),
    };
    match Db::open().and_then(|db| credentials::upsert(&db, &update)) {
        Ok(()) => (200, serde_json::json!({ "stored": true })),
        Err(e) => (503, error("database_unavailable", e)),
    }
}

/// The API key and base URL to use for `provider` in an org's environment:
/// the stored credential first, then the `*_api_key` variable.
pub fn resolve(
    org_id: &str,
    environment_id: Option<&str>,
    provider: &str,
    fallback_variable: &str,
) -> Result<(Option<String>, Option<String>), String> {
    let stored = match environment_id {
        Some(env) => Db::open()
            .and_then(|db| credentials::get(&db, org_id, env, provider))
            .map_err(|e| e.to_string())?,
        None => None,
    };
    let (sealed, base_url) = stored.map_or((None, None), |s| (s.sealed_key, s.base_url));
    let api_key = match (sealed, environment_id) {
        (Some(sealed), Some(env)) => {
            let plain = key()?
                .open(&sealed, &credentials::context(org_id, env, provider))
                .map_err(|e| format!("the stored {provider} key cannot be used: {e}"))?;
            Some(String::from_utf8(plain).map_err(|_| "the stored key is not text".to_string())?)
        }
        _ => variables::get(fallback_variable)
            .ok()
            .filter(|k| !k.trim().is_empty()),
    };
    Ok((api_key, base_url))
}
