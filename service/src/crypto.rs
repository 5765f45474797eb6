//! Fernet encryption of the secrets stored in the database, each bound to its tenant.
//!
//! Tokens are standard Fernet (AES-128-CBC with HMAC-SHA256), so any Fernet implementation
//! that has the key decrypts them. The plaintext is `{tenant id}:{secret}` and decryption
//! checks the tenant id, so a token copied into another tenant's row does not decrypt there.

use std::fmt;

use fernet::{Fernet, MultiFernet};
use uuid::Uuid;

use crate::secret::Secret;

/// A failure to build the cipher or to decrypt a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("no encryption key is configured")]
    NoKeys,
    /// The key at `position` (counting from 1) is not 32 bytes in URL-safe base64.
    #[error("encryption key {position} is not a Fernet key")]
    InvalidKey { position: usize },
    #[error("the token does not decrypt with any configured key")]
    Undecryptable,
    #[error("the decrypted value was not encrypted for this tenant")]
    OtherTenant,
}

/// Returns whether `key` is a Fernet key: 32 bytes in URL-safe base64.
pub fn is_fernet_key(key: &str) -> bool {
    Fernet::new(key).is_some()
}

/// Encrypts with the first of its keys and decrypts with whichever key fits, so keys can be
/// rotated by putting a new key first.
pub struct SecretCipher {
    keys: MultiFernet,
}

impl fmt::Debug for SecretCipher {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("SecretCipher(***)")
    }
}

