//! Mapping of Ollama error statuses, bodies and headers.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};

use super::*;

fn body(message: &str) -> Vec<u8> {
    serde_json::json!({ "error": message })
        .to_string()
        .into_bytes()
}

fn map(status: u16, body: &[u8]) -> ProviderError {
    let status = StatusCode::from_u16(status).unwrap();
    error_from_response(status, &HeaderMap::new(), body)
}

#[test]
fn statuses_mapped() {
    let failed = body("failed");
    assert!(matches!(
        map(400, &failed),
        ProviderError::InvalidRequest(_)
    ));
    assert!(matches!(
        map(401, &failed),
        ProviderError::Authentication(_)
    ));
    assert!(matches!(map(403, &failed), ProviderError::Permission(_)));
    assert!(matches!(map(404, &failed), ProviderError::NotFound(_)));
    assert!(matches!(
        map(422, &failed),
        ProviderError::InvalidRequest(_)
    ));
    assert!(matches!(
        map(429, &failed),
        ProviderError::RateLimited {
            retry_after: None,
            ..
        }
    ));
    assert!(matches!(map(500, &failed), ProviderError::Unavailable(_)));
    assert!(matches!(map(502, &failed), ProviderError::Unavailable(_)));
    assert!(matches!(map(503, &failed), ProviderError::Unavailable(_)));
    assert!(matches!(map(529, &failed), ProviderError::Overloaded(_)));
}

#[test]
fn unknown_model_is_not_found() {
    let error = map(404, &body("model 'llama9' not found"));

    assert_eq!(
        error,
        ProviderError::NotFound("model 'llama9' not found (HTTP status 404 Not Found)".to_owned())
    );
}

#[test]
fn full_queue_is_unavailable() {
    let message = "server busy, please try again.  maximum pending requests exceeded";

    let error = map(503, &body(message));

    assert_eq!(
        error,
        ProviderError::Unavailable(format!("{message} (HTTP status 503 Service Unavailable)"))
    );
}

#[test]
fn context_overflow_mapped() {
    for status in [400, 413, 500] {
        let error = map(status, &body("the input length exceeds the context length"));

        assert!(
            matches!(error, ProviderError::ContextTooLong(_)),
            "status {status}: {error:?}"
        );
    }
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
fn rate_limit_reads_retry_after() {
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", HeaderValue::from_static("7"));

    let error = error_from_response(StatusCode::TOO_MANY_REQUESTS, &headers, &body("slow down"));

    assert_eq!(
        error,
        ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
            message: "slow down (HTTP status 429 Too Many Requests)".to_owned(),
        }
    );
}

#[test]
fn messages_after_success_mapped() {
    assert_eq!(
        error_from_message("model runner has unexpectedly stopped".to_owned()),
        ProviderError::Unavailable("model runner has unexpectedly stopped".to_owned())
    );
    assert_eq!(
        error_from_message("input exceeds maximum context length".to_owned()),
        ProviderError::ContextTooLong("input exceeds maximum context length".to_owned())
    );
}
