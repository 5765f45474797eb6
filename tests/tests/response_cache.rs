//! Response cache: an identical request of the same tenant is served from Redis without a
//! provider call, streamed like a live reply and recorded with no cost. Any change of the
//! request, an expired entry or another tenant misses.

use std::time::Duration;

use mock_provider::{MockReply, MockToolCall, WireFormat};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tests::{Session, TestApp, TestOptions, error_code, graphql_ws::collect_subscription};

const QUESTION: &str = "What is the capital of France?";

const CREATE_AGENT: &str = "mutation($input: CreateAgentInput!) {
    createAgent(input: $input) { agent { id responseCacheTtlSeconds } } }";

const UPDATE_AGENT: &str = "mutation($input: UpdateAgentInput!) {
    updateAgent(input: $input) { agent { id responseCacheTtlSeconds } } }";

const STREAM: &str = "subscription($id: ID!) {
    messageStream(messageId: $id) { kind delta outcome { content status finishReason } } }";

const RECORDS: &str = "{ usageRecords(first: 100) { edges { node {
    messageId responseCache costMicros priceKnown inputTokens outputTokens } } } }";

const STATS: &str = "query($agentId: ID) { responseCacheStats(agentId: $agentId) {
    lookups hits hitRate byAgent { agentId lookups hits hitRate } } }";

async fn spawn() -> TestApp {
    TestApp::spawn_with(TestOptions {
        // Groq credentials of tenants point at the mock on loopback.
        env: vec![("ALLOWED_PRIVATE_NETWORKS".into(), "127.0.0.0/8".into())],
        ..TestOptions::default()
    })
    .await
    .unwrap()
}

/// Creates an OpenAI agent with `extra` merged into its input and returns its id.
async fn create_agent(app: &TestApp, owner: &Session, extra: Value) -> String {
    let mut input = json!({
        "name": "Cached", "instructions": "Answer briefly.",
        "provider": "OPENAI", "model": "gpt-4o-mini",
    });
    if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
        input.extend(extra.clone());
    }
    let data = app
        .data(
            Some(&owner.access_token),
            CREATE_AGENT,
            json!({ "input": input }),
        )
        .await;
    data["createAgent"]["agent"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn update_agent(app: &TestApp, owner: &Session, agent_id: &str, changes: Value) {
    let mut input = json!({ "id": agent_id });
    if let (Some(input), Some(changes)) = (input.as_object_mut(), changes.as_object()) {
        input.extend(changes.clone());
    }
    app.data(
        Some(&owner.access_token),
        UPDATE_AGENT,
        json!({ "input": input }),
    )
    .await;
}

/// Sends `content` with the `cache` flag in `conversation_id` and returns the finished reply.
async fn send(
    app: &TestApp,
    owner: &Session,
    conversation_id: &str,
    content: &str,
    cache: Option<bool>,
) -> Value {
    let data = app
        .data(
            Some(&owner.access_token),
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) {
                assistantMessage { id } } }",
            json!({ "input": {
                "conversationId": conversation_id, "content": content, "cache": cache } }),
        )
        .await;
    let message_id = data["sendMessage"]["assistantMessage"]["id"]
        .as_str()
        .unwrap();
    app.wait_for_reply(&owner.access_token, message_id).await
}

/// Asks `QUESTION` in a new conversation with the agent and returns the finished reply.
async fn ask(app: &TestApp, owner: &Session, agent_id: &str, cache: Option<bool>) -> Value {
    let conversation_id = app.create_conversation(&owner.access_token, agent_id).await;
    send(app, owner, &conversation_id, QUESTION, cache).await
}

