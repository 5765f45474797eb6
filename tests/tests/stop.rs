//! Stopping a generation keeps the partial text and its usage; a listener that leaves does
//! not stop accounting.

use std::time::Duration;

use mock_provider::reply_tokens;
use serde_json::json;
use tests::{MockConfig, TestApp, TestOptions};

fn slow_mock() -> TestOptions {
    TestOptions {
        mock: MockConfig {
            tokens: 60,
            gap: Duration::from_millis(50),
            ..MockConfig::default()
        },
        ..TestOptions::default()
    }
}

#[tokio::test]
async fn stop_keeps_partial_text_and_usage() {
    let app = TestApp::spawn_with(slow_mock()).await.unwrap();
    let tests::Chat {
        owner,
        conversation_id,
        ..
    } = app.start_chat("stop@example.com", "Talk a lot.").await;
    let message_id = app
        .send_message(&owner.access_token, &conversation_id, "Go on")
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;

    let stopped = app
        .data(
            Some(&owner.access_token),
            "mutation($id: ID!) { stopGeneration(input: { messageId: $id }) {
                message { status finishReason content outputTokens costMicros usageEstimated } } }",
            json!({ "id": message_id }),
        )
        .await;
    let message = &stopped["stopGeneration"]["message"];
    assert_eq!(message["status"], "COMPLETED");
    assert_eq!(message["finishReason"], "CANCELLED");
    let content = message["content"].as_str().unwrap();
    let full = reply_tokens(60).concat();
    assert!(!content.is_empty(), "some text arrived before the stop");
    assert!(content.len() < full.len(), "the stop cut the reply short");
    assert!(full.starts_with(content));
    assert_eq!(message["usageEstimated"], true);
    assert!(message["outputTokens"].as_i64().unwrap() > 0);

    let records = app
        .data(
            Some(&owner.access_token),
            "{ usageRecords { edges { node { estimated outputTokens messageId } } } }",
            json!({}),
        )
        .await;
    let record = &records["usageRecords"]["edges"][0]["node"];
    assert_eq!(record["estimated"], true);
    assert_eq!(record["messageId"], message_id.as_str());
    assert_eq!(record["outputTokens"], message["outputTokens"]);
    app.shutdown().await;
}

#[tokio::test]
async fn reply_stored_after_listener_leaves() {
    let app = TestApp::spawn_with(TestOptions {
        mock: MockConfig {
            tokens: 20,
            gap: Duration::from_millis(30),
            ..MockConfig::default()
        },
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let tests::Chat {
        owner,
        conversation_id,
        ..
    } = app.start_chat("leave@example.com", "Hi.").await;
    let message_id = app
        .send_message(&owner.access_token, &conversation_id, "Hello")
        .await;

    // A subscriber that gives up after 100 ms, long before the reply ends.
    let early = tests::graphql_ws::collect_subscription(
        &app.ws_url(),
        &owner.access_token,
        "subscription($id: ID!) { messageStream(messageId: $id) { kind } }",
        json!({ "id": message_id }),
        Duration::from_millis(100),
    )
    .await;
    assert!(
        early.is_err(),
        "the subscription cannot complete within 100 ms"
    );

    let reply = app.wait_for_reply(&owner.access_token, &message_id).await;
    assert_eq!(reply["status"], "COMPLETED");
    assert_eq!(reply["finishReason"], "STOP");
    assert_eq!(reply["content"], reply_tokens(20).concat());
    assert_eq!(reply["outputTokens"], 20);
    app.shutdown().await;
}
