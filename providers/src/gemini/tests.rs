//! The adapter's HTTP side against a local server: API key header, paths, `probe()` and the
//! checks made before any request is sent.

#![allow(clippy::unwrap_used)]

use axum::http::StatusCode;
use serde_json::json;

use super::*;
use crate::test_support::LocalServer;
use crate::{ChatMessage, HttpSettings, http_client};

fn adapter(base_url: &str, key: &str) -> Gemini {
    let client = http_client(&HttpSettings::default()).unwrap();
    Gemini::new(client, base_url, ApiKey::new(key))
}

fn request(model: &str) -> ChatRequest {
    ChatRequest {
        model: model.to_owned(),
        messages: vec![ChatMessage::user("Hi")],
        ..ChatRequest::default()
    }
}

#[tokio::test]
async fn probe_lists_models_with_key_header() {
    let models = json!({"models": [{"name": "models/gemini-2.5-flash"}]});
    let server = LocalServer::start(StatusCode::OK, models).await;
    let gemini = adapter(&format!("{}/v1beta/", server.base_url), "AIza-test-key");

    let result = gemini.probe().await;

    assert_eq!(result, Ok(()));
    assert_eq!(gemini.kind(), ProviderKind::Gemini);
    let received = server.received();
    assert_eq!(received.len(), 1);
    let (path, headers) = &received[0];
    assert_eq!(path, "/v1beta/models");
    assert_eq!(headers["x-goog-api-key"], "AIza-test-key");
    assert!(headers.get("authorization").is_none());
}

#[tokio::test]
async fn probe_invalid_key_is_authentication() {
    let body = json!({"error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                     "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]
    }});
    let server = LocalServer::start(StatusCode::BAD_REQUEST, body).await;

    let error = adapter(&server.base_url, "AIza-wrong")
        .probe()
        .await
        .unwrap_err();

    assert!(
        matches!(error, ProviderError::Authentication(_)),
        "error: {error:?}"
    );
}

#[tokio::test]
async fn probe_other_body_is_decode_error() {
    let server = LocalServer::start(StatusCode::OK, json!({"data": []})).await;

    let error = adapter(&server.base_url, "AIza-test-key")
        .probe()
        .await
        .unwrap_err();

    assert!(
        matches!(error, ProviderError::Decode(_)),
        "error: {error:?}"
    );
}

#[tokio::test]
async fn complete_error_object_in_ok_body_mapped() {
    let body = json!({"error": {"code": 503, "message": "The model is overloaded.",
                                "status": "UNAVAILABLE"}});
    let server = LocalServer::start(StatusCode::OK, body).await;

    let error = adapter(&server.base_url, "AIza-test-key")
        .complete(&request("gemini-2.5-flash"))
        .await
        .unwrap_err();

    assert_eq!(
        error,
        ProviderError::Overloaded("The model is overloaded.".to_owned())
    );
    assert_eq!(
        server.received()[0].0,
        "/models/gemini-2.5-flash:generateContent"
    );
}

#[tokio::test]
async fn empty_key_rejected_before_sending() {
    let server = LocalServer::start(StatusCode::OK, json!({"models": []})).await;
    let gemini = adapter(&server.base_url, "");

    let probe = gemini.probe().await.unwrap_err();
    let stream = gemini
        .stream(&request("gemini-2.5-flash"))
        .await
        .err()
        .unwrap();

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
async fn invalid_model_rejected_before_sending() {
    let server = LocalServer::start(StatusCode::OK, json!({})).await;
    let gemini = adapter(&server.base_url, "AIza-test-key");

    let error = gemini
        .complete(&request("../files/secret"))
        .await
        .unwrap_err();

    assert!(
        matches!(error, ProviderError::InvalidRequest(_)),
        "error: {error:?}"
    );
    assert!(server.received().is_empty());
}