/// Returns the tenant's usage record of the reply `message_id`; each reply here has one.
async fn record_of(app: &TestApp, owner: &Session, message_id: &Value) -> Value {
    let data = app
        .data(Some(&owner.access_token), RECORDS, json!({}))
        .await;
    let records: Vec<Value> = data["usageRecords"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"].clone())
        .filter(|node| node["messageId"] == *message_id)
        .collect();
    assert_eq!(records.len(), 1, "records of {message_id}: {records:?}");
    records[0].clone()
}

async fn stats(app: &TestApp, owner: &Session, agent_id: Option<&str>) -> Value {
    let data = app
        .data(
            Some(&owner.access_token),
            STATS,
            json!({ "agentId": agent_id }),
        )
        .await;
    data["responseCacheStats"].clone()
}

/// Returns the text deltas of a reply's stream and its final outcome.
async fn streamed(app: &TestApp, owner: &Session, message_id: &Value) -> (Vec<String>, Value) {
    let events = collect_subscription(
        &app.ws_url(),
        &owner.access_token,
        STREAM,
        json!({ "id": message_id }),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    let events: Vec<&Value> = events
        .iter()
        .map(|event| &event["data"]["messageStream"])
        .collect();
    let deltas = events
        .iter()
        .filter(|event| event["kind"] == "DELTA")
        .map(|event| event["delta"].as_str().unwrap().to_owned())
        .collect();
    let done = events.last().expect("a final event");
    assert_eq!(done["kind"], "DONE");
    (deltas, done["outcome"].clone())
}

#[tokio::test]
async fn identical_question_served_from_cache() {
    let app = spawn().await;
    let owner = app.register("cache@example.com", "Cache tenant").await;
    let agent_id = create_agent(&app, &owner, json!({ "responseCacheTtlSeconds": 600 })).await;

    let live = ask(&app, &owner, &agent_id, None).await;
    let cached = ask(&app, &owner, &agent_id, None).await;

    assert_eq!(
        app.mock.received().len(),
        1,
        "only the first reply calls the provider"
    );
    assert_eq!(live["status"], "COMPLETED");
    assert_eq!(cached["status"], "COMPLETED");
    assert_eq!(cached["content"], live["content"]);
    assert_eq!(cached["finishReason"], live["finishReason"]);
    assert_eq!(cached["inputTokens"], live["inputTokens"]);
    assert_eq!(cached["outputTokens"], live["outputTokens"]);
    assert_eq!(cached["costMicros"], 0);

    let (live_deltas, live_outcome) = streamed(&app, &owner, &live["id"]).await;
    let (cached_deltas, cached_outcome) = streamed(&app, &owner, &cached["id"]).await;
    assert!(cached_deltas.len() > 1, "a cached reply streams in pieces");
    assert_eq!(
        cached_deltas, live_deltas,
        "the same pieces as the live reply"
    );
    assert_eq!(cached_deltas.concat(), live["content"].as_str().unwrap());
    assert_eq!(cached_outcome, live_outcome);

    let miss = record_of(&app, &owner, &live["id"]).await;
    let hit = record_of(&app, &owner, &cached["id"]).await;
    assert_eq!(miss["responseCache"], "MISS");
    assert!(miss["costMicros"].as_i64().unwrap() > 0, "{miss}");
    assert_eq!(hit["responseCache"], "HIT");
    assert_eq!(hit["costMicros"], 0);
    assert_eq!(hit["priceKnown"], true);
    assert_eq!(hit["inputTokens"], miss["inputTokens"]);
    assert_eq!(hit["outputTokens"], miss["outputTokens"]);

    let tenant = stats(&app, &owner, None).await;
    assert_eq!(tenant["lookups"], 2);
    assert_eq!(tenant["hits"], 1);
    assert_eq!(tenant["hitRate"], 0.5);
    assert_eq!(tenant["byAgent"][0]["agentId"], agent_id.as_str());
    assert_eq!(tenant["byAgent"][0]["lookups"], 2);
    assert_eq!(tenant["byAgent"][0]["hits"], 1);
    let agent = stats(&app, &owner, Some(&agent_id)).await;
    assert_eq!(agent["lookups"], 2);
    assert_eq!(agent["hits"], 1);

    // The worker counts the hit's tokens in the totals, and apart for the quotas.
    let hit_tokens = hit["inputTokens"].as_i64().unwrap() + hit["outputTokens"].as_i64().unwrap();
    let usage = app
        .eventually(Duration::from_secs(20), || async {
            let data = app
                .data(
                    Some(&owner.access_token),
                    "{ usage { recordCount inputTokens outputTokens responseCacheHitTokens } }",
                    json!({}),
                )
                .await;
            (data["usage"]["recordCount"] == 2).then(|| data["usage"].clone())
        })
        .await
        .unwrap();
    assert_eq!(usage["responseCacheHitTokens"], hit_tokens);
    assert_eq!(
        usage["inputTokens"],
        2 * hit["inputTokens"].as_i64().unwrap()
    );
}

#[tokio::test]
async fn any_single_change_misses() {
    let app = spawn().await;
    let owner = app.register("changes@example.com", "Changes tenant").await;
    app.data(
        Some(&owner.access_token),
        "mutation($input: SetProviderCredentialInput!) {
            setProviderCredential(input: $input) { credential { provider } } }",
        json!({ "input": {
            "provider": "GROQ", "apiKey": "gsk-test",
            "baseUrl": app.mock.base_url_for(WireFormat::Groq) } }),
    )
    .await;
    let agent_id = create_agent(
        &app,
        &owner,
        json!({ "responseCacheTtlSeconds": 600, "temperature": 0.2, "maxTokens": 50 }),
    )
    .await;
    let first = ask(&app, &owner, &agent_id, None).await;
    assert_eq!(
        record_of(&app, &owner, &first["id"]).await["responseCache"],
        "MISS"
    );

    let changes = [
        ("temperature", json!({ "temperature": 0.3 })),
        ("maxTokens", json!({ "maxTokens": 51 })),
        ("model", json!({ "model": "gpt-4o" })),
        (
            "instructions",
            json!({ "instructions": "Answer in one word." }),
        ),
        ("tools", json!({ "tools": ["current_time"] })),
        ("provider", json!({ "provider": "GROQ" })),
    ];
    for (field, change) in changes {
        let calls_before = app.mock.received().len();
        update_agent(&app, &owner, &agent_id, change).await;
        let reply = ask(&app, &owner, &agent_id, None).await;
        assert_eq!(
            app.mock.received().len(),
            calls_before + 1,
            "a change of {field} reaches the provider"
        );
        let record = record_of(&app, &owner, &reply["id"]).await;
        assert_eq!(record["responseCache"], "MISS", "after a change of {field}");
    }

    // The same question again in a conversation that already has it in its history.
    let conversation_id = app
        .create_conversation(&owner.access_token, &agent_id)
        .await;
    send(&app, &owner, &conversation_id, QUESTION, None).await;
    let calls_before = app.mock.received().len();
    let follow_up = send(&app, &owner, &conversation_id, QUESTION, None).await;
    assert_eq!(
        app.mock.received().len(),
        calls_before + 1,
        "history changes the key"
    );
    let record = record_of(&app, &owner, &follow_up["id"]).await;
    assert_eq!(record["responseCache"], "MISS");

    // The unchanged request after the last change hits.
    let calls_before = app.mock.received().len();
    let repeated = ask(&app, &owner, &agent_id, None).await;
    assert_eq!(app.mock.received().len(), calls_before);
    assert_eq!(
        record_of(&app, &owner, &repeated["id"]).await["responseCache"],
        "HIT"
    );
}

#[tokio::test]
async fn request_flag_overrides_agent() {
    let app = spawn().await;
    let owner = app.register("flag@example.com", "Flag tenant").await;
    let cached_agent = create_agent(&app, &owner, json!({ "responseCacheTtlSeconds": 600 })).await;
    let plain_agent = create_agent(&app, &owner, json!({})).await;

    // `cache: false` neither looks up nor stores.
    for _ in 0..2 {
        let reply = ask(&app, &owner, &cached_agent, Some(false)).await;
        assert_eq!(
            record_of(&app, &owner, &reply["id"]).await["responseCache"],
            Value::Null
        );
    }
    assert_eq!(app.mock.received().len(), 2);

    // Without a time-to-live and without the flag, the agent makes no lookup.
    let reply = ask(&app, &owner, &plain_agent, None).await;
    assert_eq!(
        record_of(&app, &owner, &reply["id"]).await["responseCache"],
        Value::Null
    );
    assert_eq!(app.mock.received().len(), 3);

    // `cache: true` caches for an agent without a time-to-live.
    let stored = ask(&app, &owner, &plain_agent, Some(true)).await;
    let served = ask(&app, &owner, &plain_agent, Some(true)).await;
    assert_eq!(app.mock.received().len(), 4);
    assert_eq!(
        record_of(&app, &owner, &stored["id"]).await["responseCache"],
        "MISS"
    );
    assert_eq!(
        record_of(&app, &owner, &served["id"]).await["responseCache"],
        "HIT"
    );
    assert_eq!(served["content"], stored["content"]);

    // The platform's default time-to-live applies to that entry.
    let mut redis = app.platform.redis.shared().await.unwrap();
    let pattern = app
        .platform
        .redis
        .key(&["response-cache", &owner.tenant_id, "*"]);
    let keys: Vec<String> = redis::AsyncCommands::keys(&mut redis, &pattern)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let ttl: i64 = redis::AsyncCommands::ttl(&mut redis, &keys[0])
        .await
        .unwrap();
    assert!((3590..=3600).contains(&ttl), "ttl {ttl}");
}

#[tokio::test]
async fn expired_entry_misses() {
    let app = spawn().await;
    let owner = app.register("expiry@example.com", "Expiry tenant").await;
    let agent_id = create_agent(&app, &owner, json!({ "responseCacheTtlSeconds": 1 })).await;

    ask(&app, &owner, &agent_id, None).await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let after_expiry = ask(&app, &owner, &agent_id, None).await;

    assert_eq!(
        app.mock.received().len(),
        2,
        "the expired entry calls the provider again"
    );
    let record = record_of(&app, &owner, &after_expiry["id"]).await;
    assert_eq!(record["responseCache"], "MISS");
    let stats = stats(&app, &owner, None).await;
    assert_eq!(stats["lookups"], 2);
    assert_eq!(stats["hits"], 0);
    assert_eq!(stats["hitRate"], 0.0);
}

#[tokio::test]
async fn tenants_never_share_entries() {
    let app = spawn().await;
    let first = app.register("first@example.com", "First tenant").await;
    let second = app.register("second@example.com", "Second tenant").await;
    let ttl = json!({ "responseCacheTtlSeconds": 600 });
    let first_agent = create_agent(&app, &first, ttl.clone()).await;
    let second_agent = create_agent(&app, &second, ttl).await;

    let first_reply = ask(&app, &first, &first_agent, None).await;
    let second_reply = ask(&app, &second, &second_agent, None).await;

    assert_eq!(
        app.mock.received().len(),
        2,
        "both tenants reach the provider"
    );
    for (owner, reply) in [(&first, &first_reply), (&second, &second_reply)] {
        assert_eq!(
            record_of(&app, owner, &reply["id"]).await["responseCache"],
            "MISS"
        );
        let stats = stats(&app, owner, None).await;
        assert_eq!(stats["lookups"], 1);
        assert_eq!(stats["hits"], 0);
    }
    // Each tenant's second question hits its own entry only.
    ask(&app, &second, &second_agent, None).await;
    assert_eq!(app.mock.received().len(), 2);
    assert_eq!(stats(&app, &first, None).await["hits"], 0);
    assert_eq!(stats(&app, &second, None).await["hits"], 1);

    // Another tenant's agent id is not found.
    let body = app
        .graphql(
            Some(&first.access_token),
            STATS,
            json!({ "agentId": second_agent }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
}

#[tokio::test]
async fn reply_with_tool_calls_not_cached() {
    let app = spawn().await;
    let owner = app.register("tools@example.com", "Tools tenant").await;
    let agent_id = create_agent(
        &app,
        &owner,
        json!({ "responseCacheTtlSeconds": 600, "tools": ["current_time"] }),
    )
    .await;
    for _ in 0..2 {
        let call = MockToolCall {
            name: "current_time".into(),
            arguments: json!({}),
        };
        app.mock.reply_next(MockReply::ToolCalls(vec![call]));
        app.mock.reply_next(MockReply::Text("It is noon.".into()));
        let reply = ask(&app, &owner, &agent_id, None).await;
        assert_eq!(reply["content"], "It is noon.");
    }
    assert_eq!(
        app.mock.received().len(),
        4,
        "both replies ran their tool loop"
    );
    let stats = stats(&app, &owner, None).await;
    assert_eq!(
        stats["lookups"], 2,
        "one lookup per reply, not per model call"
    );
    assert_eq!(stats["hits"], 0);
}

#[tokio::test]
async fn hits_excluded_from_token_quota() {
    let app = spawn().await;
    let owner = app.register("quota@example.com", "Quota tenant").await;
    let agent_id = create_agent(
        &app,
        &owner,
        json!({ "responseCacheTtlSeconds": 600, "maxTokens": 12 }),
    )
    .await;
    let first = ask(&app, &owner, &agent_id, None).await;
    let used = first["inputTokens"].as_i64().unwrap() + first["outputTokens"].as_i64().unwrap();
    // Room for the used tokens and one more reservation of the same size, less than two.
    let limit = used * 2 + used / 2;
    app.db
        .execute_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "UPDATE subscriptions SET monthly_token_limit = $1 WHERE tenant_id = $2::uuid",
            [limit.into(), owner.tenant_id.as_str().into()],
        ))
        .await
        .unwrap();

    for _ in 0..4 {
        let hit = ask(&app, &owner, &agent_id, None).await;
        assert_eq!(hit["status"], "COMPLETED");
    }
    assert_eq!(app.mock.received().len(), 1);

    // Counted hits would have used up the quota by now; a live reply still fits.
    let conversation_id = app
        .create_conversation(&owner.access_token, &agent_id)
        .await;
    let live = send(
        &app,
        &owner,
        &conversation_id,
        "What is the capital of Spain?",
        None,
    )
    .await;
    assert_eq!(live["status"], "COMPLETED");
    assert_eq!(app.mock.received().len(), 2);

    // Past its monthly quota and with a single token a minute, the tenant still gets
    // replies from the cache, which take no tokens. A live reply is rejected.
    app.db
        .execute_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "UPDATE subscriptions SET monthly_token_limit = 1, tokens_per_minute = 1
             WHERE tenant_id = $1::uuid",
            [owner.tenant_id.as_str().into()],
        ))
        .await
        .unwrap();
    let hit = ask(&app, &owner, &agent_id, None).await;
    assert_eq!(hit["status"], "COMPLETED", "{hit}");
    assert_eq!(app.mock.received().len(), 2);
    let refused = app
        .graphql(
            Some(&owner.access_token),
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) {
                assistantMessage { id } } }",
            json!({ "input": { "conversationId": conversation_id, "content": "And Italy?" } }),
        )
        .await;
    assert_eq!(error_code(&refused), "QUOTA_EXCEEDED", "{refused}");
}

