//! `/health` reports each dependency and names the one that is down.

use serde_json::Value;
use tests::{TestApp, TestOptions};

#[tokio::test]
async fn health_ok_when_dependencies_answer() {
    let app = TestApp::spawn().await.unwrap();
    let response = app
        .http()
        .get(format!("{}/health", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["checks"]["postgres"]["status"], "ok");
    assert_eq!(body["checks"]["redis"]["status"], "ok");
    app.shutdown().await;
}

#[tokio::test]
async fn health_names_redis_when_unreachable() {
    // Port 1 on loopback has no listener, so connections are refused at once.
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("REDIS_URL".into(), "redis://127.0.0.1:1".into())],
        worker: false,
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let response = app
        .http()
        .get(format!("{}/health", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["failing"], serde_json::json!(["redis"]));
    assert_eq!(body["checks"]["redis"]["status"], "unavailable");
    assert_eq!(body["checks"]["postgres"]["status"], "ok");
    app.shutdown().await;
}
