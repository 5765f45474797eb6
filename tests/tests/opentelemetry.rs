//! OpenTelemetry export: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the spans of a request reach
//! the collector over OTLP/HTTP, carrying the request id and the service name.
//!
//! The log subscriber is process-wide, so this file contains one test, which installs it first.

use std::sync::{Arc, Mutex};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Uri},
};
use serde_json::json;
use tests::TestApp;

/// Path, content type and body of each request the stand-in collector received.
type Received = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

async fn receive(
    State(received): State<Received>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    let content_type = headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    received
        .lock()
        .unwrap()
        .push((uri.path().to_owned(), content_type, body.to_vec()));
    ""
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

// The exporter's batch thread posts to the stand-in server on this runtime while the test
// waits for the flush, so the runtime needs a second thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_spans_reach_the_collector() {
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = format!("http://{}", listener.local_addr().unwrap());
    let router = Router::new().fallback(receive).with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let telemetry = service::logging::init_with("task-assistant-api", |name| match name {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(collector.clone()),
        "RUST_LOG" => Some("info".into()),
        _ => None,
    });
    let app = TestApp::spawn().await.unwrap();
    let response = app
        .http()
        .post(format!("{}/graphql", app.base_url))
        .header("x-request-id", "otel-request-5c1e")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Dropping the guard flushes the queued spans; it blocks, so it runs off the runtime.
    tokio::task::spawn_blocking(move || drop(telemetry))
        .await
        .unwrap();

    let received = received.lock().unwrap().clone();
    assert!(!received.is_empty(), "the collector received nothing");
    for (path, content_type, _) in &received {
        assert_eq!(path, "/v1/traces");
        assert_eq!(content_type, "application/x-protobuf");
    }
    // Protocol buffers keep strings as they are, so the values show in the bytes.
    let request_span = received
        .iter()
        .find(|(_, _, body)| contains(body, "otel-request-5c1e") && contains(body, "request"));
    assert!(
        request_span.is_some(),
        "no exported span carries the request id"
    );
    assert!(
        received
            .iter()
            .all(|(_, _, body)| contains(body, "task-assistant-api"))
    );
    app.shutdown().await;
}
