//! Plan budgets: every reply reserves its largest usage before the provider call and
//! settles the real usage after, so concurrent replies never overshoot a budget.

use std::time::Duration;

use futures_util::future::join_all;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tests::{MockConfig, Session, TestApp, TestOptions, error_code, error_message};

const INSTRUCTIONS: &str = "Answer briefly.";
/// Output tokens the mock sends when the agent allows at least that many.
const REPLY_TOKENS: i64 = 12;

/// Sets one of the tenant's own plan limits, as a platform administrator would.
async fn set_limit(app: &TestApp, tenant_id: &str, column: &str, value: i64) {
    app.db
        .execute_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            format!("UPDATE subscriptions SET {column} = $1 WHERE tenant_id = $2::uuid"),
            [value.into(), tenant_id.into()],
        ))
        .await
        .unwrap();
}

/// Creates an agent whose replies are at most `max_tokens` long, and returns its id.
async fn agent_with_max_tokens(app: &TestApp, token: &str, max_tokens: i64) -> String {
    let data = app
        .data(
            Some(token),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { agent { id } } }",
            json!({ "input": { "name": "Budgeted", "instructions": INSTRUCTIONS,
                               "provider": "OPENAI", "model": "gpt-4o-mini",
                               "maxTokens": max_tokens } }),
        )
        .await;
    data["createAgent"]["agent"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn send(app: &TestApp, owner: &Session, conversation_id: &str, content: &str) -> Value {
    app.graphql(
        Some(&owner.access_token),
        "mutation($input: SendMessageInput!) { sendMessage(input: $input) {
            assistantMessage { id } } }",
        json!({ "input": { "conversationId": conversation_id, "content": content } }),
    )
    .await
}

/// Tokens the reservation of a first message takes: the prompt estimate (one token per
/// four characters of each message) and the agent's maximum output.
fn first_reservation(content: &str, max_tokens: i64) -> i64 {
    let chars = |text: &str| text.chars().count().div_ceil(4) as i64;
    chars(INSTRUCTIONS) + chars(content) + max_tokens
}

