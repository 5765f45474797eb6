//! Per-minute rate limits of chat requests and tokens, per tenant and per API key. Every
//! api instance shares them through Redis, and each enforces them on its own while Redis
//! is unreachable. They are reported in `x-ratelimit-*` headers, and a rejection has
//! RATE_LIMITED, `extensions.retryAfter` and `Retry-After`.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::header::HeaderMap;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tests::{
    MockConfig, Session, TestApp, TestOptions, error_code, error_message, tcp_proxy::TcpProxy,
};

const SEND: &str = "mutation($input: SendMessageInput!) { sendMessage(input: $input) {
    assistantMessage { id } } }";
const CREATE_KEY: &str = "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) {
    secret apiKey { id requestsPerMinute tokensPerMinute } } }";

/// A response with its status and headers.
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }

    fn admitted(&self) -> bool {
        self.body["errors"].is_null()
    }

    /// Checks that a per-minute limit refused the request.
    fn assert_rate_limited(&self) {
        assert_eq!(error_code(&self.body), "RATE_LIMITED", "{}", self.body);
    }

    fn retry_after(&self) -> u64 {
        self.body["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .unwrap_or_else(|| panic!("no retryAfter in {}", self.body))
    }
}

/// Sends a message to `conversation_id` through the api at `base_url` with `credential`,
/// an access token or an API key.
async fn send(app: &TestApp, base_url: &str, credential: &str, conversation_id: &str) -> Reply {
    let response = app
        .http()
        .post(format!("{base_url}/graphql"))
        .bearer_auth(credential)
        .json(&json!({ "query": SEND, "variables": {
            "input": { "conversationId": conversation_id, "content": "Hello" } } }))
        .send()
        .await
        .unwrap();
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.json().await.unwrap(),
    }
}

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

async fn count(app: &TestApp, sql: &str) -> i64 {
    let row = app
        .db
        .query_one_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            sql.to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

/// Creates `n` conversations with the agent, so that each message starts a reply of its own.
async fn conversations(app: &TestApp, owner: &Session, agent_id: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(app.create_conversation(&owner.access_token, agent_id).await);
    }
    ids
}

async fn create_key(app: &TestApp, owner: &Session, limits: Value) -> Value {
    let mut input = json!({ "name": "Limited", "scopes": ["WRITE"] });
    input
        .as_object_mut()
        .unwrap()
        .extend(limits.as_object().unwrap().clone());
    app.graphql(
        Some(&owner.access_token),
        CREATE_KEY,
        json!({ "input": input }),
    )
    .await
}

#[tokio::test]
async fn tenant_requests_limited_with_retry_after_and_headers() {
    let app = TestApp::spawn().await.unwrap();
    let chat = app.start_chat("rpm@example.com", "Be brief.").await;
    set_limit(&app, &chat.owner.tenant_id, "requests_per_minute", 3).await;
    let ids = conversations(&app, &chat.owner, &chat.agent_id, 4).await;
    let token = &chat.owner.access_token;

    for (sent, conversation) in ids[..3].iter().enumerate() {
        let reply = send(&app, &app.base_url, token, conversation).await;
        assert!(reply.admitted(), "{}", reply.body);
        assert_eq!(reply.header("x-ratelimit-limit-requests"), Some("3"));
        let remaining = (2 - sent).to_string();
        assert_eq!(
            reply.header("x-ratelimit-remaining-requests"),
            Some(remaining.as_str())
        );
        // The free plan's 100,000 tokens per minute apply too.
        assert_eq!(reply.header("x-ratelimit-limit-tokens"), Some("100000"));
        assert!(
            reply
                .header("x-ratelimit-reset-requests")
                .unwrap()
                .ends_with('s')
        );
    }

    let refused = send(&app, &app.base_url, token, &ids[3]).await;
    refused.assert_rate_limited();
    assert_eq!(
        error_message(&refused.body),
        format!(
            "this tenant's limit on the free plan allows 3 chat requests per minute; retry in {} s",
            refused.retry_after()
        )
    );
    // A minute's quota of 3 comes back one request every 20 s.
    let retry_after = refused.retry_after();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    assert_eq!(refused.status, 200);
    let header = retry_after.to_string();
    assert_eq!(refused.header("retry-after"), Some(header.as_str()));
    assert_eq!(refused.header("x-ratelimit-remaining-requests"), Some("0"));
    // The refused message left nothing behind.
    let stored = count(
        &app,
        &format!(
            "SELECT COUNT(*)::bigint AS n FROM messages WHERE conversation_id = '{}'",
            ids[3]
        ),
    )
    .await;
    assert_eq!(stored, 0);
    app.shutdown().await;
}

