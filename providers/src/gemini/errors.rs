//! Mapping of Gemini error responses and in-stream error objects to [`ProviderError`].

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::wire::{ErrorBody, ErrorStatus};
use crate::ProviderError;
use crate::response::{duration_from_seconds, retry_after};

/// Maps a non-success response. The message comes from the Google error body, or from the
/// raw body when it is not one.
///
/// The delay before a retry is the longer of the `retry-after` header and the body's
/// `RetryInfo`, because waiting longer than either one requests is always safe.
pub(super) fn error_from_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> ProviderError {
    let error = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => parsed.error,
        Err(_) => ErrorStatus {
            message: String::from_utf8_lossy(body).trim().to_owned(),
            ..ErrorStatus::default()
        },
    };
    let message = if error.message.is_empty() {
        format!("HTTP status {status}")
    } else {
        format!("{} (HTTP status {status})", error.message)
    };
    let retry_after = retry_after(headers).max(retry_delay(&error));

    classify(status.as_u16(), &error, message, retry_after)
}

/// Maps an error object that arrived inside a stream after the 200 status. Its `code` field
/// contains the HTTP status that the error would have had.
pub(super) fn error_from_status(error: &ErrorStatus) -> ProviderError {
    let code = error.code.unwrap_or_default();
    classify(code, error, error.message.clone(), retry_delay(error))
}

/// Classifies an error by HTTP status `code` and the body's canonical `status` name.
///
/// Gemini reports an invalid API key as 400 `INVALID_ARGUMENT` with the reason
/// `API_KEY_INVALID`, so that reason is checked before the status.
fn classify(
    code: u16,
    error: &ErrorStatus,
    message: String,
    retry_after: Option<Duration>,
) -> ProviderError {
    let has_reason = |reason: &str| {
        error
            .details
            .iter()
            .any(|detail| detail.reason.as_deref() == Some(reason))
    };
    if has_reason("API_KEY_INVALID") {
        return ProviderError::Authentication(message);
    }

    match (code, error.status.as_deref()) {
        (401, _) | (_, Some("UNAUTHENTICATED")) => ProviderError::Authentication(message),
        (403, _) | (_, Some("PERMISSION_DENIED")) => ProviderError::Permission(message),
        (404, _) | (_, Some("NOT_FOUND")) => ProviderError::NotFound(message),
        (429, _) | (_, Some("RESOURCE_EXHAUSTED")) => ProviderError::RateLimited {
            retry_after,
            message,
        },
        (504, _) | (_, Some("DEADLINE_EXCEEDED")) => ProviderError::Timeout,
        // Gemini uses FAILED_PRECONDITION for an account that cannot use the API as it is, such
        // as the free tier in a country where it is not offered. Resending does not help.
        (_, Some("FAILED_PRECONDITION")) => ProviderError::Permission(message),
        _ if is_context_too_long(&error.message) => ProviderError::ContextTooLong(message),
        (503, _) | (_, Some("UNAVAILABLE")) if is_overloaded(&error.message) => {
            ProviderError::Overloaded(message)
        }
        (400..=499, _) | (_, Some("INVALID_ARGUMENT")) => ProviderError::InvalidRequest(message),
        _ => ProviderError::Unavailable(message),
    }
}

/// Recognises Gemini's message for a prompt over the context window, such as "The input
/// token count (1200000) exceeds the maximum number of tokens allowed (1048576)."
fn is_context_too_long(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("input token count") && message.contains("exceeds the maximum")
}

/// Recognises Gemini's 503 message "The model is overloaded. Please try again later."
fn is_overloaded(message: &str) -> bool {
    message.to_ascii_lowercase().contains("overloaded")
}

/// Reads the `RetryInfo` delay from the error details.
fn retry_delay(error: &ErrorStatus) -> Option<Duration> {
    error
        .details
        .iter()
        .find_map(|detail| detail.retry_delay.as_deref())
        .and_then(parse_protobuf_duration)
}

/// Parses a protobuf JSON duration: decimal seconds followed by `s`, such as `"7s"` or
/// `"1.500s"`.
fn parse_protobuf_duration(text: &str) -> Option<Duration> {
    let seconds = text.trim().strip_suffix('s')?.parse::<f64>().ok()?;
    duration_from_seconds(seconds)
}

#[cfg(test)]
mod tests;
