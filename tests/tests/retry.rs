//! Faults worth retrying are retried before the first token; the others fail the reply.

use std::time::Duration;

use mock_provider::{MockFailure, reply_tokens};
use tests::{Chat, TestApp};

#[tokio::test]
async fn unavailable_provider_retried_before_first_token() {
    let app = TestApp::spawn().await.unwrap();
    let Chat {
        owner,
        conversation_id,
        ..
    } = app.start_chat("retry@example.com", "Hi.").await;
    app.mock.fail_next(MockFailure::Status {
        status: 503,
        code: None,
        retry_after: None,
    });

    let message_id = app
        .send_message(&owner.access_token, &conversation_id, "Hello")
        .await;
    let reply = app.wait_for_reply(&owner.access_token, &message_id).await;
    assert_eq!(reply["status"], "COMPLETED");
    assert_eq!(reply["finishReason"], "STOP");
    assert_eq!(
        reply["content"],
        reply_tokens(mock_provider::MockConfig::default().tokens).concat()
    );
    assert_eq!(
        app.mock.requests().len(),
        2,
        "one failed call and one retry"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn long_retry_after_fails_reply() {
    let app = TestApp::spawn().await.unwrap();
    let Chat {
        owner,
        conversation_id,
        ..
    } = app.start_chat("wait@example.com", "Hi.").await;
    app.mock.fail_next(MockFailure::Status {
        status: 429,
        code: None,
        retry_after: Some(Duration::from_secs(120)),
    });

    let message_id = app
        .send_message(&owner.access_token, &conversation_id, "Hello")
        .await;
    let reply = app.wait_for_reply(&owner.access_token, &message_id).await;
    assert_eq!(reply["status"], "FAILED");
    assert_eq!(reply["finishReason"], "ERROR");
    assert_eq!(reply["content"], "");
    assert_eq!(
        app.mock.requests().len(),
        1,
        "a two-minute wait is not retried"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn authentication_failure_not_retried() {
    let app = TestApp::spawn().await.unwrap();
    let Chat {
        owner,
        conversation_id,
        ..
    } = app.start_chat("auth@example.com", "Hi.").await;
    app.mock.fail_next(MockFailure::Status {
        status: 401,
        code: None,
        retry_after: None,
    });

    let message_id = app
        .send_message(&owner.access_token, &conversation_id, "Hello")
        .await;
    let reply = app.wait_for_reply(&owner.access_token, &message_id).await;
    assert_eq!(reply["status"], "FAILED");
    assert_eq!(app.mock.requests().len(), 1);
    app.shutdown().await;
}
