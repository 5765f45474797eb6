//! Usage counting is idempotent, and the sweep counts records whose job never arrived.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use service::jobs::CountUsage;
use tests::{TestApp, TestOptions};
use uuid::Uuid;

const USAGE: &str = "{ usage { inputTokens outputTokens costMicros recordCount } }";

async fn uncounted(app: &TestApp) -> i64 {
    let row = app
        .db
        .query_one_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT COUNT(*)::bigint AS n FROM usage_records WHERE counted_at IS NULL".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

#[tokio::test]
async fn usage_job_twice_counts_once() {
    let app = TestApp::spawn_with(TestOptions {
        worker: false,
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let tests::Chat {
        owner,
        conversation_id,
        ..
    } = app.start_chat("count@example.com", "Count.").await;
    let message_id = app
        .send_message(&owner.access_token, &conversation_id, "Hello")
        .await;
    let reply = app.wait_for_reply(&owner.access_token, &message_id).await;
    assert_eq!(uncounted(&app).await, 1);

    let tenant_id: Uuid = owner.tenant_id.parse().unwrap();
    // One job was enqueued by the reply; two more arrive for the same records.
    app.platform
        .jobs
        .count_usage(CountUsage {
            tenant_id,
            request_id: None,
        })
        .await;
    app.platform
        .jobs
        .count_usage(CountUsage {
            tenant_id,
            request_id: None,
        })
        .await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let worker = tokio::spawn(worker::run(
        app.platform.clone(),
        metrics_listener,
        shutdown.clone(),
    ));

    app.eventually(Duration::from_secs(15), || async {
        (uncounted(&app).await == 0).then_some(())
    })
    .await
    .unwrap();
    // Give the remaining jobs time to run before reading the totals.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let usage = app.data(Some(&owner.access_token), USAGE, json!({})).await;
    assert_eq!(usage["usage"]["recordCount"], 1);
    assert_eq!(usage["usage"]["inputTokens"], reply["inputTokens"]);
    assert_eq!(usage["usage"]["outputTokens"], reply["outputTokens"]);
    assert_eq!(usage["usage"]["costMicros"], reply["costMicros"]);

    let again = service::usage::count_tenant(&app.platform, tenant_id)
        .await
        .unwrap();
    assert_eq!(again, 0);
    shutdown.cancel();
    let _ = worker.await;
    app.shutdown().await;
}

#[tokio::test]
async fn sweep_counts_records_without_job() {
    let app = TestApp::spawn_with(TestOptions {
        worker: false,
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let owner = app.register("sweep@example.com", "Sweep Org").await;
    // A record written while Redis was down: no job exists for it.
    app.db
        .execute_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "INSERT INTO usage_records (id, tenant_id, provider, model, input_tokens,
                output_tokens, cost_micros, created_at)
             VALUES ($1, $2, 'openai', 'gpt-4o-mini', 3000000000, 1000, 450000600,
                now() - interval '2 minutes')",
            [
                Uuid::now_v7().into(),
                owner.tenant_id.parse::<Uuid>().unwrap().into(),
            ],
        ))
        .await
        .unwrap();

    let counted = worker::sweep::sweep_usage(&app.platform, 30).await.unwrap();
    assert_eq!(counted, 1);
    let usage = app.data(Some(&owner.access_token), USAGE, json!({})).await;
    assert_eq!(usage["usage"]["recordCount"], 1);
    // Counts beyond 32 bits pass through the BigInt scalar intact.
    assert_eq!(usage["usage"]["inputTokens"], 3_000_000_000_i64);
    assert_eq!(usage["usage"]["costMicros"], 450_000_600);

    let second = worker::sweep::sweep_usage(&app.platform, 30).await.unwrap();
    assert_eq!(second, 0);
    app.shutdown().await;
}
