//! Turns service errors into GraphQL errors with a stable `extensions.code`.

use std::sync::Arc;

use async_graphql::ErrorExtensions;
use service::ServiceError;
use tracing::error;

/// Every `extensions.code` the API returns.
pub mod code {
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    pub const QUOTA_EXCEEDED: &str = "QUOTA_EXCEEDED";
    pub const PROVIDER_ERROR: &str = "PROVIDER_ERROR";
    /// The instance is shutting down; the request can be retried.
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    pub const INTERNAL: &str = "INTERNAL";
    /// The request took longer than `REQUEST_TIMEOUT_SECONDS`.
    pub const TIMEOUT: &str = "TIMEOUT";
    /// A subscription's client did not take its events in time; `resumeAfter` is the
    /// cursor to subscribe again from.
    pub const SUBSCRIBER_TOO_SLOW: &str = "SUBSCRIBER_TOO_SLOW";
}

/// The extension of a RATE_LIMITED error with the whole seconds to wait.
pub const RETRY_AFTER: &str = "retryAfter";

/// Converts a service error. Internal faults are logged here, once, and reach the client
/// without detail.
pub fn to_graphql_error(service_error: ServiceError) -> async_graphql::Error {
    let code = match &service_error {
        ServiceError::Unauthenticated(_) => code::UNAUTHENTICATED,
        ServiceError::Forbidden(_) => code::FORBIDDEN,
        ServiceError::NotFound { .. } => code::NOT_FOUND,
        ServiceError::InvalidInput { .. } => code::BAD_USER_INPUT,
        ServiceError::RateLimited { .. } => code::RATE_LIMITED,
        ServiceError::QuotaExceeded(_) => code::QUOTA_EXCEEDED,
        ServiceError::Provider(_) => code::PROVIDER_ERROR,
        ServiceError::Unavailable(_) => code::UNAVAILABLE,
        ServiceError::SubscriberTooSlow { .. } => code::SUBSCRIBER_TOO_SLOW,
        ServiceError::Database(_) | ServiceError::Redis(_) | ServiceError::Internal(_) => {
            code::INTERNAL
        }
    };
    if service_error.is_internal() {
        error!(error = ?service_error, "request failed with an internal error");
        // The client gets no detail; the error itself travels as the source, for the error
        // tracker to report with the request's ids.
        let mut graphql_error =
            async_graphql::Error::new("internal error").extend_with(|_, e| e.set("code", code));
        graphql_error.source = Some(Arc::new(service_error));
        return graphql_error;
    }
    async_graphql::Error::new(service_error.to_string()).extend_with(|_, extensions| {
        extensions.set("code", code);
        match &service_error {
            ServiceError::InvalidInput { field, .. } => extensions.set("field", field.as_str()),
            ServiceError::SubscriberTooSlow { resume_after } => {
                extensions.set("resumeAfter", resume_after.as_str());
            }
            ServiceError::RateLimited {
                retry_after_seconds,
                ..
            } => extensions.set(RETRY_AFTER, *retry_after_seconds),
            _ => {}
        }
    })
}

/// `.gql()` converts a service result for a resolver; plain `?` would drop the code.
pub trait GqlResult<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> GqlResult<T> for Result<T, ServiceError> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(to_graphql_error)
    }
}

/// An error for input that failed to parse before reaching the service, naming the field.
pub fn bad_input(field: &str, message: impl std::fmt::Display) -> async_graphql::Error {
    to_graphql_error(ServiceError::invalid(field, message.to_string()))
}
