//! Provider health: probes against the platform's endpoints and the outcome of generations.

use std::time::Duration;

use mock_provider::MockFailure;
use serde_json::{Value, json};
use service::provider_health;
use tests::{Chat, TestApp, TestOptions};

const HEALTH_QUERY: &str = "{ providerHealth { provider status latencyMs lastError
    consecutiveFailures checkedAt } }";

/// Starts an app without the worker, so that only the test runs probes.
async fn spawn_without_worker(env: &[(&str, &str)]) -> TestApp {
    TestApp::spawn_with(TestOptions {
        env: env
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
        worker: false,
        ..TestOptions::default()
    })
    .await
    .unwrap()
}

/// Returns the `providerHealth` entry of `provider`, or `Value::Null` when it has none.
async fn health_of(app: &TestApp, token: &str, provider: &str) -> Value {
    let data = app.data(Some(token), HEALTH_QUERY, json!({})).await;
    data["providerHealth"]
        .as_array()
        .expect("providerHealth list")
        .iter()
        .find(|entry| entry["provider"] == provider)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Waits until the entry of `provider` has `failures` consecutive failures, and returns it.
async fn wait_for_failures(app: &TestApp, token: &str, provider: &str, failures: i64) -> Value {
    app.eventually(Duration::from_secs(10), || async {
        let entry = health_of(app, token, provider).await;
        (entry["consecutiveFailures"] == failures).then_some(entry)
    })
    .await
    .expect("failure count not reached")
}

async fn send_and_wait(app: &TestApp, chat: &Chat) -> Value {
    let token = &chat.owner.access_token;
    let message_id = app
        .send_message(token, &chat.conversation_id, "Hello")
        .await;
    app.wait_for_reply(token, &message_id).await
}

#[tokio::test]
async fn probe_marks_reachable_provider_healthy() {
    let app = spawn_without_worker(&[]).await;
    let owner = app.register("probe@example.com", "Probe").await;

    let rows = provider_health::probe_all(&app.platform).await.unwrap();
    let probed: Vec<&str> = rows.iter().map(|row| row.provider.as_str()).collect();
    assert_eq!(probed, ["openai"], "only providers with a platform key");

    let entry = health_of(&app, &owner.access_token, "OPENAI").await;
    assert_eq!(entry["status"], "HEALTHY");
    assert!(entry["latencyMs"].as_i64().is_some(), "{entry}");
    assert_eq!(entry["lastError"], Value::Null);
    assert_eq!(entry["consecutiveFailures"], 0);
    assert!(entry["checkedAt"].is_string(), "{entry}");
    app.shutdown().await;
}

#[tokio::test]
async fn probe_marks_closed_port_down() {
    let app = spawn_without_worker(&[("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")]).await;
    let owner = app.register("down@example.com", "Down").await;

    provider_health::probe_all(&app.platform).await.unwrap();
    let entry = health_of(&app, &owner.access_token, "OPENAI").await;
    assert_eq!(entry["status"], "DOWN");
    assert_eq!(entry["latencyMs"], Value::Null);
    assert!(
        !entry["lastError"].as_str().unwrap_or("").is_empty(),
        "{entry}"
    );
    assert_eq!(entry["consecutiveFailures"], 1);

    provider_health::probe_all(&app.platform).await.unwrap();
    let entry = health_of(&app, &owner.access_token, "OPENAI").await;
    assert_eq!(entry["status"], "DOWN");
    assert_eq!(entry["consecutiveFailures"], 2);
    app.shutdown().await;
}

#[tokio::test]
async fn ollama_probed_when_base_url_set() {
    let app = spawn_without_worker(&[("OLLAMA_BASE_URL", "http://127.0.0.1:1")]).await;

    let rows = provider_health::probe_all(&app.platform).await.unwrap();
    let probed: Vec<&str> = rows.iter().map(|row| row.provider.as_str()).collect();
    assert_eq!(probed, ["openai", "ollama"]);
    let ollama = &rows[1];
    assert_eq!(ollama.status, entity::provider_health::ProviderStatus::Down);
    assert!(ollama.last_error.is_some());
    app.shutdown().await;
}

#[tokio::test]
async fn failed_generations_degrade_then_success_heals() {
    let app = spawn_without_worker(&[]).await;
    let chat = app.start_chat("degrade@example.com", "Hi.").await;
    let token = chat.owner.access_token.clone();
    let unauthorized = MockFailure::Status {
        status: 401,
        code: None,
        retry_after: None,
    };

    for failures in 1..=2 {
        app.mock.fail_next(unauthorized.clone());
        let reply = send_and_wait(&app, &chat).await;
        assert_eq!(reply["status"], "FAILED");
        let entry = wait_for_failures(&app, &token, "OPENAI", failures).await;
        assert_eq!(entry["status"], "UNKNOWN", "after {failures} failures");
    }

    app.mock.fail_next(unauthorized);
    let reply = send_and_wait(&app, &chat).await;
    assert_eq!(reply["status"], "FAILED");
    let entry = wait_for_failures(&app, &token, "OPENAI", 3).await;
    assert_eq!(entry["status"], "DEGRADED");

    // A passing probe does not show that generations work, so it keeps the status.
    provider_health::probe_all(&app.platform).await.unwrap();
    let entry = health_of(&app, &token, "OPENAI").await;
    assert_eq!(entry["status"], "DEGRADED");
    assert_eq!(entry["consecutiveFailures"], 3);
    assert!(entry["latencyMs"].as_i64().is_some(), "{entry}");

    let reply = send_and_wait(&app, &chat).await;
    assert_eq!(reply["status"], "COMPLETED");
    let entry = wait_for_failures(&app, &token, "OPENAI", 0).await;
    assert_eq!(entry["status"], "HEALTHY");
    app.shutdown().await;
}

#[tokio::test]
async fn worker_probes_on_start() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("worker-probe@example.com", "Worker").await;

    let entry = app
        .eventually(Duration::from_secs(10), || async {
            let entry = health_of(&app, &owner.access_token, "OPENAI").await;
            entry["checkedAt"].is_string().then_some(entry)
        })
        .await
        .expect("the worker did not probe");
    assert_eq!(entry["status"], "HEALTHY");
    app.shutdown().await;
}