#[tokio::test]
async fn api_keys_limited_apart_from_their_tenant() {
    let app = TestApp::spawn().await.unwrap();
    let chat = app.start_chat("key-rpm@example.com", "Be brief.").await;
    let owner = &chat.owner;
    set_limit(&app, &owner.tenant_id, "api_key_requests_per_minute", 2).await;

    let plan = app
        .data(
            Some(&owner.access_token),
            "{ plan { limits { apiKeyRequestsPerMinute apiKeyTokensPerMinute } } }",
            Value::Null,
        )
        .await;
    assert_eq!(
        plan["plan"]["limits"],
        json!({ "apiKeyRequestsPerMinute": 2, "apiKeyTokensPerMinute": 50000 })
    );

    // Above the plan's limit for each key, and below 1: refused, nothing stored.
    let too_high = create_key(&app, owner, json!({ "requestsPerMinute": 3 })).await;
    assert_eq!(error_code(&too_high), "BAD_USER_INPUT", "{too_high}");
    assert_eq!(
        too_high["errors"][0]["extensions"]["field"],
        "requestsPerMinute"
    );
    assert!(
        error_message(&too_high).contains("at most 2, the free plan's limit for each API key"),
        "{too_high}"
    );
    let zero = create_key(&app, owner, json!({ "tokensPerMinute": 0 })).await;
    assert_eq!(zero["errors"][0]["extensions"]["field"], "tokensPerMinute");
    assert_eq!(
        count(&app, "SELECT COUNT(*)::bigint AS n FROM api_keys").await,
        0
    );

    let own = create_key(&app, owner, json!({ "requestsPerMinute": 1 })).await;
    assert_eq!(
        own["data"]["createApiKey"]["apiKey"]["requestsPerMinute"], 1,
        "{own}"
    );
    let own = own["data"]["createApiKey"]["secret"].as_str().unwrap();
    let plain = create_key(&app, owner, json!({})).await;
    let plain = plain["data"]["createApiKey"]["secret"].as_str().unwrap();

    let ids = conversations(&app, owner, &chat.agent_id, 6).await;
    // The key with a limit of its own gets 1 request, the other the plan's 2.
    assert!(send(&app, &app.base_url, own, &ids[0]).await.admitted());
    let refused = send(&app, &app.base_url, own, &ids[1]).await;
    refused.assert_rate_limited();
    assert!(
        error_message(&refused.body).starts_with("this API key allows 1 chat request per minute"),
        "{}",
        refused.body
    );
    assert_eq!(refused.header("x-ratelimit-limit-requests"), Some("1"));
    assert!(send(&app, &app.base_url, plain, &ids[1]).await.admitted());
    let admitted = send(&app, &app.base_url, plain, &ids[2]).await;
    assert!(admitted.admitted(), "{}", admitted.body);
    // The tighter of the key's and the tenant's limits is reported.
    assert_eq!(admitted.header("x-ratelimit-limit-requests"), Some("2"));
    assert_eq!(admitted.header("x-ratelimit-remaining-requests"), Some("0"));
    let refused = send(&app, &app.base_url, plain, &ids[3]).await;
    refused.assert_rate_limited();
    // The tenant's own limit of 60 still has room for its members' sessions.
    assert!(
        send(&app, &app.base_url, &owner.access_token, &ids[4])
            .await
            .admitted()
    );
    app.shutdown().await;
}

