//! The status check, the size cap on error bodies, JSON success bodies and `retry-after`.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use reqwest::header::HeaderValue;
use serde_json::json;

use super::*;
use crate::test_support::LocalServer;
use crate::{HttpSettings, http_client};

fn client() -> reqwest::Client {
    http_client(&HttpSettings::default()).unwrap()
}

fn headers_with(name: &'static str, value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(name, HeaderValue::from_str(value).unwrap());
    headers
}

#[tokio::test]
async fn send_success_skips_error_mapping() {
    let server = LocalServer::start(reqwest::StatusCode::OK, json!([1, 2, 3])).await;

    let response = send(client().get(&server.base_url), |_, _, _| {
        ProviderError::Unavailable("mapped".to_owned())
    })
    .await
    .unwrap();

    let numbers: Vec<u32> = read_json(response, "number list").await.unwrap();
    assert_eq!(numbers, vec![1, 2, 3]);
}

#[tokio::test]
async fn send_error_mapper_gets_status_headers_body() {
    let body = json!({"error": "busy"});
    let server = LocalServer::start(reqwest::StatusCode::SERVICE_UNAVAILABLE, body.clone()).await;
    let seen = Arc::new(Mutex::new(None));

    let error = send(client().get(&server.base_url), |status, headers, body| {
        let content_type = headers[reqwest::header::CONTENT_TYPE].to_str().unwrap();
        *seen.lock().unwrap() = Some((status, content_type.to_owned(), body.to_vec()));
        ProviderError::Unavailable("mapped".to_owned())
    })
    .await
    .unwrap_err();

    assert_eq!(error, ProviderError::Unavailable("mapped".to_owned()));
    let (status, content_type, received) = seen.lock().unwrap().take().unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(content_type, "application/json");
    assert_eq!(received, body.to_string().into_bytes());
}

#[tokio::test]
async fn send_error_body_capped() {
    let body = json!("x".repeat(100_000));
    let server = LocalServer::start(reqwest::StatusCode::BAD_GATEWAY, body.clone()).await;
    let seen = Arc::new(Mutex::new(Vec::new()));

    let result = send(client().get(&server.base_url), |_, _, body| {
        seen.lock().unwrap().extend_from_slice(body);
        ProviderError::Unavailable("mapped".to_owned())
    })
    .await;

    assert!(result.is_err(), "result: {result:?}");
    let received = seen.lock().unwrap().clone();
    assert_eq!(received.len(), MAX_ERROR_BODY_BYTES);
    assert_eq!(
        received,
        body.to_string().as_bytes()[..MAX_ERROR_BODY_BYTES].to_vec()
    );
}

#[tokio::test]
async fn read_json_names_body_in_decode_error() {
    let server = LocalServer::start(reqwest::StatusCode::OK, json!({"status": "ok"})).await;
    let response = client().get(&server.base_url).send().await.unwrap();

    let error = read_json::<Vec<u32>>(response, "number list")
        .await
        .unwrap_err();

    assert!(
        matches!(&error, ProviderError::Decode(m) if m.starts_with("invalid number list: ")),
        "error: {error:?}"
    );
}

#[test]
fn retry_after_seconds_read() {
    let cases = [
        ("7", Duration::from_secs(7)),
        ("0.5", Duration::from_millis(500)),
        ("3 ", Duration::from_secs(3)),
        ("0", Duration::ZERO),
    ];

    for (value, expected) in cases {
        let headers = headers_with("retry-after", value);
        assert_eq!(
            retry_after(&headers),
            Some(expected),
            "retry-after: {value:?}"
        );
    }
}

#[test]
fn retry_after_invalid_values_ignored() {
    for value in [
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "-1",
        "NaN",
        "inf",
        "1e400",
        "",
    ] {
        let headers = headers_with("retry-after", value);
        assert_eq!(retry_after(&headers), None, "retry-after: {value:?}");
    }
    assert_eq!(retry_after(&HeaderMap::new()), None);
}

#[test]
fn header_number_reads_named_header() {
    let headers = headers_with("retry-after-ms", "1500");

    assert_eq!(header_number(&headers, "retry-after-ms"), Some(1500.0));
    assert_eq!(header_number(&headers, "retry-after"), None);
}

#[test]
fn header_number_rejects_negative_and_non_finite() {
    for value in ["-0.5", "NaN", "-inf", "1e400", "seven"] {
        let headers = headers_with("retry-after-ms", value);
        assert_eq!(
            header_number(&headers, "retry-after-ms"),
            None,
            "value: {value:?}"
        );
    }
}

#[test]
fn duration_from_seconds_range_checked() {
    assert_eq!(
        duration_from_seconds(1.5),
        Some(Duration::from_millis(1500))
    );
    for invalid in [-1.0, f64::NAN, f64::INFINITY, f64::MAX] {
        assert_eq!(duration_from_seconds(invalid), None, "{invalid}");
    }
}
