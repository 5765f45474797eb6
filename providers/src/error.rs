//! The one error type every adapter maps provider and transport failures into.

use std::error::Error as StdError;
use std::time::Duration;

/// A failed provider call, classified so that callers can decide to retry or report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The API key is missing, malformed or rejected.
    #[error("provider rejected the API key: {0}")]
    Authentication(String),
    /// The key is valid but may not use this model or feature, or its account has no quota.
    #[error("provider denied permission: {0}")]
    Permission(String),
    /// The model or endpoint does not exist.
    #[error("provider resource not found: {0}")]
    NotFound(String),
    /// Too many requests or tokens; retry after `retry_after` when the provider sent it.
    #[error("provider rate limit exceeded: {message}")]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// The provider is temporarily over capacity.
    #[error("provider overloaded: {0}")]
    Overloaded(String),
    /// The prompt and the requested output do not fit the model's context window.
    #[error("request exceeds the model's context window: {0}")]
    ContextTooLong(String),
    /// The provider rejected the request as malformed or unsupported.
    #[error("provider rejected the request as invalid: {0}")]
    InvalidRequest(String),
    /// The provider could not be reached, failed, or cut the response short.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// No data arrived within the connect or read timeout.
    #[error("provider request timed out")]
    Timeout,
    /// The response did not match the provider's documented format.
    #[error("provider response could not be decoded: {0}")]
    Decode(String),
}

impl ProviderError {
    /// Returns a stable snake_case name for logs and metrics, such as `"rate_limited"`.
    pub const fn code(&self) -> &'static str {
        match self {
            ProviderError::Authentication(_) => "authentication",
            ProviderError::Permission(_) => "permission",
            ProviderError::NotFound(_) => "not_found",
            ProviderError::RateLimited { .. } => "rate_limited",
            ProviderError::Overloaded(_) => "overloaded",
            ProviderError::ContextTooLong(_) => "context_too_long",
            ProviderError::InvalidRequest(_) => "invalid_request",
            ProviderError::Unavailable(_) => "unavailable",
            ProviderError::Timeout => "timeout",
            ProviderError::Decode(_) => "decode",
        }
    }

    /// Returns whether the same request may succeed when sent again later.
    pub const fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::RateLimited { .. }
                | ProviderError::Overloaded(_)
                | ProviderError::Unavailable(_)
                | ProviderError::Timeout
        )
    }

    /// Returns whether the request itself caused the error (an unknown model, a prompt too
    /// long, an invalid parameter), so that the error shows nothing about the provider's health.
    pub const fn is_caused_by_request(&self) -> bool {
        matches!(
            self,
            ProviderError::NotFound(_)
                | ProviderError::ContextTooLong(_)
                | ProviderError::InvalidRequest(_)
        )
    }

    /// Returns the delay the provider asked for before a retry, if any.
    pub const fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Classifies a transport failure from reqwest: timeouts become [`ProviderError::Timeout`],
    /// everything else [`ProviderError::Unavailable`] with the full cause chain.
    pub(crate) fn from_transport(error: &reqwest::Error) -> Self {
        if error.is_timeout() {
            return ProviderError::Timeout;
        }
        ProviderError::Unavailable(error_chain(error))
    }
}

/// Joins an error and its sources into one line, because reqwest's own message omits the
/// cause (such as "connection refused").
pub(crate) fn error_chain(error: &dyn StdError) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_variants() {
        let rate_limited = ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
            message: "slow down".into(),
        };
        assert!(rate_limited.is_retryable());
        assert_eq!(rate_limited.retry_after(), Some(Duration::from_secs(2)));
        assert!(ProviderError::Timeout.is_retryable());
        assert!(ProviderError::Overloaded("busy".into()).is_retryable());
        assert!(ProviderError::Unavailable("down".into()).is_retryable());
        assert!(!ProviderError::Authentication("bad key".into()).is_retryable());
        assert!(!ProviderError::ContextTooLong("too long".into()).is_retryable());
        assert_eq!(ProviderError::Timeout.retry_after(), None);
    }

    #[test]
    fn request_caused_variants() {
        assert!(ProviderError::NotFound("no such model".into()).is_caused_by_request());
        assert!(ProviderError::ContextTooLong("too long".into()).is_caused_by_request());
        assert!(ProviderError::InvalidRequest("bad".into()).is_caused_by_request());
        assert!(!ProviderError::Authentication("bad key".into()).is_caused_by_request());
        assert!(!ProviderError::Timeout.is_caused_by_request());
        assert!(!ProviderError::Overloaded("busy".into()).is_caused_by_request());
    }

    #[test]
    fn codes_are_snake_case() {
        assert_eq!(
            ProviderError::ContextTooLong(String::new()).code(),
            "context_too_long"
        );
        assert_eq!(ProviderError::Timeout.code(), "timeout");
    }
}
