//! The health check: PostgreSQL and Redis, each with a timeout.

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde_json::json;
use service::health as probes;
use tracing::warn;

use super::AppState;

/// How long each dependency may take to respond to the health check.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// Returns 200 when PostgreSQL and Redis respond, or 503 naming the ones that do not.
pub(super) async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let platform = &state.platform;
    let (postgres, redis) = tokio::join!(
        check(probes::ping_postgres(platform)),
        check(probes::ping_redis(platform)),
    );
    let checks = [("postgres", postgres), ("redis", redis)];
    let failing: Vec<&str> = checks
        .iter()
        .filter(|(_, check)| check.is_err())
        .map(|(name, _)| *name)
        .collect();
    let details: serde_json::Map<String, serde_json::Value> = checks
        .iter()
        .map(|(name, check)| {
            let value = match check {
                Ok(latency) => json!({ "status": "ok", "latencyMs": latency }),
                Err(error) => json!({ "status": "unavailable", "error": error }),
            };
            (name.to_string(), value)
        })
        .collect();
    if !failing.is_empty() {
        warn!(failing = ?failing, "health check failed");
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

/// Runs one dependency check with a timeout and returns its latency in milliseconds.
async fn check(
    probe: impl std::future::Future<Output = Result<(), String>>,
) -> Result<f64, String> {
    let started = std::time::Instant::now();
    match tokio::time::timeout(HEALTH_TIMEOUT, probe).await {
        Ok(Ok(())) => Ok(started.elapsed().as_secs_f64() * 1000.0),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(format!("no answer within {} s", HEALTH_TIMEOUT.as_secs())),
    }
}
