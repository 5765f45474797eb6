//! Mapping of OpenAI error statuses, bodies and headers.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};

use super::*;

fn body(message: &str, error_type: &str, code: Option<&str>) -> Vec<u8> {
    let error =
        serde_json::json!({"message": message, "type": error_type, "param": null, "code": code});
    serde_json::json!({ "error": error })
        .to_string()
        .into_bytes()
}

fn map(status: u16, body: &[u8]) -> ProviderError {
    let status = StatusCode::from_u16(status).unwrap();
    error_from_response(status, &HeaderMap::new(), body)
}

#[test]
fn statuses_mapped() {
    let invalid = body("bad", "invalid_request_error", None);
    assert!(matches!(
        map(401, &invalid),
        ProviderError::Authentication(_)
    ));
    assert!(matches!(map(403, &invalid), ProviderError::Permission(_)));
    assert!(matches!(map(404, &invalid), ProviderError::NotFound(_)));
    assert!(matches!(
        map(400, &invalid),
        ProviderError::InvalidRequest(_)
    ));
    assert!(matches!(
        map(422, &invalid),
        ProviderError::InvalidRequest(_)
    ));
    assert!(matches!(
        map(429, &invalid),
        ProviderError::RateLimited {
            retry_after: None,
            ..
        }
    ));

    let server = body("oops", "server_error", None);
    assert!(matches!(map(500, &server), ProviderError::Unavailable(_)));
    assert!(matches!(map(502, &server), ProviderError::Unavailable(_)));
    assert!(matches!(map(503, &server), ProviderError::Unavailable(_)));
    assert!(matches!(map(529, &server), ProviderError::Overloaded(_)));
}

#[test]
fn groq_capacity_status_is_overloaded() {
    let error = map(
        498,
        &body("Flex tier capacity exceeded.", "capacity_exceeded", None),
    );

    assert!(
        matches!(error, ProviderError::Overloaded(_)),
        "error: {error:?}"
    );
}

#[test]
fn message_keeps_body_text_and_status() {
    let error = map(
        401,
        &body(
            "Incorrect API key provided: sk-ab***yz.",
            "invalid_request_error",
            Some("invalid_api_key"),
        ),
    );

    assert_eq!(
        error,
        ProviderError::Authentication(
            "Incorrect API key provided: sk-ab***yz. (HTTP status 401 Unauthorized)".to_owned()
        )
    );
}

#[test]
fn context_length_code_mapped() {
    let error = map(
        400,
        &body(
            "This model's maximum context length is 128000 tokens.",
            "invalid_request_error",
            Some("context_length_exceeded"),
        ),
    );

    assert!(
        matches!(error, ProviderError::ContextTooLong(_)),
        "error: {error:?}"
    );
}

#[test]
fn overloaded_type_mapped() {
    let error = map(503, &body("Overloaded", "overloaded_error", None));

    assert!(
        matches!(error, ProviderError::Overloaded(_)),
        "error: {error:?}"
    );
}

#[test]
fn insufficient_quota_is_permission() {
    let error = map(
        429,
        &body(
            "You exceeded your current quota.",
            "insufficient_quota",
            Some("insufficient_quota"),
        ),
    );

    assert!(
        matches!(error, ProviderError::Permission(_)),
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
fn empty_body_names_status() {
    assert_eq!(
        map(504, b""),
        ProviderError::Unavailable("HTTP status 504 Gateway Timeout".to_owned())
    );
}

#[test]
fn rate_limit_reads_retry_after_ms() {
    let mut headers = HeaderMap::new();
    headers.insert("retry-after-ms", HeaderValue::from_static("1500"));
    headers.insert("retry-after", HeaderValue::from_static("2"));

    let error = error_from_response(
        StatusCode::TOO_MANY_REQUESTS,
        &headers,
        &body("slow down", "requests", Some("rate_limit_exceeded")),
    );

    assert_eq!(
        error,
        ProviderError::RateLimited {
            retry_after: Some(Duration::from_millis(1500)),
            message: "slow down (HTTP status 429 Too Many Requests)".to_owned(),
        }
    );
}

#[test]
fn retry_after_seconds() {
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", HeaderValue::from_static("7"));
    assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));

    headers.insert("retry-after", HeaderValue::from_static("0.5"));
    assert_eq!(retry_after(&headers), Some(Duration::from_millis(500)));
}

#[test]
fn retry_after_invalid_values_ignored() {
    for value in ["Wed, 21 Oct 2015 07:28:00 GMT", "-1", "NaN", "1e400", ""] {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_str(value).unwrap());
        assert_eq!(retry_after(&headers), None, "retry-after: {value:?}");
    }
    assert_eq!(retry_after(&HeaderMap::new()), None);
}

#[test]
fn stream_error_objects_mapped() {
    let detail = |error_type: &str, code: Option<&str>| ErrorDetail {
        message: "failed".to_owned(),
        kind: Some(error_type.to_owned()),
        code: code.map(|code| serde_json::Value::String(code.to_owned())),
    };

    assert_eq!(
        error_from_detail(&detail("server_error", None)),
        ProviderError::Unavailable("failed".into())
    );
    assert_eq!(
        error_from_detail(&detail(
            "invalid_request_error",
            Some("context_length_exceeded")
        )),
        ProviderError::ContextTooLong("failed".into())
    );
    assert_eq!(
        error_from_detail(&detail("requests", Some("rate_limit_exceeded"))),
        ProviderError::RateLimited {
            retry_after: None,
            message: "failed".into()
        }
    );
    assert_eq!(
        error_from_detail(&detail("overloaded_error", None)),
        ProviderError::Overloaded("failed".into())
    );
    assert_eq!(
        error_from_detail(&detail("invalid_request_error", None)),
        ProviderError::InvalidRequest("failed".into())
    );
}

#[test]
fn numeric_code_tolerated() {
    let body = br#"{"error": {"message": "bad", "type": "invalid_request_error", "code": 400}}"#;

    assert_eq!(
        map(400, body),
        ProviderError::InvalidRequest("bad (HTTP status 400 Bad Request)".to_owned())
    );
}