#[tokio::test]
async fn unused_tokens_return_to_the_minute_limit() {
    let app = TestApp::spawn_with(TestOptions {
        mock: MockConfig {
            tokens: 12,
            gap: Duration::from_millis(100),
            ..MockConfig::default()
        },
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let owner = app.register("tpm@example.com", "Tpm").await;
    let agent = app
        .data(
            Some(&owner.access_token),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { agent { id } } }",
            json!({ "input": { "name": "Short", "instructions": "Be brief.",
                               "provider": "OPENAI", "model": "gpt-4o-mini",
                               "maxTokens": 200 } }),
        )
        .await;
    let agent_id = agent["createAgent"]["agent"]["id"].as_str().unwrap();
    // A reply reserves about 205 tokens (its prompt and its 200 output tokens) and uses
    // about 20, so a second one fits only once the first has given the rest back.
    set_limit(&app, &owner.tenant_id, "tokens_per_minute", 300).await;
    let ids = conversations(&app, &owner, agent_id, 3).await;
    let token = &owner.access_token;

    let first = send(&app, &app.base_url, token, &ids[0]).await;
    assert!(first.admitted(), "{}", first.body);
    let remaining: i64 = first
        .header("x-ratelimit-remaining-tokens")
        .unwrap()
        .parse()
        .unwrap();
    assert!((90..=100).contains(&remaining), "{remaining}");
    let refused = send(&app, &app.base_url, token, &ids[1]).await;
    refused.assert_rate_limited();
    assert!(
        error_message(&refused.body)
            .starts_with("this tenant's limit on the free plan allows 300 tokens per minute"),
        "{}",
        refused.body
    );

    let message_id = first.body["data"]["sendMessage"]["assistantMessage"]["id"]
        .as_str()
        .unwrap();
    let reply = app.wait_for_reply(token, message_id).await;
    assert_eq!(reply["status"], "COMPLETED", "{reply}");
    let second = send(&app, &app.base_url, token, &ids[1]).await;
    assert!(second.admitted(), "{}", second.body);

    // A reply that may need more tokens than a whole minute allows never fits.
    set_limit(&app, &owner.tenant_id, "tokens_per_minute", 150).await;
    let never = send(&app, &app.base_url, token, &ids[2]).await;
    assert_eq!(error_code(&never.body), "QUOTA_EXCEEDED", "{}", never.body);
    assert!(
        error_message(&never.body)
            .contains("this tenant's limit on the free plan allows 150 tokens per minute"),
        "{}",
        never.body
    );
    app.shutdown().await;
}

#[tokio::test]
async fn default_reservation_fits_token_limit() {
    let app = TestApp::spawn().await.unwrap();
    // The agent sets no maxTokens, so a reply would reserve 4,096 output tokens.
    let chat = app.start_chat("small-tpm@example.com", "Be brief.").await;
    set_limit(&app, &chat.owner.tenant_id, "tokens_per_minute", 3_000).await;

    let reply = send(
        &app,
        &app.base_url,
        &chat.owner.access_token,
        &chat.conversation_id,
    )
    .await;
    assert!(reply.admitted(), "{}", reply.body);
    // The reservation took what the minute had room for.
    assert_eq!(reply.header("x-ratelimit-limit-tokens"), Some("3000"));
    assert_eq!(reply.header("x-ratelimit-remaining-tokens"), Some("0"));
    app.shutdown().await;
}

/// Starts a run of the agent with `credential` and returns its id.
async fn execute(app: &TestApp, credential: &str, agent_id: &str) -> String {
    let data = app
        .data(
            Some(credential),
            "mutation($input: ExecuteAgentInput!) { executeAgent(input: $input) {
                agentRun { id } } }",
            json!({ "input": { "agentId": agent_id, "prompt": "Plan my day." } }),
        )
        .await;
    data["executeAgent"]["agentRun"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Polls the run until it has ended and returns its status and error.
async fn ended(app: &TestApp, token: &str, run_id: &str) -> Value {
    app.eventually(Duration::from_secs(30), || async {
        let data = app
            .data(
                Some(token),
                "query($id: ID!) { agentRun(id: $id) { status error } }",
                json!({ "id": run_id }),
            )
            .await;
        let run = data["agentRun"].clone();
        (!matches!(run["status"].as_str(), Some("QUEUED" | "RUNNING"))).then_some(run)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn runs_started_with_a_key_count_against_it() {
    let app = TestApp::spawn().await.unwrap();
    let chat = app.start_chat("key-runs@example.com", "Be brief.").await;
    let owner = &chat.owner;
    app.data(
        Some(&owner.access_token),
        "mutation($input: UpdateAgentInput!) { updateAgent(input: $input) { agent { id } } }",
        json!({ "input": { "id": chat.agent_id, "runTimeoutSeconds": 5 } }),
    )
    .await;
    let key = create_key(&app, owner, json!({ "requestsPerMinute": 1 })).await;
    let key = key["data"]["createApiKey"]["secret"].as_str().unwrap();
    assert!(
        send(&app, &app.base_url, key, &chat.conversation_id)
            .await
            .admitted()
    );

    let by_key = execute(&app, key, &chat.agent_id).await;
    let by_owner = execute(&app, &owner.access_token, &chat.agent_id).await;
    // The key's one request of the minute is spent. The run cannot wait a minute within
    // its 5 s, so it fails, while the same run started by the member succeeds.
    let by_key = ended(&app, &owner.access_token, &by_key).await;
    assert_eq!(by_key["status"], "FAILED", "{by_key}");
    assert!(
        by_key["error"]
            .as_str()
            .unwrap()
            .starts_with("this API key allows 1 chat request per minute"),
        "{by_key}"
    );
    let by_owner = ended(&app, &owner.access_token, &by_owner).await;
    assert_eq!(by_owner["status"], "SUCCEEDED", "{by_owner}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_api_instances_share_one_limit() {
    let app = TestApp::spawn().await.unwrap();
    let second_api = app.start_second_api().await.unwrap();
    let chat = app.start_chat("shared-rpm@example.com", "Be brief.").await;
    set_limit(&app, &chat.owner.tenant_id, "requests_per_minute", 5).await;
    let ids = conversations(&app, &chat.owner, &chat.agent_id, 12).await;

    let token = &chat.owner.access_token;
    let replies = join_all(ids.iter().enumerate().map(|(index, conversation)| {
        let base_url = if index % 2 == 0 {
            app.base_url.as_str()
        } else {
            second_api.as_str()
        };
        send(&app, base_url, token, conversation)
    }))
    .await;
    let admitted = replies.iter().filter(|reply| reply.admitted()).count();
    assert_eq!(admitted, 5);
    for reply in replies.iter().filter(|reply| !reply.admitted()) {
        reply.assert_rate_limited();
    }
    let stored = count(
        &app,
        &format!(
            "SELECT COUNT(*)::bigint AS n FROM messages m JOIN conversations c
               ON c.id = m.conversation_id WHERE c.tenant_id = '{}'",
            chat.owner.tenant_id
        ),
    )
    .await;
    // Each admitted request stored a question and its reply. The first conversation of
    // `start_chat` has no messages.
    assert_eq!(stored, 10);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_limits_while_redis_down() {
    let (proxy, redis_url) = TcpProxy::for_redis().await.unwrap();
    let app = TestApp::spawn_with(TestOptions {
        // Replies take about a second, so one is still running when Redis goes away.
        mock: MockConfig {
            tokens: 10,
            gap: Duration::from_millis(100),
            ..MockConfig::default()
        },
        env: vec![("REDIS_URL".into(), redis_url)],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let chat = app.start_chat("local-rpm@example.com", "Be brief.").await;
    let tenant_id = &chat.owner.tenant_id;
    set_limit(&app, tenant_id, "requests_per_minute", 2).await;
    let ids = conversations(&app, &chat.owner, &chat.agent_id, 7).await;
    let token = &chat.owner.access_token;

    // One request through Redis, still replying when Redis becomes unreachable.
    let before = send(&app, &app.base_url, token, &ids[0]).await;
    assert_eq!(before.header("x-ratelimit-remaining-requests"), Some("1"));
    proxy.cut();

    // This instance now admits the whole limit on its own, without rate-limit headers.
    let mut replies = vec![before];
    for conversation in &ids[1..3] {
        let reply = send(&app, &app.base_url, token, conversation).await;
        assert!(reply.admitted(), "{}", reply.body);
        assert_eq!(reply.header("x-ratelimit-remaining-requests"), None);
        replies.push(reply);
    }
    let refused = send(&app, &app.base_url, token, &ids[3]).await;
    refused.assert_rate_limited();
    let retry_after = refused.retry_after();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    assert_eq!(
        refused.header("retry-after"),
        Some(retry_after.to_string().as_str())
    );
    assert!(
        metrics(&app)
            .await
            .contains("task_assistant_rate_limits_local 1")
    );
    for reply in &replies {
        let id = reply.body["data"]["sendMessage"]["assistantMessage"]["id"]
            .as_str()
            .unwrap();
        let message = app.wait_for_reply(token, id).await;
        assert_eq!(message["status"], "COMPLETED", "{message}");
    }

    // With Redis back, the shared limit applies again: it counted the one request made
    // through it, not those this instance admitted alone.
    proxy.restore();
    let back = app
        .eventually(Duration::from_secs(10), || async {
            let reply = send(&app, &app.base_url, token, &ids[4]).await;
            let shared = reply.admitted() && reply.header("x-ratelimit-limit-requests").is_some();
            shared.then_some(reply)
        })
        .await
        .unwrap();
    assert_eq!(back.header("x-ratelimit-remaining-requests"), Some("0"));
    let refused = send(&app, &app.base_url, token, &ids[5]).await;
    refused.assert_rate_limited();
    assert!(
        metrics(&app)
            .await
            .contains("task_assistant_rate_limits_local 0")
    );
    let id = back.body["data"]["sendMessage"]["assistantMessage"]["id"]
        .as_str()
        .unwrap();
    app.wait_for_reply(token, id).await;

    // The month's budget in Redis contains every reply's usage and no leftover reservation:
    // the reply whose settlement failed during the outage was settled once Redis
    // answered, and the replies admitted without Redis added their usage.
    let recorded = count(
        &app,
        &format!(
            "SELECT SUM(input_tokens + output_tokens)::bigint AS n FROM usage_records
             WHERE tenant_id = '{tenant_id}'"
        ),
    )
    .await;
    assert!(recorded > 0);
    let period = app.platform.redis.key(&[
        "budget",
        tenant_id,
        "period",
        &chrono::Utc::now().format("%Y-%m").to_string(),
    ]);
    let budget = app
        .eventually(Duration::from_secs(15), || async {
            let mut redis = app.platform.redis.shared().await.ok()?;
            let (used, reserved): (i64, i64) = redis::cmd("HMGET")
                .arg(&period)
                .arg("used_tokens")
                .arg("reserved_tokens")
                .query_async(&mut redis)
                .await
                .ok()?;
            (used == recorded && reserved == 0).then_some((used, reserved))
        })
        .await;
    assert!(
        budget.is_ok(),
        "budget in Redis never matched {recorded} recorded tokens"
    );
    app.shutdown().await;
}

async fn metrics(app: &TestApp) -> String {
    app.http()
        .get(format!("{}/metrics", app.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
