//! No webhook event is lost while Redis is unreachable: events written with the changes
//! that caused them are delivered once Redis is back, each under one `webhook-id`.

use std::time::Duration;

use sea_orm::ConnectionTrait;
use serde_json::json;
use tests::{
    MockConfig, TestApp, TestOptions, tcp_proxy::TcpProxy, webhook_receiver::WebhookReceiver,
};

const REPLIES: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_during_a_redis_outage_are_all_delivered_once() {
    let (proxy, redis_url) = TcpProxy::for_redis().await.unwrap();
    let app = TestApp::spawn_with(TestOptions {
        mock: MockConfig {
            tokens: 20,
            gap: Duration::from_millis(100),
            ..MockConfig::default()
        },
        env: vec![
            ("REDIS_URL".into(), redis_url),
            ("ALLOWED_PRIVATE_NETWORKS".into(), "127.0.0.1/32".into()),
            ("WEBHOOK_RETRY_SCHEDULE".into(), "1,1,1".into()),
            ("SWEEP_INTERVAL_SECONDS".into(), "1".into()),
        ],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let receiver = WebhookReceiver::start().await.unwrap();
    let chat = app.start_chat("outage@example.com", "Be brief.").await;
    let token = chat.owner.access_token.clone();
    app.db
        .execute_unprepared(&format!(
            "UPDATE subscriptions SET plan = 'pro' WHERE tenant_id = '{}'",
            chat.owner.tenant_id
        ))
        .await
        .unwrap();
    app.data(
        Some(&token),
        "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { secret } }",
        json!({ "input": { "url": receiver.url(), "events": ["MESSAGE_COMPLETED"] } }),
    )
    .await;

    // Replies that take 2 s each, in conversations of their own, then Redis goes away.
    let mut replies = Vec::new();
    for _ in 0..REPLIES {
        let conversation = app.create_conversation(&token, &chat.agent_id).await;
        replies.push(app.send_message(&token, &conversation, "Hi").await);
    }
    proxy.cut();

    // The replies end and store their events while Redis is unreachable.
    app.eventually(Duration::from_secs(20), || async {
        let row = app
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                "SELECT count(*) AS streaming FROM messages WHERE status = 'streaming'",
            ))
            .await
            .ok()??;
        let streaming: i64 = row.try_get("", "streaming").ok()?;
        (streaming == 0).then_some(())
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(receiver.received().is_empty(), "delivered without Redis");

    proxy.restore();
    let received = receiver.wait_for(REPLIES, Duration::from_secs(30)).await;
    // Nothing more arrives for those events.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received_later = receiver.received();
    assert_eq!(received_later.len(), received.len());
    let mut ids: Vec<&str> = received_later
        .iter()
        .map(|d| d.header("webhook-id"))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), REPLIES, "each event arrives under one id");
    let mut delivered: Vec<String> = received_later
        .iter()
        .map(|delivery| {
            delivery.json()["data"]["messageId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    delivered.sort();
    replies.sort();
    assert_eq!(delivered, replies);
}
