//! `GENERATION_WITHOUT_LISTENER`: by default a reply nobody follows is generated to the
//! end; with `stop`, it is stopped after `LISTENER_GRACE_SECONDS` without a subscriber and
//! stored like a user's stop, with the text and usage so far.

use std::time::Duration;

use serde_json::json;
use tests::{MockConfig, TestApp, TestOptions, graphql_ws::collect_subscription};

const TOKENS: usize = 60;

async fn app(env: &[(&str, &str)]) -> TestApp {
    TestApp::spawn_with(TestOptions {
        mock: MockConfig {
            tokens: TOKENS,
            gap: Duration::from_millis(50),
            ..MockConfig::default()
        },
        env: env
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
        ..TestOptions::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_go_on_without_a_subscriber_by_default() {
    let app = app(&[]).await;
    let chat = app.start_chat("unfollowed@example.com", "Be brief.").await;
    let token = chat.owner.access_token.clone();
    let message_id = app.send_message(&token, &chat.conversation_id, "Hi").await;
    let reply = app.wait_for_reply(&token, &message_id).await;
    assert_eq!(reply["finishReason"], "STOP");
    assert_eq!(reply["outputTokens"], TOKENS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_stop_a_reply_nobody_follows_is_stopped_and_kept() {
    let app = app(&[
        ("GENERATION_WITHOUT_LISTENER", "stop"),
        ("LISTENER_GRACE_SECONDS", "1"),
    ])
    .await;
    let chat = app.start_chat("stopped@example.com", "Be brief.").await;
    let token = chat.owner.access_token.clone();

    // Followed to the end: the reply is whole.
    let followed = app.send_message(&token, &chat.conversation_id, "Hi").await;
    let events = collect_subscription(
        &app.ws_url(),
        &token,
        "subscription($id: ID!) { messageStream(messageId: $id) { kind } }",
        json!({ "id": followed }),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    assert_eq!(events.len(), TOKENS + 1);
    let reply = app.wait_for_reply(&token, &followed).await;
    assert_eq!(reply["finishReason"], "STOP");
    assert_eq!(reply["outputTokens"], TOKENS);

    // Nobody subscribes: stopped after the grace period, with what was generated stored
    // and paid for.
    let unfollowed = app.send_message(&token, &chat.conversation_id, "Hi").await;
    let reply = app.wait_for_reply(&token, &unfollowed).await;
    assert_eq!(reply["status"], "COMPLETED");
    assert_eq!(reply["finishReason"], "CANCELLED");
    let output_tokens = reply["outputTokens"].as_i64().unwrap();
    assert!(
        (1..TOKENS as i64).contains(&output_tokens),
        "{output_tokens} tokens"
    );
    assert!(!reply["content"].as_str().unwrap().is_empty());
    assert!(reply["costMicros"].as_i64().unwrap() > 0);
}
