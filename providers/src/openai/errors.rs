//! Mapping of OpenAI error responses, HTTP statuses and error objects to [`ProviderError`].

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::wire::{ErrorBody, ErrorDetail};
use crate::ProviderError;
use crate::response::{self, duration_from_seconds, header_number};

/// Status that some gateways and providers use for "overloaded", outside the HTTP standard.
const STATUS_OVERLOADED: u16 = 529;

/// Status Groq returns when its flex service tier has no capacity left, outside the HTTP
/// standard.
const STATUS_CAPACITY_EXCEEDED: u16 = 498;

/// Maps a non-success response. The message comes from the OpenAI error body, or from the
/// raw body when it is not one.
pub(super) fn error_from_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> ProviderError {
    let detail = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => parsed.error,
        Err(_) => ErrorDetail {
            message: String::from_utf8_lossy(body).trim().to_owned(),
            ..ErrorDetail::default()
        },
    };
    let message = if detail.message.is_empty() {
        format!("HTTP status {status}")
    } else {
        format!("{} (HTTP status {status})", detail.message)
    };

    if matches!(
        status.as_u16(),
        STATUS_OVERLOADED | STATUS_CAPACITY_EXCEEDED
    ) || is_overloaded(&detail)
    {
        return ProviderError::Overloaded(message);
    }
    match status {
        StatusCode::UNAUTHORIZED => ProviderError::Authentication(message),
        StatusCode::FORBIDDEN => ProviderError::Permission(message),
        StatusCode::NOT_FOUND => ProviderError::NotFound(message),
        // OpenAI returns 429 both for rate limits and for an account without credit. Waiting
        // does not help the second case, so it is a permission error.
        StatusCode::TOO_MANY_REQUESTS if detail.code() == Some("insufficient_quota") => {
            ProviderError::Permission(message)
        }
        StatusCode::TOO_MANY_REQUESTS => ProviderError::RateLimited {
            retry_after: retry_after(headers),
            message,
        },
        _ if detail.code() == Some("context_length_exceeded") => {
            ProviderError::ContextTooLong(message)
        }
        _ if status.is_client_error() => ProviderError::InvalidRequest(message),
        _ => ProviderError::Unavailable(message),
    }
}

/// Maps an error object that arrived inside a stream after the 200 status, where only its
/// `type` and `code` tell what failed.
pub(super) fn error_from_detail(detail: &ErrorDetail) -> ProviderError {
    let message = detail.message.clone();
    if is_overloaded(detail) {
        return ProviderError::Overloaded(message);
    }
    match (detail.kind.as_deref(), detail.code()) {
        (_, Some("context_length_exceeded")) => ProviderError::ContextTooLong(message),
        (_, Some("insufficient_quota")) => ProviderError::Permission(message),
        (Some("rate_limit_error" | "tokens" | "requests"), _)
        | (_, Some("rate_limit_exceeded")) => ProviderError::RateLimited {
            retry_after: None,
            message,
        },
        (Some("invalid_request_error"), _) => ProviderError::InvalidRequest(message),
        (Some("authentication_error"), _) | (_, Some("invalid_api_key")) => {
            ProviderError::Authentication(message)
        }
        _ => ProviderError::Unavailable(message),
    }
}

fn is_overloaded(detail: &ErrorDetail) -> bool {
    matches!(
        detail.kind.as_deref(),
        Some("overloaded" | "overloaded_error")
    ) || matches!(detail.code(), Some("overloaded" | "overloaded_error"))
}

/// Reads the delay before a retry from OpenAI's `retry-after-ms` header (milliseconds) or the
/// standard `retry-after` header (seconds).
///
/// NOTE: the HTTP-date form of `retry-after` is ignored. OpenAI sends seconds.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    match header_number(headers, "retry-after-ms") {
        Some(millis) => duration_from_seconds(millis / 1000.0),
        None => response::retry_after(headers),
    }
}

#[cfg(test)]
mod tests;
