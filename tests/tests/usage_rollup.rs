//! Maintenance rolls counted usage records older than the retention period up into daily
//! totals, and the spend report reads the same numbers before and after.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use serde_json::{Value, json};
use service::maintenance::roll_up_usage;
use tests::{TestApp, TestOptions};
use uuid::Uuid;

const SPEND: &str = "query($from: DateTime, $to: DateTime) { spend(from: $from, to: $to) {
    total { inputTokens outputTokens cachedInputTokens costMicros recordCount
            unpricedRecordCount unpricedInputTokens unpricedOutputTokens estimatedRecordCount }
    byModel { provider model inputTokens outputTokens costMicros recordCount
              unpricedRecordCount estimatedRecordCount }
    byDay { day inputTokens outputTokens costMicros recordCount }
    byAgent { agentId inputTokens costMicros recordCount }
    byUser { userId inputTokens costMicros recordCount } } }";

/// One usage record to insert directly, as the chat path would have written it.
struct Record<'a> {
    tenant_id: &'a str,
    user_id: &'a str,
    provider: &'a str,
    model: &'a str,
    input_tokens: i64,
    output_tokens: i64,
    cost_micros: i64,
    price_known: bool,
    estimated: bool,
    created_at: DateTime<Utc>,
    counted: bool,
}

async fn insert(app: &TestApp, record: Record<'_>) {
    app.db
        .execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "INSERT INTO usage_records (id, tenant_id, user_id, provider, model, input_tokens,
                 output_tokens, cached_input_tokens, cost_micros, price_known, estimated,
                 created_at, counted_at)
             VALUES ($1, $2::uuid, $3::uuid, $4, $5, $6, $7, 0, $8, $9, $10, $11,
                 CASE WHEN $12 THEN now() END)",
            [
                Uuid::now_v7().into(),
                record.tenant_id.into(),
                record.user_id.into(),
                record.provider.into(),
                record.model.into(),
                record.input_tokens.into(),
                record.output_tokens.into(),
                record.cost_micros.into(),
                record.price_known.into(),
                record.estimated.into(),
                record.created_at.into(),
                record.counted.into(),
            ],
        ))
        .await
        .unwrap();
}

/// Tenant, model, input and output tokens, cost, records, unpriced and estimated records.
type TotalsRow = (String, String, i64, i64, i64, i64, i64, i64);

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.db
        .query_one_raw(Statement::from_string(DatabaseBackend::Postgres, sql))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "n")
        .unwrap()
}

/// Midnight UTC `days` days before today.
fn midnight_days_ago(days: i64) -> DateTime<Utc> {
    let today = Utc::now().date_naive();
    (today - Duration::days(days))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
}

async fn spend(app: &TestApp, token: &str) -> Value {
    let range = json!({
        "from": midnight_days_ago(120).to_rfc3339(),
        "to": Utc::now().to_rfc3339(),
    });
    app.data(Some(token), SPEND, range).await["spend"].clone()
}

#[tokio::test]
async fn old_counted_records_become_daily_totals() {
    // Without a worker, no sweep rolls records up before the test does.
    let app = TestApp::spawn_with(TestOptions {
        worker: false,
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let alice = app.register("rollup-alice@example.com", "Rollup A").await;
    let bob = app.register("rollup-bob@example.com", "Rollup B").await;
    let old = midnight_days_ago(100) + Duration::hours(9);
    let alice_record = |created_at, counted| Record {
        tenant_id: &alice.tenant_id,
        user_id: &alice.user_id,
        provider: "openai",
        model: "gpt-4o-mini",
        input_tokens: 100,
        output_tokens: 50,
        cost_micros: 1_000,
        price_known: true,
        estimated: false,
        created_at,
        counted,
    };

    // Two records of one day and model, one of them estimated.
    insert(&app, alice_record(old, true)).await;
    insert(
        &app,
        Record {
            input_tokens: 10,
            output_tokens: 5,
            cost_micros: 100,
            estimated: true,
            created_at: old + Duration::hours(3),
            ..alice_record(old, true)
        },
    )
    .await;
    // A record of the next day, of a model without a price.
    insert(
        &app,
        Record {
            provider: "anthropic",
            model: "claude-unpriced",
            input_tokens: 7,
            output_tokens: 3,
            cost_micros: 0,
            price_known: false,
            created_at: old + Duration::days(1),
            ..alice_record(old, true)
        },
    )
    .await;
    // Old but not counted yet, and counted but recent: both stay raw.
    insert(&app, alice_record(old, false)).await;
    insert(&app, alice_record(Utc::now() - Duration::days(10), true)).await;
    insert(
        &app,
        Record {
            tenant_id: &bob.tenant_id,
            user_id: &bob.user_id,
            ..alice_record(old, true)
        },
    )
    .await;

    let alice_before = spend(&app, &alice.access_token).await;
    let bob_before = spend(&app, &bob.access_token).await;
    assert_eq!(alice_before["total"]["recordCount"], 6 - 1);

    let moved = roll_up_usage(&app.platform, 90).await.unwrap();
    assert_eq!(moved, 4);
    assert_eq!(
        count(&app, "SELECT COUNT(*)::bigint AS n FROM usage_records").await,
        2
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*)::bigint AS n FROM usage_records WHERE counted_at IS NULL"
        )
        .await,
        1
    );

    let totals = app
        .db
        .query_all_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT tenant_id::text AS tenant, day::text AS day, model, input_tokens,
                    output_tokens, cost_micros, record_count, unpriced_record_count,
                    estimated_record_count
             FROM usage_daily_totals ORDER BY tenant_id <> $1::uuid, day",
            [alice.tenant_id.clone().into()],
        ))
        .await
        .unwrap();
    let rows: Vec<TotalsRow> = totals
        .iter()
        .map(|row| {
            (
                row.try_get::<String>("", "tenant").unwrap(),
                row.try_get::<String>("", "model").unwrap(),
                row.try_get::<i64>("", "input_tokens").unwrap(),
                row.try_get::<i64>("", "output_tokens").unwrap(),
                row.try_get::<i64>("", "cost_micros").unwrap(),
                row.try_get::<i64>("", "record_count").unwrap(),
                row.try_get::<i64>("", "unpriced_record_count").unwrap(),
                row.try_get::<i64>("", "estimated_record_count").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                alice.tenant_id.clone(),
                "gpt-4o-mini".into(),
                110,
                55,
                1_100,
                2,
                0,
                1
            ),
            (
                alice.tenant_id.clone(),
                "claude-unpriced".into(),
                7,
                3,
                0,
                1,
                1,
                0
            ),
            (
                bob.tenant_id.clone(),
                "gpt-4o-mini".into(),
                100,
                50,
                1_000,
                1,
                0,
                0
            ),
        ]
    );
    let day: String = totals[0].try_get("", "day").unwrap();
    assert_eq!(day, old.date_naive().to_string());

    // The report reads the totals as it read the records, and each tenant only its own.
    assert_eq!(spend(&app, &alice.access_token).await, alice_before);
    assert_eq!(spend(&app, &bob.access_token).await, bob_before);

    // Nothing is left to move.
    assert_eq!(roll_up_usage(&app.platform, 90).await.unwrap(), 0);
    app.shutdown().await;
}
