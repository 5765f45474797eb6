//! A reply left streaming by a process that died is closed as interrupted, with its text
//! recovered from the reply's stream and its usage estimated.

use std::time::Duration;

use redis::AsyncCommands;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use service::chat::{events::stream_key, recovery::close_abandoned};
use tests::TestApp;
use uuid::Uuid;

/// Inserts an assistant message in state streaming, created two minutes ago.
async fn abandoned_reply(app: &TestApp, tenant_id: Uuid, conversation_id: Uuid) -> Uuid {
    let id = Uuid::now_v7();
    app.db
        .execute_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "INSERT INTO messages (id, tenant_id, conversation_id, role, content, status,
                usage_estimated, created_at)
             VALUES ($1, $2, $3, 'assistant', '', 'streaming', false,
                now() - interval '2 minutes')",
            [id.into(), tenant_id.into(), conversation_id.into()],
        ))
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn abandoned_reply_closed_as_interrupted() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("crash@example.com", "Crash Org").await;
    let agent_id = app.create_agent(&owner.access_token, "Recover.").await;
    let conversation_id: Uuid = app
        .create_conversation(&owner.access_token, &agent_id)
        .await
        .parse()
        .unwrap();
    let tenant_id: Uuid = owner.tenant_id.parse().unwrap();

    let dead = abandoned_reply(&app, tenant_id, conversation_id).await;
    let mut redis = app.platform.redis.shared().await.unwrap();
    let key = stream_key(&app.platform.redis, dead);
    for text in ["Half ", "an ", "answer"] {
        let _: String = redis
            .xadd(&key, "*", &[("kind", "delta"), ("text", text)])
            .await
            .unwrap();
    }
    // A second reply whose generation still renews its liveness key stays untouched.
    let living = abandoned_reply(&app, tenant_id, conversation_id).await;
    let alive_key = app
        .platform
        .redis
        .key(&["generation-alive", &living.to_string()]);
    let _: () = redis.set_ex(&alive_key, 1, 30).await.unwrap();

    let closed = close_abandoned(&app.platform, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(closed, 1);

    let token = Some(owner.access_token.as_str());
    let query = "query($id: ID!) { message(id: $id) { status finishReason content error
        outputTokens usageEstimated } }";
    let dead_message = app.data(token, query, json!({ "id": dead })).await;
    let message = &dead_message["message"];
    assert_eq!(message["status"], "INTERRUPTED");
    assert_eq!(message["finishReason"], "ERROR");
    assert_eq!(message["content"], "Half an answer");
    assert_eq!(message["usageEstimated"], true);
    assert_eq!(message["outputTokens"], 4);
    assert_eq!(
        message["error"],
        "generation was interrupted before it finished"
    );
    let living_message = app.data(token, query, json!({ "id": living })).await;
    assert_eq!(living_message["message"]["status"], "STREAMING");

    let records = app
        .data(
            token,
            "{ usageRecords { edges { node { messageId estimated } } } }",
            json!({}),
        )
        .await;
    let edges = records["usageRecords"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1);
    assert_eq!(edges[0]["node"]["messageId"], dead.to_string());
    assert_eq!(edges[0]["node"]["estimated"], true);

    // Closing again changes nothing and bills nothing twice.
    let _: () = redis.del(&alive_key).await.unwrap();
    let second = close_abandoned(&app.platform, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(second, 1, "only the reply whose liveness key is gone now");
    let records = app
        .data(
            token,
            "{ usageRecords { edges { node { messageId } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        records["usageRecords"]["edges"].as_array().unwrap().len(),
        2
    );
    app.shutdown().await;
}

/// Stores a usage record for the first model call of `message_id`, as a reply that went on
/// to call tools does.
async fn billed_first_call(app: &TestApp, tenant_id: Uuid, message_id: Uuid) {
    app.db
        .execute_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "INSERT INTO usage_records (id, tenant_id, message_id, provider, model,
                input_tokens, output_tokens, cached_input_tokens, cost_micros, price_known,
                estimated, created_at)
             VALUES ($1, $2, $3, 'openai', 'gpt-4o-mini', 18, 1, 0, 3, true, false, now())",
            [Uuid::now_v7().into(), tenant_id.into(), message_id.into()],
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn reply_cut_during_tools_billed_once() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("cut-tools@example.com", "Cut tools").await;
    let agent_id = app.create_agent(&owner.access_token, "Recover.").await;
    let conversation_id: Uuid = app
        .create_conversation(&owner.access_token, &agent_id)
        .await
        .parse()
        .unwrap();
    let tenant_id: Uuid = owner.tenant_id.parse().unwrap();
    let mut redis = app.platform.redis.shared().await.unwrap();

    // Died while its tool ran: no model call was in flight.
    let in_tool = abandoned_reply(&app, tenant_id, conversation_id).await;
    billed_first_call(&app, tenant_id, in_tool).await;
    app.db
        .execute_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "INSERT INTO tool_executions (id, tenant_id, message_id, step, call_id, tool_name,
                arguments, status, started_at)
             VALUES ($1, $2, $3, 1, 'call_0', 'slow', '{}', 'started', now())",
            [Uuid::now_v7().into(), tenant_id.into(), in_tool.into()],
        ))
        .await
        .unwrap();
    let key = stream_key(&app.platform.redis, in_tool);
    let _: String = redis
        .xadd(&key, "*", &[("kind", "delta"), ("text", "Checking.")])
        .await
        .unwrap();
    let _: String = redis
        .xadd(&key, "*", &[("kind", "tool_call"), ("data", "{}")])
        .await
        .unwrap();

    // Died in the model call after the tool: that call's output is estimated.
    let after_tool = abandoned_reply(&app, tenant_id, conversation_id).await;
    billed_first_call(&app, tenant_id, after_tool).await;
    let key = stream_key(&app.platform.redis, after_tool);
    for (kind, field, value) in [
        ("tool_call", "data", "{}"),
        ("tool_result", "data", "{}"),
        ("delta", "text", "It is"),
    ] {
        let _: String = redis
            .xadd(&key, "*", &[("kind", kind), (field, value)])
            .await
            .unwrap();
    }

    let closed = close_abandoned(&app.platform, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(closed, 2);

    let token = Some(owner.access_token.as_str());
    let query = "query($id: ID!) { message(id: $id) { status content inputTokens outputTokens
        costMicros toolExecutions { status } } }";
    let message = app.data(token, query, json!({ "id": in_tool })).await;
    let message = &message["message"];
    assert_eq!(message["status"], "INTERRUPTED");
    assert_eq!(message["content"], "Checking.");
    assert_eq!(message["inputTokens"], 18);
    assert_eq!(message["outputTokens"], 1);
    assert_eq!(message["costMicros"], 3);
    assert_eq!(message["toolExecutions"], json!([{ "status": "UNKNOWN" }]));

    let message = app.data(token, query, json!({ "id": after_tool })).await;
    let message = &message["message"];
    assert_eq!(message["content"], "It is");
    // "It is" is 5 characters, estimated as 2 tokens on top of the billed call's 1.
    assert_eq!(message["outputTokens"], 3);

    let records = app
        .data(
            token,
            "{ usageRecords { edges { node { messageId estimated } } } }",
            json!({}),
        )
        .await;
    let estimated: Vec<&str> = records["usageRecords"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|edge| edge["node"]["estimated"] == true)
        .map(|edge| edge["node"]["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(estimated, [after_tool.to_string()]);
    app.shutdown().await;
}
