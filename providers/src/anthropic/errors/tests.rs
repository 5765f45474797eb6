//! Mapping of Anthropic error statuses, bodies and headers.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};

use super::*;

fn body(error_type: &str, message: &str) -> Vec<u8> {
    let error = serde_json::json!({"type": error_type, "message": message});
    serde_json::json!({"type": "error", "error": error})
        .to_string()
        .into_bytes()
}

fn map(status: u16, body: &[u8]) -> ProviderError {
    let status = StatusCode::from_u16(status).unwrap();
    error_from_response(status, &HeaderMap::new(), body)
}

#[test]
fn documented_statuses_mapped() {
    let cases = [
        (400, "invalid_request_error", "invalid_request"),
        (401, "authentication_error", "authentication"),
        (402, "billing_error", "permission"),
        (403, "permission_error", "permission"),
        (404, "not_found_error", "not_found"),
        (413, "request_too_large", "invalid_request"),
        (429, "rate_limit_error", "rate_limited"),
        (500, "api_error", "unavailable"),
        (504, "timeout_error", "timeout"),
        (529, "overloaded_error", "overloaded"),
    ];

    for (status, error_type, expected) in cases {
        let error = map(status, &body(error_type, "failed"));
        assert_eq!(error.code(), expected, "status {status}: {error:?}");
    }
}

#[test]
fn overloaded_status_without_body() {
    assert_eq!(
        map(529, b""),
        ProviderError::Overloaded("HTTP status 529 <unknown status code>".to_owned())
    );
}

#[test]
fn message_keeps_body_text_and_status() {
    let error = map(401, &body("authentication_error", "invalid x-api-key"));

    assert_eq!(
        error,
        ProviderError::Authentication(
            "invalid x-api-key (HTTP status 401 Unauthorized)".to_owned()
        )
    );
}

#[test]
fn prompt_too_long_is_context_too_long() {
    let error = map(
        400,
        &body(
            "invalid_request_error",
            "prompt is too long: 208310 tokens > 200000 maximum",
        ),
    );

    assert!(
        matches!(error, ProviderError::ContextTooLong(_)),
        "error: {error:?}"
    );
}

#[test]
fn context_limit_exceeded_is_context_too_long() {
    let message = "input length and `max_tokens` exceed context limit: 197000 + 8192 > 200000, \
                   decrease input length or `max_tokens` and try again";

    let error = map(400, &body("invalid_request_error", message));

    assert!(
        matches!(error, ProviderError::ContextTooLong(_)),
        "error: {error:?}"
    );
}

#[test]
fn overloaded_type_on_other_status() {
    let error = map(503, &body("overloaded_error", "Overloaded"));

    assert!(
        matches!(error, ProviderError::Overloaded(_)),
        "error: {error:?}"
    );
}

#[test]
fn non_json_body_used_as_message() {
    let error = map(502, b"<html>Bad Gateway</html>\n");

    assert_eq!(
        error,
        ProviderError::Unavailable(
            "<html>Bad Gateway</html> (HTTP status 502 Bad Gateway)".to_owned()
        )
    );
}

#[test]
fn rate_limit_reads_retry_after() {
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", HeaderValue::from_static("7"));

    let error = error_from_response(
        StatusCode::TOO_MANY_REQUESTS,
        &headers,
        &body(
            "rate_limit_error",
            "Number of request tokens has exceeded your rate limit",
        ),
    );

    assert_eq!(
        error,
        ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
            message: "Number of request tokens has exceeded your rate limit \
                      (HTTP status 429 Too Many Requests)"
                .to_owned(),
        }
    );
}

#[test]
fn stream_error_types_mapped() {
    let detail = |error_type: &str, message: &str| ErrorDetail {
        kind: error_type.to_owned(),
        message: message.to_owned(),
    };

    assert_eq!(
        error_from_detail(&detail("overloaded_error", "Overloaded")),
        ProviderError::Overloaded("Overloaded".into())
    );
    assert_eq!(
        error_from_detail(&detail("api_error", "Internal server error")),
        ProviderError::Unavailable("Internal server error".into())
    );
    assert_eq!(
        error_from_detail(&detail("rate_limit_error", "slow down")),
        ProviderError::RateLimited {
            retry_after: None,
            message: "slow down".into()
        }
    );
    assert_eq!(
        error_from_detail(&detail("invalid_request_error", "prompt is too long")),
        ProviderError::ContextTooLong("prompt is too long".into())
    );
    assert_eq!(
        error_from_detail(&detail("invalid_request_error", "bad field")),
        ProviderError::InvalidRequest("bad field".into())
    );
    assert_eq!(
        error_from_detail(&detail("permission_error", "denied")),
        ProviderError::Permission("denied".into())
    );
    assert_eq!(
        error_from_detail(&detail("something_new", "failed")),
        ProviderError::Unavailable("failed".into())
    );
}
