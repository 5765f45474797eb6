//! `/metrics` of the api and the worker: GraphQL operations, provider calls, connections,
//! limits, caches and jobs, read back in the Prometheus text format.
//!
//! The recorder is process-wide, so the tests compare values before and after their own
//! actions, or use operation names of their own.

use std::time::Duration;

use mock_provider::reply_tokens;
use serde_json::{Value, json};
use tests::{
    MockConfig, TestApp, TestOptions,
    graphql_ws::{Connection, Received},
};

const MOCK_MODEL: &str = "gpt-4o-mini";

/// Returns the sum of the series `name` whose labels include every pair of `labels`, or
/// `None` when no series matches.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, series_labels) = match series.split_once('{') {
            Some((series_name, rest)) => (series_name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if series_name != name {
            continue;
        }
        let matches = labels
            .iter()
            .all(|(key, wanted)| series_labels.contains(&format!("{key}=\"{wanted}\"")));
        if matches {
            *found.get_or_insert(0.0) += value.parse::<f64>().expect("numeric sample");
        }
    }
    found
}

async fn scrape(app: &TestApp, url: &str) -> String {
    let response = app.http().get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    response.text().await.unwrap()
}

async fn api_metrics(app: &TestApp) -> String {
    scrape(app, &format!("{}/metrics", app.base_url)).await
}

