//! Access tokens (JWT, HS256) and opaque refresh tokens.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    config::Settings,
    error::{ServiceError, ServiceResult},
    secret::Secret,
};

/// Claims of an access token. `sid` names the session, so revoking it ends the token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The deployment that issued the token (`JWT_ISSUER`).
    pub iss: String,
    /// The API the token is meant for (`JWT_AUDIENCE`).
    pub aud: String,
    pub sub: Uuid,
    pub tid: Uuid,
    pub sid: Uuid,
    pub role: entity::Role,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

/// Signing and verification keys with a validation that has no leeway.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl: chrono::Duration,
    issuer: String,
    audience: String,
}

impl TokenKeys {
    pub fn new(settings: &Settings) -> ServiceResult<Self> {
        let secret = settings.secret_key.expose().as_bytes();
        let encoding = EncodingKey::from_secret(secret)
            .map_err(|error| ServiceError::internal(format!("invalid SECRET_KEY: {error}")))?;
        let decoding = DecodingKey::from_secret(secret)
            .map_err(|error| ServiceError::internal(format!("invalid SECRET_KEY: {error}")))?;

        // Only HS256 is accepted, so `alg: none` and algorithm swaps fail verification.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_issuer(&[&settings.jwt_issuer]);
        validation.set_audience(&[&settings.jwt_audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "sub", "iss", "aud"]);

        let access_ttl = chrono::Duration::from_std(settings.access_token_ttl)
            .map_err(|_| ServiceError::internal("ACCESS_TOKEN_TTL_SECONDS is out of range"))?;
        Ok(Self {
            encoding,
            decoding,
            validation,
            access_ttl,
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
        })
    }

    /// Signs an access token and returns it with its expiry time.
    pub fn issue(
        &self,
        user_id: Uuid,
        tenant_id: Uuid,
        session_id: Uuid,
        role: entity::Role,
    ) -> ServiceResult<(Secret, DateTime<Utc>)> {
        let now = Utc::now();
        let expires_at = now + self.access_ttl;
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id,
            tid: tenant_id,
            sid: session_id,
            role,
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: expires_at.timestamp(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|error| ServiceError::internal(format!("signing a token: {error}")))?;
        Ok((Secret::new(token), expires_at))
    }

    /// Verifies signature, algorithm, `exp`, `nbf`, `iss` and `aud`, and returns the claims.
    pub fn verify(&self, token: &str) -> ServiceResult<AccessClaims> {
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|error| {
                use jsonwebtoken::errors::ErrorKind;
                let message = match error.kind() {
                    ErrorKind::ExpiredSignature => "access token has expired",
                    ErrorKind::ImmatureSignature => "access token is not valid yet",
                    ErrorKind::InvalidIssuer => "access token was issued by another service",
                    ErrorKind::InvalidAudience => "access token is meant for another audience",
                    _ => "access token is invalid",
                };
                ServiceError::Unauthenticated(message.into())
            })
    }
}

/// Generates a refresh token: [`random_token`] with a recognisable prefix.
pub fn new_refresh_token() -> Secret {
    Secret::new(format!("rt_{}", random_token()))
}

/// Returns 32 random bytes as URL-safe base64 without padding (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Hex SHA-256 of a token, as stored in the database.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn keys() -> TokenKeys {
        TokenKeys::new(&Settings::from_lookup(|_| None).unwrap()).unwrap()
    }

    #[test]
    fn issued_token_verifies() {
        let keys = keys();
        let (user, tenant, session) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let (token, _) = keys
            .issue(user, tenant, session, entity::Role::Admin)
            .unwrap();
        let claims = keys.verify(token.expose()).unwrap();
        assert_eq!(claims.sub, user);
        assert_eq!(claims.tid, tenant);
        assert_eq!(claims.sid, session);
        assert_eq!(claims.role, entity::Role::Admin);
    }

    #[test]
    fn token_expired_one_second_ago_rejected() {
        let keys = keys();
        let now = Utc::now().timestamp();
        let claims = AccessClaims {
            exp: now - 1,
            ..valid_claims(&keys)
        };
        let error = keys.verify(&sign(&keys, &claims)).unwrap_err();
        assert_eq!(error.to_string(), "access token has expired");
    }

    fn valid_claims(keys: &TokenKeys) -> AccessClaims {
        let now = Utc::now().timestamp();
        AccessClaims {
            iss: keys.issuer.clone(),
            aud: keys.audience.clone(),
            sub: Uuid::now_v7(),
            tid: Uuid::now_v7(),
            sid: Uuid::now_v7(),
            role: entity::Role::Owner,
            iat: now - 100,
            nbf: now - 100,
            exp: now + 600,
        }
    }

    fn sign(keys: &TokenKeys, claims: &impl Serialize) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &keys.encoding).unwrap()
    }

    #[test]
    fn issued_token_names_issuer_and_audience() {
        let keys = keys();
        let (token, _) = keys
            .issue(
                Uuid::now_v7(),
                Uuid::now_v7(),
                Uuid::now_v7(),
                entity::Role::Member,
            )
            .unwrap();
        let claims = keys.verify(token.expose()).unwrap();
        assert_eq!(claims.iss, "task-assistant");
        assert_eq!(claims.aud, "task-assistant-api");
    }

    #[test]
    fn wrong_issuer_rejected() {
        let keys = keys();
        let claims = AccessClaims {
            iss: "someone-else".into(),
            ..valid_claims(&keys)
        };
        let error = keys.verify(&sign(&keys, &claims)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "access token was issued by another service"
        );
    }

    #[test]
    fn wrong_audience_rejected() {
        let keys = keys();
        let claims = AccessClaims {
            aud: "another-api".into(),
            ..valid_claims(&keys)
        };
        let error = keys.verify(&sign(&keys, &claims)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "access token is meant for another audience"
        );
    }

    #[test]
    fn token_without_issuer_rejected() {
        let keys = keys();
        let mut claims = serde_json::to_value(valid_claims(&keys)).unwrap();
        claims.as_object_mut().unwrap().remove("iss");
        let error = keys.verify(&sign(&keys, &claims)).unwrap_err();
        assert_eq!(error.to_string(), "access token is invalid");
    }

    #[test]
    fn unsigned_token_rejected() {
        let keys = keys();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let now = Utc::now().timestamp();
        let payload = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"iss":"task-assistant","aud":"task-assistant-api","sub":"{}","tid":"{}","sid":"{}","role":"owner","iat":{now},"nbf":{now},"exp":{}}}"#,
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            now + 600
        ));
        let error = keys.verify(&format!("{header}.{payload}.")).unwrap_err();
        assert_eq!(error.to_string(), "access token is invalid");
    }

    #[test]
    fn refresh_tokens_are_unique_and_hashed() {
        let first = new_refresh_token();
        let second = new_refresh_token();
        assert_ne!(first, second);
        assert!(first.expose().starts_with("rt_"));
        assert_eq!(hash_token(first.expose()).len(), 64);
        assert_ne!(hash_token(first.expose()), hash_token(second.expose()));
    }
}
