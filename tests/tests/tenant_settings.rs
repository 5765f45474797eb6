//! Tenant settings: default provider and model, allowed providers and models, and message
//! retention.

use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tests::{TestApp, error_code, error_message};

const UPDATE: &str = "mutation($input: UpdateTenantSettingsInput!) {
    updateTenantSettings(input: $input) { settings { defaultProvider defaultModel
        allowedProviders allowedModels messageRetentionDays } } }";
const CREATE_AGENT: &str = "mutation($input: CreateAgentInput!) { createAgent(input: $input) {
    agent { id } } }";

fn field(body: &Value) -> &str {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or("")
}

#[tokio::test]
async fn defaults_and_restrictions_apply() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("settings@example.com", "Settings").await;
    let token = Some(owner.access_token.as_str());

    // Allowed before the restriction: an agent on a model that will be disallowed.
    let early_agent = app.create_agent(&owner.access_token, "Early.").await;
    let early_conversation = app
        .create_conversation(&owner.access_token, &early_agent)
        .await;

    let updated = app
        .data(
            token,
            UPDATE,
            json!({ "input": { "defaultProvider": "OPENAI", "defaultModel": "gpt-4o",
                               "allowedProviders": ["OPENAI"],
                               "allowedModels": ["gpt-4o", "gpt-4o", "gpt-4.1"],
                               "messageRetentionDays": 30 } }),
        )
        .await;
    let settings = &updated["updateTenantSettings"]["settings"];
    assert_eq!(settings["defaultModel"], "gpt-4o");
    assert_eq!(settings["allowedModels"], json!(["gpt-4.1", "gpt-4o"]));
    assert_eq!(settings["messageRetentionDays"], 30);
    let logs = app
        .data(
            token,
            "{ auditLogs(filter: { action: \"tenant.settings_update\" }) {
                edges { node { targetId summary } } } }",
            json!({}),
        )
        .await;
    let rows = logs["auditLogs"]["edges"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{logs}");
    assert_eq!(rows[0]["node"]["targetId"], owner.tenant_id.as_str());
    assert_eq!(rows[0]["node"]["summary"]["messageRetentionDays"], 30);

    // A conversation without an agent takes the default provider and model.
    let created = app
        .data(
            token,
            "mutation { createConversation(input: { title: \"Plain\" }) {
                conversation { provider model } } }",
            json!({}),
        )
        .await;
    let conversation = &created["createConversation"]["conversation"];
    assert_eq!(conversation["provider"], "OPENAI");
    assert_eq!(conversation["model"], "gpt-4o");

    let other_provider = app
        .graphql(
            token,
            CREATE_AGENT,
            json!({ "input": { "name": "A", "instructions": "Hi.", "provider": "ANTHROPIC",
                               "model": "gpt-4o" } }),
        )
        .await;
    assert_eq!(field(&other_provider), "provider", "{other_provider}");
    let other_model = app
        .graphql(
            token,
            CREATE_AGENT,
            json!({ "input": { "name": "B", "instructions": "Hi.", "provider": "OPENAI",
                               "model": "gpt-4o-mini" } }),
        )
        .await;
    assert_eq!(field(&other_model), "model", "{other_model}");
    assert!(
        error_message(&other_model).contains("gpt-4o-mini"),
        "{other_model}"
    );
    let agents = app
        .data(token, "{ agents { edges { node { id } } } }", json!({}))
        .await;
    assert_eq!(agents["agents"]["edges"].as_array().unwrap().len(), 1);

    // The conversation made before the restriction can no longer send.
    let send = app
        .graphql(
            token,
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) {
                assistantMessage { id } } }",
            json!({ "input": { "conversationId": early_conversation, "content": "Hi" } }),
        )
        .await;
    assert_eq!(error_code(&send), "FORBIDDEN", "{send}");
    assert!(error_message(&send).contains("gpt-4o-mini"), "{send}");
    app.shutdown().await;
}

#[tokio::test]
async fn bad_settings_name_field() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("bad-settings@example.com", "Bad").await;
    let token = Some(owner.access_token.as_str());
    let cases = [
        (json!({ "messageRetentionDays": 0 }), "messageRetentionDays"),
        (
            json!({ "messageRetentionDays": 3651 }),
            "messageRetentionDays",
        ),
        (json!({ "defaultModel": "gpt-4o" }), "defaultProvider"),
        (json!({ "defaultProvider": "OPENAI" }), "defaultModel"),
        (
            json!({ "defaultProvider": "GROQ", "defaultModel": "llama",
                    "allowedProviders": ["OPENAI"] }),
            "defaultProvider",
        ),
        (json!({ "allowedModels": ["  "] }), "allowedModels"),
    ];
    for (input, expected) in cases {
        let body = app.graphql(token, UPDATE, json!({ "input": input })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(field(&body), expected, "{body}");
    }
    let stored = app
        .data(
            token,
            "{ tenantSettings { messageRetentionDays allowedModels } }",
            json!({}),
        )
        .await;
    assert_eq!(
        stored["tenantSettings"]["messageRetentionDays"],
        Value::Null
    );
    assert_eq!(stored["tenantSettings"]["allowedModels"], Value::Null);
    app.shutdown().await;
}

#[tokio::test]
async fn retention_deletes_old_messages_only() {
    let app = TestApp::spawn().await.unwrap();
    let keeping = app.start_chat("retain@example.com", "Hi.").await;
    let forever = app.start_chat("forever@example.com", "Hi.").await;
    for chat in [&keeping, &forever] {
        let id = app
            .send_message(&chat.owner.access_token, &chat.conversation_id, "Hello")
            .await;
        app.wait_for_reply(&chat.owner.access_token, &id).await;
    }
    app.data(
        Some(&keeping.owner.access_token),
        UPDATE,
        json!({ "input": { "messageRetentionDays": 7 } }),
    )
    .await;
    // Both tenants' messages are made ten days old; only one tenant keeps a week.
    app.db
        .execute_unprepared("UPDATE messages SET created_at = now() - interval '10 days'")
        .await
        .unwrap();
    let deleted = service::tenant_settings::delete_expired_messages(&app.platform)
        .await
        .unwrap();
    assert_eq!(deleted, 2);

    let count = |tenant_id: String| {
        let db = &app.db;
        async move {
            let row = db
                .query_one_raw(Statement::from_sql_and_values(
                    sea_orm::DatabaseBackend::Postgres,
                    "SELECT
                        (SELECT COUNT(*) FROM messages WHERE tenant_id = $1::uuid)::bigint AS messages,
                        (SELECT COUNT(*) FROM usage_records WHERE tenant_id = $1::uuid)::bigint AS usage",
                    [tenant_id.into()],
                ))
                .await
                .unwrap()
                .unwrap();
            (
                row.try_get::<i64>("", "messages").unwrap(),
                row.try_get::<i64>("", "usage").unwrap(),
            )
        }
    };
    assert_eq!(count(keeping.owner.tenant_id.clone()).await, (0, 1));
    assert_eq!(count(forever.owner.tenant_id.clone()).await, (2, 1));
    app.shutdown().await;
}
