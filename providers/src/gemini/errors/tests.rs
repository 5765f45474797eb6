//! Mapping of Gemini error statuses, bodies, details and headers.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::json;

use super::*;

fn body(code: u16, message: &str, status: &str, details: serde_json::Value) -> Vec<u8> {
    let error = json!({"code": code, "message": message, "status": status, "details": details});
    json!({ "error": error }).to_string().into_bytes()
}

fn map(code: u16, status: &str, message: &str) -> ProviderError {
    let body = body(code, message, status, json!([]));
    error_from_response(
        StatusCode::from_u16(code).unwrap(),
        &HeaderMap::new(),
        &body,
    )
}

fn retry_info(delay: &str) -> serde_json::Value {
    json!([
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
        }]},
        {"@type": "type.googleapis.com/google.rpc.Help", "links": [{
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits"
        }]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}
    ])
}

#[test]
fn statuses_mapped() {
    let cases = [
        (400, "INVALID_ARGUMENT", "Invalid value", "invalid_request"),
        (
            400,
            "FAILED_PRECONDITION",
            "User location is not supported for the API use.",
            "permission",
        ),
        (
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
            "authentication",
        ),
        (
            403,
            "PERMISSION_DENIED",
            "The caller does not have permission",
            "permission",
        ),
        (
            404,
            "NOT_FOUND",
            "models/contract-model is not found",
            "not_found",
        ),
        (
            429,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted",
            "rate_limited",
        ),
        (
            500,
            "INTERNAL",
            "An internal error has occurred.",
            "unavailable",
        ),
        (
            503,
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
            "overloaded",
        ),
        (
            503,
            "UNAVAILABLE",
            "The service is currently unavailable.",
            "unavailable",
        ),
        (504, "DEADLINE_EXCEEDED", "Deadline expired.", "timeout"),
    ];

    for (code, status, message, expected) in cases {
        let error = map(code, status, message);
        assert_eq!(error.code(), expected, "{code} {status}: {error:?}");
    }
}

#[test]
fn message_keeps_body_text_and_status() {
    let error = map(
        404,
        "NOT_FOUND",
        "models/gemini-0 is not found for API version v1beta",
    );

    assert_eq!(
        error,
        ProviderError::NotFound(
            "models/gemini-0 is not found for API version v1beta (HTTP status 404 Not Found)"
                .to_owned()
        )
    );
}

#[test]
fn invalid_api_key_is_authentication() {
    let details = json!([{
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"}
    }]);
    let body = body(
        400,
        "API key not valid. Please pass a valid API key.",
        "INVALID_ARGUMENT",
        details,
    );

    let error = error_from_response(StatusCode::BAD_REQUEST, &HeaderMap::new(), &body);

    assert_eq!(
        error,
        ProviderError::Authentication(
            "API key not valid. Please pass a valid API key. (HTTP status 400 Bad Request)"
                .to_owned()
        )
    );
}

#[test]
fn token_count_message_is_context_too_long() {
    let error = map(
        400,
        "INVALID_ARGUMENT",
        "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
    );

    assert!(
        matches!(error, ProviderError::ContextTooLong(_)),
        "error: {error:?}"
    );
}

#[test]
fn retry_info_gives_retry_after() {
    let body = body(
        429,
        "You exceeded your current quota.",
        "RESOURCE_EXHAUSTED",
        retry_info("7s"),
    );

    let error = error_from_response(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), &body);

    assert_eq!(
        error,
        ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
            message: "You exceeded your current quota. (HTTP status 429 Too Many Requests)"
                .to_owned(),
        }
    );
}

#[test]
fn longer_retry_delay_wins() {
    let cases = [
        ("3", "7s", Duration::from_secs(7)),
        ("12", "7s", Duration::from_secs(12)),
        ("7", "not a duration", Duration::from_secs(7)),
    ];

    for (header, delay, expected) in cases {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static(header));
        let body = body(429, "slow down", "RESOURCE_EXHAUSTED", retry_info(delay));

        let error = error_from_response(StatusCode::TOO_MANY_REQUESTS, &headers, &body);

        assert_eq!(
            error.retry_after(),
            Some(expected),
            "header {header}, retryDelay {delay}"
        );
    }
}

#[test]
fn protobuf_durations_parsed() {
    assert_eq!(parse_protobuf_duration("7s"), Some(Duration::from_secs(7)));
    assert_eq!(
        parse_protobuf_duration("1.500s"),
        Some(Duration::from_millis(1500))
    );
    assert_eq!(
        parse_protobuf_duration("34.074824224s"),
        Some(Duration::new(34, 74_824_224))
    );
    for invalid in ["7", "-1s", "s", "NaNs", "1e400s", ""] {
        assert_eq!(parse_protobuf_duration(invalid), None, "{invalid:?}");
    }
}

#[test]
fn non_json_body_used_as_message() {
    let error = error_from_response(
        StatusCode::BAD_GATEWAY,
        &HeaderMap::new(),
        b"<html>Bad Gateway</html>\n",
    );

    assert_eq!(
        error,
        ProviderError::Unavailable(
            "<html>Bad Gateway</html> (HTTP status 502 Bad Gateway)".to_owned()
        )
    );
}

#[test]
fn empty_body_names_status() {
    let error = error_from_response(StatusCode::CONFLICT, &HeaderMap::new(), b"");

    assert_eq!(
        error,
        ProviderError::InvalidRequest("HTTP status 409 Conflict".to_owned())
    );
}

#[test]
fn stream_error_objects_mapped() {
    let status = |code: Option<u16>, status: &str, message: &str| ErrorStatus {
        code,
        message: message.to_owned(),
        status: Some(status.to_owned()),
        details: Vec::new(),
    };

    assert_eq!(
        error_from_status(&status(Some(500), "INTERNAL", "failed")),
        ProviderError::Unavailable("failed".to_owned())
    );
    assert_eq!(
        error_from_status(&status(
            Some(503),
            "UNAVAILABLE",
            "The model is overloaded."
        )),
        ProviderError::Overloaded("The model is overloaded.".to_owned())
    );
    assert_eq!(
        error_from_status(&status(None, "RESOURCE_EXHAUSTED", "quota")),
        ProviderError::RateLimited {
            retry_after: None,
            message: "quota".to_owned()
        }
    );
    assert_eq!(
        error_from_status(&status(None, "DEADLINE_EXCEEDED", "late")),
        ProviderError::Timeout
    );
    assert_eq!(
        error_from_status(&status(Some(400), "INVALID_ARGUMENT", "bad")),
        ProviderError::InvalidRequest("bad".to_owned())
    );
}

#[test]
fn stream_error_without_code_or_status_is_unavailable() {
    let error = error_from_status(&ErrorStatus {
        message: "failed".to_owned(),
        ..ErrorStatus::default()
    });

    assert_eq!(error, ProviderError::Unavailable("failed".to_owned()));
}
