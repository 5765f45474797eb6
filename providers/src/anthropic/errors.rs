//! Mapping of Anthropic error responses, HTTP statuses and error objects to [`ProviderError`].

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::wire::{ErrorBody, ErrorDetail};
use crate::ProviderError;
use crate::response::retry_after;

/// Status Anthropic returns when its API is temporarily overloaded, outside the HTTP standard.
const STATUS_OVERLOADED: u16 = 529;

/// Maps a non-success response. The message comes from the Anthropic error body, or from
/// the raw body when it is not one.
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

    if status.as_u16() == STATUS_OVERLOADED || detail.kind == "overloaded_error" {
        return ProviderError::Overloaded(message);
    }
    match status {
        StatusCode::UNAUTHORIZED => ProviderError::Authentication(message),
        // 402 is Anthropic's `billing_error`, which no retry fixes until the account pays.
        StatusCode::PAYMENT_REQUIRED | StatusCode::FORBIDDEN => ProviderError::Permission(message),
        StatusCode::NOT_FOUND => ProviderError::NotFound(message),
        // Anthropic's `timeout_error`: the request timed out on Anthropic's side.
        StatusCode::GATEWAY_TIMEOUT => ProviderError::Timeout,
        StatusCode::TOO_MANY_REQUESTS => ProviderError::RateLimited {
            retry_after: retry_after(headers),
            message,
        },
        _ if is_context_too_long(&detail) => ProviderError::ContextTooLong(message),
        // Includes 413 `request_too_large`, a body over Anthropic's byte limit.
        _ if status.is_client_error() => ProviderError::InvalidRequest(message),
        _ => ProviderError::Unavailable(message),
    }
}

/// Maps an error event that arrived inside a stream after the 200 status, classified by its
/// `type` alone because no status code comes with it.
pub(super) fn error_from_detail(detail: &ErrorDetail) -> ProviderError {
    let message = detail.message.clone();
    match detail.kind.as_str() {
        "overloaded_error" => ProviderError::Overloaded(message),
        "rate_limit_error" => ProviderError::RateLimited {
            retry_after: None,
            message,
        },
        "invalid_request_error" if is_context_too_long(detail) => {
            ProviderError::ContextTooLong(message)
        }
        "invalid_request_error" | "request_too_large" => ProviderError::InvalidRequest(message),
        "authentication_error" => ProviderError::Authentication(message),
        "permission_error" | "billing_error" => ProviderError::Permission(message),
        "not_found_error" => ProviderError::NotFound(message),
        "timeout_error" => ProviderError::Timeout,
        // `api_error` and types added later.
        _ => ProviderError::Unavailable(message),
    }
}

/// Anthropic reports an oversized prompt as an `invalid_request_error` whose message starts
/// with "prompt is too long", or states that input and `max_tokens` "exceed context limit".
fn is_context_too_long(detail: &ErrorDetail) -> bool {
    let message = detail.message.to_ascii_lowercase();
    message.contains("prompt is too long") || message.contains("exceed context limit")
}

#[cfg(test)]
mod tests;
