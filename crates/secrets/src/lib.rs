//! Credentials at rest: AES-256-GCM with a 32-byte key (`ENCRYPTION_KEY`, 64
//! hex characters). A sealed value is `version (1) || nonce (12) ||
//! ciphertext+tag`, and its *context* (e.g. `llm:<org>:<env>:<provider>`)
//! is authenticated as associated data, so a ciphertext copied to another
//! record does not open. Only the gateway component holds the key.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// Why sealing or opening failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    /// The key is not 64 hex characters.
    BadKey,
    /// No randomness for a nonce.
    NoRandomness,
    /// Wrong key, wrong context, or tampered data.
    CannotOpen,
}

impl std::fmt::Display for SecretError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecretError::BadKey => "ENCRYPTION_KEY must be 64 hex characters (32 bytes)",
            SecretError::NoRandomness => "no randomness available for a nonce",
            SecretError::CannotOpen => {
                "the credential cannot be decrypted (wrong key, context or tampered)"
            }
        })
    }
}

/// A parsed encryption key.
pub struct SecretKey(Aes256Gcm);

impl SecretKey {
    /// Parses a 64-character hex key.
    pub fn from_hex(hex: &str) -> Result<Self, SecretError> {
        let hex = hex.trim();
        if hex.len() != 64 {
            return Err(SecretError::BadKey);
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte =
                u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| SecretError::BadKey)?;
        }
        Ok(Self(Aes256Gcm::new(&key.into())))
    }

    /// Encrypts `plaintext` bound to `context`.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| SecretError::NoRandomness)?;
        let sealed = self
            .0
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::CannotOpen)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts a value sealed for `context`.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, SecretError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != VERSION {
            return Err(SecretError::CannotOpen);
        }
        let (nonce, data) = sealed[1..].split_at(NONCE_LEN);
        self.0
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: data,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::CannotOpen)
    }
}

/// A display hint for a secret: its first 3 and last 4 characters.
pub fn hint(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 10 {
        return "…".to_string();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// Whether a given secret (a header, a token) equals the expected one,
/// compared in constant time so the answer's timing does not tell where
/// they differ.
pub fn secrets_match(expected: &[u8], given: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    expected.len() == given.len() && bool::from(expected.ct_eq(given))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(secrets_match(b"s3cret", b"s3cret"));
        assert!(!secrets_match(b"s3cret", b"s3cres"));
        assert!(!secrets_match(b"s3cret", b"s3cre"));
        assert!(!secrets_match(b"", b"x"));
    }

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let key = SecretKey::from_hex(KEY).unwrap();
        let sealed = key.seal(b"sk-live-123", "llm:o:e:openai").unwrap();
        assert!(!sealed.windows(11).any(|w| w == b"sk-live-123"));
        assert_eq!(key.open(&sealed, "llm:o:e:openai").unwrap(), b"sk-live-123");
        assert_eq!(
            key.open(&sealed, "llm:o:e:anthropic"),
            Err(SecretError::CannotOpen)
        );
        let other = SecretKey::from_hex(&KEY.replace("00", "ff")).unwrap();
        assert_eq!(
            other.open(&sealed, "llm:o:e:openai"),
            Err(SecretError::CannotOpen)
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(
            key.open(&tampered, "llm:o:e:openai"),
            Err(SecretError::CannotOpen)
        );
        assert_ne!(
            key.seal(b"x", "c").unwrap(),
            key.seal(b"x", "c").unwrap(),
            "fresh nonce each time"
        );
    }

    #[test]
    fn keys_must_be_64_hex_characters_and_hints_hide_the_middle() {
        assert!(SecretKey::from_hex("abc").is_err());
        assert!(SecretKey::from_hex(&"zz".repeat(32)).is_err());
        assert_eq!(hint("sk-abcdefghijklmnop"), "sk-…mnop");
        assert_eq!(hint("short"), "…");
    }
}
