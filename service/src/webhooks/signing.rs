//! Signatures of the Standard Webhooks specification: HMAC-SHA256 over
//! `<webhook-id>.<webhook-timestamp>.<body>` with the secret's bytes, sent base64-encoded
//! as `v1,<signature>` in `webhook-signature`, one per secret, separated by spaces.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::secret::Secret;

/// The prefix of a signing secret, followed by the base64 of its bytes.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes of a new secret. The specification asks for 24 to 64.
const SECRET_BYTES: usize = 32;

/// Creates a signing secret in the `whsec_` form.
pub fn new_secret() -> Secret {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)))
}

/// The key bytes of a `whsec_` secret, or `None` when it is not one.
fn key_of(secret: &Secret) -> Option<Vec<u8>> {
    let encoded = secret.expose().strip_prefix(SECRET_PREFIX)?;
    STANDARD.decode(encoded).ok()
}

/// Signs one delivery with `secret`: `v1,` and the base64 of the HMAC.
pub fn sign(secret: &Secret, message_id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = key_of(secret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The `webhook-signature` header value: one signature per secret, separated by spaces,
/// so that a receiver that has either secret during a rotation accepts the delivery.
pub fn signature_header(
    secrets: &[Secret],
    message_id: &str,
    timestamp: i64,
    body: &str,
) -> Option<String> {
    let signatures: Option<Vec<String>> = secrets
        .iter()
        .map(|secret| sign(secret, message_id, timestamp, body))
        .collect();
    Some(signatures?.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signature_matches_the_specification_example() {
        let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let signature = sign(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(
            signature.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn new_secrets_decode_to_their_bytes() {
        let secret = new_secret();
        assert!(secret.expose().starts_with(SECRET_PREFIX));
        assert_eq!(key_of(&secret).map(|key| key.len()), Some(SECRET_BYTES));
        assert_ne!(new_secret().expose(), secret.expose());
    }

    #[test]
    fn rotation_sends_a_signature_per_secret() {
        let old = new_secret();
        let new = new_secret();
        let header = signature_header(&[new.clone(), old.clone()], "msg_1", 1, "{}").unwrap();
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(Some(parts[0].to_owned()), sign(&new, "msg_1", 1, "{}"));
        assert_eq!(Some(parts[1].to_owned()), sign(&old, "msg_1", 1, "{}"));
        assert_eq!(sign(&Secret::new("not-a-secret"), "msg_1", 1, "{}"), None);
    }
}
