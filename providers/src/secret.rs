//! The API key newtype that keeps provider keys out of logs and debug output.

use std::fmt;

use reqwest::header::HeaderValue;

use crate::ProviderError;

/// A provider API key. `Debug` prints `ApiKey(***)`, there is no `Display`, and the key is
/// read only through [`ApiKey::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// Returns the key itself, for the one place that puts it into a request header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Returns the key as a header value, marked sensitive so that HTTP logging does not
    /// print it.
    pub(crate) fn header_value(&self) -> Result<HeaderValue, ProviderError> {
        sensitive_header_value(self.expose())
    }

    /// Returns `Bearer {key}` as an `Authorization` header value, marked sensitive so that
    /// HTTP logging does not print it.
    pub(crate) fn bearer_header_value(&self) -> Result<HeaderValue, ProviderError> {
        sensitive_header_value(&format!("Bearer {}", self.expose()))
    }
}

/// Returns `value` as a sensitive header value, or an authentication error when it contains
/// characters that HTTP headers do not allow, such as a line break.
fn sensitive_header_value(value: &str) -> Result<HeaderValue, ProviderError> {
    let mut header = HeaderValue::try_from(value).map_err(|_| {
        ProviderError::Authentication(
            "API key contains characters that are not allowed in an HTTP header".to_owned(),
        )
    })?;
    header.set_sensitive(true);
    Ok(header)
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("ApiKey(***)")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn debug_hides_key() {
        let key = ApiKey::new("sk-secret-value");
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
        assert_eq!(format!("{:?}", Some(&key)), "Some(ApiKey(***))");
    }

    #[test]
    fn expose_returns_key() {
        assert_eq!(ApiKey::new("sk-secret-value").expose(), "sk-secret-value");
    }

    #[test]
    fn header_value_is_sensitive_key() {
        let value = ApiKey::new("sk-secret-value").header_value().unwrap();

        assert_eq!(value, "sk-secret-value");
        assert!(value.is_sensitive());
    }

    #[test]
    fn bearer_header_value_is_sensitive_token() {
        let value = ApiKey::new("sk-secret-value")
            .bearer_header_value()
            .unwrap();

        assert_eq!(value, "Bearer sk-secret-value");
        assert!(value.is_sensitive());
    }

    #[test]
    fn key_with_newline_is_authentication_error() {
        let key = ApiKey::new("sk-secret\nvalue");

        let plain = key.header_value().map_err(|error| error.code());
        let bearer = key.bearer_header_value().map_err(|error| error.code());

        assert_eq!(plain, Err("authentication"));
        assert_eq!(bearer, Err("authentication"));
    }
}
