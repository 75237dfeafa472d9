//! What a failed model call leads to: a durable retry after a delay, or the
//! end of the run.

use synatra_llm::LlmError;

/// Model-call retries (429, 5xx, truncated or malformed answers) before the
/// run fails.
pub const MAX_MODEL_RETRIES: i32 = 5;
/// Longest delay a provider's `Retry-After` may impose (one hour).
const MAX_RETRY_AFTER_MS: i64 = 3_600_000;
/// Longest exponential backoff.
const MAX_BACKOFF_MS: i64 = 60_000;

/// The decision after a failed model call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// Sleep on a durable timer, then call again.
    After { delay_ms: i64 },
    /// The run fails with this message.
    GiveUp { error: String },
}

/// Decides what follows `error` when the run has retried `retries` times:
/// the provider's `Retry-After` when given, else exponential backoff from
/// `base_ms` with up to +25 % jitter (`jitter` is a random byte, so retries
/// of many runs do not arrive together).
pub fn after_model_error(error: &LlmError, retries: i32, base_ms: i64, jitter: u8) -> Retry {
    if !error.is_retryable() {
        return Retry::GiveUp {
            error: format!("model call failed: {error}"),
        };
    }
    if retries >= MAX_MODEL_RETRIES {
        return Retry::GiveUp {
            error: format!("model call failed after {retries} retries: {error}"),
        };
    }
    if let LlmError::RateLimited {
        retry_after_secs: Some(s),
        ..
    } = error
    {
        let ms = i64::try_from(*s).unwrap_or(i64::MAX).saturating_mul(1000);
        return Retry::After {
            delay_ms: ms.min(MAX_RETRY_AFTER_MS),
        };
    }
    let base = base_ms
        .max(1)
        .saturating_mul(1 << retries.clamp(0, 16))
        .min(MAX_BACKOFF_MS);
    Retry::After {
        delay_ms: base + i64::from(jitter) * base / 1024,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable() -> LlmError {
        LlmError::Unavailable("HTTP 503".into())
    }

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        assert_eq!(
            after_model_error(&unavailable(), 0, 500, 0),
            Retry::After { delay_ms: 500 }
        );
        assert_eq!(
            after_model_error(&unavailable(), 2, 500, 0),
            Retry::After { delay_ms: 2000 }
        );
        let Retry::After { delay_ms } = after_model_error(&unavailable(), 2, 500, 255) else {
            panic!("retryable")
        };
        assert!((2000..=2500).contains(&delay_ms), "{delay_ms}");
        assert_eq!(
            after_model_error(&unavailable(), 4, 10_000, 0),
            Retry::After { delay_ms: 60_000 },
            "backoff is capped"
        );
    }

    #[test]
    fn retry_after_wins_and_is_capped() {
        let limited = |s| LlmError::RateLimited {
            retry_after_secs: Some(s),
            message: "slow down".into(),
        };
        assert_eq!(
            after_model_error(&limited(7), 0, 500, 200),
            Retry::After { delay_ms: 7000 }
        );
        assert_eq!(
            after_model_error(&limited(u64::MAX), 0, 500, 0),
            Retry::After {
                delay_ms: 3_600_000
            }
        );
    }

    #[test]
    fn rejections_and_exhausted_retries_end_the_run() {
        let rejected = LlmError::from_status(401, None, r#"{"error":{"message":"bad key"}}"#);
        let Retry::GiveUp { error } = after_model_error(&rejected, 0, 500, 0) else {
            panic!("a 401 is not retried")
        };
        assert!(error.contains("bad key"), "{error}");
        let Retry::GiveUp { error } = after_model_error(&unavailable(), MAX_MODEL_RETRIES, 500, 0)
        else {
            panic!("retries are bounded")
        };
        assert!(error.contains("after 5 retries"), "{error}");
    }

    #[test]
    fn unreachable_providers_retry_only_when_it_may_pass() {
        let unreachable = |retryable| LlmError::Unreachable {
            retryable,
            message: "connection to h refused".into(),
        };
        assert_eq!(
            after_model_error(&unreachable(false), 0, 500, 0),
            Retry::GiveUp {
                error: "model call failed: connection to h refused".into()
            }
        );
        assert_eq!(
            after_model_error(&unreachable(true), 0, 500, 0),
            Retry::After { delay_ms: 500 }
        );
        let denied = LlmError::from_status(403, None, r#"{"error":{"message":"no"}}"#);
        assert!(denied
            .to_string()
            .starts_with("the provider refused the credentials (HTTP 403): no"));
        let missing = LlmError::from_status(404, None, "model not found");
        assert!(missing
            .to_string()
            .contains("check `model.model` and the base URL"));
    }
}