async fn post(app: &TestApp, token: Option<&str>, query: &str, operation: &str) -> Value {
    let mut request = app
        .http()
        .post(format!("{}/graphql", app.base_url))
        .json(&json!({ "query": query, "operationName": operation }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn graphql_operations_counted_by_name_type_and_outcome() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("metrics-ops@example.com", "Metrics Ops").await;

    for _ in 0..2 {
        let body = post(
            &app,
            Some(&owner.access_token),
            "query MetricsProbeMe { me { role } }",
            "MetricsProbeMe",
        )
        .await;
        assert_eq!(body["data"]["me"]["role"], "OWNER", "{body}");
    }
    let denied = post(
        &app,
        None,
        "query MetricsProbeAnonymous { me { role } }",
        "MetricsProbeAnonymous",
    )
    .await;
    assert_eq!(tests::error_code(&denied), "UNAUTHENTICATED");
    let unparsable = post(
        &app,
        None,
        "query MetricsProbeBroken {",
        "MetricsProbeBroken",
    )
    .await;
    assert!(unparsable["errors"].is_array(), "{unparsable}");

    let text = api_metrics(&app).await;
    let requests = "task_assistant_graphql_requests_total";
    assert_eq!(
        sample(
            &text,
            requests,
            &[
                ("operation", "MetricsProbeMe"),
                ("type", "query"),
                ("outcome", "ok")
            ]
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            requests,
            &[
                ("operation", "MetricsProbeAnonymous"),
                ("type", "query"),
                ("outcome", "UNAUTHENTICATED"),
            ]
        ),
        Some(1.0),
        "{text}"
    );
    // A request that does not parse has no known type.
    assert_eq!(
        sample(
            &text,
            requests,
            &[
                ("operation", "MetricsProbeBroken"),
                ("type", "unknown"),
                ("outcome", "BAD_USER_INPUT"),
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "task_assistant_graphql_request_duration_seconds_count",
            &[("operation", "MetricsProbeMe"), ("type", "query")]
        ),
        Some(2.0)
    );
    // The +Inf bucket counts every request.
    assert_eq!(
        sample(
            &text,
            "task_assistant_graphql_request_duration_seconds_bucket",
            &[("operation", "MetricsProbeMe"), ("le", "+Inf")]
        ),
        Some(2.0)
    );
    assert!(text.contains("# TYPE task_assistant_graphql_requests_total counter"));
    app.shutdown().await;
}

#[tokio::test]
async fn provider_calls_connections_jobs_and_queues_recorded() {
    let app = TestApp::spawn_with(TestOptions {
        mock: MockConfig {
            tokens: 6,
            gap: Duration::from_millis(150),
            ..MockConfig::default()
        },
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let chat = app
        .start_chat("metrics-provider@example.com", "Be brief.")
        .await;
    let token = &chat.owner.access_token;
    let before = api_metrics(&app).await;
    let provider = [("provider", "openai"), ("model", MOCK_MODEL)];
    let ok_calls = |text: &str| {
        sample(
            text,
            "task_assistant_provider_requests_total",
            &[provider[0], provider[1], ("outcome", "ok")],
        )
        .unwrap_or(0.0)
    };
    let output_tokens = |text: &str| {
        sample(
            text,
            "task_assistant_provider_tokens_total",
            &[provider[0], provider[1], ("direction", "output")],
        )
        .unwrap_or(0.0)
    };
    let first_tokens = |text: &str| {
        sample(
            text,
            "task_assistant_provider_time_to_first_token_seconds_count",
            &provider,
        )
        .unwrap_or(0.0)
    };
    let gauge = |text: &str, name: &str| sample(text, name, &[]).unwrap_or(0.0);

    let mut connection = Connection::open(&app.ws_url(), token).await.unwrap();
    let message_id = app
        .send_message(token, &chat.conversation_id, "Count me")
        .await;
    connection
        .subscribe(
            "1",
            "subscription($id: ID!) { messageStream(messageId: $id) { kind delta } }",
            json!({ "id": message_id }),
        )
        .await
        .unwrap();
    // The first delta shows the subscription streaming while the reply is generated.
    loop {
        match connection.receive(Duration::from_secs(10)).await.unwrap() {
            Received::Message(message) if message["type"] == "next" => break,
            Received::Message(_) => continue,
            Received::Closed(frame) => panic!("closed early: {frame:?}"),
        }
    }
    let streaming = api_metrics(&app).await;
    assert!(
        gauge(&streaming, "task_assistant_websocket_connections")
            >= gauge(&before, "task_assistant_websocket_connections") + 1.0,
        "{streaming}"
    );
    assert!(
        gauge(&streaming, "task_assistant_graphql_active_subscriptions")
            >= gauge(&before, "task_assistant_graphql_active_subscriptions") + 1.0
    );
    assert!(
        gauge(&streaming, "task_assistant_generations_running")
            >= gauge(&before, "task_assistant_generations_running") + 1.0
    );

    let reply = app.wait_for_reply(token, &message_id).await;
    assert_eq!(reply["status"], "COMPLETED");
    let after = api_metrics(&app).await;
    assert!(ok_calls(&after) >= ok_calls(&before) + 1.0, "{after}");
    assert!(first_tokens(&after) >= first_tokens(&before) + 1.0);
    let reply_output = reply["outputTokens"].as_f64().unwrap();
    assert_eq!(reply_output, reply_tokens(6).len() as f64);
    assert!(output_tokens(&after) >= output_tokens(&before) + reply_output);
    assert!(
        sample(
            &after,
            "task_assistant_provider_cost_microdollars_total",
            &provider
        )
        .unwrap_or(0.0)
            > 0.0
    );
    // The queue gauges are read from Redis at each scrape.
    assert!(
        sample(
            &after,
            "task_assistant_queue_jobs",
            &[("queue", "usage-aggregation"), ("state", "waiting")]
        )
        .is_some(),
        "{after}"
    );

    // The reply enqueued a usage count, which the worker records in its own metrics.
    let worker_url = app.worker_metrics_url.clone().unwrap();
    let jobs = app
        .eventually(Duration::from_secs(15), || async {
            let text = scrape(&app, &worker_url).await;
            sample(
                &text,
                "task_assistant_jobs_total",
                &[("queue", "usage-aggregation"), ("outcome", "succeeded")],
            )
            .filter(|jobs| *jobs >= 1.0)
        })
        .await
        .unwrap();
    assert!(jobs >= 1.0);
    let live = app
        .http()
        .get(worker_url.replace("/metrics", "/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn cache_lookups_and_rate_limit_rejections_counted() {
    let app = TestApp::spawn_with(TestOptions {
        env: vec![
            ("LOGIN_ATTEMPTS_PER_EMAIL_PER_MINUTE".into(), "2".into()),
            ("METRICS_BEARER_TOKEN".into(), "metrics-scrape-token".into()),
        ],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let owner = app
        .register("metrics-limits@example.com", "Metrics Limits")
        .await;
    let metrics_url = format!("{}/metrics", app.base_url);
    let scrape_with_token = || async {
        let response = app
            .http()
            .get(&metrics_url)
            .bearer_auth("metrics-scrape-token")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    };

    // Without the token, or with another, the metrics stay closed.
    let anonymous = app.http().get(&metrics_url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    let wrong = app
        .http()
        .get(&metrics_url)
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let before = scrape_with_token().await;
    let lookups = |text: &str, result: &str| {
        sample(
            text,
            "task_assistant_cache_lookups_total",
            &[("cache", "api_key"), ("result", result)],
        )
        .unwrap_or(0.0)
    };
    let created = app
        .data(
            Some(&owner.access_token),
            "mutation { createApiKey(input: { name: \"metrics\", scopes: [READ] }) { secret } }",
            json!({}),
        )
        .await;
    let key = created["createApiKey"]["secret"].as_str().unwrap();
    for _ in 0..2 {
        let body: Value = app
            .http()
            .post(format!("{}/graphql", app.base_url))
            .header("x-api-key", key)
            .json(&json!({ "query": "{ me { role } }" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["data"]["me"]["role"], "VIEWER", "{body}");
    }

    // Registration used one of the two attempts for this address; the third is refused.
    let mut codes = Vec::new();
    for _ in 0..2 {
        let body = app
            .graphql(
                None,
                "mutation($input: LoginInput!) { login(input: $input) { accessToken } }",
                json!({ "input": { "email": "metrics-limits@example.com",
                                   "password": "wrong password" } }),
            )
            .await;
        codes.push(tests::error_code(&body).to_owned());
    }
    assert_eq!(codes, ["UNAUTHENTICATED", "RATE_LIMITED"]);

    let after = scrape_with_token().await;
    assert!(
        lookups(&after, "miss") >= lookups(&before, "miss") + 1.0,
        "{after}"
    );
    assert!(lookups(&after, "hit") >= lookups(&before, "hit") + 1.0);
    let rejections = |text: &str| {
        sample(
            text,
            "task_assistant_rate_limit_rejections_total",
            &[("limit", "sign_in_per_email")],
        )
        .unwrap_or(0.0)
    };
    assert!(rejections(&after) >= rejections(&before) + 1.0);
    app.shutdown().await;
}
