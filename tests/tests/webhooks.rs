//! Webhooks: signed deliveries that the official Standard Webhooks library verifies,
//! retries after errors, timeouts and 429 with `Retry-After`, endpoints disabled by 410,
//! failed messages redelivered with their id, refused addresses, and every event type.

use std::time::Duration;

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tests::{
    TestApp, TestOptions, error_code,
    webhook_receiver::{Reply, WebhookReceiver, verify_officially},
};

const WEBHOOK_FIELDS: &str = "id url events enabled disabledReason consecutiveFailures
    previousSecretExpiresAt";
const MESSAGES: &str = "query($id: ID!) { webhook(id: $id) { enabled disabledReason
    messages { id webhookMessageId eventType status attempts lastError payload
        deliveries { attempt statusCode succeeded error } } } }";

/// Starts an app whose webhooks may call the tests' own receivers, retrying after 1 s.
async fn app_with(env: &[(&str, &str)]) -> TestApp {
    let mut settings = vec![
        (
            "ALLOWED_PRIVATE_NETWORKS".to_owned(),
            "127.0.0.1/32".to_owned(),
        ),
        ("WEBHOOK_RETRY_SCHEDULE".to_owned(), "1,1,1".to_owned()),
        ("SWEEP_INTERVAL_SECONDS".to_owned(), "1".to_owned()),
    ];
    settings.extend(
        env.iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
    );
    TestApp::spawn_with(TestOptions {
        env: settings,
        ..TestOptions::default()
    })
    .await
    .unwrap()
}

/// Moves the tenant to the pro plan, which includes webhooks.
async fn include_webhooks(app: &TestApp, tenant_id: &str) {
    app.db
        .execute_unprepared(&format!(
            "UPDATE subscriptions SET plan = 'pro' WHERE tenant_id = '{tenant_id}'"
        ))
        .await
        .unwrap();
}

