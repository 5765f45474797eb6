//! Health checks: `/health` (PostgreSQL and Redis), `/health/live` (the process runs) and
//! `/health/ready` (PostgreSQL, Redis, pending migrations and a live worker).

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde_json::{Map, Value, json};
use service::health::{self as probes, Check};
use tracing::warn;

use super::AppState;
use crate::MIGRATIONS;

/// Returns 200 when PostgreSQL and Redis respond, or 503 naming the ones that do not.
pub(super) async fn health(State(state): State<AppState>) -> impl IntoResponse {
    report("health", probes::dependencies(&state.platform).await)
}

/// Returns 200 while the process runs and serves requests.
pub(super) async fn live() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Returns 200 when the api can serve: PostgreSQL and Redis respond, the database has
/// every migration of this build, and a worker wrote its heartbeat recently. Otherwise 503
/// naming the failing parts.
pub(super) async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    report(
        "readiness",
        probes::readiness(&state.platform, &MIGRATIONS).await,
    )
}

/// Builds the response: 200 when every check passed, else 503 with the failing names, and
/// each check's status, latency, details and error.
fn report(name: &str, checks: Vec<Check>) -> impl IntoResponse {
    let failing: Vec<&str> = checks
        .iter()
        .filter(|check| !check.passed())
        .map(|check| check.name)
        .collect();
    let details: Map<String, Value> = checks
        .iter()
        .map(|check| {
            let mut entry = check.details.clone();
            let status = match &check.error {
                None => "ok",
                Some(error) => {
                    entry.insert("error".into(), json!(error));
                    "unavailable"
                }
            };
            entry.insert("status".into(), json!(status));
            entry.insert(
                "latencyMs".into(),
                json!(check.latency.as_secs_f64() * 1000.0),
            );
            (check.name.to_owned(), Value::Object(entry))
        })
        .collect();
    if !failing.is_empty() {
        warn!(check = name, failing = ?failing, "health check failed");
    }
    let (status, word) = if failing.is_empty() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    (
        status,
        Json(json!({ "status": word, "failing": failing, "checks": details })),
    )
}
