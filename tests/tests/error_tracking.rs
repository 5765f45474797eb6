//! With `SENTRY_DSN` set, an INTERNAL error reaches Sentry (a local server replaces
//! it) tagged with the request id, tenant and operation, and without secrets or content.
//! Sentry's client is global to the process, so this file contains a single test.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use service::Settings;
use tests::{TEST_PASSWORD, TestApp, TestOptions};
use tokio::net::TcpListener;

/// The bodies of the requests the stand-in for Sentry received.
type Received = Arc<Mutex<Vec<String>>>;

async fn receive(
    State(received): State<Received>,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    assert!(
        headers.get("content-encoding").is_none(),
        "compressed envelopes are not decoded here"
    );
    received
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&body).into_owned());
    "{}"
}

/// Starts the stand-in for Sentry and returns the DSN that points at it.
async fn start_sentry(received: Received) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = Router::new().fallback(receive).with_state(received);
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://publickey@{address}/42")
}

// Sentry's transport thread sends to the stand-in server on this runtime while the test
// waits for it, so the runtime needs worker threads besides the test's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_error_reaches_sentry_without_secrets() {
    let received = Received::default();
    let dsn = start_sentry(received.clone()).await;
    // Every request is traced too, so that transactions are checked for secrets as well.
    let settings = Settings::from_lookup(|name| match name {
        "SENTRY_DSN" => Some(dsn.clone()),
        "SENTRY_TRACES_SAMPLE_RATE" => Some("1".into()),
        _ => None,
    })
    .unwrap();
    let guard = service::error_tracking::init(&settings, "api")
        .unwrap()
        .expect("SENTRY_DSN is set");
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("SENTRY_DSN".into(), dsn.clone())],
        ..TestOptions::default()
    })
    .await
    .unwrap();

    let owner = app.register("sentry-owner@example.com", "Tracked").await;
    let token = owner.access_token.as_str();
    let api_key = "sk-tenant-secret-5d0c9a1e";
    app.data(
        Some(token),
        "mutation($input: SetProviderCredentialInput!) {
            setProviderCredential(input: $input) { credential { id } } }",
        json!({ "input": { "provider": "OPENAI", "apiKey": api_key } }),
    )
    .await;
    let agent = app.create_agent(token, "Be brief.").await;
    let conversation = app.create_conversation(token, &agent).await;
    // A stored key that no longer decrypts is a fault of the platform, not of the request.
    app.db
        .execute_unprepared("UPDATE provider_credentials SET encrypted_key = 'not-a-token'")
        .await
        .unwrap();

    let content = "a private question 7c1e";
    let response = app
        .http()
        .post(format!("{}/graphql?canary=query-canary-2e8f", app.base_url))
        .bearer_auth(token)
        .header("x-request-id", "sentry-request-81b2")
        .header("x-custom-token", "header-canary-93d4")
        .json(&json!({
            "query": "mutation($input: SendMessageInput!) { sendMessage(input: $input) {
                userMessage { id } } }",
            "variables": { "input": { "conversationId": conversation, "content": content } },
        }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(tests::error_code(&body), "INTERNAL", "{body}");
    assert_eq!(body["errors"][0]["message"], "internal error");

    let client = sentry::Hub::current().client().unwrap();
    let flushed = tokio::task::spawn_blocking(move || client.flush(Some(Duration::from_secs(10))))
        .await
        .unwrap();
    assert!(flushed, "events still queued after 10 s");
    let envelopes = received.lock().unwrap().clone();
    let event = envelopes
        .iter()
        .find(|envelope| envelope.contains("sentry-request-81b2"))
        .unwrap_or_else(|| panic!("no event with the request id in {envelopes:?}"));
    assert!(event.contains(&owner.tenant_id), "{event}");
    assert!(event.contains("mutation sendMessage"), "{event}");
    assert!(event.contains("cannot be used"), "{event}");
    assert!(
        envelopes
            .iter()
            .any(|envelope| envelope.contains("\"type\":\"transaction\"")),
        "no transaction in {envelopes:?}"
    );
    let canaries = ["query-canary-2e8f", "header-canary-93d4"];
    for secret in [TEST_PASSWORD, token, api_key, content, &owner.refresh_token]
        .into_iter()
        .chain(canaries)
    {
        for envelope in &envelopes {
            assert!(
                !envelope.contains(secret),
                "{secret:?} sent to Sentry: {envelope}"
            );
        }
    }

    app.shutdown().await;
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();
}