/// Creates a webhook for `events` and returns its id and secret.
async fn create_webhook(
    app: &TestApp,
    token: &str,
    url: &str,
    events: &[&str],
) -> (String, String) {
    let data = app
        .data(
            Some(token),
            &format!(
                "mutation($input: CreateWebhookInput!) {{ createWebhook(input: $input) {{
                    webhook {{ {WEBHOOK_FIELDS} }} secret }} }}"
            ),
            json!({ "input": { "url": url, "events": events, "description": "test" } }),
        )
        .await;
    let created = &data["createWebhook"];
    (
        created["webhook"]["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

async fn create_api_key(app: &TestApp, token: &str, name: &str) -> String {
    let data = app
        .data(
            Some(token),
            "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id } } }",
            json!({ "input": { "name": name, "scopes": ["READ"] } }),
        )
        .await;
    data["createApiKey"]["apiKey"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn messages(app: &TestApp, token: &str, webhook_id: &str) -> Value {
    app.data(Some(token), MESSAGES, json!({ "id": webhook_id }))
        .await["webhook"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_pass_the_official_verifier_also_during_rotation() {
    let app = app_with(&[]).await;
    let receiver = WebhookReceiver::start().await.unwrap();
    let owner = app.register("hooks@example.com", "Hooks").await;
    include_webhooks(&app, &owner.tenant_id).await;
    let token = owner.access_token.as_str();
    let (webhook_id, secret) =
        create_webhook(&app, token, &receiver.url(), &["API_KEY_CREATED"]).await;
    assert!(secret.starts_with("whsec_"));

    create_api_key(&app, token, "first").await;
    let first = receiver.wait_for(1, Duration::from_secs(15)).await;
    let verified = verify_officially(&secret, &first).await.unwrap();
    let payload = verified[0]
        .as_ref()
        .expect("the official library rejected it");
    assert_eq!(payload["type"], "api_key.created");
    assert_eq!(payload["data"]["name"], "first");
    assert!(first[0].header("webhook-id").starts_with("msg_"));
    assert_eq!(first[0].header("content-type"), "application/json");
    // A wrong secret fails verification.
    let wrong = verify_officially("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &first)
        .await
        .unwrap();
    assert!(wrong[0].is_err());

    // After a rotation both secrets verify the next delivery.
    let rotated = app
        .data(
            Some(token),
            "mutation($input: WebhookIdInput!) { rotateWebhookSecret(input: $input) {
                webhook { previousSecretExpiresAt } secret } }",
            json!({ "input": { "id": webhook_id } }),
        )
        .await;
    let new_secret = rotated["rotateWebhookSecret"]["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    assert!(rotated["rotateWebhookSecret"]["webhook"]["previousSecretExpiresAt"].is_string());
    create_api_key(&app, token, "second").await;
    let both = receiver.wait_for(2, Duration::from_secs(15)).await;
    let second = &both[1..];
    assert_eq!(second[0].header("webhook-signature").split(' ').count(), 2);
    for key in [secret.as_str(), new_secret] {
        let verified = verify_officially(key, second).await.unwrap();
        assert_eq!(verified[0].as_ref().unwrap()["data"]["name"], "second");
    }

    // The test event goes to the endpoint whatever it subscribed to.
    let tested = app
        .data(
            Some(token),
            "mutation($input: WebhookIdInput!) { testWebhook(input: $input) {
                message { eventType webhookMessageId } } }",
            json!({ "input": { "id": webhook_id } }),
        )
        .await;
    assert_eq!(
        tested["testWebhook"]["message"]["eventType"],
        "webhook.test"
    );
    let all = receiver.wait_for(3, Duration::from_secs(15)).await;
    assert_eq!(all[2].json()["type"], "webhook.test");
    assert_eq!(
        all[2].header("webhook-id"),
        tested["testWebhook"]["message"]["webhookMessageId"]
    );
    let stored = messages(&app, token, &webhook_id).await;
    assert_eq!(stored["messages"].as_array().unwrap().len(), 3);
    assert!(
        stored["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|message| message["status"] == "DELIVERED")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_keep_id_and_retry_after() {
    let app = app_with(&[("WEBHOOK_TIMEOUT_SECONDS", "1")]).await;
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.script([
        Reply::status(500),
        Reply {
            status: 429,
            retry_after: Some(3),
            delay: Duration::ZERO,
        },
        Reply {
            status: 200,
            retry_after: None,
            delay: Duration::from_secs(2),
        },
    ]);
    let owner = app.register("retries@example.com", "Retries").await;
    include_webhooks(&app, &owner.tenant_id).await;
    let token = owner.access_token.as_str();
    let (webhook_id, _) = create_webhook(&app, token, &receiver.url(), &["API_KEY_CREATED"]).await;
    create_api_key(&app, token, "retried").await;

    // 500, then 429 requesting 3 s, then a response after the 1 s timeout, then 200.
    let received = receiver.wait_for(4, Duration::from_secs(30)).await;
    assert_eq!(received.len(), 4);
    let ids: Vec<&str> = received.iter().map(|d| d.header("webhook-id")).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let after_429 = received[2].received_at - received[1].received_at;
    assert!(after_429 >= Duration::from_secs(3), "{after_429:?}");

    let stored = app
        .eventually(Duration::from_secs(10), || async {
            let stored = messages(&app, token, &webhook_id).await;
            (stored["messages"][0]["status"] == "DELIVERED").then_some(stored)
        })
        .await
        .unwrap();
    let message = &stored["messages"][0];
    assert_eq!(message["attempts"], 4);
    let attempts = message["deliveries"].as_array().unwrap();
    let codes: Vec<&Value> = attempts.iter().map(|a| &a["statusCode"]).collect();
    assert_eq!(codes, [&json!(500), &json!(429), &Value::Null, &json!(200)]);
    assert_eq!(attempts[2]["error"], "no answer within 1 s");
    assert_eq!(attempts[3]["succeeded"], true);

    // The worker counts the attempts by outcome.
    let metrics = app
        .http()
        .get(app.worker_metrics_url.clone().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for outcome in ["retrying", "delivered"] {
        let line = format!("task_assistant_webhook_attempts_total{{outcome=\"{outcome}\"}}");
        assert!(metrics.contains(&line), "no {line} in {metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_and_exhausted_messages_can_be_redelivered() {
    let app = app_with(&[]).await;
    let owner = app.register("gone@example.com", "Gone").await;
    include_webhooks(&app, &owner.tenant_id).await;
    let token = owner.access_token.as_str();

    // 410: the endpoint is disabled at once, and later events do not go to it.
    let gone = WebhookReceiver::start().await.unwrap();
    gone.always(410);
    let (gone_id, _) = create_webhook(&app, token, &gone.url(), &["API_KEY_CREATED"]).await;
    create_api_key(&app, token, "first").await;
    let stored = app
        .eventually(Duration::from_secs(15), || async {
            let stored = messages(&app, token, &gone_id).await;
            (stored["enabled"] == false).then_some(stored)
        })
        .await
        .unwrap();
    assert_eq!(stored["disabledReason"], "the endpoint answered 410 Gone");
    assert_eq!(stored["messages"][0]["status"], "FAILED");
    assert_eq!(stored["messages"][0]["attempts"], 1);

    // Failing every attempt: the message fails after the schedule and stays listed.
    let failing = WebhookReceiver::start().await.unwrap();
    failing.always(503);
    let (failing_id, _) = create_webhook(&app, token, &failing.url(), &["API_KEY_CREATED"]).await;
    create_api_key(&app, token, "second").await;
    let stored = app
        .eventually(Duration::from_secs(20), || async {
            let stored = messages(&app, token, &failing_id).await;
            (stored["messages"][0]["status"] == "FAILED").then_some(stored)
        })
        .await
        .unwrap();
    let message = &stored["messages"][0];
    assert_eq!(
        message["attempts"], 4,
        "the first attempt and three retries"
    );
    assert_eq!(
        message["lastError"],
        "the endpoint answered 503 Service Unavailable"
    );
    assert_eq!(
        gone.received().len(),
        1,
        "the disabled endpoint got nothing more"
    );

    // Redelivered once the receiver works: the same webhook-id again.
    failing.always(200);
    app.data(
        Some(token),
        "mutation($input: RedeliverWebhookMessageInput!) { redeliverWebhookMessage(input: $input) {
            message { status } } }",
        json!({ "input": { "messageId": message["id"] } }),
    )
    .await;
    let received = failing.wait_for(5, Duration::from_secs(15)).await;
    assert_eq!(
        received[4].header("webhook-id"),
        message["webhookMessageId"]
    );
    let stored = app
        .eventually(Duration::from_secs(10), || async {
            let stored = messages(&app, token, &failing_id).await;
            (stored["messages"][0]["status"] == "DELIVERED").then_some(stored)
        })
        .await
        .unwrap();
    assert_eq!(stored["messages"][0]["attempts"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_that_keep_failing_are_disabled() {
    let app = app_with(&[
        ("WEBHOOK_RETRY_SCHEDULE", "1"),
        ("WEBHOOK_DISABLE_AFTER", "2"),
    ])
    .await;
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.always(500);
    let owner = app.register("failing@example.com", "Failing").await;
    include_webhooks(&app, &owner.tenant_id).await;
    let token = owner.access_token.as_str();
    let (webhook_id, _) = create_webhook(&app, token, &receiver.url(), &["API_KEY_CREATED"]).await;
    create_api_key(&app, token, "one").await;
    create_api_key(&app, token, "two").await;
    let stored = app
        .eventually(Duration::from_secs(20), || async {
            let stored = messages(&app, token, &webhook_id).await;
            (stored["enabled"] == false).then_some(stored)
        })
        .await
        .unwrap();
    assert_eq!(
        stored["disabledReason"],
        "2 events in a row failed every delivery attempt"
    );

    // Enabled again by an admin, with its failures forgotten.
    let enabled = app
        .data(
            Some(token),
            &format!(
                "mutation($input: UpdateWebhookInput!) {{ updateWebhook(input: $input) {{
                    webhook {{ {WEBHOOK_FIELDS} }} }} }}"
            ),
            json!({ "input": { "id": webhook_id, "enabled": true } }),
        )
        .await;
    let webhook = &enabled["updateWebhook"]["webhook"];
    assert_eq!(webhook["enabled"], true);
    assert_eq!(webhook["consecutiveFailures"], 0);
    assert!(webhook["disabledReason"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_addresses_and_invalid_input_store_nothing() {
    // No allowed private network: loopback, private and metadata addresses are refused.
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("WEBHOOK_RETRY_SCHEDULE".into(), "1".into())],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let receiver = WebhookReceiver::start().await.unwrap();
    let owner = app.register("refused@example.com", "Refused").await;
    include_webhooks(&app, &owner.tenant_id).await;
    let owner_token = owner.access_token.as_str();
    let token = Some(owner_token);
    let create = "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) {
        webhook { id } } }";
    for (url, events, field) in [
        (receiver.url(), json!(["API_KEY_CREATED"]), "url"),
        (
            "http://10.1.2.3/hook".to_owned(),
            json!(["API_KEY_CREATED"]),
            "url",
        ),
        (
            "http://169.254.169.254/latest".to_owned(),
            json!(["API_KEY_CREATED"]),
            "url",
        ),
        (
            "http://[::ffff:127.0.0.1]/hook".to_owned(),
            json!(["API_KEY_CREATED"]),
            "url",
        ),
        (
            "http://100.64.0.1/hook".to_owned(),
            json!(["API_KEY_CREATED"]),
            "url",
        ),
        (
            "ftp://hooks.example.com/".to_owned(),
            json!(["API_KEY_CREATED"]),
            "url",
        ),
        (
            "https://user:pass@hooks.example.com/".to_owned(),
            json!(["API_KEY_CREATED"]),
            "url",
        ),
        ("https://hooks.example.com/".to_owned(), json!([]), "events"),
    ] {
        let body = app
            .graphql(
                token,
                create,
                json!({ "input": { "url": url, "events": events } }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{url}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["field"], field,
            "{url}: {body}"
        );
    }
    let listed = app.data(token, "{ webhooks { id } }", json!({})).await;
    assert_eq!(listed["webhooks"], json!([]));

    // A host name that resolves to loopback passes creation and is refused when sent to.
    let url = format!("http://localhost:{}/hook", receiver.addr.port());
    let (webhook_id, _) = create_webhook(&app, owner_token, &url, &["API_KEY_CREATED"]).await;
    create_api_key(&app, owner_token, "blocked").await;
    let stored = app
        .eventually(Duration::from_secs(15), || async {
            let stored = messages(&app, owner_token, &webhook_id).await;
            let attempts = stored["messages"][0]["deliveries"].as_array()?.len();
            (attempts > 0).then_some(stored)
        })
        .await
        .unwrap();
    let error = stored["messages"][0]["deliveries"][0]["error"]
        .as_str()
        .unwrap();
    assert!(error.contains("loopback"), "{error}");
    assert!(receiver.received().is_empty());

    // Members below admin may not manage webhooks.
    let member = app
        .add_member(owner_token, "hook-member@example.com", "MEMBER")
        .await;
    let body = app
        .graphql(Some(&member.access_token), "{ webhooks { id } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_type_is_delivered() {
    let app = app_with(&[]).await;
    let receiver = WebhookReceiver::start().await.unwrap();
    let chat = app.start_chat("events@example.com", "Be brief.").await;
    let token = chat.owner.access_token.clone();
    include_webhooks(&app, &chat.owner.tenant_id).await;
    let all = [
        "MESSAGE_COMPLETED",
        "AGENT_RUN_SUCCEEDED",
        "AGENT_RUN_FAILED",
        "USAGE_QUOTA_WARNING",
        "USAGE_QUOTA_REACHED",
        "PROVIDER_HEALTH_CHANGED",
        "MEMBER_ADDED",
        "MEMBER_REMOVED",
        "API_KEY_CREATED",
        "API_KEY_REVOKED",
    ];
    let (_, secret) = create_webhook(&app, &token, &receiver.url(), &all).await;

    let key_id = create_api_key(&app, &token, "k").await;
    app.data(
        Some(&token),
        "mutation($input: RevokeApiKeyInput!) { revokeApiKey(input: $input) { apiKey { id } } }",
        json!({ "input": { "id": key_id } }),
    )
    .await;
    let member = app
        .add_member(&token, "event-member@example.com", "MEMBER")
        .await;
    app.data(
        Some(&token),
        "mutation($input: RemoveMemberInput!) { removeMember(input: $input) { member { role } } }",
        json!({ "input": { "userId": member.user_id } }),
    )
    .await;
    let message_id = app.send_message(&token, &chat.conversation_id, "Hi").await;
    app.wait_for_reply(&token, &message_id).await;
    // Usage counted against a monthly quota of 10,000 tokens: 8,500 more tokens cross
    // 80%, then 2,000 more cross 100%. A reservation keeps replies themselves under the
    // quota, so the usage is recorded directly and counted as the worker counts it.
    app.db
        .execute_unprepared(&format!(
            "UPDATE subscriptions SET monthly_token_limit = 10000 WHERE tenant_id = '{}'",
            chat.owner.tenant_id
        ))
        .await
        .unwrap();
    let tenant_id: uuid::Uuid = chat.owner.tenant_id.parse().unwrap();
    for tokens in [8500, 2000] {
        app.db
            .execute_unprepared(&format!(
                "INSERT INTO usage_records (id, tenant_id, provider, model, input_tokens,
                    output_tokens, cached_input_tokens, cost_micros, price_known, estimated,
                    created_at)
                 VALUES ('{}', '{tenant_id}', 'openai', 'gpt-4o-mini', {tokens}, 0, 0, 0, true,
                    false, now())",
                uuid::Uuid::now_v7()
            ))
            .await
            .unwrap();
        service::usage::count_tenant(&app.platform, tenant_id)
            .await
            .unwrap();
    }
    service::provider_health::record_outcome(&app.platform, providers::ProviderKind::Groq, true)
        .await
        .unwrap();
    let run = app
        .data(
            Some(&token),
            "mutation($input: ExecuteAgentInput!) { executeAgent(input: $input) { agentRun { id } } }",
            json!({ "input": { "agentId": chat.agent_id, "prompt": "Go" } }),
        )
        .await;
    let run_id = run["executeAgent"]["agentRun"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let expected = [
        "api_key.created",
        "api_key.revoked",
        "member.added",
        "member.removed",
        "message.completed",
        "usage.quota_warning",
        "usage.quota_reached",
        "provider.health_changed",
        "agent_run.succeeded",
    ];
    let received = app
        .eventually(Duration::from_secs(30), || async {
            let types: Vec<String> = receiver
                .received()
                .iter()
                .map(|delivery| delivery.json()["type"].as_str().unwrap_or("").to_owned())
                .collect();
            expected
                .iter()
                .all(|kind| types.iter().any(|seen| seen == kind))
                .then(|| receiver.received())
        })
        .await
        .unwrap();
    let verified = verify_officially(&secret, &received).await.unwrap();
    let payloads: Vec<Value> = verified.into_iter().map(Result::unwrap).collect();
    let find = |kind: &str| payloads.iter().find(|p| p["type"] == kind).unwrap().clone();
    assert_eq!(
        find("message.completed")["data"]["messageId"],
        json!(message_id)
    );
    assert_eq!(find("message.completed")["data"]["status"], "completed");
    assert_eq!(
        find("agent_run.succeeded")["data"]["agentRunId"],
        json!(run_id)
    );
    assert_eq!(
        find("member.added")["data"]["email"],
        "event-member@example.com"
    );
    assert_eq!(
        find("member.removed")["data"]["userId"],
        json!(member.user_id)
    );
    assert_eq!(find("usage.quota_reached")["data"]["limit"], 10000);
    assert_eq!(find("usage.quota_warning")["data"]["percent"], 80);
    assert_eq!(find("provider.health_changed")["data"]["provider"], "groq");
    // The worker's probes at start may announce other providers too, each once.
    let ids: Vec<&str> = received.iter().map(|d| d.header("webhook-id")).collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "an event arrived twice: {ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_feature_and_refused_quota() {
    let app = app_with(&[]).await;
    let receiver = WebhookReceiver::start().await.unwrap();
    let chat = app.start_chat("plan-hooks@example.com", "Be brief.").await;
    let token = chat.owner.access_token.clone();

    // The free plan has no webhooks.
    let body = app
        .graphql(
            Some(&token),
            "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { secret } }",
            json!({ "input": { "url": receiver.url(), "events": ["USAGE_QUOTA_REACHED"] } }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("free plan")
    );

    // A monthly quota too small for a reply's reservation: the refusal is the quota
    // reached, announced once however often it refuses.
    include_webhooks(&app, &chat.owner.tenant_id).await;
    let (_, secret) = create_webhook(&app, &token, &receiver.url(), &["USAGE_QUOTA_REACHED"]).await;
    app.db
        .execute_unprepared(&format!(
            "UPDATE subscriptions SET monthly_token_limit = 50 WHERE tenant_id = '{}'",
            chat.owner.tenant_id
        ))
        .await
        .unwrap();
    for _ in 0..2 {
        let refused = app
            .graphql(
                Some(&token),
                "mutation($input: SendMessageInput!) { sendMessage(input: $input) {
                    assistantMessage { id } } }",
                json!({ "input": { "conversationId": chat.conversation_id, "content": "Hi" } }),
            )
            .await;
        assert_eq!(error_code(&refused), "QUOTA_EXCEEDED", "{refused}");
    }
    let received = receiver.wait_for(1, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received().len(), 1, "announced twice");
    let verified = verify_officially(&secret, &received).await.unwrap();
    let payload = verified[0].as_ref().unwrap();
    assert_eq!(payload["type"], "usage.quota_reached");
    assert_eq!(payload["data"]["quota"], "tokens_per_month");
    assert_eq!(payload["data"]["limit"], 50);
    assert_eq!(payload["data"]["percent"], 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_restarts_schedule() {
    let app = app_with(&[
        ("WEBHOOK_RETRY_SCHEDULE", "1"),
        ("WEBHOOK_DISABLE_AFTER", "2"),
    ])
    .await;
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.always(500);
    let owner = app.register("redeliver@example.com", "Redeliver").await;
    include_webhooks(&app, &owner.tenant_id).await;
    let token = owner.access_token.as_str();
    let (webhook_id, _) = create_webhook(&app, token, &receiver.url(), &["API_KEY_CREATED"]).await;
    create_api_key(&app, token, "once").await;
    let failed = app
        .eventually(Duration::from_secs(15), || async {
            let stored = messages(&app, token, &webhook_id).await;
            (stored["messages"][0]["status"] == "FAILED").then_some(stored)
        })
        .await
        .unwrap();
    let message_id = failed["messages"][0]["id"].clone();
    assert_eq!(failed["messages"][0]["attempts"], 2);

    // Redelivered into the same failing receiver: two more attempts, the event still
    // counts once, and the endpoint stays enabled.
    app.data(
        Some(token),
        "mutation($input: RedeliverWebhookMessageInput!) { redeliverWebhookMessage(input: $input) {
            message { status } } }",
        json!({ "input": { "messageId": message_id } }),
    )
    .await;
    let again = app
        .eventually(Duration::from_secs(15), || async {
            let stored = messages(&app, token, &webhook_id).await;
            let message = &stored["messages"][0];
            (message["status"] == "FAILED" && message["attempts"] == 4).then_some(stored)
        })
        .await
        .unwrap();
    assert_eq!(again["enabled"], true);
    assert_eq!(receiver.received().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downgraded_plan_stops_deliveries() {
    let app = app_with(&[]).await;
    let receiver = WebhookReceiver::start().await.unwrap();
    let owner = app.register("downgrade@example.com", "Downgrade").await;
    include_webhooks(&app, &owner.tenant_id).await;
    let (webhook_id, _) = create_webhook(
        &app,
        &owner.access_token,
        &receiver.url(),
        &["API_KEY_CREATED"],
    )
    .await;
    app.db
        .execute_unprepared(&format!(
            "UPDATE subscriptions SET plan = 'free' WHERE tenant_id = '{}'",
            owner.tenant_id
        ))
        .await
        .unwrap();

    create_api_key(&app, &owner.access_token, "after the downgrade").await;
    let reason = "webhooks are not part of the free plan";
    let webhook = app
        .eventually(Duration::from_secs(15), || async {
            let webhook = messages(&app, &owner.access_token, &webhook_id).await;
            (webhook["messages"][0]["status"] == "FAILED").then_some(webhook)
        })
        .await
        .unwrap();
    assert_eq!(webhook["enabled"], false, "{webhook}");
    assert_eq!(webhook["disabledReason"], reason);
    let message = &webhook["messages"][0];
    assert_eq!(message["lastError"], reason);
    assert_eq!(message["attempts"], 1);
    assert_eq!(message["deliveries"], json!([]));
    assert!(receiver.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_page_with_a_cursor() {
    let app = app_with(&[]).await;
    let receiver = WebhookReceiver::start().await.unwrap();
    let owner = app.register("pages@example.com", "Pages").await;
    include_webhooks(&app, &owner.tenant_id).await;
    let (webhook_id, _) = create_webhook(
        &app,
        &owner.access_token,
        &receiver.url(),
        &["API_KEY_CREATED"],
    )
    .await;
    let mut key_ids = Vec::new();
    for name in ["first", "second", "third"] {
        key_ids.push(create_api_key(&app, &owner.access_token, name).await);
    }

    let page = |after: Value| {
        app.graphql(
            Some(&owner.access_token),
            "query($id: ID!, $after: ID) { webhook(id: $id) {
                messages(first: 2, after: $after) { id payload } } }",
            json!({ "id": webhook_id, "after": after }),
        )
    };
    let key_of = |message: &Value| message["payload"]["data"]["apiKeyId"].clone();
    let first = page(Value::Null).await;
    let newest = first["data"]["webhook"]["messages"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(newest.len(), 2, "{first}");
    assert_eq!(key_of(&newest[0]), key_ids[2]);
    assert_eq!(key_of(&newest[1]), key_ids[1]);
    let second = page(newest[1]["id"].clone()).await;
    let older = second["data"]["webhook"]["messages"].as_array().unwrap();
    assert_eq!(older.len(), 1, "{second}");
    assert_eq!(key_of(&older[0]), key_ids[0]);

    let unknown = page(json!(webhook_id)).await;
    assert_eq!(error_code(&unknown), "BAD_USER_INPUT", "{unknown}");
    assert_eq!(unknown["errors"][0]["extensions"]["field"], "after");
}
