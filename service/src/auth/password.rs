//! Password hashing with argon2id, run on a blocking thread so the runtime keeps serving.

use std::sync::LazyLock;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

use crate::{
    error::{ServiceError, ServiceResult},
    secret::Secret,
};

/// A hash of a throwaway password, verified when the email is unknown so that both
/// failures cost the same time. Empty only if hashing failed, which then fails fast.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    Argon2::default()
        .hash_password(b"no such user")
        .map(|hash| hash.to_string())
        .unwrap_or_default()
});

/// Hashes a password into a PHC string.
pub async fn hash(password: Secret) -> ServiceResult<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.expose().as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|error| ServiceError::internal(format!("hashing a password: {error}")))
    })
    .await
    .map_err(|error| ServiceError::internal(format!("password hashing task failed: {error}")))?
}

/// Checks a password against a stored PHC string, or against a dummy when there is none.
pub async fn verify(password: Secret, stored: Option<String>) -> ServiceResult<bool> {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let matches = Argon2::default()
            .verify_password(password.expose().as_bytes(), hash.as_str())
            .is_ok();
        known && matches
    })
    .await
    .map_err(|error| ServiceError::internal(format!("password check task failed: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let stored = hash(Secret::new("correct horse")).await.unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(
            verify(Secret::new("correct horse"), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify(Secret::new("wrong horse"), Some(stored))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn unknown_user_never_matches() {
        assert!(!verify(Secret::new("anything"), None).await.unwrap());
    }
}
