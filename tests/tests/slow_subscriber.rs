//! A subscriber that does not take its events holds a bounded buffer, not the whole reply:
//! after the stall time its subscription ends with SUBSCRIBER_TOO_SLOW and the cursor to
//! resume from, and resuming there yields the rest with no gap and nothing twice.

use std::time::Duration;

use futures_util::StreamExt;
use service::{ServiceError, chat::MessageEvent};
use tests::{MockConfig, TestApp, TestOptions};

const BUFFER: usize = 4;
const TOKENS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_ends_with_the_cursor_to_resume_from() {
    let app = TestApp::spawn_with(TestOptions {
        mock: MockConfig {
            tokens: TOKENS,
            ..MockConfig::default()
        },
        env: vec![
            ("SUBSCRIPTION_BUFFER".into(), BUFFER.to_string()),
            ("SUBSCRIBER_STALL_SECONDS".into(), "1".into()),
        ],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let chat = app.start_chat("slow@example.com", "Be brief.").await;
    let token = chat.owner.access_token.clone();
    let message_id = app.send_message(&token, &chat.conversation_id, "Hi").await;
    let reply = app.wait_for_reply(&token, &message_id).await;
    let ctx = service::auth::authenticate(&app.platform, &token, "test".into())
        .await
        .unwrap();
    let message_id = message_id.parse().unwrap();

    // Subscribe, then take nothing for longer than the stall time.
    let stalled = service::chat::subscribe(&app.platform, &ctx, message_id, None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let received: Vec<_> = tokio::time::timeout(Duration::from_secs(5), stalled.collect())
        .await
        .expect("the stalled subscription did not end");

    assert_eq!(
        received.len(),
        BUFFER + 1,
        "buffered events, then the error"
    );
    let mut text = String::new();
    let mut last_cursor = String::new();
    for event in &received[..BUFFER] {
        match event {
            Ok(MessageEvent::Delta {
                cursor,
                text: delta,
            }) => {
                text.push_str(delta);
                last_cursor.clone_from(cursor);
            }
            other => panic!("expected a delta, got {other:?}"),
        }
    }
    let resume_after = match &received[BUFFER] {
        Err(ServiceError::SubscriberTooSlow { resume_after }) => resume_after.clone(),
        other => panic!("expected SubscriberTooSlow, got {other:?}"),
    };
    assert_eq!(resume_after, last_cursor);

    // Resuming from the cursor, taking events as they come, completes the reply.
    let resumed = service::chat::subscribe(&app.platform, &ctx, message_id, Some(resume_after))
        .await
        .unwrap();
    let rest: Vec<_> = tokio::time::timeout(Duration::from_secs(10), resumed.collect())
        .await
        .expect("the resumed subscription did not end");
    let mut done = false;
    for event in rest {
        match event.unwrap() {
            MessageEvent::Delta { text: delta, .. } => text.push_str(&delta),
            MessageEvent::Done { .. } => done = true,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(done);
    assert_eq!(text, reply["content"].as_str().unwrap());
}