impl SecretCipher {
    pub fn new(keys: &[Secret]) -> Result<Self, CryptoError> {
        if keys.is_empty() {
            return Err(CryptoError::NoKeys);
        }
        let fernets = keys
            .iter()
            .enumerate()
            .map(|(index, key)| {
                Fernet::new(key.expose()).ok_or(CryptoError::InvalidKey {
                    position: index + 1,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            keys: MultiFernet::new(fernets),
        })
    }

    /// Encrypts `secret` for `tenant_id` with the first key and returns the Fernet token.
    pub fn encrypt(&self, tenant_id: Uuid, secret: &Secret) -> String {
        let plaintext = format!("{}{}", tenant_prefix(tenant_id), secret.expose());
        self.keys.encrypt(plaintext.as_bytes())
    }

    /// Decrypts a token made by [`SecretCipher::encrypt`] for `tenant_id`.
    pub fn decrypt(&self, tenant_id: Uuid, token: &str) -> Result<Secret, CryptoError> {
        let plaintext = self
            .keys
            .decrypt(token)
            .map_err(|_| CryptoError::Undecryptable)?;
        let plaintext = String::from_utf8(plaintext).map_err(|_| CryptoError::OtherTenant)?;
        plaintext
            .strip_prefix(&tenant_prefix(tenant_id))
            .map(Secret::new)
            .ok_or(CryptoError::OtherTenant)
    }

    /// Decrypts a token with any key and encrypts the value again with the first key.
    pub fn reencrypt(&self, tenant_id: Uuid, token: &str) -> Result<String, CryptoError> {
        let secret = self.decrypt(tenant_id, token)?;
        Ok(self.encrypt(tenant_id, &secret))
    }
}

fn tenant_prefix(tenant_id: Uuid) -> String {
    format!("{}:", tenant_id.hyphenated())
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use chrono::DateTime;

    use super::*;

    /// The key of every published vector of the Fernet specification
    /// (github.com/fernet/spec, generate.json, verify.json and invalid.json).
    const SPEC_SECRET: &str = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
    const SPEC_TOKEN: &str = "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==";

    fn unix_time(rfc3339: &str) -> u64 {
        let seconds = DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp();
        u64::try_from(seconds).unwrap()
    }

    fn key(fill: u8) -> Secret {
        Secret::new(base64::engine::general_purpose::URL_SAFE.encode([fill; 32]))
    }

    fn cipher(keys: &[Secret]) -> SecretCipher {
        SecretCipher::new(keys).unwrap()
    }

    #[test]
    fn spec_generate_vector_matches() {
        let fernet = Fernet::new(SPEC_SECRET).unwrap();
        let now = unix_time("1985-10-26T01:20:00-07:00");
        let plaintext = fernet.decrypt_at_time(SPEC_TOKEN, None, now).unwrap();
        assert_eq!(plaintext, b"hello");

        // The token's header is the version byte, the creation time and the IV.
        let bytes = base64::engine::general_purpose::URL_SAFE
            .decode(SPEC_TOKEN)
            .unwrap();
        assert_eq!(bytes[0], 0x80);
        assert_eq!(bytes[1..9], now.to_be_bytes());
        let iv: Vec<u8> = (0..16).collect();
        assert_eq!(bytes[9..25], iv[..]);
    }

    #[test]
    fn spec_verify_vector_decrypts() {
        let fernet = Fernet::new(SPEC_SECRET).unwrap();
        let now = unix_time("1985-10-26T01:20:01-07:00");
        let plaintext = fernet.decrypt_at_time(SPEC_TOKEN, Some(60), now).unwrap();
        assert_eq!(plaintext, b"hello");
    }

    #[test]
    fn spec_invalid_vectors_rejected() {
        let fernet = Fernet::new(SPEC_SECRET).unwrap();
        let cases = [
            (
                "incorrect mac",
                "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykQUFBQUFBQUFBQQ==",
                "1985-10-26T01:20:01-07:00",
            ),
            (
                "too short",
                "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPA==",
                "1985-10-26T01:20:01-07:00",
            ),
            (
                "invalid base64",
                "%%%%%%%%%%%%%AECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykRtfsH-p1YsUD2Q==",
                "1985-10-26T01:20:01-07:00",
            ),
            (
                "payload size not multiple of block size",
                "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPOm73QeoCk9uGib28Xe5vz6oxq5nmxbx_v7mrfyudzUm",
                "1985-10-26T01:20:01-07:00",
            ),
            (
                "payload padding error",
                "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0ODz4LEpdELGQAad7aNEHbf-JkLPIpuiYRLQ3RtXatOYREu2FWke6CnJNYIbkuKNqOhw==",
                "1985-10-26T01:20:01-07:00",
            ),
            (
                "far-future TS (unacceptable clock skew)",
                "gAAAAAAdwStRAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAnja1xKYyhd-Y6mSkTOyTGJmw2Xc2a6kBd-iX9b_qXQcw==",
                "1985-10-26T01:20:01-07:00",
            ),
            (
                "expired TTL",
                "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykRtfsH-p1YsUD2Q==",
                "1985-10-26T01:21:31-07:00",
            ),
            (
                "incorrect IV (causes padding error)",
                "gAAAAAAdwJ6xBQECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAkLhFLHpGtDBRLRTZeUfWgHSv49TF2AUEZ1TIvcZjK1zQ==",
                "1985-10-26T01:20:01-07:00",
            ),
        ];
        for (description, token, now) in cases {
            let result = fernet.decrypt_at_time(token, Some(60), unix_time(now));
            assert!(result.is_err(), "{description} decrypted");
        }
    }

    #[test]
    fn round_trip_for_same_tenant() {
        let cipher = cipher(&[key(1)]);
        let tenant = Uuid::now_v7();
        let token = cipher.encrypt(tenant, &Secret::new("sk-live-1234"));
        assert!(token.starts_with("gAAAAA"), "{token}");
        assert_eq!(
            cipher.decrypt(tenant, &token).unwrap(),
            Secret::new("sk-live-1234")
        );
    }

    #[test]
    fn token_of_other_tenant_rejected() {
        let cipher = cipher(&[key(1)]);
        let token = cipher.encrypt(Uuid::now_v7(), &Secret::new("sk-live-1234"));
        assert_eq!(
            cipher.decrypt(Uuid::now_v7(), &token),
            Err(CryptoError::OtherTenant)
        );
    }

    #[test]
    fn plaintext_carries_tenant_prefix() {
        let tenant = Uuid::now_v7();
        let token = cipher(&[key(1)]).encrypt(tenant, &Secret::new("sk-a:b"));
        let plaintext = Fernet::new(key(1).expose())
            .unwrap()
            .decrypt(&token)
            .unwrap();
        assert_eq!(
            String::from_utf8(plaintext).unwrap(),
            format!("{tenant}:sk-a:b")
        );
    }

    #[test]
    fn decrypts_token_from_plain_fernet() {
        let tenant = Uuid::now_v7();
        let token = Fernet::new(key(3).expose())
            .unwrap()
            .encrypt(format!("{tenant}:sk-from-elsewhere").as_bytes());
        assert_eq!(
            cipher(&[key(3)]).decrypt(tenant, &token).unwrap(),
            Secret::new("sk-from-elsewhere")
        );
    }

    #[test]
    fn rotation_reencrypts_with_new_key() {
        let tenant = Uuid::now_v7();
        let old_token = cipher(&[key(1)]).encrypt(tenant, &Secret::new("sk-old"));
        let rotated = cipher(&[key(2), key(1)]);

        assert_eq!(
            rotated.decrypt(tenant, &old_token).unwrap(),
            Secret::new("sk-old")
        );
        let new_token = rotated.reencrypt(tenant, &old_token).unwrap();
        assert_eq!(
            cipher(&[key(2)]).decrypt(tenant, &new_token).unwrap(),
            Secret::new("sk-old")
        );
        assert_eq!(
            cipher(&[key(1)]).decrypt(tenant, &new_token),
            Err(CryptoError::Undecryptable)
        );
    }

    #[test]
    fn new_rejects_missing_and_malformed_keys() {
        assert_eq!(SecretCipher::new(&[]).unwrap_err(), CryptoError::NoKeys);
        let error = SecretCipher::new(&[key(1), Secret::new("short")]).unwrap_err();
        assert_eq!(error, CryptoError::InvalidKey { position: 2 });
    }

    #[test]
    fn debug_hides_keys() {
        assert_eq!(format!("{:?}", cipher(&[key(1)])), "SecretCipher(***)");
    }
}
