//! The error type of every service call, one variant per client-visible outcome.

use providers::ProviderError;

pub type ServiceResult<T> = Result<T, ServiceError>;

/// Failure of a service call. The api maps each variant to a GraphQL error code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    /// The resource is missing or belongs to another tenant; both read the same.
    #[error("{resource} not found")]
    NotFound { resource: &'static str },
    #[error("{field}: {message}")]
    InvalidInput { field: String, message: String },
    /// A per-minute limit has no room now; it has after `retry_after_seconds`.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_seconds: u64,
        /// The refusing limit, with nothing remaining, for rate-limit headers.
        status: Box<crate::quota::RateStatus>,
    },
    #[error("{0}")]
    QuotaExceeded(String),
    /// This process cannot take the request now, such as while it shuts down; another
    /// instance, or a retry, can.
    #[error("{0}")]
    Unavailable(String),
    /// A subscriber left its buffer full for too long. It can subscribe again from the
    /// cursor, the last event it was given.
    #[error(
        "the subscriber did not keep up with the stream; subscribe again with after: {resume_after:?}"
    )]
    SubscriberTooSlow { resume_after: String },
    #[error("provider request failed: {0}")]
    Provider(#[from] ProviderError),
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    pub fn not_found(resource: &'static str) -> Self {
        Self::NotFound { resource }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }

    /// Whether the error is a fault of the platform rather than of the request.
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Database(_) | Self::Redis(_) | Self::Internal(_))
    }
}
