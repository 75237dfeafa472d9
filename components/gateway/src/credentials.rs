//! Sealing provider credentials into `llm_credentials`, and opening them.

use serde::Deserialize;
use serde_json::Value;
use spin_sdk::variables;
use synatra_db::credentials::{self, CredentialUpdate, Stored, Travelling};
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
    allowed_base_urls: Option<Vec<String>>,
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

/// The encryption key, read from its variable at most once per model call
/// (a travelling credential's seal and the key it carries both need it).
#[derive(Default)]
struct LazyKey(std::cell::OnceCell<Result<SecretKey, String>>);

impl LazyKey {
    fn get(&self) -> Result<&SecretKey, String> {
        self.0.get_or_init(key).as_ref().map_err(Clone::clone)
    }
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
        allowed_base_urls: put.allowed_base_urls.as_deref(),
        updated_by: put.updated_by.as_deref(),
    };
    match Db::open().and_then(|db| credentials::upsert(&db, &update)) {
        Ok(()) => (200, serde_json::json!({ "stored": true })),
        Err(e) => (503, error("database_unavailable", e)),
    }
}

/// Where a model call goes and the key it carries.
pub struct Target {
    pub api_key: Option<String>,
    pub base_url: Option<String>,
}

/// Why a model call may not be made.
pub enum Refused {
    /// The stored credential cannot be opened.
    Unusable(String),
    /// The agent names a URL no admin allowed in its environment.
    UrlNotAllowed(String),
}

/// The target of `provider`'s call for an org's environment. A stored key
/// goes only to its credential's URL (the provider's default when it has
/// none); an agent's `base_url` must be that URL or one an admin allowed,
/// and a different one is called without the key. The operator's
/// `fallback_variable` key serves only orgs named in `fallback_key_orgs`,
/// only where no key is stored, and only toward the provider's default.
pub fn target(
    org_id: &str,
    environment_id: Option<&str>,
    travelling: Option<&Travelling>,
    provider: &str,
    agent_url: Option<&str>,
    fallback_variable: &str,
) -> Result<Target, Refused> {
    let secret = LazyKey::default();
    let stored = match environment_id {
        Some(env) => match travelling.and_then(|t| opened(&secret, org_id, env, provider, t)) {
            Some(stored) => Some(stored),
            None => read(&secret, org_id, env, provider)?,
        },
        None => None,
    };
    let same = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
    let home = stored.as_ref().and_then(|s| s.base_url.clone());
    if let Some(url) = agent_url {
        let allowed = home.iter().any(|h| same(h, url))
            || stored
                .iter()
                .flat_map(|s| &s.allowed_base_urls)
                .any(|a| same(a, url));
        if !allowed {
            return Err(Refused::UrlNotAllowed(format!(
                "the agent's base_url {url} is not allowed in this environment: an org admin allows it by adding it to `allowed_base_urls` with PUT /api/v1/orgs/{{org}}/environments/{{env}}/llm-providers/{provider}"
            )));
        }
    }
    let goes_home = match (agent_url, &home) {
        (None, _) => true,
        (Some(url), Some(home)) => same(url, home),
        (Some(_), None) => false,
    };
    let base_url = agent_url.map(str::to_string).or(home);
    let sealed = stored.and_then(|s| s.sealed_key);
    let api_key = match (sealed, environment_id) {
        (Some(sealed), Some(env)) if goes_home => {
            let plain = secret
                .get()
                .map_err(Refused::Unusable)?
                .open(&sealed, &credentials::context(org_id, env, provider))
                .map_err(|e| {
                    Refused::Unusable(format!("the stored {provider} key cannot be used: {e}"))
                })?;
            Some(
                String::from_utf8(plain)
                    .map_err(|_| Refused::Unusable("the stored key is not text".into()))?,
            )
        }
        (Some(_), _) => None,
        (None, _) if base_url.is_none() && fallback_allowed(org_id) => {
            variables::get(fallback_variable)
                .ok()
                .filter(|k| !k.trim().is_empty())
        }
        (None, _) => None,
    };
    Ok(Target { api_key, base_url })
}

/// The credential a run brought from its claim, if it is this call's and
/// its `url_seal` opens: then its key and URLs are the row's as the gateway
/// sealed them (a caller without the encryption key cannot make a seal for
/// other URLs; the row it was loaded from may have changed since the claim,
/// as it may during any call).
fn opened(
    secret: &LazyKey,
    org_id: &str,
    env: &str,
    provider: &str,
    travelling: &Travelling,
) -> Option<Stored> {
    if travelling.provider != provider {
        return None;
    }
    let stored = travelling.stored()?;
    let seal = stored.url_seal.as_deref()?;
    let context = credentials::urls_context(org_id, env, provider, &stored);
    match secret.get().ok()?.open(seal, &context) {
        Ok(_) => Some(stored),
        Err(_) => {
            eprintln!("a run's {provider} credential did not match its seal; reading the row");
            None
        }
    }
}

/// Reads the credential row; seals one with no seal yet, so the next
/// claims load it with their runs.
fn read(
    secret: &LazyKey,
    org_id: &str,
    env: &str,
    provider: &str,
) -> Result<Option<Stored>, Refused> {
    let db = Db::open().map_err(|e| Refused::Unusable(e.to_string()))?;
    let stored = credentials::get(&db, org_id, env, provider)
        .map_err(|e| Refused::Unusable(e.to_string()))?;
    if let Some(row) = stored.as_ref().filter(|s| s.url_seal.is_none()) {
        let context = credentials::urls_context(org_id, env, provider, row);
        let sealed = secret
            .get()
            .and_then(|k| k.seal(&[], &context).map_err(|e| e.to_string()))
            .and_then(|seal| {
                credentials::set_url_seal(&db, org_id, env, provider, row, &seal)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = sealed {
            eprintln!("could not seal the {provider} credential's URLs: {e}");
        }
    }
    Ok(stored)
}

/// Whether the operator lets `org_id` use the fallback keys
/// (`fallback_key_orgs`: comma-separated org ids, or `*` for all).
fn fallback_allowed(org_id: &str) -> bool {
    let orgs = variables::get("fallback_key_orgs").unwrap_or_default();
    orgs.split(',')
        .map(str::trim)
        .any(|o| o == "*" || o.eq_ignore_ascii_case(org_id))
}
