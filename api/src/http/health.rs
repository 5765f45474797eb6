//! Health checks: `/health` (PostgreSQL and Redis), `/health/live` (the process runs) and
//! `/health/ready` (PostgreSQL, Redis, pending migrations and a live worker).

use std::{
    future::Future,
    sync::LazyLock,
    time::{Duration, Instant},
};

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use migration::MigratorTrait;
use serde_json::{Map, Value, json};
use service::health as probes;
use tracing::warn;

use super::AppState;

/// How long each dependency may take to respond to a health check.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// The names of the migrations compiled into this build, oldest first.
static MIGRATIONS: LazyLock<Vec<String>> = LazyLock::new(|| {
    migration::Migrator::migrations()
        .iter()
        .map(|migration| migration.name().to_owned())
        .collect()
});

/// The outcome of one check: details to report, and the reason it failed if it did.
#[derive(Default)]
struct Check {
    details: Map<String, Value>,
    error: Option<String>,
}

impl Check {
    fn failed(error: impl Into<String>) -> Self {
        Self {
            details: Map::new(),
            error: Some(error.into()),
        }
    }

    fn with(mut self, name: &str, value: Value) -> Self {
        self.details.insert(name.to_owned(), value);
        self
    }
}

/// Returns 200 when PostgreSQL and Redis respond, or 503 naming the ones that do not.
pub(super) async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let platform = &state.platform;
    let (postgres, redis) = tokio::join!(
        timed(ping(probes::ping_postgres(platform))),
        timed(ping(probes::ping_redis(platform))),
    );
    report("health", [("postgres", postgres), ("redis", redis)])
}

/// Returns 200 while the process runs and serves requests.
pub(super) async fn live() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Returns 200 when the api can serve: PostgreSQL and Redis respond, the database has
/// every migration of this build, and a worker wrote its heartbeat recently. Otherwise 503
/// naming the failing parts.
pub(super) async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let platform = &state.platform;
    let max_age = platform.settings.worker_heartbeat_max_age;
    let (postgres, redis, migrations, worker) = tokio::join!(
        timed(ping(probes::ping_postgres(platform))),
        timed(ping(probes::ping_redis(platform))),
        timed(async {
            let pending = match probes::pending_migrations(platform, &MIGRATIONS).await {
                Ok(pending) => pending,
                Err(error) => return Check::failed(error),
            };
            let check = if pending.is_empty() {
                Check::default()
            } else {
                Check::failed(format!(
                    "{} migrations are not applied: {}; run migrate",
                    pending.len(),
                    pending.join(", ")
                ))
            };
            check.with("pending", json!(pending))
        }),
        timed(async {
            let age = match probes::newest_heartbeat_age(platform).await {
                Ok(Some(age)) => age,
                Ok(None) => return Check::failed("no worker has written a heartbeat"),
                Err(error) => return Check::failed(error),
            };
            let check = if age <= max_age {
                Check::default()
            } else {
                Check::failed(format!(
                    "the newest worker heartbeat is {} s old, more than {} s",
                    age.as_secs(),
                    max_age.as_secs()
                ))
            };
            check.with("heartbeatAgeSeconds", json!(age.as_secs()))
        }),
    );
    report(
        "readiness",
        [
            ("postgres", postgres),
            ("redis", redis),
            ("migrations", migrations),
            ("worker", worker),
        ],
    )
}

/// Turns a probe without details into a check.
async fn ping(probe: impl Future<Output = Result<(), String>>) -> Check {
    match probe.await {
        Ok(()) => Check::default(),
        Err(error) => Check::failed(error),
    }
}

/// Runs a check with a timeout and adds its latency in milliseconds to its details.
async fn timed(check: impl Future<Output = Check>) -> Check {
    let started = Instant::now();
    let check = match tokio::time::timeout(HEALTH_TIMEOUT, check).await {
        Ok(check) => check,
        Err(_) => Check::failed(format!("no answer within {} s", HEALTH_TIMEOUT.as_secs())),
    };
    check.with("latencyMs", json!(started.elapsed().as_secs_f64() * 1000.0))
}

/// Builds the response: 200 when every check passed, else 503 with the failing names.
fn report<const N: usize>(name: &str, checks: [(&'static str, Check); N]) -> impl IntoResponse {
    let failing: Vec<&str> = checks
        .iter()
        .filter(|(_, check)| check.error.is_some())
        .map(|(name, _)| *name)
        .collect();
    let details: Map<String, Value> = checks
        .into_iter()
        .map(|(name, check)| {
            let mut entry = check.details;
            let status = match check.error {
                None => "ok",
                Some(error) => {
                    entry.insert("error".into(), json!(error));
                    "unavailable"
                }
            };
            entry.insert("status".into(), json!(status));
            (name.to_owned(), Value::Object(entry))
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