#[tokio::test]
async fn tenant_key_failures_leave_platform_health() {
    let app = spawn_without_worker(&[]).await;
    let chat = app.start_chat("tenant-key@example.com", "Hi.").await;
    let token = chat.owner.access_token.clone();
    let unauthorized = MockFailure::Status {
        status: 401,
        code: None,
        retry_after: None,
    };
    let set = app
        .graphql(
            Some(&token),
            "mutation { setProviderCredential(input: { provider: OPENAI,
                apiKey: \"sk-tenant-revoked-0001\" }) { credential { keyHint } } }",
            json!({}),
        )
        .await;
    assert_eq!(set["errors"], Value::Null, "{set}");

    for _ in 0..3 {
        app.mock.fail_next(unauthorized.clone());
        let reply = send_and_wait(&app, &chat).await;
        assert_eq!(reply["status"], "FAILED");
    }

    // With the platform's key again, one failure counts as the first.
    app.data(
        Some(&token),
        "mutation { deleteProviderCredential(input: { provider: OPENAI }) { deletedProvider } }",
        json!({}),
    )
    .await;
    app.mock.fail_next(unauthorized);
    let reply = send_and_wait(&app, &chat).await;
    assert_eq!(reply["status"], "FAILED");
    let entry = wait_for_failures(&app, &token, "OPENAI", 1).await;
    assert_eq!(entry["status"], "UNKNOWN");
    app.shutdown().await;
}

#[tokio::test]
async fn request_errors_leave_health() {
    let app = spawn_without_worker(&[]).await;
    let chat = app.start_chat("bad-request@example.com", "Hi.").await;
    let token = chat.owner.access_token.clone();

    for _ in 0..3 {
        app.mock.fail_next(MockFailure::Status {
            status: 400,
            code: Some("context_length_exceeded".into()),
            retry_after: None,
        });
        let reply = send_and_wait(&app, &chat).await;
        assert_eq!(reply["status"], "FAILED");
    }
    // A fault of the provider counts as the first failure.
    app.mock.fail_next(MockFailure::Status {
        status: 401,
        code: None,
        retry_after: None,
    });
    let reply = send_and_wait(&app, &chat).await;
    assert_eq!(reply["status"], "FAILED");
    let entry = wait_for_failures(&app, &token, "OPENAI", 1).await;
    assert_eq!(entry["status"], "UNKNOWN");
    app.shutdown().await;
}
