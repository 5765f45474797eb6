//! Mapping of Ollama error statuses and `{"error": "..."}` messages to [`ProviderError`].

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::wire::ErrorBody;
use crate::ProviderError;
use crate::response::retry_after;

/// Status that some gateways use for "overloaded", outside the HTTP standard.
const STATUS_OVERLOADED: u16 = 529;

/// Maps a non-success response. The message comes from the `error` field of the body, or
/// from the raw body when it is not Ollama's error object, such as a proxy's HTML page.
///
/// Ollama documents 400 for an invalid request, 404 for a model that is not pulled, 429 for
/// an exceeded rate limit, 500 for a failed model runner and 502 for a cloud model it cannot
/// reach. A remote server or ollama.com sends 401 when it needs a sign-in. A local server
/// sends 503 when its request queue is full ("server busy"), which is retryable like any
/// unavailable server. 403 comes only from a proxy in front of Ollama.
pub(super) fn error_from_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> ProviderError {
    let detail = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => parsed.error,
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    };
    let message = if detail.is_empty() {
        format!("HTTP status {status}")
    } else {
        format!("{detail} (HTTP status {status})")
    };

    if status.as_u16() == STATUS_OVERLOADED {
        return ProviderError::Overloaded(message);
    }
    match status {
        StatusCode::UNAUTHORIZED => ProviderError::Authentication(message),
        StatusCode::FORBIDDEN => ProviderError::Permission(message),
        StatusCode::NOT_FOUND => ProviderError::NotFound(message),
        StatusCode::TOO_MANY_REQUESTS => ProviderError::RateLimited {
            retry_after: retry_after(headers),
            message,
        },
        _ if is_context_overflow(&detail) => ProviderError::ContextTooLong(message),
        _ if status.is_client_error() => ProviderError::InvalidRequest(message),
        _ => ProviderError::Unavailable(message),
    }
}

/// Maps an error message that arrived after the 200 status: a line of a stream, or the body
/// of a non-streamed response. Only the message identifies the failure, and most such
/// failures are the model runner's, so the default is [`ProviderError::Unavailable`].
pub(super) fn error_from_message(message: String) -> ProviderError {
    if is_context_overflow(&message) {
        return ProviderError::ContextTooLong(message);
    }
    ProviderError::Unavailable(message)
}

/// Returns whether the message reports a prompt longer than the model's context, such as
/// "the input length exceeds the context length". Ollama servers have sent it with status
/// 400, 413 and 500, so the message decides, not the status.
fn is_context_overflow(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("context length") || message.contains("context window")
}

#[cfg(test)]
mod tests;
