//! The adapter's HTTP side: authentication headers, paths and `probe()` against a local server.

#![allow(clippy::unwrap_used)]

use axum::http::StatusCode;
use serde_json::json;

use super::*;
use crate::test_support::LocalServer;
use crate::{HttpSettings, http_client};

fn adapter(base_url: &str, key: &str) -> Anthropic {
    let client = http_client(&HttpSettings::default()).unwrap();
    Anthropic::new(client, base_url, ApiKey::new(key))
}

fn model_list() -> serde_json::Value {
    json!({
        "data": [{"type": "model", "id": "claude-sonnet-4-5-20250929",
                  "display_name": "Claude Sonnet 4.5", "created_at": "2025-09-29T00:00:00Z"}],
        "has_more": false,
        "first_id": "claude-sonnet-4-5-20250929",
        "last_id": "claude-sonnet-4-5-20250929"
    })
}

#[tokio::test]
async fn probe_lists_models_with_key_headers() {
    let server = LocalServer::start(StatusCode::OK, model_list()).await;
    let anthropic = adapter(&format!("{}/", server.base_url), "sk-ant-test");

    let result = anthropic.probe().await;

    assert_eq!(result, Ok(()));
    assert_eq!(anthropic.kind(), ProviderKind::Anthropic);
    let received = server.received();
    assert_eq!(received.len(), 1);
    let (path, headers) = &received[0];
    assert_eq!(path, "/v1/models");
    assert_eq!(headers["x-api-key"], "sk-ant-test");
    assert_eq!(headers["anthropic-version"], "2023-06-01");
    assert!(headers.get("authorization").is_none());
}

#[tokio::test]
async fn probe_rejected_key_is_authentication() {
    let body = json!({"type": "error",
                      "error": {"type": "authentication_error", "message": "invalid x-api-key"}});
    let server = LocalServer::start(StatusCode::UNAUTHORIZED, body).await;

    let error = adapter(&server.base_url, "sk-ant-wrong")
        .probe()
        .await
        .unwrap_err();

    assert_eq!(
        error,
        ProviderError::Authentication(
            "invalid x-api-key (HTTP status 401 Unauthorized)".to_owned()
        )
    );
}

#[tokio::test]
async fn probe_other_body_is_decode_error() {
    let server = LocalServer::start(StatusCode::OK, json!({"status": "ok"})).await;

    let error = adapter(&server.base_url, "sk-ant-test")
        .probe()
        .await
        .unwrap_err();

    assert!(
        matches!(&error, ProviderError::Decode(m) if m.contains("model list")),
        "error: {error:?}"
    );
}

#[tokio::test]
async fn empty_key_rejected_before_sending() {
    let server = LocalServer::start(StatusCode::OK, model_list()).await;
    let anthropic = adapter(&server.base_url, "");
    let request = ChatRequest {
        model: "claude-haiku-4-5".to_owned(),
        messages: vec![crate::ChatMessage::user("Hi")],
        ..ChatRequest::default()
    };

    let probe = anthropic.probe().await.unwrap_err();
    let stream = anthropic.stream(&request).await.err().unwrap();

    assert!(
        matches!(probe, ProviderError::Authentication(_)),
        "probe: {probe:?}"
    );
    assert!(
        matches!(stream, ProviderError::Authentication(_)),
        "stream: {stream:?}"
    );
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn key_with_newline_is_authentication_error() {
    let server = LocalServer::start(StatusCode::OK, model_list()).await;

    let error = adapter(&server.base_url, "sk-ant\ntest")
        .probe()
        .await
        .unwrap_err();

    assert!(
        matches!(error, ProviderError::Authentication(_)),
        "error: {error:?}"
    );
    assert!(server.received().is_empty());
}