#[tokio::test]
async fn invalid_ttl_rejected() {
    let app = spawn().await;
    let owner = app.register("invalid@example.com", "Invalid tenant").await;
    for ttl in [0, -5, 2_592_001] {
        let body = app
            .graphql(
                Some(&owner.access_token),
                CREATE_AGENT,
                json!({ "input": {
                    "name": "Invalid", "instructions": "Answer briefly.",
                    "provider": "OPENAI", "model": "gpt-4o-mini",
                    "responseCacheTtlSeconds": ttl } }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "ttl {ttl}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["field"],
            "responseCacheTtlSeconds"
        );
    }
    let agents = app
        .data(
            Some(&owner.access_token),
            "{ agents { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(agents["agents"]["edges"], json!([]), "no agent was stored");

    let agent_id = create_agent(
        &app,
        &owner,
        json!({ "responseCacheTtlSeconds": 2_592_000 }),
    )
    .await;
    let body = app
        .graphql(
            Some(&owner.access_token),
            UPDATE_AGENT,
            json!({ "input": { "id": agent_id, "responseCacheTtlSeconds": 0 } }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(
        body["errors"][0]["extensions"]["field"],
        "responseCacheTtlSeconds"
    );
    let agent = app
        .data(
            Some(&owner.access_token),
            "query($id: ID!) { agent(id: $id) { responseCacheTtlSeconds } }",
            json!({ "id": agent_id }),
        )
        .await;
    assert_eq!(agent["agent"]["responseCacheTtlSeconds"], 2_592_000);

    // Null turns the cache off.
    update_agent(
        &app,
        &owner,
        &agent_id,
        json!({ "responseCacheTtlSeconds": null }),
    )
    .await;
    let agent = app
        .data(
            Some(&owner.access_token),
            "query($id: ID!) { agent(id: $id) { responseCacheTtlSeconds } }",
            json!({ "id": agent_id }),
        )
        .await;
    assert_eq!(agent["agent"]["responseCacheTtlSeconds"], Value::Null);
}