async fn message_count(app: &TestApp, conversation_id: &str) -> i64 {
    let row = app
        .db
        .query_one_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT COUNT(*)::bigint AS n FROM messages WHERE conversation_id = $1::uuid",
            [conversation_id.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

#[tokio::test]
async fn concurrent_replies_never_overshoot() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("budget@example.com", "Budget").await;
    let agent_id = agent_with_max_tokens(&app, &owner.access_token, REPLY_TOKENS).await;
    let content = "Hello";
    // Each reply reserves exactly what it uses, so the budget fits exactly `fits` replies.
    let reservation = first_reservation(content, REPLY_TOKENS);
    let fits = 7;
    set_limit(
        &app,
        &owner.tenant_id,
        "monthly_token_limit",
        reservation * fits + reservation / 2,
    )
    .await;

    let mut conversations = Vec::new();
    for _ in 0..20 {
        conversations.push(
            app.create_conversation(&owner.access_token, &agent_id)
                .await,
        );
    }
    let results = join_all(
        conversations
            .iter()
            .map(|conversation| send(&app, &owner, conversation, content)),
    )
    .await;
    let accepted: Vec<&Value> = results
        .iter()
        .filter(|body| body["errors"].is_null())
        .collect();
    let rejected: Vec<&Value> = results
        .iter()
        .filter(|body| !body["errors"].is_null())
        .collect();
    assert_eq!(accepted.len() as i64, fits, "{results:?}");
    for body in &rejected {
        assert_eq!(error_code(body), "QUOTA_EXCEEDED", "{body}");
        assert!(error_message(body).contains("free plan"), "{body}");
        assert!(error_message(body).contains("resets at"), "{body}");
    }

    for body in &accepted {
        let id = body["data"]["sendMessage"]["assistantMessage"]["id"]
            .as_str()
            .unwrap();
        let reply = app.wait_for_reply(&owner.access_token, id).await;
        assert_eq!(reply["status"], "COMPLETED", "{reply}");
    }
    let spend = app
        .data(
            Some(&owner.access_token),
            "{ spend { total { inputTokens outputTokens recordCount } } }",
            json!({}),
        )
        .await;
    let total = &spend["spend"]["total"];
    let used = total["inputTokens"].as_i64().unwrap() + total["outputTokens"].as_i64().unwrap();
    assert_eq!(used, reservation * fits);
    assert_eq!(total["recordCount"], fits);

    // A rejected request stored nothing.
    let mut empty = 0;
    for conversation in &conversations {
        if message_count(&app, conversation).await == 0 {
            empty += 1;
        }
    }
    assert_eq!(empty, 20 - fits);
    app.shutdown().await;
}

#[tokio::test]
async fn settled_usage_frees_the_reservation() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("settle@example.com", "Settle").await;
    // Replies may be 200 tokens long but the mock sends 12, so each settles far below its
    // reservation.
    let max_tokens = 200;
    let agent_id = agent_with_max_tokens(&app, &owner.access_token, max_tokens).await;
    let content = "Hi";
    let reservation = first_reservation(content, max_tokens);
    let used_per_reply = reservation - max_tokens + REPLY_TOKENS;
    // Room for three replies' used tokens and one reservation, less one token: the fourth
    // reservation fits only if the first three released their unused tokens, and a fifth
    // never fits.
    set_limit(
        &app,
        &owner.tenant_id,
        "monthly_token_limit",
        reservation + 3 * used_per_reply - 1,
    )
    .await;

    for round in 0..3 {
        let conversation = app
            .create_conversation(&owner.access_token, &agent_id)
            .await;
        let sent = send(&app, &owner, &conversation, content).await;
        assert!(sent["errors"].is_null(), "round {round}: {sent}");
        let id = sent["data"]["sendMessage"]["assistantMessage"]["id"]
            .as_str()
            .unwrap();
        let reply = app.wait_for_reply(&owner.access_token, id).await;
        assert_eq!(reply["outputTokens"], REPLY_TOKENS);
        // The reservation is settled right after the reply is stored.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let conversation = app
        .create_conversation(&owner.access_token, &agent_id)
        .await;
    let over = send(&app, &owner, &conversation, content).await;
    assert_eq!(error_code(&over), "QUOTA_EXCEEDED", "{over}");
    let used = 3 * used_per_reply;
    assert!(
        error_message(&over).contains(&format!("{used} are used or reserved")),
        "{over}"
    );
    app.shutdown().await;
}

/// Returns the reserved tokens of the period hash `period`.
async fn reserved_tokens(app: &TestApp, period: &str) -> i64 {
    let mut redis = app.platform.redis.shared().await.unwrap();
    redis::cmd("HGET")
        .arg(period)
        .arg("reserved_tokens")
        .query_async(&mut redis)
        .await
        .unwrap()
}

#[tokio::test]
async fn unsettled_reservations_expire() {
    // Replies take about two seconds, so the first is still running when it "dies".
    let app = TestApp::spawn_with(TestOptions {
        mock: MockConfig {
            tokens: 20,
            gap: Duration::from_millis(100),
            ..MockConfig::default()
        },
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let owner = app.register("expire@example.com", "Expire").await;
    let max_tokens = 200;
    let agent_id = agent_with_max_tokens(&app, &owner.access_token, max_tokens).await;
    let content = "Hi";
    let reservation = first_reservation(content, max_tokens);
    let first = app
        .create_conversation(&owner.access_token, &agent_id)
        .await;
    let sent = send(&app, &owner, &first, content).await;
    let id = sent["data"]["sendMessage"]["assistantMessage"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The reservation outlives its lifetime unsettled, as when the process holding it
    // died: its hash is gone and it is due in the period's expiring set.
    let mut redis = app.platform.redis.shared().await.unwrap();
    let period = app.platform.redis.key(&[
        "budget",
        &owner.tenant_id,
        "period",
        &chrono::Utc::now().format("%Y-%m").to_string(),
    ]);
    let expiring = format!("{period}:expiring");
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(&expiring)
        .arg(0)
        .arg(-1)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(members.len(), 1, "{members:?}");
    let member = members[0].clone();
    assert!(
        member.starts_with(&format!("{id}:{reservation}:")),
        "{member}"
    );
    let reservation_key = app
        .platform
        .redis
        .key(&["budget", &owner.tenant_id, "reservation", &id]);
    let () = redis::pipe()
        .del(&reservation_key)
        .zadd(&expiring, &member, 0)
        .query_async(&mut redis)
        .await
        .unwrap();
    app.wait_for_reply(&owner.access_token, &id).await;
    // Nothing settled it, so its tokens are still reserved.
    assert_eq!(reserved_tokens(&app, &period).await, reservation);

    // The next reservation gives them back, and holds only its own.
    let second = app
        .create_conversation(&owner.access_token, &agent_id)
        .await;
    let sent = send(&app, &owner, &second, content).await;
    assert!(sent["errors"].is_null(), "{sent}");
    let id = sent["data"]["sendMessage"]["assistantMessage"]["id"]
        .as_str()
        .unwrap();
    app.wait_for_reply(&owner.access_token, id).await;
    app.eventually(Duration::from_secs(5), || async {
        (reserved_tokens(&app, &period).await == 0).then_some(())
    })
    .await
    .unwrap();
    app.shutdown().await;
}

#[tokio::test]
async fn lost_budget_state_reseeded_from_records() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("reseed@example.com", "Reseed").await;
    let agent_id = agent_with_max_tokens(&app, &owner.access_token, REPLY_TOKENS).await;
    let content = "Hello";
    let reservation = first_reservation(content, REPLY_TOKENS);
    set_limit(
        &app,
        &owner.tenant_id,
        "monthly_token_limit",
        2 * reservation + reservation / 2,
    )
    .await;

    let conversation = app
        .create_conversation(&owner.access_token, &agent_id)
        .await;
    let sent = send(&app, &owner, &conversation, content).await;
    let id = sent["data"]["sendMessage"]["assistantMessage"]["id"]
        .as_str()
        .unwrap();
    app.wait_for_reply(&owner.access_token, id).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Redis loses the budget, as after a restart without persistence.
    let mut redis = app.platform.redis.shared().await.unwrap();
    let pattern = app
        .platform
        .redis
        .key(&["budget", &owner.tenant_id, "period", "*"]);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let _: i64 = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut redis)
        .await
        .unwrap();

    // The stored usage record still counts: one more reply fits, the next does not.
    let second = app
        .create_conversation(&owner.access_token, &agent_id)
        .await;
    let fits = send(&app, &owner, &second, content).await;
    assert!(fits["errors"].is_null(), "{fits}");
    let third = app
        .create_conversation(&owner.access_token, &agent_id)
        .await;
    let over = send(&app, &owner, &third, content).await;
    assert_eq!(error_code(&over), "QUOTA_EXCEEDED", "{over}");
    app.shutdown().await;
}

#[tokio::test]
async fn spend_limit_counts_cost() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("spend-limit@example.com", "SpendLimit").await;
    let agent_id = agent_with_max_tokens(&app, &owner.access_token, REPLY_TOKENS).await;
    // gpt-4o-mini costs 0.15 and 0.6 micro-dollars per input and output token, so a
    // reservation of a few dozen tokens costs under 20 micro-dollars; 1 is too little.
    set_limit(&app, &owner.tenant_id, "monthly_spend_limit_micros", 1).await;
    let conversation = app
        .create_conversation(&owner.access_token, &agent_id)
        .await;
    let over = send(&app, &owner, &conversation, "Hello").await;
    assert_eq!(error_code(&over), "QUOTA_EXCEEDED", "{over}");
    assert!(error_message(&over).contains("micro-dollars"), "{over}");
    assert_eq!(message_count(&app, &conversation).await, 0);
    app.shutdown().await;
}

#[tokio::test]
async fn unpriced_reply_counts_its_tokens() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app
        .register("unpriced-budget@example.com", "Unpriced")
        .await;
    // A model without a price reserves and settles a cost of zero; its tokens still count.
    let data = app
        .data(
            Some(&owner.access_token),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { agent { id } } }",
            json!({ "input": { "name": "Unpriced", "instructions": INSTRUCTIONS,
                               "provider": "OPENAI", "model": "gpt-unlisted",
                               "maxTokens": REPLY_TOKENS } }),
        )
        .await;
    let agent_id = data["createAgent"]["agent"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let content = "Hello";
    let reservation = first_reservation(content, REPLY_TOKENS);
    set_limit(
        &app,
        &owner.tenant_id,
        "monthly_token_limit",
        reservation + reservation / 2,
    )
    .await;

    let conversation = app
        .create_conversation(&owner.access_token, &agent_id)
        .await;
    let sent = send(&app, &owner, &conversation, content).await;
    let id = sent["data"]["sendMessage"]["assistantMessage"]["id"]
        .as_str()
        .unwrap();
    let reply = app.wait_for_reply(&owner.access_token, id).await;
    assert_eq!(reply["costMicros"], Value::Null, "{reply}");
    tokio::time::sleep(Duration::from_millis(100)).await;

    let second = app
        .create_conversation(&owner.access_token, &agent_id)
        .await;
    let over = send(&app, &owner, &second, content).await;
    assert_eq!(error_code(&over), "QUOTA_EXCEEDED", "{over}");
    assert!(
        error_message(&over).contains(&format!("{reservation} are used or reserved")),
        "{over}"
    );
    app.shutdown().await;
}
