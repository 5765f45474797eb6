//! `/health` reports each dependency and names the one that is down; `/health/live`
//! returns 200 while the process runs; `/health/ready` adds migrations and the worker.

use std::time::Duration;

use migration::MigratorTrait;
use redis::AsyncCommands;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tests::{TestApp, TestOptions};

#[tokio::test]
async fn health_ok_when_dependencies_answer() {
    let app = TestApp::spawn().await.unwrap();
    let response = app
        .http()
        .get(format!("{}/health", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["checks"]["postgres"]["status"], "ok");
    assert_eq!(body["checks"]["redis"]["status"], "ok");
    app.shutdown().await;
}

#[tokio::test]
async fn health_names_redis_when_unreachable() {
    // Port 1 on loopback has no listener, so connections are refused at once.
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("REDIS_URL".into(), "redis://127.0.0.1:1".into())],
        worker: false,
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let response = app
        .http()
        .get(format!("{}/health", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["failing"], serde_json::json!(["redis"]));
    assert_eq!(body["checks"]["redis"]["status"], "unavailable");
    assert_eq!(body["checks"]["postgres"]["status"], "ok");
    app.shutdown().await;
}

async fn get_json(app: &TestApp, path: &str) -> (u16, Value) {
    let response = app
        .http()
        .get(format!("{}{path}", app.base_url))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Waits until the in-process worker has written its first heartbeat.
async fn ready_body(app: &TestApp) -> (u16, Value) {
    for _ in 0..50 {
        let (status, body) = get_json(app, "/health/ready").await;
        if body["checks"]["worker"]["status"] == "ok" {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no worker heartbeat within 5 s");
}

#[tokio::test]
async fn live_answers_while_running() {
    let app = TestApp::spawn_with(TestOptions {
        worker: false,
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let (status, body) = get_json(&app, "/health/live").await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({ "status": "ok" }));
    app.shutdown().await;
}

#[tokio::test]
async fn ready_reports_every_check() {
    let app = TestApp::spawn().await.unwrap();
    let (status, body) = ready_body(&app).await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["failing"], json!([]));
    for check in ["postgres", "redis", "migrations", "worker"] {
        assert_eq!(body["checks"][check]["status"], "ok", "{check}");
        let latency = body["checks"][check]["latencyMs"].as_f64().unwrap();
        assert!((0.0..2000.0).contains(&latency), "{check}: {latency}");
    }
    assert_eq!(body["checks"]["migrations"]["pending"], json!([]));
    let age = body["checks"]["worker"]["heartbeatAgeSeconds"]
        .as_u64()
        .unwrap();
    assert!(age <= 30, "{age}");
    app.shutdown().await;
}

#[tokio::test]
async fn ready_names_missing_worker() {
    let app = TestApp::spawn_with(TestOptions {
        worker: false,
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let (status, body) = get_json(&app, "/health/ready").await;
    assert_eq!(status, 503);
    assert_eq!(body["failing"], json!(["worker"]));
    assert_eq!(
        body["checks"]["worker"]["error"],
        "no worker has written a heartbeat"
    );

    // A heartbeat older than WORKER_HEARTBEAT_MAX_AGE_SECONDS (30) does not count.
    let key = app.platform.redis.key(&["worker-heartbeats"]);
    let mut redis = app.platform.redis.shared().await.unwrap();
    let written = chrono::Utc::now().timestamp() - 100;
    let _: i64 = redis.zadd(&key, "stopped-worker", written).await.unwrap();
    let (status, body) = get_json(&app, "/health/ready").await;
    assert_eq!(status, 503);
    let error = body["checks"]["worker"]["error"].as_str().unwrap();
    assert!(error.contains("more than 30 s"), "{error}");
    app.shutdown().await;
}

#[tokio::test]
async fn ready_names_pending_migrations() {
    let app = TestApp::spawn().await.unwrap();
    ready_body(&app).await;
    let last = migration::Migrator::migrations()
        .last()
        .map(|migration| migration.name().to_owned())
        .unwrap();
    app.db
        .execute_unprepared(&format!(
            "DELETE FROM seaql_migrations WHERE version = '{last}'"
        ))
        .await
        .unwrap();

    let (status, body) = get_json(&app, "/health/ready").await;
    assert_eq!(status, 503);
    assert_eq!(body["failing"], json!(["migrations"]));
    assert_eq!(body["checks"]["migrations"]["pending"], json!([last]));
    let error = body["checks"]["migrations"]["error"].as_str().unwrap();
    assert!(
        error.contains(&last) && error.contains("run migrate"),
        "{error}"
    );
    app.shutdown().await;
}

const HEALTH: &str = "{ health { status checks { name status latencyMs error details }
    providers { provider status } queues { queue waiting scheduled failed } } }";

#[tokio::test]
async fn health_query_reports_checks_and_queues() {
    let app = TestApp::spawn_with(TestOptions {
        worker: false,
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let owner = app.register("health-owner@example.com", "Health").await;
    let tenant_id = owner.tenant_id.parse().unwrap();
    app.platform
        .jobs
        .count_usage(service::jobs::CountUsage {
            tenant_id,
            request_id: None,
        })
        .await;

    let data = app.data(Some(&owner.access_token), HEALTH, json!({})).await;
    let health = &data["health"];
    assert_eq!(health["status"], "UNAVAILABLE", "no worker runs");
    let checks = health["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["postgres", "redis", "migrations", "worker"]);
    assert_eq!(checks[0]["status"], "OK");
    assert_eq!(checks[2]["details"]["pending"], json!([]));
    assert_eq!(checks[3]["status"], "UNAVAILABLE");
    assert_eq!(checks[3]["error"], "no worker has written a heartbeat");
    assert_eq!(
        health["queues"],
        json!([
            { "queue": "usage-aggregation", "waiting": 1, "scheduled": 0, "failed": 0 },
            { "queue": "agent-runs", "waiting": 0, "scheduled": 0, "failed": 0 },
            { "queue": "webhooks", "waiting": 0, "scheduled": 0, "failed": 0 },
        ])
    );

    let member = app
        .add_member(&owner.access_token, "health-member@example.com", "MEMBER")
        .await;
    let body = app
        .graphql(Some(&member.access_token), HEALTH, json!({}))
        .await;
    assert_eq!(tests::error_code(&body), "FORBIDDEN", "{body}");
    app.shutdown().await;
}
